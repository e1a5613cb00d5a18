"""Layer blobs a build has not written yet: the unpacked layer is the content, the tar waits.

A build learns a layer's diff ID by streaming its tar through sha256 with nothing written, and
adopts the staged (or overlay upper) dir as the layer's unpacked form, which it needs anyway as
an overlay lower dir. Writing the tar as well doubled the I/O of a COPY of big files (docker's
layer store does not write one either). So the tar is written when a reader first opens the
blob (save, push, compression, a stage flattened for ``COPY --from``): walked again from the
unpacked dir, which nothing writes to, the same way and with the same mtime clamp, and kept
only if it hashes to the diff ID. The record then goes: a digest is a blob file or a record.

``blobs/lazy/<diff-hex>.json``: ``{"size": N, "sources": {"<chain-hex>": {"upper": bool,
"epoch": int | null}}}``, one source per unpacked dir known to hold the layer. A source is
recorded only after its tree is on disk (syncfs), so a record never names what a crash can
leave half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pybuild.errors import StoreError
from pybuild.store.fsutil import atomic_write


@dataclass(frozen=True)
class LazyLayer:
    diff_id: str
    size: int
    sources: tuple[tuple[Path, bool, int | None], ...]  # (unpacked dir, upper, epoch)


class LazyBlobs:
    def __init__(self, root: Path, tmp: Path, layers_root: Path):
        self.root = root  # .../blobs/lazy
        self.tmp = tmp
        self.layers_root = layers_root

    def _path(self, diff_id: str) -> Path:
        return self.root / f"{diff_id.removeprefix('sha256:')}.json"

    def add(self, diff_id: str, size: int, chain: str, *, upper: bool,
            epoch: int | None) -> None:
        """Name the unpacked dir of ``chain`` as a source of the layer ``diff_id``; a source
        named already is left as it is (its tree was synced when it was named)."""
        tree = self.layers_root / chain.removeprefix("sha256:")
        data = self._read(diff_id) or {"size": size, "sources": {}}
        if tree.name in data["sources"]:
            return
        fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
        try:
            from pybuild.runner.libc import syncfs

            syncfs(fd)
        finally:
            os.close(fd)
        data["sources"][tree.name] = {"upper": upper, "epoch": epoch}
        atomic_write(self._path(diff_id), json.dumps(data, sort_keys=True).encode(), self.tmp)

    def get(self, diff_id: str) -> LazyLayer | None:
        """The layer's record with the sources that are still there; None without any."""
        data = self._read(diff_id)
        if data is None:
            return None
        try:
            sources = tuple((self.layers_root / name, bool(s["upper"]), s["epoch"])
                            for name, s in sorted(data["sources"].items()))
            size = int(data["size"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise StoreError(f"lazy blob record {self._path(diff_id)} is malformed") from err
        sources = tuple(s for s in sources if s[0].is_dir())
        return LazyLayer(diff_id, size, sources) if sources else None

    def chains(self, diff_id: str) -> set[str]:
        """The chain ids whose unpacked dirs are sources of ``diff_id``."""
        data = self._read(diff_id) or {}
        return {"sha256:" + name for name in data.get("sources", {})}

    def write(self, layer: LazyLayer, out: BinaryIO | None) -> str:
        """The layer's tar from its first source into ``out`` (None: only hashed); the diff
        ID it hashes to."""
        from pybuild.layers.create import write_layer_from_tree

        tree, upper, epoch = layer.sources[0]
        return write_layer_from_tree(tree, out, upper=upper, source_date_epoch=epoch).diff_id

    def remove(self, diff_id: str) -> bool:
        try:
            self._path(diff_id).unlink()
            return True
        except FileNotFoundError:
            return False

    def digests(self) -> Iterator[str]:
        if self.root.is_dir():
            for name in sorted(os.listdir(self.root)):
                if name.endswith(".json") and len(name) == 69:
                    yield "sha256:" + name[:64]

    def _read(self, diff_id: str) -> dict | None:
        try:
            data = json.loads(self._path(diff_id).read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as err:
            raise StoreError(f"lazy blob record {self._path(diff_id)} is malformed") from err
        with contextlib.suppress(AttributeError):
            data.setdefault("sources", {})
            return data
        raise StoreError(f"lazy blob record {self._path(diff_id)} is malformed")
