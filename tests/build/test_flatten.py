"""A stage flattened for ``RUN --mount=from=`` (build.workspace.copy_view): read from its
unpacked layers, whiteouts and opaque dirs applied, files linked not copied, and no layer tar
written for it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from support.build import probe, run_build, sandbox_store

from pybuild.build.rootfs import RootfsView
from pybuild.build.workspace import copy_view
from pybuild.store.images import resolve

pytestmark = pytest.mark.root  # whiteout devices, trusted.* xattrs, chown
OLD = 1_000_000_000


def lowers(tmp_path: Path) -> tuple[Path, Path]:
    """Two overlay lower dirs: the top one deletes /a/gone, makes /d opaque and adds a link."""
    low, top = tmp_path / "low", tmp_path / "top"
    for d in (low / "a", low / "d", top / "a", top / "d"):
        d.mkdir(parents=True)
    (low / "a/gone").write_text("gone")
    (low / "a/kept").write_text("kept")
    os.link(low / "a/kept", low / "a/twin")
    os.chown(low / "a/kept", 7, 8)
    (low / "d/hidden").write_text("below an opaque dir")
    os.mknod(top / "a/gone", stat.S_IFCHR | 0o600, 0)  # a whiteout
    os.setxattr(top / "d", "trusted.overlay.opaque", b"y")
    (top / "d/shown").write_text("shown")
    os.symlink("../a/kept", top / "d/link")
    os.chmod(top / "d", 0o750)
    os.chown(top / "d", 5, 6)
    os.utime(top / "d", (OLD, OLD))
    return low, top


def test_the_merged_tree_with_whiteouts_applied_and_files_linked(tmp_path):
    low, top = lowers(tmp_path)
    flat = tmp_path / "flat"
    flat.mkdir()
    copy_view(RootfsView([low, top]), "/", flat)
    names = sorted(str(p.relative_to(flat)) for p in flat.rglob("*"))
    assert names == ["a", "a/kept", "a/twin", "d", "d/link", "d/shown"]
    kept = os.lstat(flat / "a/kept")
    assert kept.st_ino == os.lstat(low / "a/kept").st_ino == os.lstat(flat / "a/twin").st_ino
    assert (kept.st_uid, kept.st_gid) == (7, 8)
    d = os.lstat(flat / "d")
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_gid, d.st_mtime) == (0o750, 5, 6, OLD)
    assert "trusted.overlay.opaque" not in os.listxattr(flat / "d")
    assert os.readlink(flat / "d/link") == "../a/kept"


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    return sandbox_store(tmp_path_factory, busybox_tar, "flatten")


def test_a_bind_from_a_built_stage_sees_its_files_and_writes_no_tar(store, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("from the stage\n")
    (ctx / "gone").write_text("removed by a later step\n")
    base = "FROM localhost/bench/busybox:latest"
    (ctx / "Dockerfile").write_text(
        f"{base} AS gen\nCOPY f gone /out/\nRUN echo made > /out/g && rm /out/gone\n"
        f"{base}\nRUN --mount=type=bind,from=gen,target=/m "
        "ls /m/out > /seen && cat /m/out/f /m/out/g >> /seen\n")
    image, _ = run_build(store, ctx)
    assert probe(store, image, "cat /seen") == "f\ng\nfrom the stage\nmade\n"
    gen, _ = run_build(store, ctx, target="gen")
    diff_ids = resolve(store, gen).diff_ids[-2:]  # the COPY and the RUN, both built here
    assert all(not store.blobs.path(d).exists() for d in diff_ids)
    assert store.blobs.lazy is not None and all(store.blobs.lazy.get(d) for d in diff_ids)
