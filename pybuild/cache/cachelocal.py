"""``type=local`` caches: the cache manifest in an OCI image layout directory.

``DEST/index.json`` names the manifest under ``org.opencontainers.image.ref.name`` = the tag
(other tags' caches in the same directory stay); blobs go first, each renamed into
``blobs/sha256/`` whole, and ``index.json`` is replaced last, so a reader sees the old cache or
the new one. Reading checks every blob against its digest: the manifest and config before any
entry is believed, each layer (and the diff ID inside it) when a step asks for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from pybuild.cache.cacheformat import CacheDocument, CacheEntry, read_entries, read_manifest
from pybuild.errors import ArchiveError, DigestMismatch, ImageError, PybuildError
from pybuild.image import mediatypes as mt
from pybuild.image.canonical import canonical_json, sha256_digest
from pybuild.image.manifest import Descriptor
from pybuild.store import Store
from pybuild.store.blobs import hex_of
from pybuild.store.fsutil import AtomicFile, atomic_write

REF_NAME = "org.opencontainers.image.ref.name"
_LAYOUT = canonical_json({"imageLayoutVersion": "1.0.0"})
_CHUNK = 1 << 20


def _blob_path(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / hex_of(digest)


def write(store: Store, root: str, tag: str, doc: CacheDocument) -> None:
    """Write ``doc`` and its blobs (from ``store``) into the layout at ``root``."""
    base = Path(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
        for blob in doc.blobs():
            _copy_blob(store, base, blob)
        _put_bytes(base, doc.config)
        _put_bytes(base, doc.manifest_bytes)
        if not (base / "oci-layout").is_file():
            atomic_write(base / "oci-layout", _LAYOUT)
        atomic_write(base / "index.json", _index_with(base, tag, doc))
    except OSError as err:
        raise ArchiveError(f"{root}: {err.strerror or err}") from None


def _copy_blob(store: Store, base: Path, blob: Descriptor) -> None:
    path = _blob_path(base, blob.digest)
    if path.is_file() and _file_digest(path) == blob.digest:
        return  # an earlier export's, intact
    with store.blobs.open(blob.digest) as src, AtomicFile(path) as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)


def _file_digest(path: Path) -> str:
    with open(path, "rb") as file:
        source = _Hashing(file)
        source.drain()
    return "sha256:" + source.hash.hexdigest()


def _put_bytes(base: Path, data: bytes) -> None:
    path = _blob_path(base, sha256_digest(data))
    if not path.is_file():
        atomic_write(path, data)


def _index_with(base: Path, tag: str, doc: CacheDocument) -> bytes:
    try:
        old = json.loads((base / "index.json").read_bytes()).get("manifests") or []
    except (OSError, ValueError, AttributeError):
        old = []
    kept = [m for m in old if isinstance(m, dict)
            and (m.get("annotations") or {}).get(REF_NAME) != tag]
    mine = Descriptor(mt.OCI_MANIFEST, doc.manifest_digest, len(doc.manifest_bytes),
                      {REF_NAME: tag}).to_json()
    return canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                           "manifests": [*kept, mine]})


class LocalSource:
    """The cache tagged ``tag`` in the layout at ``root``, its manifest and config checked."""

    def __init__(self, root: str, tag: str):
        self.root = Path(root)
        self.where = str(root)
        digest = self._manifest_digest(tag)
        manifest = read_manifest(self._read(digest), self.where)
        config = self._read(manifest.config.digest)
        self.entries: dict[str, CacheEntry] = read_entries(config, manifest, self.where)

    def _manifest_digest(self, tag: str) -> str:
        try:
            index = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            raise ArchiveError(f"{self.where}: no index.json (nothing exported there yet)"
                               ) from None
        except (OSError, ValueError) as err:
            raise ArchiveError(f"{self.where}: unreadable index.json: {err}") from None
        for item in index.get("manifests") or () if isinstance(index, dict) else ():
            if isinstance(item, dict) and (item.get("annotations") or {}).get(REF_NAME) == tag:
                return str(item.get("digest"))
        raise ArchiveError(f"{self.where}: no cache tagged {tag!r}")

    def _read(self, digest: str) -> bytes:
        try:
            data = _blob_path(self.root, digest).read_bytes()
        except (OSError, ValueError) as err:
            raise ArchiveError(f"{self.where}: blob {digest}: "
                               f"{getattr(err, 'strerror', None) or err}") from None
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"{self.where}: blob {digest}: digest mismatch")
        return data

    def fetch(self, store: Store, entry: CacheEntry, emit: Callable[[object], None]) -> None:
        """Put the entry's layer into ``store``: compressed bytes checked against the blob's
        digest and size, the plain tar against the diff ID; nothing is kept otherwise."""
        blob, diff_id = entry.blob, entry.record.layer
        if blob is None or diff_id is None:
            return
        where = f"{self.where}: blob {blob.digest}"
        try:
            with open(_blob_path(self.root, blob.digest), "rb") as file:
                _store_layer(store, _Hashing(file), blob, diff_id, where)
        except OSError as err:
            raise ArchiveError(f"{where}: {err.strerror or err}") from None

    def close(self) -> None:
        pass


class _Hashing:
    """A file read through a hash, so the compressed blob's digest can be checked."""

    def __init__(self, file: BinaryIO):
        self.file, self.hash, self.size = file, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.file.read(_CHUNK if n < 0 else n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def _store_layer(store: Store, source: _Hashing, blob: Descriptor, diff_id: str,
                 where: str) -> None:
    from pybuild.layers.compression import open_decompressed

    writer = store.blobs.writer()
    try:
        try:
            plain = open_decompressed(source)  # type: ignore[arg-type]
            while chunk := plain.read(_CHUNK):
                writer.write(chunk)
        except PybuildError as err:  # a corrupt stream: the digest says why first
            source.drain()
            _check(source, blob, where)
            raise ImageError(f"{where}: {err}") from None
        source.drain()
        _check(source, blob, where)
        if writer.digest != diff_id:
            raise DigestMismatch(f"{where}: the layer inside is {writer.digest}, the cache "
                                 f"says {diff_id}")
        writer.commit(diff_id)
    except BaseException:
        writer.abort()
        raise


def _check(source: _Hashing, blob: Descriptor, where: str) -> None:
    actual = "sha256:" + source.hash.hexdigest()
    if actual != blob.digest or source.size != blob.size:
        raise DigestMismatch(f"{where}: digest mismatch: {source.size} bytes with digest "
                             f"{actual}")
