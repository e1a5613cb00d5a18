"""The local content store: one root directory, shared safely by concurrent pybuild processes.

``Store`` (``pybuild.store.root``) opens one. The names below are loaded on first use, so that
``pybuild.store.paths`` and ``pybuild.store.fsutil`` stay cheap to import for the command line
and the no-change rebuild.

Layout under the root (``/var/lib/pybuild`` by default)::

    blobs/sha256/<hex>        content-addressed blobs (layers uncompressed, configs, manifests)
    blobs/lazy/<hex>.json     layers a build made, not written as a tar until read (lazyblobs)
    images/<hex>.json         one record per image (ImageRecord), the id being the config digest
    refs.json                 tags and repo digests -> image ids
    layers/<chainid-hex>/     unpacked layers, overlay lower dirs
    files/<key>               big files layers share by hard link (filepool)
    compressed/<hex>.json     compressed forms of a layer, made on save/push
    distribution/<hex>.json   where a pulled layer lives in registries (pybuild.registry)
    gcroots/<name>.json       blobs and chains other owners (build cache) want kept
    tmp/                      temp files, renamed into place when complete
    lock, gc.lock             see pybuild.store.lock
    cache/                    the build cache (pybuild.cache)

Writers: blobs and unpacked layers first, then the image record, then refs, each step atomic,
so a crash leaves at worst unreferenced content (collected by ``system prune``) and temp files.

The writing contract, for the builder, load and pull::

    with store.writing():                      # garbage collection waits for us
        layer = store.put_layer(stream)        # or layers.adopt(...) + blobs.lazy.add(...)
        record = store.commit_image(config_bytes, [layer, ...], parent=...)
        pybuild.store.images.tag(store, record.id, "name:tag")

Content written outside ``writing()`` and not yet named by a record may be collected by a
concurrent ``system prune``. Other owners keep content alive with ``set_gc_root``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pybuild.store.paths import DEFAULT_ROOT

if TYPE_CHECKING:
    from pybuild.store.blobs import BlobInfo
    from pybuild.store.compressed import CompressedBlob
    from pybuild.store.layercache import chain_id, chain_ids
    from pybuild.store.records import ImageRecord, LayerRef
    from pybuild.store.refs import RefTable
    from pybuild.store.root import Store

# public name -> the module under pybuild.store that defines it
_LAZY = {
    "BlobInfo": "blobs", "CompressedBlob": "compressed", "ImageRecord": "records",
    "LayerRef": "records", "RefTable": "refs", "Store": "root", "chain_id": "layercache",
    "chain_ids": "layercache",
}

__all__ = [
    "DEFAULT_ROOT", "BlobInfo", "CompressedBlob", "ImageRecord", "LayerRef", "RefTable", "Store",
    "chain_id", "chain_ids",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
