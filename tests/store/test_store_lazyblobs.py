"""Layers a build makes are kept unpacked, their tar written on first read (store.lazyblobs):
the tar then written hashes to the diff ID, a changed unpacked dir is caught, and garbage
collection never drops the only copy of a layer an image needs."""

from __future__ import annotations

import hashlib
import os
import tarfile

import pytest
from support.build import BASE, new_store, run_build

from pybuild.archive.save import save
from pybuild.errors import DigestMismatch
from pybuild.store import Store
from pybuild.store.check import check
from pybuild.store.gc import collect
from pybuild.store.images import remove, resolve
from pybuild.store.layercache import chain_ids


@pytest.fixture
def store(tmp_path, busybox_tar) -> Store:
    return new_store(tmp_path / "root", busybox_tar)


def build_copy(store: Store, tmp_path, epoch: int | None = None) -> tuple[str, str]:
    """(image id, diff ID of its COPY layer): a file, a dir, a link and a hard link."""
    ctx = tmp_path / "ctx"
    (ctx / "d").mkdir(parents=True)
    (ctx / "d" / "big").write_bytes(os.urandom(3 << 20))
    os.link(ctx / "d" / "big", ctx / "d" / "again")
    os.symlink("big", ctx / "d" / "link")
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nCOPY d /opt/d\n")
    image_id, _ = run_build(store, ctx, tags=("lazy/x:1",), source_date_epoch=epoch)
    return image_id, resolve(store, image_id).diff_ids[-1]


@pytest.mark.parametrize("epoch", [None, 1000])
def test_a_built_layer_has_no_tar_until_read_then_one_that_hashes_to_its_diff_id(
        store, tmp_path, epoch):
    image_id, diff_id = build_copy(store, tmp_path, epoch)
    assert not store.blobs.path(diff_id).exists()
    assert store.blobs.has(diff_id)
    size = store.blobs.size(diff_id)
    assert list(store.blobs.lazy.digests()) == [diff_id]

    out = tmp_path / "image.tar"
    save(store, [image_id], str(out))
    blob = store.blobs.path(diff_id).read_bytes()
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == diff_id and len(blob) == size
    assert list(store.blobs.lazy.digests()) == []
    with tarfile.open(store.blobs.path(diff_id)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["opt/d/again"].islnk() or members["opt/d/big"].islnk()
    if epoch is not None:
        assert max(m.mtime for m in members.values()) <= epoch
    assert check(store) == []


def test_a_changed_unpacked_layer_is_refused_not_saved(store, tmp_path):
    image_id, diff_id = build_copy(store, tmp_path)
    chain = chain_ids(resolve(store, image_id).diff_ids)[-1]
    with open(store.layers.path(chain) / "opt" / "d" / "big", "ab") as f:
        f.write(b"x")
    with pytest.raises(DigestMismatch, match="has changed"):
        save(store, [image_id], str(tmp_path / "image.tar"))
    assert not (tmp_path / "image.tar").exists() and not store.blobs.path(diff_id).exists()
    problems = check(store)
    assert ("blob", diff_id) in {(p.kind, p.subject) for p in problems}
    check(store, repair=True)
    assert not store.blobs.has(diff_id) and not store.records.has(image_id)


def test_collection_keeps_the_only_copy_of_a_needed_layer_and_drops_it_after(store, tmp_path):
    image_id, diff_id = build_copy(store, tmp_path)
    chain = chain_ids(resolve(store, image_id).diff_ids)[-1]
    collect(store)
    assert store.layers.has(chain) and store.blobs.has(diff_id)
    remove(store, "lazy/x:1")
    result = collect(store)
    assert diff_id in result.blobs and chain in result.layers
    assert not store.blobs.has(diff_id) and list(store.blobs.lazy.digests()) == []


def test_a_rebuilt_layer_names_its_unpacked_dir_once(store, tmp_path):
    _, diff_id = build_copy(store, tmp_path, epoch=5)
    ctx = tmp_path / "ctx"
    run_build(store, ctx, tags=("lazy/x:2",), source_date_epoch=5, no_cache=True)
    assert len(store.blobs.lazy.get(diff_id).sources) == 1


def test_naming_a_recorded_source_again_neither_syncs_nor_rewrites(tmp_path):
    from pybuild.store.lazyblobs import LazyBlobs

    layers, tmp = tmp_path / "layers", tmp_path / "tmp"
    chain = "sha256:" + "c" * 64
    (layers / chain[7:]).mkdir(parents=True)
    tmp.mkdir()
    lazy = LazyBlobs(tmp_path / "lazy", tmp, layers)
    lazy.root.mkdir()
    diff_id = "sha256:" + "d" * 64
    lazy.add(diff_id, 10, chain, upper=False, epoch=None)
    record = lazy.root / f"{'d' * 64}.json"
    before = os.stat(record)
    os.rmdir(layers / chain[7:])  # syncing it again would have to open it
    lazy.add(diff_id, 10, chain, upper=True, epoch=5)
    after = os.stat(record)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert lazy.chains(diff_id) == {chain}
