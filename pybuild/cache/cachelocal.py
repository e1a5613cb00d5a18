"""``type=local`` caches: the cache manifest in an OCI image layout directory.

``DEST/index.json`` names the manifest under ``org.opencontainers.image.ref.name`` = the tag
(other tags' caches in the same directory stay); blobs go first, each renamed into
``blobs/sha256/`` whole, and ``index.json`` is replaced last, so a reader sees the old cache or
the new one. Reading checks every blob against its digest: the manifest and config before any
entry is believed, each layer (and the diff ID inside it) when a step asks for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pybuild.cache.cacheformat import CacheDocument, CacheEntry, read_entries, read_manifest
from pybuild.errors import ArchiveError, DigestMismatch
from pybuild.image import mediatypes as mt
from pybuild.image.canonical import canonical_json, sha256_digest
from pybuild.image.manifest import Descriptor
from pybuild.layers.incoming import HashingReader, unpack_checked
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
        source = HashingReader(file.read)
        source.drain()
    return source.digest


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
                writer = unpack_checked(store, HashingReader(file.read), digest=blob.digest,
                                        size=blob.size, diff_id=diff_id, where=where)
        except OSError as err:
            raise ArchiveError(f"{where}: {err.strerror or err}") from None
        writer.commit(diff_id)

    def close(self) -> None:
        pass
