"""Where a stored layer lives in registries, compressed: ``distribution/<diffid-hex>.json``.

The store keeps layers uncompressed, so a pulled layer's registry blob (its gzip or zstd form)
is not kept; what is kept is its digest, size, media type and the repositories known to have it
(``host/path``). A push then asks the registry for that blob (HEAD), mounts it from another
repository on the same host, or, knowing neither, compresses the layer itself: the way docker's
distribution metadata lets a pulled image go back without a byte uploaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pybuild.image.canonical import canonical_json
from pybuild.store import Store
from pybuild.store.blobs import hex_of, is_digest
from pybuild.store.fsutil import atomic_write

MAX_REPOS = 16  # per blob: enough to find a mount source, without growing for ever


@dataclass(frozen=True)
class RemoteBlob:
    digest: str
    size: int
    media_type: str
    repos: tuple[str, ...]  # "127.0.0.1:5000/app", newest first


def _path(store: Store, diff_id: str):
    return store.root / "distribution" / f"{hex_of(diff_id)}.json"


def known(store: Store, diff_id: str) -> list[RemoteBlob]:
    """What registries are known to hold for ``diff_id``; a broken file is as none."""
    try:
        data = json.loads(_path(store, diff_id).read_bytes())
        return [RemoteBlob(b["digest"], int(b["size"]), b["mediaType"], tuple(b["repos"]))
                for b in data["blobs"] if is_digest(b["digest"])]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def remember(store: Store, diff_id: str, blob: RemoteBlob) -> None:
    """Add ``blob``'s repositories to what is known for ``diff_id``."""
    with store.lock():
        entries = {b.digest: b for b in known(store, diff_id)}
        old = entries.get(blob.digest)
        repos = blob.repos + tuple(r for r in (old.repos if old else ()) if r not in blob.repos)
        entries[blob.digest] = RemoteBlob(blob.digest, blob.size, blob.media_type,
                                          repos[:MAX_REPOS])
        if old == entries[blob.digest]:
            return
        data = {"blobs": [{"digest": b.digest, "size": b.size, "mediaType": b.media_type,
                           "repos": list(b.repos)} for b in entries.values()]}
        path = _path(store, diff_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, canonical_json(data), store.tmp)
