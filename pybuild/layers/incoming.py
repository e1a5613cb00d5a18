"""A compressed layer from outside (a registry, a cache directory) into an uncommitted store
blob, checked on the way in.

The compressed bytes are hashed and counted as they are read and decompressed straight into a
``BlobWriter``, so a layer is written once, in the form the store keeps (uncompressed, blob
digest == diff ID). Nothing is committed here: a caller with several layers commits them only
once all verified, so a bad blob keeps nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from pybuild.errors import DigestMismatch, LayerError
from pybuild.layers.compression import CHUNK, open_decompressed

if TYPE_CHECKING:
    from pybuild.store import Store
    from pybuild.store.blobs import BlobWriter


class HashingReader:
    """Bytes from ``read`` (a callable taking a size) seen through sha256 and a byte count;
    ``on_read`` hears the running count after each read."""

    def __init__(self, read: Callable[[int], bytes],
                 on_read: Callable[[int], None] | None = None):
        self._read, self._on_read = read, on_read
        self.hash, self.size = hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self._read(CHUNK if n < 0 else n)
        if data:
            self.hash.update(data)
            self.size += len(data)
            if self._on_read is not None:
                self._on_read(self.size)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def unpack_checked(store: Store, source: HashingReader, *, digest: str, size: int,
                   diff_id: str, where: str) -> BlobWriter:
    """``source`` (the compressed blob ``digest`` of ``size`` bytes) decompressed into an
    uncommitted writer of ``store``, whose content must be ``diff_id``; on any failure the
    writer is aborted. DigestMismatch names ``where``; a corrupt stream is a LayerError, but
    a wrong blob says so first."""
    writer = store.blobs.writer()
    try:
        try:
            plain = open_decompressed(source)  # type: ignore[arg-type]
            while chunk := plain.read(CHUNK):
                writer.write(chunk)
            source.drain()
        except LayerError as err:
            source.drain()
            _check(source, digest, size, where)
            raise LayerError(f"{where}: {err}") from None
        _check(source, digest, size, where)
        if writer.digest != diff_id:
            raise DigestMismatch(f"{where}: the layer inside is {writer.digest}, its diff ID "
                                 f"says {diff_id}")
    except BaseException:
        writer.abort()
        raise
    return writer


def _check(source: HashingReader, digest: str, size: int, where: str) -> None:
    if source.digest != digest:
        raise DigestMismatch(f"{where}: digest mismatch: {source.size} bytes came with digest "
                             f"{source.digest}")
    if source.size != size:
        raise DigestMismatch(f"{where}: size mismatch: {size} bytes announced, "
                             f"{source.size} came")
