"""Garbage collection and disk usage: what the records reference, and what nothing does."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pybuild.store import Store
from pybuild.store.fsutil import dir_size
from pybuild.store.layercache import chain_ids


@dataclass(frozen=True)
class References:
    blobs: frozenset[str]
    chains: frozenset[str]


@dataclass(frozen=True)
class GcResult:
    blobs: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()  # chain ids of unpacked layers removed
    reclaimed: int = 0  # bytes
    images: tuple[str, ...] = field(default=())  # image ids removed (by image prune)


def referenced(store: Store) -> References:
    """Blobs and unpacked chains that an image record or a gc root keeps alive."""
    blobs: set[str] = set()
    chains: set[str] = set()
    for record in store.records.list(strict=True):
        blobs.update((record.id, record.manifest_digest, *record.diff_ids))
        chains.update(chain_ids(record.diff_ids))
    for _name, root_blobs, root_chains in store.gc_roots():
        blobs |= root_blobs
        chains |= root_chains
    for diff_id, compressed in store.compressed.digests().items():
        if diff_id in blobs:
            blobs |= compressed
    if store.blobs.lazy is not None:  # a layer with no tar yet lives in its unpacked dirs
        for diff_id in store.blobs.lazy.digests():
            if diff_id in blobs:
                chains |= store.blobs.lazy.chains(diff_id)
    return References(frozenset(blobs), frozenset(chains))


def collect(store: Store) -> GcResult:
    """Remove every blob, unpacked layer and compression record that nothing references.

    Waits for in-flight writers (they hold the shared ``writing`` lock), then also empties
    tmp/, which at that point only holds what crashed writers left behind."""
    with store.collecting(), store.lock():
        refs = referenced(store)
        freed = 0
        blobs = []
        for digest in list(store.blobs.digests()):
            if digest not in refs.blobs:
                freed += _size(store.blobs.root / "sha256" / digest[7:])
                if store.blobs.delete(digest):
                    blobs.append(digest)
        layers = []
        for chain in store.layers.chains():
            if chain not in refs.chains:
                freed += dir_size(store.layers.path(chain))
                store.layers.remove(chain)
                layers.append(chain)
        for diff_id in store.compressed.digests():
            if diff_id not in refs.blobs:
                with contextlib.suppress(FileNotFoundError):
                    store.compressed.path(diff_id).unlink()
        _sweep_distribution(store, refs.blobs)
        freed += store.files.sweep()
        freed += dir_size(store.tmp) if store.tmp.is_dir() else 0
        clean_tmp(store)
        return GcResult(tuple(blobs), tuple(layers), freed)


def _sweep_distribution(store: Store, kept: set[str]) -> None:
    """Drop what registries were known to hold (``distribution/<hex>.json``, written by
    pybuild.registry) for layers no longer kept."""
    directory = store.root / "distribution"
    if not directory.is_dir():
        return
    for path in directory.glob("*.json"):
        if f"sha256:{path.stem}" not in kept:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def clean_tmp(store: Store) -> list[str]:
    """Remove leftovers in tmp/ (call only under ``collecting()``: no writer is active)."""
    removed = []
    if not store.tmp.is_dir():
        return removed
    for name in sorted(os.listdir(store.tmp)):
        path = store.tmp / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(name)
    return removed


@dataclass(frozen=True)
class UsageRow:
    kind: str
    total: int
    active: int
    size: int
    reclaimable: int


def disk_usage(store: Store) -> list[UsageRow]:
    """Rows like ``docker system df``: images, unpacked layers, build cache, blobs, containers."""
    records = store.records.list()
    table = store.refs.load()
    tagged = table.targets()
    refs = referenced(store)
    blob_sizes = {d: _size(store.blobs.path(d)) for d in store.blobs.digests()}

    def image_bytes(ids: set[str]) -> int:
        keep: set[str] = set()
        for r in records:
            if r.id in ids:
                keep.update((r.id, r.manifest_digest, *r.diff_ids))
        return sum(blob_sizes.get(d, 0) for d in keep)

    all_ids = {r.id for r in records}
    active = all_ids & tagged
    image_size = image_bytes(all_ids)
    rows = [UsageRow("Images", len(all_ids), len(active), image_size,
                     image_size - image_bytes(active))]
    chains = store.layers.chains()
    chain_sizes = {c: dir_size(store.layers.path(c)) for c in chains}
    used = [c for c in chains if c in refs.chains]
    rows.append(UsageRow("Unpacked layers", len(chains), len(used), sum(chain_sizes.values()),
                         sum(s for c, s in chain_sizes.items() if c not in refs.chains)))
    for kind, sub in (("Build cache", "cache"), ("Containers", "containers")):
        path = store.root / sub
        if path.is_dir():
            entries = len(os.listdir(path))
            rows.append(UsageRow(kind, entries, 0, dir_size(path), 0))
    unused = sum(s for d, s in blob_sizes.items() if d not in refs.blobs)
    rows.append(UsageRow("Blobs", len(blob_sizes), len(blob_sizes) - len(
        [d for d in blob_sizes if d not in refs.blobs]), sum(blob_sizes.values()), unused))
    return rows


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0

