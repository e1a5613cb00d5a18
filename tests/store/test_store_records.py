"""Records, refs and chain IDs: atomic replacement, consistent read-modify-write."""

from __future__ import annotations

import hashlib
import os

import pytest

from pybuild.errors import CorruptStore, ImageNotFound
from pybuild.image.config import HistoryEntry, ImageConfig
from pybuild.image.manifest import Manifest
from pybuild.store import LayerRef, Store, chain_id, chain_ids
from pybuild.store.fsutil import atomic_write


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "root")


def commit(store: Store, payload: bytes = b"layer"):
    layer = store.blobs.put_bytes(payload)
    config = ImageConfig(created="2024-01-01T00:00:00Z", diff_ids=(layer.digest,),
                         history=(HistoryEntry(created_by="x"),))
    return store.commit_image(config.to_bytes(), [LayerRef(layer.digest, layer.size)])


def test_chain_ids_follow_the_oci_formula():
    a, b, c = sha(b"a"), sha(b"b"), sha(b"c")
    ab = sha(f"{a} {b}".encode())
    assert chain_ids([a]) == [a]
    assert chain_ids([a, b, c]) == [a, ab, sha(f"{ab} {c}".encode())]
    assert chain_id(None, a) == a and chain_id(a, b) == ab
    assert chain_ids([]) == []


def test_commit_image_writes_config_manifest_and_record(store):
    record = commit(store)
    assert record.id == record.config_digest
    assert store.records.get(record.id) == record
    config = ImageConfig.from_bytes(store.blobs.read_bytes(record.id))
    manifest = Manifest.from_bytes(store.blobs.read_bytes(record.manifest_digest))
    assert manifest.config.digest == record.id
    assert [d.digest for d in manifest.layers] == list(config.diff_ids)
    assert manifest.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar"
    assert record.created == "2024-01-01T00:00:00Z"


def test_docker_schema2_on_request(store):
    layer = store.blobs.put_bytes(b"l")
    cfg = ImageConfig(diff_ids=(layer.digest,)).to_bytes()
    record = store.commit_image(cfg, [LayerRef(layer.digest, layer.size)], docker=True)
    manifest = Manifest.from_bytes(store.blobs.read_bytes(record.manifest_digest))
    assert manifest.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest.config.media_type == "application/vnd.docker.container.image.v1+json"


def test_same_input_same_ids(tmp_path):
    one, two = Store(tmp_path / "a"), Store(tmp_path / "b")
    assert commit(one) == commit(two)


def test_record_lookup_errors(store):
    with pytest.raises(ImageNotFound):
        store.records.get(sha(b"nothing"))
    record = commit(store)
    store.records.path(record.id).write_text("{not json")
    with pytest.raises(CorruptStore):
        store.records.get(record.id)
    assert store.records.list() == []  # skipped: a broken record is the checker's business
    with pytest.raises(CorruptStore):
        store.records.list(strict=True)


def test_atomic_write_replaces_whole_files(store):
    target = store.root / "refs.json"
    atomic_write(target, b"old", store.tmp)
    fd = os.open(target, os.O_RDONLY)  # a reader holding the old file keeps seeing it
    atomic_write(target, b"new", store.tmp)
    assert os.read(fd, 10) == b"old"
    os.close(fd)
    assert target.read_bytes() == b"new"
    assert os.listdir(store.tmp) == []


def test_refs_update_read_modify_write(store):
    record = commit(store)
    store.refs.update(lambda t, d: t.__setitem__("docker.io/library/a:latest", record.id))
    store.refs.update(lambda t, d: t.__setitem__("docker.io/library/b:1", record.id))
    table = store.refs.load()
    assert table.names_for(record.id) == (
        ["docker.io/library/a:latest", "docker.io/library/b:1"], [])
    (store.root / "refs.json").write_text("[broken")
    with pytest.raises(CorruptStore):
        store.refs.load()


def test_compressed_blob_made_once(store):
    record = commit(store, os.urandom(1000) * 50)
    diff_id = record.diff_ids[0]
    digest, size, media_type = store.compressed_blob(diff_id, "gzip")
    assert media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert store.blobs.size(digest) == size and digest != diff_id
    mtime = store.blobs.path(digest).stat().st_mtime_ns
    assert store.compressed_blob(diff_id, "gzip") == (digest, size, media_type)
    assert store.blobs.path(digest).stat().st_mtime_ns == mtime
    assert store.compressed_blob(diff_id, "none") == (
        diff_id, store.blobs.size(diff_id), "application/vnd.oci.image.layer.v1.tar")
    zdigest, _, ztype = store.compressed_blob(diff_id, "zstd")
    assert ztype.endswith("+zstd") and zdigest not in (digest, diff_id)


def test_put_layer_decompresses_and_verifies(store):
    import gzip
    import io

    from pybuild.errors import DigestMismatch

    plain = b"pretend tar" * 100
    ref = store.put_layer(io.BytesIO(gzip.compress(plain)), diff_id=sha(plain))
    assert ref.diff_id == sha(plain) and ref.size == len(plain)
    assert store.blobs.read_bytes(ref.diff_id) == plain
    with pytest.raises(DigestMismatch):
        store.put_layer(io.BytesIO(gzip.compress(b"other")), diff_id=sha(b"nope"))
