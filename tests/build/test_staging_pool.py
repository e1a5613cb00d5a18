"""Staging with a file pool (store.filepool): a pooled inode is shared by other layers, so
staging never changes its metadata, and only a file known to hold the hashed bytes is pooled."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from pybuild.build.rootfs import RootfsView
from pybuild.build.staging import Item, Staging
from pybuild.store.filepool import RACY_NS, FilePool

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


def hashed_source(tmp_path: Path) -> tuple[Path, Item]:
    """A context file and its item, hashed as the context walk hashes it: content and the
    stat key the hash is for."""
    from pybuild.context.walk import stat_key

    src = tmp_path / "big"
    src.write_bytes(DATA)
    os.utime(src, (OLD, OLD))
    time.sleep(RACY_NS / 1e9 + 0.01)  # its ctime is now: let it be old enough to trust
    return src, Item("big", "file", 0o644, host=str(src), mtime=OLD, content=SHA,
                     content_stat=stat_key(os.lstat(src)))


def test_an_unchanged_file_is_pooled(tmp_path):
    s, pool = staging(tmp_path)
    src, item = hashed_source(tmp_path)
    s.put(s.ensure_dir("/data"), item, None)
    entry = pool.root / pool.key(SHA, 0, 0, 0o644, OLD)
    assert os.lstat(entry).st_ino == os.lstat(s.root / "data/big").st_ino


def test_a_file_changed_after_it_was_hashed_is_staged_but_not_pooled(tmp_path):
    s, pool = staging(tmp_path)
    src, item = hashed_source(tmp_path)
    src.write_bytes(DATA.upper())  # same size, other bytes
    os.utime(src, (OLD, OLD))
    s.put(s.ensure_dir("/data"), item, None)
    assert (s.root / "data/big").read_bytes() == DATA.upper()
    assert not pool.root.exists() or os.listdir(pool.root) == []


def test_a_file_changed_while_it_was_copied_is_not_pooled(tmp_path):
    pool = FilePool(tmp_path / "files")
    src, item = hashed_source(tmp_path)
    started = time.time_ns()
    copy = tmp_path / "copy"
    copy.write_bytes(DATA[:100])  # the copy read the start, then the source changed
    with open(src, "r+b") as f:
        f.write(b"X")
    os.utime(src, (OLD, OLD))
    key = pool.key(SHA, 0, 0, 0o644, OLD)
    assert not pool.add(str(copy), key, source=str(src), source_stat=item.content_stat,
                        copy_started_ns=started)
    assert not (pool.root / key).exists()
    (tmp_path / "again").mkdir()
    kept, kept_item = hashed_source(tmp_path / "again")  # the same call, a source left alone
    assert pool.add(str(copy), key, source=str(kept), source_stat=kept_item.content_stat,
                    copy_started_ns=time.time_ns())
    assert os.lstat(pool.root / key).st_ino == os.lstat(copy).st_ino


def test_a_file_changed_just_before_its_copy_is_not_pooled(tmp_path):
    from pybuild.context.walk import stat_key

    pool = FilePool(tmp_path / "files")
    src = tmp_path / "fresh"
    src.write_bytes(DATA)  # a write in this timestamp tick could still come unseen
    key = pool.key(SHA, 0, 0, 0o644, OLD)
    assert not pool.add(str(src), key, source=str(src), source_stat=stat_key(os.lstat(src)),
                        copy_started_ns=time.time_ns())
