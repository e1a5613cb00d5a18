"""Which entries a layer holds: a whole tree, an overlay upper dir, or the diff of two trees.

Each function yields ``Node``s in layer order: depth first, parents before children, and in each
directory first the opaque marker, then whiteouts, then the children, each group sorted by the
bytes of the name. Directories are walked through file descriptors so a tree is read once and
paths are never re-resolved.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pybuild.errors import LayerError

WHITEOUT_PREFIX = b".wh."
OPAQUE = b".wh..wh..opq"
_OVERLAY_XATTR = "trusted.overlay."
# Host labels would make layers differ between machines; overlayfs keeps its bookkeeping in
# trusted.overlay.* and must never see it copied into a layer.
_SKIPPED_XATTRS = ("security.selinux",)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Node:
    """One entry to write. For whiteouts and opaque markers ``st`` is the parent's stat."""

    path: bytes
    kind: str  # file, dir, symlink, char, block, fifo, whiteout, opaque
    st: os.stat_result
    xattrs: dict[str, bytes] = field(default_factory=dict)
    link: bytes = b""
    dir_fd: int = -1
    name: str = ""


_KINDS = {
    stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFCHR: "char",
    stat.S_IFBLK: "block", stat.S_IFIFO: "fifo",
}


def open_dir(name: str | os.PathLike, dir_fd: int | None = None) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        raise LayerError(f"cannot open directory {name}: {err.strerror}") from None


def raw_xattrs(dir_fd: int, name: str) -> dict[str, bytes]:
    """Every xattr of ``name`` (not following symlinks), or none where unsupported."""
    path = f"/proc/self/fd/{dir_fd}/{name}"
    try:
        keys = os.listxattr(path, follow_symlinks=False)
        return {k: os.getxattr(path, k, follow_symlinks=False) for k in keys}
    except OSError as err:
        if err.errno in (errno.ENOTSUP, errno.ENODATA):
            return {}
        raise


def layer_xattrs(raw: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in raw.items()
            if not k.startswith(_OVERLAY_XATTR) and k not in _SKIPPED_XATTRS}


def scan(dir_fd: int) -> list[tuple[bytes, str, os.stat_result]]:
    """(name bytes, name, lstat) of every entry, sorted by name bytes."""
    with os.scandir(dir_fd) as it:
        items = [(os.fsencode(e.name), e.name, e.stat(follow_symlinks=False)) for e in it]
    items.sort(key=lambda item: item[0])
    return items


def _refuse_marker_name(path: bytes) -> None:
    raise LayerError(
        f"{os.fsdecode(path)}: a real file whose name starts with .wh. cannot be put in a"
        " layer (the name is reserved for whiteouts)"
    )


def make_node(dir_fd: int, path: bytes, name: str, st: os.stat_result,
              raw: dict[str, bytes] | None = None) -> Node | None:
    """The node for one real entry; None for sockets, which tar cannot hold."""
    kind = _KINDS.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        return None
    if raw is None:
        raw = raw_xattrs(dir_fd, name)
    link = os.fsencode(os.readlink(name, dir_fd=dir_fd)) if kind == "symlink" else b""
    return Node(path, kind, st, layer_xattrs(raw), link, dir_fd, name)


def walk_tree(root: Path, *, upper: bool = False) -> Iterator[Node]:
    """Every entry below ``root``; with ``upper``, read overlayfs whiteouts and opaque dirs."""
    fd = open_dir(root)
    try:
        yield from _walk(fd, b"", os.fstat(fd), upper)
    finally:
        os.close(fd)


def _walk(dir_fd: int, prefix: bytes, dir_st: os.stat_result, upper: bool) -> Iterator[Node]:
    whiteouts: list[bytes] = []
    nodes: list[tuple[Node, bool]] = []
    for bname, name, st in scan(dir_fd):
        if bname.startswith(WHITEOUT_PREFIX):
            _refuse_marker_name(prefix + bname)
        if upper and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            whiteouts.append(bname)
            continue
        raw = raw_xattrs(dir_fd, name)
        if upper and _upper_whiteout(prefix + bname, st, raw):
            whiteouts.append(bname)
            continue
        node = make_node(dir_fd, prefix + bname, name, st, raw)
        if node is not None:
            nodes.append((node, upper and raw.get("trusted.overlay.opaque") == b"y"))
    for bname in whiteouts:
        yield Node(prefix + WHITEOUT_PREFIX + bname, "whiteout", dir_st)
    for node, opaque in nodes:
        yield node
        if node.kind == "dir":
            yield from _walk_child_dir(dir_fd, node, upper, opaque)


def _walk_child_dir(dir_fd: int, node: Node, upper: bool, opaque: bool) -> Iterator[Node]:
    fd = open_dir(node.name, dir_fd)
    try:
        if opaque:
            yield Node(node.path + b"/" + OPAQUE, "opaque", node.st)
        yield from _walk(fd, node.path + b"/", node.st, upper)
    finally:
        os.close(fd)


def _upper_whiteout(path: bytes, st: os.stat_result, raw: dict[str, bytes]) -> bool:
    """Whether an upper-dir entry is a whiteout; refuses what this module cannot express."""
    for key in ("trusted.overlay.redirect", "trusted.overlay.metacopy"):
        if key in raw:
            raise LayerError(
                f"{os.fsdecode(path)}: the overlay upper dir uses {key.rsplit('.', 1)[1]};"
                " mount overlayfs with redirect_dir=off,metacopy=off"
            )
    # Kernels >= 6.7 may store whiteouts as empty files tagged with an xattr.
    return stat.S_ISREG(st.st_mode) and "trusted.overlay.whiteout" in raw
