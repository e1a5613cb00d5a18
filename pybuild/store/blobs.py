"""Content-addressed blobs under ``blobs/sha256/<hex>``.

Writes stream into a temp file in the store's tmp dir while hashing, are fsynced and renamed
into place, so a blob either exists whole or not at all. ``put`` with an expected digest/size
(content from outside: load, pull) verifies before the rename and keeps nothing on mismatch.
Put and delete are idempotent; ``open`` verifies as it reads. A layer a build made may have
no file yet, only its unpacked form (``pybuild.store.lazyblobs``): it counts as here, and the
first ``open`` writes it.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pybuild.errors import BlobNotFound, DigestMismatch, StoreError
from pybuild.store.fsutil import AtomicFile
from pybuild.store.lazyblobs import LazyBlobs, LazyLayer
from pybuild.store.lock import FileLock

_DIGEST_RE = re.compile(r"sha256:([a-f0-9]{64})")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


def hex_of(digest: str) -> str:
    match = _DIGEST_RE.fullmatch(digest)
    if match is None:
        raise StoreError(f"not a sha256 digest: {digest!r}")
    return match.group(1)


def is_digest(text: str) -> bool:
    return _DIGEST_RE.fullmatch(text) is not None


class BlobWriter:
    """A write-only file that hashes what passes through; ``commit`` renames it into place."""

    def __init__(self, store: BlobStore):
        self._store = store
        self._guard = store.guard
        if self._guard is not None:
            self._guard.acquire()  # garbage collection must not take our temp file away
        try:
            self._file = AtomicFile(tmp_dir=store.tmp, prefix="blob-", mode=0o444)
        except BaseException:
            self._release()
            raise
        self._hash = hashlib.sha256()
        self.size = 0
        self.info: BlobInfo | None = None

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def writable(self) -> bool:
        return True

    @property
    def digest(self) -> str:
        """The ``sha256:`` digest of everything written so far."""
        return "sha256:" + self._hash.hexdigest()

    def flush(self) -> None:
        self._file.file.flush()

    def tell(self) -> int:
        return self.size

    def commit(self, digest: str | None = None, size: int | None = None) -> BlobInfo:
        """Verify against ``digest``/``size`` when given, then rename into the store."""
        actual = "sha256:" + self._hash.hexdigest()
        try:
            if size is not None and size != self.size:
                raise DigestMismatch(f"size mismatch for {digest or actual}: "
                                     f"expected {size} bytes, got {self.size}")
            if digest is not None and digest != actual:
                raise DigestMismatch(f"digest mismatch: expected {digest}, got {actual}")
            # same content either way, so replacing a blob already there is idempotent
            self._file.commit(self._store.path(actual))
        except BaseException:
            self.abort()
            raise
        self.info = BlobInfo(actual, self.size)
        self._release()
        return self.info

    def abort(self) -> None:
        self._file.abort()
        self._release()

    def _release(self) -> None:
        if self._guard is not None:
            self._guard.release()
            self._guard = None

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self.info is None:
            if exc_type is None:
                self.commit()
            else:
                self.abort()


class VerifyingReader(io.RawIOBase):
    """Reads a blob and raises DigestMismatch at the end if the bytes were not what was named."""

    def __init__(self, file: BinaryIO, digest: str, size: int):
        super().__init__()
        self._file = file
        self._digest = digest
        self._size = size
        self._hash = hashlib.sha256()
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self._file.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._hash.update(memoryview(buffer)[:n])
        elif not self._checked:
            self._checked = True
            actual = "sha256:" + self._hash.hexdigest()
            if actual != self._digest:
                raise DigestMismatch(f"blob {self._digest} is corrupt (content is {actual})")
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


class BlobStore:
    def __init__(self, root: Path, tmp: Path, guard: FileLock | None = None,
                 lazy: LazyBlobs | None = None):
        self.root = root  # .../blobs
        self.tmp = tmp
        self.guard = guard  # the store's shared "writing" lock
        self.lazy = lazy

    def path(self, digest: str) -> Path:
        return self.root / "sha256" / hex_of(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file() or self._lazy(digest) is not None

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            pass
        layer = self._lazy(digest)
        if layer is None:
            raise BlobNotFound(f"blob {digest} is not in the store")
        return layer.size

    def _lazy(self, digest: str) -> LazyLayer | None:
        return None if self.lazy is None else self.lazy.get(digest)

    def _materialize(self, digest: str) -> None:
        """Write a layer that so far has only its unpacked form, checked against its digest."""
        layer = self._lazy(digest)
        if layer is None or self.lazy is None:
            raise BlobNotFound(f"blob {digest} is not in the store")
        with self.writer() as out:
            self.lazy.write(layer, out)
            try:
                out.commit(digest, layer.size)
            except DigestMismatch:
                raise DigestMismatch(f"layer {digest}: its unpacked form {layer.sources[0][0]}"
                                     " has changed") from None
        self.lazy.remove(digest)

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def put(self, stream: BinaryIO, *, digest: str | None = None,
            size: int | None = None) -> BlobInfo:
        """Copy ``stream`` in; with ``digest``/``size``, keep it only if it matches them."""
        if digest is not None and self.has(digest):
            return BlobInfo(digest, self.size(digest))
        with self.writer() as out:
            while chunk := stream.read(_CHUNK):
                out.write(chunk)
            return out.commit(digest, size)

    def put_bytes(self, data: bytes, *, digest: str | None = None) -> BlobInfo:
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest is not None and digest != actual:
            raise DigestMismatch(f"digest mismatch: expected {digest}, got {actual}")
        if self.has(actual):
            return BlobInfo(actual, len(data))
        with self.writer() as out:
            out.write(data)
            return out.commit(actual, len(data))

    def open(self, digest: str, *, verify: bool = True) -> BinaryIO:
        try:
            file = open(self.path(digest), "rb")  # noqa: SIM115 - returned to the caller
        except FileNotFoundError:
            self._materialize(digest)
            file = open(self.path(digest), "rb")  # noqa: SIM115
        if not verify:
            return file
        return VerifyingReader(file, digest, os.fstat(file.fileno()).st_size)  # type: ignore

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as file:
            return file.read()

    def delete(self, digest: str) -> bool:
        lazy = self.lazy is not None and self.lazy.remove(digest)
        try:
            self.path(digest).unlink()
            return True
        except FileNotFoundError:
            return lazy

    def digests(self) -> Iterator[str]:
        folder = self.root / "sha256"
        found = set(os.listdir(folder)) if folder.is_dir() else set()
        found |= {d[7:] for d in (self.lazy.digests() if self.lazy is not None else ())}
        for entry in sorted(found):
            yield "sha256:" + entry

    def verify(self, digest: str) -> str | None:
        """None when the blob is sound, else what is wrong with it."""
        if not is_digest(digest):
            return f"blob {digest}: not a sha256 digest name"
        if not self.path(digest).is_file() and self.lazy is not None:
            layer = self.lazy.get(digest)
            if layer is None:
                return f"blob {digest}: missing (no unpacked form left)"
            actual = self.lazy.write(layer, None)
            if actual != digest:
                return f"blob {digest}: its unpacked form {layer.sources[0][0]} hashes to {actual}"
            return None
        try:
            with self.open(digest) as file:
                while file.read(_CHUNK):
                    pass
        except BlobNotFound:
            return f"blob {digest}: missing"
        except DigestMismatch as err:
            return str(err)
        return None
