"""Compressed forms of stored layers, made once when an image leaves (save, push).

Layers are stored uncompressed (blob digest == diff ID). ``compressed/<diffid-hex>.json``
remembers, per compression, the digest, size and media type of the compressed blob, so a second
save does not compress again.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from pybuild.image import mediatypes as mt
from pybuild.image.canonical import canonical_json
from pybuild.store.blobs import BlobStore, hex_of, is_digest
from pybuild.store.fsutil import atomic_write
from pybuild.store.lock import FileLock


@dataclass(frozen=True)
class CompressedBlob:
    digest: str
    size: int
    media_type: str


class CompressedIndex:
    def __init__(self, root: Path, tmp: Path, blobs: BlobStore, lock: FileLock):
        self.root = root  # .../compressed
        self.tmp = tmp
        self.blobs = blobs
        self.lock = lock

    def path(self, diff_id: str) -> Path:
        return self.root / f"{hex_of(diff_id)}.json"

    def load(self, diff_id: str) -> dict[str, CompressedBlob]:
        try:
            data = json.loads(self.path(diff_id).read_bytes())
            return {name: CompressedBlob(v["digest"], int(v["size"]), v["mediaType"])
                    for name, v in data.items() if is_digest(v["digest"])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # missing or broken: compress again (check reports broken ones)

    def get(self, diff_id: str, compression: str) -> CompressedBlob:
        """The blob for ``diff_id`` compressed with ``compression`` ("none", "gzip", "zstd")."""
        if compression in ("none", "", None):
            return CompressedBlob(diff_id, self.blobs.size(diff_id), mt.OCI_LAYER)
        known = self.load(diff_id).get(compression)
        if known is not None and self.blobs.has(known.digest):
            return known
        # hold the writing lock until the mapping names the new blob, or a collection could
        # take it in between
        with self.blobs.guard or contextlib.nullcontext():
            blob = self._compress(diff_id, compression)
            with self.lock:
                table = self.load(diff_id)
                table[compression] = blob
                data = {name: {"digest": b.digest, "size": b.size, "mediaType": b.media_type}
                        for name, b in table.items()}
                atomic_write(self.path(diff_id), canonical_json(data), self.tmp)
        return blob

    def digests(self) -> dict[str, set[str]]:
        """diff ID -> digests of its compressed blobs (for garbage collection)."""
        out: dict[str, set[str]] = {}
        if self.root.is_dir():
            for path in sorted(self.root.glob("*.json")):
                diff_id = "sha256:" + path.stem
                out[diff_id] = {b.digest for b in self.load(diff_id).values()}
        return out

    def _compress(self, diff_id: str, compression: str) -> CompressedBlob:
        from pybuild.errors import DigestMismatch
        from pybuild.layers.compression import media_type_for
        from pybuild.layers.pipeline import Pipeline

        # The pipeline hashes the plain bytes it compresses: that checks the stored layer
        # without reading it a second time.
        with self.blobs.open(diff_id, verify=False) as src, self.blobs.writer() as out:
            with Pipeline(out, compression) as pipe:
                pipe.copy_stream(src)
                result = pipe.finish()
            if result.diff_id != diff_id:  # the writer's exit drops the temp file
                raise DigestMismatch(f"layer {diff_id} in the store is corrupt; run "
                                     "`pybuild system check`")
            info = out.commit()
        return CompressedBlob(info.digest, info.size, media_type_for(compression))
