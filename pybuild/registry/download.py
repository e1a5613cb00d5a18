"""One layer from a registry into an uncommitted store blob, checked on the way in.

The response body goes through ``pybuild.layers.incoming`` (hashed, counted, decompressed into
an uncommitted store blob, every digest checked) with progress events on the way. Nothing is
committed here: the caller commits every layer of an image only after all of them verified,
so a bad blob keeps nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
import urllib3

from pybuild.errors import RegistryError
from pybuild.registry.events import BlobProgress
from pybuild.registry.remote import Repository
from pybuild.store import Store
from pybuild.store.blobs import BlobWriter

REPORT_EVERY = 4 << 20  # bytes between Downloading events


@dataclass(frozen=True)
class Layer:
    """A layer as its manifest names it, with the diff ID its config gives."""

    digest: str
    size: int
    media_type: str
    diff_id: str


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
    from pybuild.layers.incoming import HashingReader, unpack_checked

    response = repo.blob(layer.digest)
    next_report = REPORT_EVERY

    def progress(size: int) -> None:
        nonlocal next_report
        if size >= next_report:
            next_report = size + REPORT_EVERY
            emit(BlobProgress(layer.digest, "Downloading", size, layer.size))

    try:
        source = HashingReader(lambda n: response.raw.read(n, decode_content=False), progress)
        writer = unpack_checked(store, source, digest=layer.digest, size=layer.size,
                                diff_id=layer.diff_id, where=f"{repo.shown}@{layer.digest}")
    finally:
        response.close()
    emit(BlobProgress(layer.digest, "Download complete", source.size, layer.size))
    return writer
