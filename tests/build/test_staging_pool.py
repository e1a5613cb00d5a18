"""Staging with a file pool (store.filepool): a pooled inode is shared by other layers, so
staging never changes its metadata, and only a file known to hold the hashed bytes is pooled."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from pathlib import Path

import pytest

from pybuild.build.rootfs import RootfsView
from pybuild.build.staging import Item, Staging
from pybuild.store.filepool import FilePool

pytestmark = pytest.mark.root  # chown to other owners

OLD = 1_000_000_000
DATA = b"pooled bytes\n" * 1000
SHA = hashlib.sha256(DATA).hexdigest()

# Metadata calls seen while a test listens: audit events cannot be unhooked, so the hook
# stays installed and records only while ``_CALLS`` is a list.
_CALLS: list[tuple[str, str]] | None = None
_EVENTS = {"os.chown", "os.chmod", "os.utime", "os.setxattr"}


def _hook(event: str, args: tuple) -> None:
    if _CALLS is not None and event in _EVENTS:
        _CALLS.append((event, os.fsdecode(args[0]) if isinstance(args[0], (str, bytes)) else ""))


sys.addaudithook(_hook)


def staging(tmp_path: Path) -> tuple[Staging, FilePool]:
    lower, tree = tmp_path / "lower", tmp_path / "tree"
    lower.mkdir()
    tree.mkdir()
    pool = FilePool(tmp_path / "files")
    return Staging(tree, RootfsView([lower]), pool), pool


def test_a_second_name_of_a_pooled_file_leaves_the_pool_inode_alone(tmp_path):
    global _CALLS
    s, pool = staging(tmp_path)
    key = pool.key(SHA, 1000, 1000, 0o4755, OLD)
    pool.root.mkdir()
    entry = pool.root / key  # as an earlier layer pooled it: setuid, owned 1000:1000
    entry.write_bytes(DATA)
    os.chown(entry, 1000, 1000)
    os.chmod(entry, 0o4755)
    os.utime(entry, (OLD, OLD))
    src = tmp_path / "src"
    src.write_bytes(DATA)
    os.link(src, tmp_path / "src2")
    st = os.lstat(src)
    item = Item("a", "file", 0o4755, host=str(src), mtime=OLD, inode=(st.st_dev, st.st_ino),
                content=SHA)
    dest = s.ensure_dir("/bin")
    before = os.lstat(entry)
    _CALLS = []
    try:
        s.put(dest, item, (1000, 1000))
        s.put(dest, Item("b", "file", 0o4755, host=str(tmp_path / "src2"), mtime=OLD,
                         inode=item.inode, content=SHA), (1000, 1000))
        calls = _CALLS
    finally:
        _CALLS = None
    names = {str(s.root / "bin/a"), str(s.root / "bin/b")}
    assert [c for c in calls if c[1] in names] == []
    after = os.lstat(entry)
    assert after.st_ino == os.lstat(s.root / "bin/b").st_ino == os.lstat(s.root / "bin/a").st_ino
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid, after.st_mtime) == \
        (0o4755, 1000, 1000, OLD)
    assert after.st_ctime_ns >= before.st_ctime_ns and after.st_nlink == 3
