"""Big files layers share by hard link (store.filepool): a rebuild links instead of copying,
the layers' tars stay what a copy would give, and nothing a later step does reaches back."""

from __future__ import annotations

import hashlib
import os
import tarfile
import time

import pytest
from support.build import BASE, new_store, run_build, sandbox_store

from pybuild.archive.save import save
from pybuild.store import Store
from pybuild.store.filepool import RACY_NS
from pybuild.store.gc import collect
from pybuild.store.images import remove, resolve
from pybuild.store.layercache import chain_ids

BIG = 2 << 20


def context(tmp_path, dockerfile: str):
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    data = hashlib.sha256(b"seed").digest() * (BIG // 32)
    for name in ("big", "twin"):  # same bytes, owner, mode and time: two files all the same
        (ctx / name).write_bytes(data)
        os.utime(ctx / name, (1e9, 1e9))
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\n{dockerfile}")
    time.sleep(RACY_NS / 1e9)  # a file changed just before its copy is not pooled
    return ctx


def top_layer(store: Store, image: str):
    record = resolve(store, image)
    return store.layers.path(chain_ids(record.diff_ids)[-1]), record.diff_ids[-1]


@pytest.fixture
def store(tmp_path, busybox_tar) -> Store:
    return new_store(tmp_path / "root", busybox_tar)


def test_a_rebuild_links_the_big_file_and_its_tar_still_holds_plain_files(store, tmp_path):
    ctx = context(tmp_path, "COPY big twin /data/\n")
    one, _ = run_build(store, ctx, tags=("share/a:1",))
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nWORKDIR /w\nCOPY big twin /data/\n")
    two, _ = run_build(store, ctx, tags=("share/b:1",))
    (dir_one, _), (dir_two, diff_two) = top_layer(store, one), top_layer(store, two)
    assert dir_one != dir_two
    assert os.lstat(dir_one / "data/big").st_ino == os.lstat(dir_two / "data/big").st_ino
    # the two equal files of one layer stay two files
    assert os.lstat(dir_two / "data/big").st_ino != os.lstat(dir_two / "data/twin").st_ino

    save(store, [two], str(tmp_path / "two.tar"))
    with tarfile.open(store.blobs.path(diff_two)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["data/big"].isreg() and members["data/twin"].isreg()
    assert members["data/big"].size == BIG and members["data/big"].mtime == 1_000_000_000


def test_another_mode_or_time_gets_its_own_copy(store, tmp_path):
    ctx = context(tmp_path, "COPY big /data/\n")
    one, _ = run_build(store, ctx)
    os.utime(ctx / "big", (2e9, 2e9))
    two, _ = run_build(store, ctx, no_cache=True)  # the cache key leaves mtimes out
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nCOPY --chmod=600 big /data/\n")
    three, _ = run_build(store, ctx)
    inodes = {os.lstat(top_layer(store, i)[0] / "data/big").st_ino for i in (one, two, three)}
    assert len(inodes) == 3
    assert os.lstat(top_layer(store, three)[0] / "data/big").st_mode & 0o777 == 0o600


def test_collection_drops_pool_entries_no_layer_uses(store, tmp_path):
    ctx = context(tmp_path, "COPY big /data/\n")
    run_build(store, ctx, tags=("share/a:1",))
    assert len(os.listdir(store.files.root)) == 1
    collect(store)
    assert len(os.listdir(store.files.root)) == 1
    remove(store, "share/a:1")
    collect(store)
    assert os.listdir(store.files.root) == []


@pytest.fixture(scope="module")
def run_store(tmp_path_factory, busybox_tar) -> Store:
    return sandbox_store(tmp_path_factory, busybox_tar, "shared-run")


def test_a_later_run_changing_the_file_leaves_the_shared_copy_alone(run_store, tmp_path):
    ctx = context(tmp_path, "COPY big /data/\n")
    one, _ = run_build(run_store, ctx)
    before = hashlib.sha256((top_layer(run_store, one)[0] / "data/big").read_bytes()).digest()
    (ctx / "Dockerfile").write_text(
        f"FROM {BASE}\nWORKDIR /w\nCOPY big /data/\n"
        "RUN echo more >> /data/big && chmod 600 /data/big\n")
    run_build(run_store, ctx)
    shared = top_layer(run_store, one)[0] / "data/big"
    assert hashlib.sha256(shared.read_bytes()).digest() == before
    assert shared.stat().st_mode & 0o777 == 0o644 and shared.stat().st_nlink >= 3
