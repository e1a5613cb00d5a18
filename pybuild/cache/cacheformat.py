"""The exported build cache: one OCI image manifest whose config lists cache entries and whose
layers are the entries' layer blobs, so any registry (and an OCI layout) can hold it.

BuildKit's idea, pybuild's own media type: the config blob
(``application/vnd.pybuild.cache.config.v1+json``) is canonical JSON::

    {"version": 1, "entries": [{"record": <CacheRecord JSON>, "blob": <descriptor> | null}]}

A record is what the local index keeps for a step (key, its inputs, the layer's diff ID, the
layer's size); ``blob`` is the layer compressed as the manifest lists it. A reader trusts no
entry whose inputs do not hash to its key or whose blob the manifest does not list, and every
blob is checked against its digest (and the layer inside against its diff ID) as it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pybuild.cache.index import CacheRecord
from pybuild.errors import ImageError
from pybuild.image import mediatypes as mt
from pybuild.image.canonical import canonical_json, sha256_digest
from pybuild.image.manifest import Descriptor, Manifest
from pybuild.store.blobs import is_digest

CONFIG_MEDIA_TYPE = "application/vnd.pybuild.cache.config.v1+json"
VERSION = 1
ANNOTATION = "io.pybuild.cache.version"


@dataclass(frozen=True)
class CacheEntry:
    """One step's cached result and, when it added a layer, the blob that carries it."""

    record: CacheRecord
    blob: Descriptor | None = None


@dataclass(frozen=True)
class CacheDocument:
    """A cache ready to be written: its config bytes, the manifest naming them, its entries."""

    config: bytes
    manifest: Manifest
    entries: tuple[CacheEntry, ...]

    @property
    def manifest_bytes(self) -> bytes:
        return self.manifest.to_bytes()

    @property
    def manifest_digest(self) -> str:
        return sha256_digest(self.manifest_bytes)

    def blobs(self) -> tuple[Descriptor, ...]:
        return self.manifest.layers


def document(entries: Iterable[CacheEntry]) -> CacheDocument:
    """The config and manifest for ``entries`` (sorted by key: one cache, one digest)."""
    ordered = tuple(sorted(entries, key=lambda e: e.record.key))
    config = canonical_json({"version": VERSION, "entries": [
        {"record": e.record.to_json(), "blob": e.blob.to_json() if e.blob else None}
        for e in ordered]})
    layers: dict[str, Descriptor] = {}
    for entry in ordered:
        if entry.blob is not None:
            layers.setdefault(entry.blob.digest, entry.blob)
    config_desc = Descriptor(CONFIG_MEDIA_TYPE, sha256_digest(config), len(config))
    manifest = Manifest(config_desc, tuple(layers[d] for d in sorted(layers)),
                        mt.OCI_MANIFEST, {ANNOTATION: str(VERSION)})
    return CacheDocument(config, manifest, ordered)


def read_manifest(raw: bytes, where: str) -> Manifest:
    """The cache manifest in ``raw``; ImageError when it is not one pybuild wrote."""
    try:
        manifest = Manifest.from_bytes(raw)
    except ImageError as err:
        raise ImageError(f"{where}: {err}") from None
    if manifest.config.media_type != CONFIG_MEDIA_TYPE:
        raise ImageError(f"{where}: not a pybuild build cache (its config is "
                         f"{manifest.config.media_type or 'untyped'})")
    return manifest


def read_entries(config: bytes, manifest: Manifest, where: str) -> dict[str, CacheEntry]:
    """key -> entry from a config blob already checked against ``manifest.config``."""
    try:
        doc = json.loads(config)
        if doc.get("version") != VERSION:
            raise ImageError(f"{where}: cache format version {doc.get('version')!r} is not "
                             f"{VERSION}")
        listed = {d.digest: d for d in manifest.layers}
        out: dict[str, CacheEntry] = {}
        for item in doc["entries"]:
            entry = _entry(item, listed, where)
            out[entry.record.key] = entry
        return out
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ImageError(f"{where}: malformed cache config: {err!r}") from None


def _entry(item: Mapping, listed: Mapping[str, Descriptor], where: str) -> CacheEntry:
    record = CacheRecord.from_json(item["record"])
    if record.inputs.key() != record.key:
        raise ImageError(f"{where}: cache entry {record.key} does not match its inputs")
    if item.get("blob") is None:
        if record.layer is not None:
            raise ImageError(f"{where}: cache entry {record.key} has a layer but no blob")
        return CacheEntry(record)
    blob = Descriptor.from_json(item["blob"])
    if record.layer is None or not is_digest(record.layer) or not is_digest(blob.digest):
        raise ImageError(f"{where}: cache entry {record.key} has a malformed layer")
    if listed.get(blob.digest) != blob:
        raise ImageError(f"{where}: cache entry {record.key} names blob {blob.digest} that "
                         "the manifest does not list")
    return CacheEntry(record, blob)
