"""Feeding a Spool from a tar stream (file or pipe, plain or compressed) or a directory."""

from __future__ import annotations

import os
import stat
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from pybuild.archive.names import link_target, member_kind, normalize
from pybuild.archive.spool import CHUNK, Entry, Spool
from pybuild.errors import ArchiveError, LayerError, UnsafePathError
from pybuild.store import Store


def read_tar(stream: BinaryIO, spool: Spool) -> None:
    """Stream every entry of the tar into ``spool`` in one pass; the tar itself may be
    compressed (gzip, zstd, bzip2, xz), as ``docker save | zstd | pybuild load`` gives."""
    from pybuild.layers.compression import open_decompressed, sniff

    try:
        if _seekable(stream) and sniff(stream)[0] == "none":
            stream.seek(0)
            mode, source = "r:", stream  # a plain file: entries are read with big direct reads
        else:
            if _seekable(stream):
                stream.seek(0)
            mode, source = "r|", open_decompressed(stream)
        with tarfile.open(fileobj=source, mode=mode, bufsize=CHUNK) as tar:
            for member in tar:
                _add_member(tar, member, spool)
    except LayerError as err:
        raise ArchiveError(f"cannot read the archive: {err}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        if isinstance(err, tarfile.ReadError) and "empty file" in str(err):
            raise ArchiveError("the archive is empty") from None
        if "unexpected end" in str(err):
            raise ArchiveError("the archive is truncated: it ends inside an entry") from None
        if "could not be opened" in str(err) or "invalid header" in str(err):
            raise ArchiveError("not a tar archive (plain or compressed)") from None
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ArchiveError(f"cannot read the archive as a tar: {first_line}") from None


def _add_member(tar: tarfile.TarFile, member: tarfile.TarInfo, spool: Spool) -> None:
    kind = member_kind(member)
    name = normalize(member.name)
    if kind == "dir" or not name:
        return
    if kind == "link":
        spool.add_link(name, link_target(name, member.linkname, hard=member.islnk()))
        return
    data = tar.extractfile(member)
    if data is None:
        raise ArchiveError(f"cannot read archive entry {member.name!r}")
    with data:
        spool.add(name, data, member.size)


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable() and stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, AttributeError, ValueError):
        return bool(getattr(stream, "seekable", lambda: False)())


class DirSpool(Spool):
    """A layout directory: entries are read on first use, so unreferenced blobs cost nothing."""

    def __init__(self, store: Store, root: Path):
        super().__init__(store)
        self.root = Path(root)

    def _resolve(self, name: str, *, quiet: bool) -> Entry | None:
        name = normalize(name)
        if name not in self.entries:
            path = self._inside(name)
            if path is None:
                return None if quiet else super()._resolve(name, quiet=quiet)
            with open(path, "rb") as file:
                self.add(name, file, os.fstat(file.fileno()).st_size)
        return self.entries[name]

    def _inside(self, name: str) -> Path | None:
        """The regular file ``name`` under the root, following links that stay inside it."""
        path = self.root / name
        try:
            real = Path(os.path.realpath(path))
            mode = os.stat(real).st_mode
        except OSError:
            return None
        root = os.path.realpath(self.root)
        if os.path.commonpath([root, real]) != root:
            raise UnsafePathError(f"refusing {name!r} in {self.root}: it links outside")
        if not stat.S_ISREG(mode):
            raise UnsafePathError(f"refusing {name!r} in {self.root}: not a regular file")
        return real
