"""One layer from a registry into an uncommitted store blob, checked on the way in.

The compressed bytes are hashed and counted as they arrive and decompressed straight into a
``BlobWriter`` in the store's tmp dir, so a layer is written once, in the form the store keeps
(uncompressed, blob digest == diff ID). Nothing is committed here: the caller commits every
layer of an image only after all of them verified, so a bad blob keeps nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
import urllib3

from pybuild.errors import DigestMismatch, LayerError, RegistryError
from pybuild.registry.events import BlobProgress
from pybuild.registry.remote import Repository
from pybuild.store import Store
from pybuild.store.blobs import BlobWriter

CHUNK = 1 << 20
REPORT_EVERY = 4 << 20  # bytes between Downloading events


@dataclass(frozen=True)
class Layer:
    """A layer as its manifest names it, with the diff ID its config gives."""

    digest: str
    size: int
    media_type: str
    diff_id: str


class _Counting:
    """Reads the response body, hashing and counting it and telling progress."""

    def __init__(self, response: requests.Response, layer: Layer,
                 emit: Callable[[BlobProgress], None]):
        self.raw = response.raw
        self.layer = layer
        self.emit = emit
        self.hash = hashlib.sha256()
        self.size = 0
        self._next_report = REPORT_EVERY

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(CHUNK if n < 0 else n, decode_content=False)
        if data:
            self.hash.update(data)
            self.size += len(data)
            if self.size >= self._next_report:
                self._next_report = self.size + REPORT_EVERY
                self.emit(BlobProgress(self.layer.digest, "Downloading", self.size,
                                       self.layer.size))
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def download(store: Store, repo: Repository, layer: Layer,
             emit: Callable[[BlobProgress], None], backoff: tuple[float, ...]) -> BlobWriter:
    """The layer decompressed into an uncommitted writer, its blob digest and size and its
    diff ID checked; a dropped connection starts the blob again (``backoff`` between tries)."""
    for attempt in range(len(backoff) + 1):
        try:
            return _fetch(store, repo, layer, emit)
        except (requests.RequestException, urllib3.exceptions.HTTPError, ConnectionError) as err:
            if attempt >= len(backoff):
                raise RegistryError(f"{repo.shown}@{layer.digest}: the connection dropped "
                                    f"during the download ({type(err).__name__})") from None
            time.sleep(backoff[attempt])
    raise AssertionError("unreachable")


def _fetch(store: Store, repo: Repository, layer: Layer,
           emit: Callable[[BlobProgress], None]) -> BlobWriter:
    from pybuild.layers.compression import open_decompressed

    where = f"{repo.shown}@{layer.digest}"
    response = repo.blob(layer.digest)
    writer = store.blobs.writer()
    try:
        source = _Counting(response, layer, emit)
        try:
            plain = open_decompressed(source)  # type: ignore[arg-type]
            while chunk := plain.read(CHUNK):
                writer.write(chunk)
            source.drain()
        except LayerError as err:
            source.drain()
            _check(source, layer, where)  # a wrong blob says so before "corrupt gzip"
            raise RegistryError(f"{where}: {err}") from None
        _check(source, layer, where)
        if writer.digest != layer.diff_id:
            raise DigestMismatch(f"{where}: uncompressed content is {writer.digest}, "
                                 f"the config says {layer.diff_id}")
    except BaseException:
        writer.abort()
        raise
    finally:
        response.close()
    emit(BlobProgress(layer.digest, "Download complete", source.size, layer.size))
    return writer


def _check(source: _Counting, layer: Layer, where: str) -> None:
    actual = "sha256:" + source.hash.hexdigest()
    if actual != layer.digest:
        raise DigestMismatch(f"{where}: digest mismatch: the registry sent {source.size} bytes "
                             f"with digest {actual}")
    if source.size != layer.size:
        raise DigestMismatch(f"{where}: size mismatch: the manifest says {layer.size} bytes, "
                             f"the registry sent {source.size}")
