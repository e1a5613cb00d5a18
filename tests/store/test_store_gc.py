"""Garbage collection and ``system check`` at the library level: each kind of damage found,
reported once, and repaired."""

from __future__ import annotations

import os

import pytest

from pybuild.errors import CorruptStore
from pybuild.image.config import ImageConfig
from pybuild.store import LayerRef, Store
from pybuild.store.check import check
from pybuild.store.gc import collect, disk_usage


def image(store: Store, payload: bytes, name: str | None = None) -> str:
    layer = store.blobs.put_bytes(payload)
    config = ImageConfig(diff_ids=(layer.digest,), author=payload.decode()).to_bytes()
    record = store.commit_image(config, [LayerRef(layer.digest, layer.size)])
    if name:
        store.refs.update(lambda tags, _d: tags.__setitem__(name, record.id))
    return record.id


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "root")
    image(store, b"kept", "docker.io/library/kept:latest")
    return store


def kinds(problems) -> list[tuple[str, str]]:
    return sorted((p.kind, p.subject) for p in problems)


def test_clean_store_has_no_problems(store):
    assert check(store) == []


def test_missing_manifest_breaks_image_and_its_names(store):
    broken = image(store, b"broken", "docker.io/library/broken:1")
    store.blobs.delete(store.records.get(broken).manifest_digest)
    assert kinds(check(store)) == [("image", broken), ("ref", "docker.io/library/broken:1")]
    assert kinds(check(store, repair=True)) == [
        ("image", broken), ("ref", "docker.io/library/broken:1")]
    assert check(store) == []
    assert not store.records.has(broken)
    assert list(store.refs.load().tags) == ["docker.io/library/kept:latest"]


def test_malformed_files_are_reported(store):
    (store.records.root / "junk.json").write_text("{}")
    bad_id = image(store, b"x")
    store.records.path(bad_id).write_text('{"id": 1}')
    (store.layers.root).mkdir(parents=True, exist_ok=True)
    (store.layers.root / "not-a-chain").mkdir()
    (store.compressed.root).mkdir(parents=True, exist_ok=True)
    (store.compressed.root / ("ab" * 32 + ".json")).write_text("{broken")
    found = kinds(check(store))
    assert ("image", "junk.json") in found and ("image", bad_id) in found
    assert ("layer", "not-a-chain") in found
    assert ("compressed", "ab" * 32 + ".json") in found
    check(store, repair=True)
    assert check(store) == []


def test_corrupt_record_stops_collection(store):
    bad_id = image(store, b"x")
    store.records.path(bad_id).write_text("nonsense")
    with pytest.raises(CorruptStore):
        collect(store)  # it cannot know what the broken record still needs


def test_collect_frees_unreferenced_and_reports_bytes(store):
    orphan = store.blobs.put_bytes(b"o" * 5000)
    (store.tmp).mkdir(exist_ok=True)
    (store.tmp / "blob-crashed").write_bytes(b"t" * 100)
    result = collect(store)
    assert result.blobs == (orphan.digest,) and result.reclaimed == 5100
    assert os.listdir(store.tmp) == []
    assert check(store) == []


def test_disk_usage_rows(store):
    image(store, b"dangling")
    (store.root / "cache").mkdir()
    (store.root / "cache" / "entry").write_bytes(b"c" * 10)
    rows = {row.kind: row for row in disk_usage(store)}
    assert (rows["Images"].total, rows["Images"].active) == (2, 1)
    assert rows["Images"].reclaimable > 0
    assert rows["Build cache"].size == 10
    assert rows["Blobs"].total == 6 and rows["Blobs"].reclaimable == 0


def test_collect_drops_what_registries_hold_of_layers_it_removes(store):
    from pybuild.registry.distribution import RemoteBlob, known, remember

    kept = store.records.list()[0].diff_ids[0]
    orphan = store.blobs.put_bytes(b"pulled once")
    blob = RemoteBlob("sha256:" + "1" * 64, 10, "application/vnd.oci.image.layer.v1.tar+gzip",
                      ("127.0.0.1:5000/app",))
    remember(store, kept, blob)
    remember(store, orphan.digest, blob)
    collect(store)
    assert known(store, kept) == [blob] and known(store, orphan.digest) == []
    assert sorted(p.name for p in (store.root / "distribution").iterdir()) == \
        [kept.removeprefix("sha256:") + ".json"]
