"""The changes between two trees as layer nodes, for hosts without overlayfs.

The result matches what an overlay upper dir gives for the same changes: changed entries, the
unchanged parent directories of anything changed, whiteouts for removed names, and an opaque
marker where a non-directory became a directory (overlayfs marks such a directory opaque).
A directory that was removed and created again cannot be told from one whose children changed,
so it gets explicit whiteouts instead of an opaque marker; both apply to the same tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from pybuild.errors import LayerError
from pybuild.layers.walk import (
    OPAQUE,
    WHITEOUT_PREFIX,
    Node,
    layer_xattrs,
    make_node,
    open_dir,
    raw_xattrs,
    scan,
)

_COMPARE_CHUNK = 1 << 20


def diff_trees(before: Path | None, after: Path) -> Iterator[Node]:
    """Nodes turning ``before`` (None: an empty tree) into ``after``."""
    after_fd = open_dir(after)
    before_fd = open_dir(before) if before is not None else None
    try:
        yield from _diff(before_fd, after_fd, b"", os.fstat(after_fd), [])
    finally:
        os.close(after_fd)
        if before_fd is not None:
            os.close(before_fd)


def _flush(pending: list[Node]) -> Iterator[Node]:
    """Unchanged parent directories, emitted once something below them changed."""
    yield from pending
    pending.clear()


def _diff(before_fd: int | None, after_fd: int, prefix: bytes, dir_st: os.stat_result,
          pending: list[Node]) -> Iterator[Node]:
    after = scan(after_fd)
    before = {} if before_fd is None else {b: (n, st) for b, n, st in scan(before_fd)}
    names = {bname for bname, _, _ in after}
    gone = [bname for bname in sorted(before) if bname not in names]
    if gone:
        yield from _flush(pending)
        for bname in gone:
            yield Node(prefix + WHITEOUT_PREFIX + bname, "whiteout", dir_st)
    for bname, name, st in after:
        if bname.startswith(WHITEOUT_PREFIX):
            raise LayerError(
                f"{os.fsdecode(prefix + bname)}: a real file whose name starts with .wh. cannot"
                " be put in a layer (the name is reserved for whiteouts)"
            )
        node = make_node(after_fd, prefix + bname, name, st)
        if node is None:
            continue
        old = before.get(bname)
        changed = old is None or _changed(before_fd, old[0], old[1], node)  # type: ignore[arg-type]
        if node.kind != "dir":
            if changed:
                yield from _flush(pending)
                yield node
            continue
        yield from _diff_dir(before_fd, old, after_fd, node, changed, pending)


def _diff_dir(before_fd: int | None, old: tuple[str, os.stat_result] | None, after_fd: int,
              node: Node, changed: bool, pending: list[Node]) -> Iterator[Node]:
    was_dir = old is not None and stat.S_ISDIR(old[1].st_mode)
    if changed:
        yield from _flush(pending)
        yield node
        if old is not None and not was_dir:
            yield Node(node.path + b"/" + OPAQUE, "opaque", node.st)
    else:
        pending.append(node)
    child_after = open_dir(node.name, after_fd)
    child_before = open_dir(old[0], before_fd) if was_dir else None  # type: ignore[index]
    try:
        yield from _diff(child_before, child_after, node.path + b"/", node.st, pending)
    finally:
        os.close(child_after)
        if child_before is not None:
            os.close(child_before)
    if pending and pending[-1] is node:
        pending.pop()


def _changed(before_fd: int, name: str, old: os.stat_result, node: Node) -> bool:
    new = node.st
    if (old.st_mode, old.st_uid, old.st_gid, old.st_mtime_ns) != (
            new.st_mode, new.st_uid, new.st_gid, new.st_mtime_ns):
        return True
    if node.kind != "dir" and (old.st_size, old.st_rdev) != (new.st_size, new.st_rdev):
        return True
    if node.kind == "symlink" and os.fsencode(os.readlink(name, dir_fd=before_fd)) != node.link:
        return True
    if layer_xattrs(raw_xattrs(before_fd, name)) != node.xattrs:
        return True
    # A whole-second mtime may come from a tar or a copy that dropped the fraction, so equal
    # times prove nothing there: compare the bytes.
    if node.kind == "file" and new.st_mtime_ns % 1_000_000_000 == 0:
        return not _same_content(before_fd, name, node)
    return False


def _same_content(before_fd: int, name: str, node: Node) -> bool:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd_a = os.open(name, flags, dir_fd=before_fd)
    try:
        fd_b = os.open(node.name, flags, dir_fd=node.dir_fd)
        try:
            while True:
                a = os.read(fd_a, _COMPARE_CHUNK)
                if a != os.read(fd_b, _COMPARE_CHUNK):
                    return False
                if not a:
                    return True
        finally:
            os.close(fd_b)
    finally:
        os.close(fd_a)
