"""Property: diff two states, apply on the first, get the second; overlay and two-tree agree."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from support.layers import CAP, copy_tree, manifest, mounted_overlay, needs_overlay

from pybuild.layers.create import write_layer_from_tree, write_layer_from_trees
from pybuild.layers.extract import apply_layer

pytestmark = [pytest.mark.root, pytest.mark.slow]

EPOCH = 1_000_000  # clamps every mtime, so both ways of diffing can give the same bytes
OLD_NS = 1_600_000_000_123_456_789
NAMES = st.sampled_from(["a", "b", "c", "dd", "-x", "é"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join)
FILE_MODES = st.sampled_from([0o644, 0o600, 0o755, 0o4755, 0o2750, 0o1644, 0o444])
DIR_MODES = st.sampled_from([0o755, 0o700, 0o1777, 0o2775, 0o555])
OWNERS = st.sampled_from([(0, 0), (1000, 1000), (65534, 100)])
XATTRS = st.sampled_from([{}, {"user.x": b"1"}, {"security.capability": CAP},
                          {"user.x": b"\x00\xff", "security.capability": CAP}])
TARGETS = st.sampled_from(["a", "../b", "c/dd", "nowhere", "."])
CONTENT = st.binary(max_size=80)

ENTRY = st.one_of(
    st.tuples(st.just("dir"), PATHS, DIR_MODES, OWNERS, XATTRS),
    st.tuples(st.just("file"), PATHS, FILE_MODES, OWNERS, XATTRS, CONTENT),
    st.tuples(st.just("symlink"), PATHS, TARGETS, OWNERS),
    st.tuples(st.just("hardlink"), PATHS, PATHS),
)
# Edits mostly name entries of the first state (an index into its list), else any path.
TARGET = st.one_of(st.integers(min_value=0, max_value=40), PATHS)
OP = st.one_of(
    st.tuples(st.just("write"), TARGET, CONTENT),
    st.tuples(st.just("mkdir"), TARGET, DIR_MODES),
    st.tuples(st.just("symlink"), TARGET, TARGETS),
    st.tuples(st.just("link"), PATHS, PATHS),
    st.tuples(st.just("rm"), TARGET),
    st.tuples(st.just("chmod"), TARGET, FILE_MODES),
    st.tuples(st.just("chown"), TARGET, OWNERS),
    st.tuples(st.just("xattr"), TARGET, st.sampled_from([b"2", None])),
)


def _lkind(path: Path) -> int | None:
    try:
        return stat.S_IFMT(os.lstat(path).st_mode)
    except OSError:  # missing, or a parent is not a directory (or loops)
        return None


def _real_parents(root: Path, rel: str) -> bool:
    """Every parent of ``rel`` is a real directory, so no edit goes through a symlink."""
    parent = root
    for part in rel.split("/")[:-1]:
        parent = parent / part
        if _lkind(parent) != stat.S_IFDIR:
            return False
    return True


def _free_slot(root: Path, rel: str) -> bool:
    return _real_parents(root, rel) and _lkind(root / rel) is None


def _set_meta(path: Path, mode: int | None, owner, xattrs) -> None:
    os.chown(path, *owner, follow_symlinks=False)
    if mode is not None:
        os.chmod(path, mode)
    for key, value in (xattrs or {}).items():
        os.setxattr(path, key, value)


def build_state1(root: Path, entries) -> set[str]:
    """Make the first state; returns the paths that share an inode (kept out of edits)."""
    linked: set[str] = set()
    for kind, rel, *rest in entries:
        parent, usable = root, True
        for part in rel.split("/")[:-1]:
            parent = parent / part
            parent_kind = _lkind(parent)
            if parent_kind is None:
                parent.mkdir()
            elif parent_kind != stat.S_IFDIR:
                usable = False
                break
        if not usable or not _free_slot(root, rel):
            continue
        path = root / rel
        if kind == "dir":
            path.mkdir()
            _set_meta(path, rest[0], rest[1], rest[2])
        elif kind == "file":
            path.write_bytes(rest[3])
            _set_meta(path, rest[0], rest[1], rest[2])
        elif kind == "symlink":
            os.symlink(rest[0], path)
            _set_meta(path, None, rest[1], None)
        elif _real_parents(root, rest[0]) and _lkind(root / rest[0]) == stat.S_IFREG:
            os.link(root / rest[0], path)
            linked |= {rel, rest[0]}
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), ns=(OLD_NS, OLD_NS), follow_symlinks=False)
    return linked


class Editor:
    """Applies one list of edits the same way to any view of the first state."""

    def __init__(self, root: Path, linked: set[str]):
        self.root, self.linked = root, linked
        self.created: set[str] = set()
        self.meta_done: set[tuple[str, str]] = set()  # a second edit could undo the first

    def editable(self, rel: str, what: str) -> bool:
        if rel in self.linked or (rel, what) in self.meta_done:
            return False
        self.meta_done.add((rel, what))
        return True

    def run(self, ops, entries) -> None:
        for op, rel, *rest in ops:
            if isinstance(rel, int):
                rel = entries[rel % len(entries)][1] if entries else "a"
            if _real_parents(self.root, rel):
                getattr(self, "op_" + op)(rel, self.root / rel, *rest)

    def op_write(self, rel, path, data):
        kind = _lkind(path)
        if kind is None and _free_slot(self.root, rel):
            self.created.add(rel)
        elif not (kind == stat.S_IFREG and rel not in self.linked):
            return
        with open(path, "wb") as f:
            f.write(data)

    def op_mkdir(self, rel, path, mode):
        if _free_slot(self.root, rel):
            path.mkdir()
            os.chmod(path, mode)

    def op_symlink(self, rel, path, target):
        if _free_slot(self.root, rel):
            os.symlink(target, path)

    def op_link(self, rel, path, source):
        if source in self.created and _real_parents(self.root, source) \
                and _lkind(self.root / source) == stat.S_IFREG \
                and _free_slot(self.root, rel):
            os.link(self.root / source, path)
            self.created.add(rel)

    def op_rm(self, rel, path):
        kind = _lkind(path)
        if kind == stat.S_IFDIR:
            shutil.rmtree(path)
        elif kind is not None:
            path.unlink()

    def op_chmod(self, rel, path, mode):
        kind = _lkind(path)
        if kind in (stat.S_IFREG, stat.S_IFDIR) and os.lstat(path).st_mode & 0o7777 != mode \
                and self.editable(rel, "mode"):
            os.chmod(path, mode)

    def op_chown(self, rel, path, owner):
        st_ = os.lstat(path) if _lkind(path) is not None else None
        if st_ is not None and (st_.st_uid, st_.st_gid) != owner and self.editable(rel, "own"):
            os.chown(path, *owner, follow_symlinks=False)

    def op_xattr(self, rel, path, value):
        if _lkind(path) not in (stat.S_IFREG, stat.S_IFDIR) or not self.editable(rel, "xattr"):
            return
        present = "user.x" in os.listxattr(path)
        if value is not None and (not present or os.getxattr(path, "user.x") != value):
            os.setxattr(path, "user.x", value)
        elif value is None and present:
            os.removexattr(path, "user.x")


def _layer(fn, *args, **kw) -> bytes:
    out = io.BytesIO()
    fn(*args, out, source_date_epoch=EPOCH, **kw)
    return out.getvalue()


def _recreated_dirs(upper: Path, state1: Path) -> bool:
    """Whether overlayfs marked a directory opaque that was a directory before (see diff.py)."""
    for dirpath, _, _ in os.walk(upper):
        opaque = "trusted.overlay.opaque" in os.listxattr(dirpath)
        rel = os.path.relpath(dirpath, upper)
        if opaque and _lkind(state1 / rel) == stat.S_IFDIR:
            return True
    return False


def _check(tmp: Path, entries, ops) -> None:
    names = ("state1", "after", "upper", "work", "mnt", "t1", "t2", "lower2", "mnt2")
    d = {n: tmp / n for n in names}
    for path in d.values():
        path.mkdir()
    linked = build_state1(d["state1"], entries)
    copy_tree(d["state1"], d["after"])
    Editor(d["after"], linked).run(ops, entries)
    with mounted_overlay([d["state1"]], d["mnt"], upper=d["upper"], work=d["work"]):
        Editor(d["mnt"], linked).run(ops, entries)
        assert manifest(d["mnt"]) == manifest(d["after"])
    from_upper = _layer(write_layer_from_tree, d["upper"], upper=True)
    from_trees = _layer(write_layer_from_trees, d["state1"], d["after"])
    expected = manifest(d["after"])
    for layer, target in ((from_upper, d["t1"]), (from_trees, d["t2"])):
        copy_tree(d["state1"], target)
        apply_layer(io.BytesIO(layer), target)
        assert manifest(target) == expected
    if not _recreated_dirs(d["upper"], d["state1"]):
        event("layer bytes compared")
        assert from_upper == from_trees
    else:
        event("a directory was recreated: only the results compared")
    event(f"whiteouts in layer: {min(from_upper.count(b'.wh.'), 3)}")
    event(f"entries in layer: {min(len(from_upper) // 1024, 8)}+")
    apply_layer(io.BytesIO(from_upper), d["lower2"], mode="overlay")
    with mounted_overlay([d["lower2"], d["state1"]], d["mnt2"]):
        assert manifest(d["mnt2"]) == expected


@needs_overlay
@settings(max_examples=int(os.environ.get("PYBUILD_LAYER_EXAMPLES", "40")), deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(ENTRY, max_size=14), st.lists(OP, max_size=10))
def test_diff_then_apply_reproduces_the_second_state(entries, ops):
    tmp = Path(tempfile.mkdtemp(prefix="pybuild-layers-rt-"))
    try:
        _check(tmp, entries, ops)
    finally:
        for mnt in ("mnt", "mnt2"):
            if os.path.ismount(tmp / mnt):
                os.system(f"umount -l {tmp / mnt}")
        shutil.rmtree(tmp, ignore_errors=True)
