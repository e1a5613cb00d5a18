"""``type=registry`` caches: the cache manifest pushed to / pulled from a registry tag, over
the registry client's transport (auth, TLS, retries as for push and pull).

Export: each layer blob the registry lacks (HEAD first), then the config, then the manifest
under the tag, so the tag only ever names a cache whose blobs are all there. Import: the
manifest by tag, the config checked against its digest, and each layer fetched only when a
step asks for it, its digest and diff ID checked before the store keeps it.
"""

from __future__ import annotations

from collections.abc import Callable

from pybuild.cache.cacheformat import CacheDocument, CacheEntry, read_entries, read_manifest
from pybuild.errors import DigestMismatch, ReferenceError_, RegistryError
from pybuild.image import mediatypes as mt
from pybuild.image.canonical import sha256_digest
from pybuild.image.reference import Reference, parse_normalized
from pybuild.store import Store

_MAX_CONFIG = 64 << 20  # a cache config lists steps; anything bigger is not one


def _reference(text: str) -> Reference:
    try:
        return parse_normalized(text)  # :latest when untagged
    except ReferenceError_ as err:
        raise RegistryError(f"cache ref {text!r}: {err}") from None


def write(store: Store, ref_text: str, doc: CacheDocument,
          emit: Callable[[object], None]) -> str:
    """Push ``doc`` and its blobs to ``ref_text``; the manifest's digest."""
    from pybuild.registry.remote import open_repository
    from pybuild.registry.upload import DEFAULT_POLICY, upload_blob, upload_bytes

    ref = _reference(ref_text)
    if ref.tag is None:
        raise RegistryError(f"cache ref {ref_text!r}: --cache-to needs a tag, not a digest")
    repo = open_repository(ref)
    try:
        for blob in doc.blobs():
            if repo.has_blob(blob.digest) is None:
                upload_blob(store, repo, blob.digest, blob.size, emit, DEFAULT_POLICY)
        config_digest = doc.manifest.config.digest
        if repo.has_blob(config_digest) is None:
            upload_bytes(repo, doc.config, config_digest)
        return repo.put_manifest(ref.tag, doc.manifest_bytes, mt.OCI_MANIFEST)
    finally:
        repo.close()


class RegistrySource:
    """The cache ``ref_text`` names, its manifest and config fetched and checked."""

    def __init__(self, ref_text: str):
        from pybuild.registry.remote import open_repository

        ref = _reference(ref_text)
        self.where = ref_text
        self.repo = open_repository(ref)
        try:
            fetched = self.repo.manifest(ref.digest or ref.tag or "latest")
            if fetched.media_type != mt.OCI_MANIFEST:
                raise RegistryError(f"{self.where}: not a pybuild build cache "
                                    f"({fetched.media_type})")
            manifest = read_manifest(fetched.raw, self.where)
            config = self._config(manifest.config.digest, manifest.config.size)
            self.entries: dict[str, CacheEntry] = read_entries(config, manifest, self.where)
        except BaseException:
            self.repo.close()
            raise

    def _config(self, digest: str, size: int) -> bytes:
        if size > _MAX_CONFIG:
            raise RegistryError(f"{self.where}: cache config of {size} bytes is too big")
        response = self.repo.blob(digest)
        try:
            data = response.content
        finally:
            response.close()
        if sha256_digest(data) != digest or len(data) != size:
            raise DigestMismatch(f"{self.where}: config blob {digest}: digest mismatch")
        return data

    def fetch(self, store: Store, entry: CacheEntry, emit: Callable[[object], None]) -> None:
        """Put the entry's layer into ``store``, checked; nothing is kept otherwise."""
        from pybuild.registry.download import Layer, download
        from pybuild.registry.transport import DEFAULT_BACKOFF

        blob, diff_id = entry.blob, entry.record.layer
        if blob is None or diff_id is None:
            return
        layer = Layer(blob.digest, blob.size, blob.media_type, diff_id)
        writer = download(store, self.repo, layer, emit, DEFAULT_BACKOFF)
        writer.commit(diff_id)

    def close(self) -> None:
        self.repo.close()
