"""Making layers: a normalised tar, its diff ID, compression and the blob digest in one pass.

Normalised means one input, one digest: entries in layer order (see ``walk``), no ``./``
prefix, numeric ownership with blank names, whole-second mtimes clamped to
``source_date_epoch`` when given, and a hardlink only to an earlier entry of the same layer.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pybuild.errors import LayerError
from pybuild.layers import tarformat as tf
from pybuild.layers.compression import media_type_for
from pybuild.layers.diff import diff_trees
from pybuild.layers.pipeline import Pipeline
from pybuild.layers.walk import Node, walk_tree

_TYPEFLAGS = {"dir": tf.DIR, "symlink": tf.SYMLINK, "char": tf.CHAR, "block": tf.BLOCKDEV,
              "fifo": tf.FIFO}
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class LayerInfo:
    """``diff_id`` hashes the plain tar; ``digest`` and ``size`` describe the bytes written
    (with no output, where only the diff ID is taken, the plain tar's)."""

    diff_id: str
    digest: str
    size: int
    media_type: str


def write_layer_from_tree(tree: Path, out: BinaryIO | None, *, upper: bool,
                          compression: str = "none",
                          source_date_epoch: int | None = None) -> LayerInfo:
    """Everything below ``tree`` as one layer (``tree`` itself is not an entry). With
    ``upper`` it is an overlayfs upper dir: whiteout devices and opaque dirs become OCI ones."""
    return write_layer(walk_tree(Path(tree), upper=upper), out, compression=compression,
                       source_date_epoch=source_date_epoch)


def write_layer_from_trees(before: Path | None, after: Path, out: BinaryIO | None, *,
                           compression: str = "none",
                           source_date_epoch: int | None = None) -> LayerInfo:
    """The layer turning ``before`` into ``after``, as an upper dir would record it."""
    return write_layer(diff_trees(None if before is None else Path(before), Path(after)), out,
                       compression=compression, source_date_epoch=source_date_epoch)


def write_layer(nodes: Iterable[Node], out: BinaryIO | None, *, compression: str = "none",
                source_date_epoch: int | None = None) -> LayerInfo:
    media_type = media_type_for(compression)
    with Pipeline(out, compression) as pipe:
        writer = _LayerWriter(pipe, source_date_epoch)
        try:
            for node in nodes:
                writer.add(node)
        except OSError as err:
            where = err.filename if err.filename is not None else "tree"
            raise LayerError(f"cannot read {where}: {err.strerror}") from None
        pipe.write(tf.END_OF_ARCHIVE)
        result = pipe.finish()
    return LayerInfo(result.diff_id, result.digest, result.size, media_type)


class _LayerWriter:
    def __init__(self, pipe: Pipeline, source_date_epoch: int | None):
        self._pipe = pipe
        self._epoch = source_date_epoch
        self._links: dict[tuple[int, int], bytes] = {}

    def _mtime(self, st: os.stat_result) -> int:
        mtime = max(0, st.st_mtime_ns // 1_000_000_000)
        return mtime if self._epoch is None else min(mtime, self._epoch)

    def add(self, node: Node) -> None:
        st = node.st
        mtime = self._mtime(st)
        if node.kind in ("whiteout", "opaque"):
            self._pipe.write(tf.header(node.path, mode=0o644, uid=0, gid=0, size=0,
                                       mtime=mtime, typeflag=tf.REG))
            return
        if node.kind == "file":
            self._add_file(node, mtime)
            return
        name = node.path + b"/" if node.kind == "dir" else node.path
        major = os.major(st.st_rdev) if node.kind in ("char", "block") else 0
        minor = os.minor(st.st_rdev) if node.kind in ("char", "block") else 0
        self._pipe.write(tf.header(
            name, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, size=0,
            mtime=mtime, typeflag=_TYPEFLAGS[node.kind], linkname=node.link,
            major=major, minor=minor, xattrs=node.xattrs,
        ))

    def _add_file(self, node: Node, mtime: int) -> None:
        st = node.st
        if st.st_nlink > 1:
            first = self._links.setdefault((st.st_dev, st.st_ino), node.path)
            if first is not node.path:
                self._pipe.write(tf.header(
                    node.path, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                    size=0, mtime=mtime, typeflag=tf.HARDLINK, linkname=first,
                ))
                return
        fd = os.open(node.name, _FILE_FLAGS, dir_fd=node.dir_fd)
        try:
            size = os.fstat(fd).st_size
            self._pipe.write(tf.header(
                node.path, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                size=size, mtime=mtime, typeflag=tf.REG, xattrs=node.xattrs,
            ))
            self._pipe.copy_fd(fd, size, os.fsdecode(node.path))
        finally:
            os.close(fd)
