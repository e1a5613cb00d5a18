"""A build cache shared between machines: ``--cache-from`` answers the steps the local index
cannot, ``--cache-to`` writes out the entries the build used or made.

:class:`SharedIndex` stands in for the build's :class:`~pybuild.cache.index.CacheIndex`: a key
the local index lacks (or whose layer the store lacks) is looked up in each imported cache in
turn; a hit there brings the layer into the store, verified, and then records the entry in
the local index, so the step is a cache hit like any other and a later build needs no import.
A cache that cannot be read (none exported yet, a registry that is down) is a warning: the
build goes on without it, as BuildKit's does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Protocol

from pybuild.cache.cacheformat import CacheEntry, document
from pybuild.cache.cachespec import CacheSpec
from pybuild.cache.index import CacheIndex, CacheRecord
from pybuild.cache.keys import KeyInputs
from pybuild.errors import BuildError, PybuildError
from pybuild.image.manifest import Descriptor
from pybuild.progress import BuildWarning
from pybuild.registry.events import RegistryStatus
from pybuild.store import Store

Emit = Callable[[object], None]


class CacheSource(Protocol):
    where: str
    entries: Mapping[str, CacheEntry]

    def fetch(self, store: Store, entry: CacheEntry, emit: Emit) -> None: ...
    def close(self) -> None: ...


def open_source(spec: CacheSpec) -> CacheSource:
    if spec.type == "local":
        from pybuild.cache.cachelocal import LocalSource

        return LocalSource(spec.path, spec.tag)
    from pybuild.cache.cacheregistry import RegistrySource

    return RegistrySource(spec.ref)


def open_sources(specs: Iterable[CacheSpec], emit: Emit) -> list[CacheSource]:
    """Each ``--cache-from`` that can be read; a warning for each that cannot."""
    sources = []
    for spec in specs:
        try:
            source = open_source(spec)
        except PybuildError as err:
            emit(BuildWarning(f"importing cache: {err}"))  # err names the cache
            continue
        sources.append(source)
        emit(RegistryStatus(f"importing cache manifest from {source.where}: "
                            f"{_steps(len(source.entries))}"))
    return sources


def _steps(count: int) -> str:
    return f"{count} step{'' if count == 1 else 's'}"


class SharedIndex:
    """The local index, backed by imported caches, remembering what the build touched."""

    def __init__(self, local: CacheIndex, store: Store, sources: list[CacheSource],
                 emit: Emit):
        self.local = local
        self.store = store
        self.sources = sources
        self.emit = emit
        self.used: dict[str, CacheRecord] = {}  # key -> record, every step hit or made

    def get(self, key: str) -> CacheRecord | None:
        record = self.local.get(key)
        if record is None or not self._has_layer(record):
            record = self._imported(key) or record
        if record is not None and self._has_layer(record):
            self.used[key] = record
        return record

    def put(self, record: CacheRecord, slot: str | None = None) -> None:
        self.local.put(record, slot=slot)
        self.used[record.key] = replace(record, inputs=record.inputs.without_manifest())

    def explain(self, slot: str, inputs: KeyInputs) -> str:
        return self.local.explain(slot, inputs)

    def __getattr__(self, name: str):  # the rest of CacheIndex, unchanged
        return getattr(self.local, name)

    def _has_layer(self, record: CacheRecord) -> bool:
        return record.layer is None or self.store.blobs.has(record.layer)

    def _imported(self, key: str) -> CacheRecord | None:
        for source in self.sources:
            entry = source.entries.get(key)
            if entry is None:
                continue
            try:
                if not self._has_layer(entry.record):
                    source.fetch(self.store, entry, self.emit)
            except PybuildError as err:  # a bad blob is a miss: the step runs
                self.emit(BuildWarning(f"importing cache: {err}"))
                continue
            record = entry.record
            if record.layer is not None:  # the size the store has, not the one the cache says
                record = replace(record, meta={**record.meta,
                                               "size": self.store.blobs.size(record.layer)})
            self.local.put(record)
            return record
        return None

    def close(self) -> None:
        for source in self.sources:
            source.close()


def select(used: Mapping[str, CacheRecord], final_key: str, mode: str) -> list[CacheRecord]:
    """``max``: every record; ``min``: those of the final image's steps, found by following
    parent keys back from its last step."""
    if mode == "max":
        return list(used.values())
    chain, key = [], final_key
    while key in used and len(chain) <= len(used):
        chain.append(used[key])
        key = used[key].inputs.parent
    return chain


def entries(store: Store, records: Iterable[CacheRecord], compression: str
            ) -> list[CacheEntry]:
    """Each record with its layer's blob in ``compression`` (compressed once, kept in the
    store); a record whose layer is gone is left out."""
    out = []
    for record in records:
        if record.layer is None:
            out.append(CacheEntry(record))
        elif store.blobs.has(record.layer):
            digest, size, media_type = store.compressed_blob(record.layer, compression)
            out.append(CacheEntry(record, Descriptor(media_type, digest, size)))
    return out


def export(store: Store, specs: Iterable[CacheSpec], used: Mapping[str, CacheRecord],
           final_key: str, emit: Emit) -> None:
    """Write the cache each ``--cache-to`` names; BuildError unless it says ignore-error."""
    for spec in specs:
        try:
            doc = document(entries(store, select(used, final_key, spec.mode), spec.compression))
            if spec.type == "local":
                from pybuild.cache.cachelocal import write

                write(store, spec.path, spec.tag, doc)
            else:
                from pybuild.cache.cacheregistry import write as push

                push(store, spec.ref, doc, emit)
            emit(RegistryStatus(f"exported cache to {spec.path or spec.ref}: "
                                f"{_steps(len(doc.entries))}, manifest {doc.manifest_digest}"))
        except PybuildError as err:
            message = f"exporting cache: {err}"  # err names the cache
            if not spec.ignore_error:
                raise BuildError(message) from None
            emit(BuildWarning(message))
