"""A deterministic tar writer: fixed headers (uid/gid 0, no user names, one mtime), so the
same entries in the same order give the same bytes, written to any stream, pipes included."""

from __future__ import annotations

import hashlib
import tarfile
from typing import BinaryIO

from pybuild.errors import ArchiveError, DigestMismatch

BLOCK = 512
CHUNK = 1 << 20


class TarWriter:
    def __init__(self, out: BinaryIO, mtime: int = 0):
        self.out = out
        self.mtime = mtime
        self.written = 0

    def _header(self, name: str, kind: bytes, size: int, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.size, info.mode, info.mtime = kind, size, mode, self.mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _write(self, data: bytes | memoryview) -> None:
        self.out.write(data)
        self.written += len(data)

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self._write(b"\0" * (BLOCK - size % BLOCK))

    def add_dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", tarfile.DIRTYPE, 0, 0o755)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, tarfile.REGTYPE, len(data), 0o644)
        self._write(data)
        self._pad(len(data))

    def add_stream(self, name: str, src: BinaryIO, size: int, digest: str) -> None:
        self._header(name, tarfile.REGTYPE, size, 0o644)
        self.written += copy_verified(src, self.out, size, digest)
        self._pad(size)

    def close(self) -> None:
        """Two zero blocks, then zeros to a whole 10 KiB record as tar(1) does."""
        self._write(b"\0" * (2 * BLOCK))
        if self.written % tarfile.RECORDSIZE:
            self._write(b"\0" * (tarfile.RECORDSIZE - self.written % tarfile.RECORDSIZE))
        self.out.flush()


def copy_verified(src: BinaryIO, dst: BinaryIO, size: int, digest: str) -> int:
    """Copy exactly ``size`` bytes, checking they hash to ``digest``: a store blob that rotted
    must not leave as a well-formed archive."""
    hasher, left = hashlib.sha256(), size
    while left:
        chunk = src.read(min(CHUNK, left))
        if not chunk:
            raise ArchiveError(f"blob {digest} ended {left} bytes early")
        hasher.update(chunk)
        dst.write(chunk)
        left -= len(chunk)
    if "sha256:" + hasher.hexdigest() != digest:
        raise DigestMismatch(f"blob {digest} in the store is corrupt; run `pybuild system check`")
    return size
