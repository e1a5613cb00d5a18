"""``Store``: one root directory of content, shared safely by concurrent pybuild processes.

The layout under the root and the writing contract are in the package docstring
(``pybuild.store``).
"""


from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pybuild.errors import BlobNotFound
from pybuild.image import mediatypes as mt
from pybuild.image.canonical import canonical_json
from pybuild.store.blobs import BlobStore
from pybuild.store.fsutil import atomic_write
from pybuild.store.layercache import LayerCache
from pybuild.store.lazyblobs import LazyBlobs
from pybuild.store.lock import FileLock
from pybuild.store.paths import DEFAULT_ROOT
from pybuild.store.records import ImageRecord, LayerRef, RecordStore
from pybuild.store.refs import RefStore

if TYPE_CHECKING:
    from pybuild.store.compressed import CompressedIndex
    from pybuild.store.filepool import FilePool


class Store:
    """Open (creating if needed) the store at ``root``.

    ``on_wait`` is called once when a lock has been held by another process for a second;
    ``lock_timeout`` (seconds, None = forever) turns a long wait into LockTimeout.
    """

    def __init__(self, root: str | Path = DEFAULT_ROOT, *,
                 on_wait: Callable[[], None] | None = None, lock_timeout: float | None = None):
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self._lock = FileLock(self.root / "lock", on_wait=on_wait, timeout=lock_timeout)
        self._gc_lock_shared = FileLock(self.root / "gc.lock", shared=True, on_wait=on_wait,
                                        timeout=lock_timeout)
        self._gc_lock = FileLock(self.root / "gc.lock", on_wait=on_wait, timeout=lock_timeout)
        lazy = LazyBlobs(self.root / "blobs" / "lazy", self.tmp, self.root / "layers")
        self.blobs = BlobStore(self.root / "blobs", self.tmp, self._gc_lock_shared, lazy)
        self.records = RecordStore(self.root / "images", self.tmp)
        self.refs = RefStore(self.root / "refs.json", self.tmp, self._lock)
        self.layers = LayerCache(self.root / "layers", self.tmp, self.blobs,
                                 self._gc_lock_shared)

    # The two below are made on first use: a container's start needs neither, and their
    # modules (and tempfile) would cost every ``pybuild run`` their import.
    @functools.cached_property
    def files(self) -> FilePool:
        from pybuild.store.filepool import FilePool

        return FilePool(self.root / "files")

    @functools.cached_property
    def compressed(self) -> CompressedIndex:
        from pybuild.store.compressed import CompressedIndex

        return CompressedIndex(self.root / "compressed", self.tmp, self.blobs, self._lock)

    def lock(self) -> FileLock:
        """Exclusive lock for read-modify-write of records and refs (reentrant)."""
        return self._lock

    def writing(self) -> FileLock:
        """Hold while writing content no record names yet; garbage collection waits for it."""
        return self._gc_lock_shared

    def collecting(self) -> FileLock:
        """Exclusive against every writer: garbage collection and repair."""
        return self._gc_lock

    def compressed_blob(self, diff_id: str, compression: str) -> tuple[str, int, str]:
        """(digest, size, media type) of the layer ``diff_id`` compressed; compresses once."""
        blob = self.compressed.get(diff_id, compression)
        return blob.digest, blob.size, blob.media_type

    def put_layer(self, stream: BinaryIO, *, diff_id: str | None = None) -> LayerRef:
        """Store a layer from outside (load, pull) uncompressed, whatever its compression.

        With ``diff_id`` the plain tar must hash to it or nothing is kept (DigestMismatch).
        Hold ``writing()`` until an image record names the layer."""
        from pybuild.layers.compression import open_decompressed

        info = self.blobs.put(open_decompressed(stream), digest=diff_id)
        return LayerRef(info.digest, info.size)

    def commit_image(self, config: bytes, layers: Sequence[LayerRef], *, docker: bool = False,
                     parent: str = "", created: str = "") -> ImageRecord:
        """Store a config blob (canonical JSON bytes, kept as given) and an uncompressed manifest
        for layers already in the store, and write the image record. Names come after.

        Takes ``writing()`` itself; a caller holding ``lock()`` must take ``writing()`` first
        (the lock order is writing, then lock, as garbage collection takes them)."""
        for layer in layers:
            if not self.blobs.has(layer.diff_id):
                raise BlobNotFound(f"layer {layer.diff_id} is not in the store")
        from pybuild.image.manifest import Descriptor, build_manifest

        with self.writing():
            config_info = self.blobs.put_bytes(config)
            layer_descs = [Descriptor(mt.OCI_LAYER, ly.diff_id, ly.size) for ly in layers]
            config_desc = Descriptor(mt.OCI_CONFIG, config_info.digest, config_info.size)
            manifest = build_manifest(config_desc, layer_descs, docker=docker)
            manifest_info = self.blobs.put_bytes(manifest.to_bytes())
            if not created:
                with contextlib.suppress(ValueError, AttributeError):
                    created = json.loads(config).get("created") or ""
            record = ImageRecord(config_info.digest, manifest_info.digest, manifest.media_type,
                                 tuple(layers), created, parent)
            with self._lock:  # so an rmi of the same id is wholly before or after
                self.records.put(record)
        return record

    def set_gc_root(self, name: str, *, blobs: Sequence[str] = (),
                    chains: Sequence[str] = ()) -> None:
        """Tell garbage collection to keep ``blobs`` and unpacked ``chains`` for ``name``."""
        data = {"blobs": sorted(set(blobs)), "chains": sorted(set(chains))}
        atomic_write(self._gc_root_path(name), canonical_json(data), self.tmp)

    def remove_gc_root(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._gc_root_path(name).unlink()

    def gc_roots(self) -> Iterator[tuple[str, set[str], set[str]]]:
        folder = self.root / "gcroots"
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.json")):
            try:
                data = json.loads(path.read_bytes())
                yield path.stem, set(data.get("blobs", ())), set(data.get("chains", ()))
            except (OSError, ValueError, AttributeError, TypeError):
                continue

    def _gc_root_path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"bad gc root name {name!r}")
        return self.root / "gcroots" / f"{name}.json"
