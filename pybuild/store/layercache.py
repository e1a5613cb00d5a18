"""Unpacked layers, kept once per chain ID under ``layers/<chainid-hex>/`` as overlay lower dirs.

ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)) (OCI
image-spec config.md). A layer is unpacked into a temp dir and renamed into place, so a
directory under ``layers/`` is always complete; a concurrent unpack of the same chain loses
the rename race harmlessly. Layer blobs are stored uncompressed, so the blob digest is the
diff ID.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from pybuild.errors import StoreError
from pybuild.store.blobs import BlobStore, hex_of
from pybuild.store.fsutil import fsync_dir, remove_tree
from pybuild.store.lock import FileLock


def chain_id(parent: str | None, diff_id: str) -> str:
    if not parent:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(chain_id(out[-1] if out else None, diff_id))
    return out


class LayerCache:
    def __init__(self, root: Path, tmp: Path, blobs: BlobStore, guard: FileLock):
        self.root = root  # .../layers
        self.tmp = tmp
        self.blobs = blobs
        self.guard = guard  # shared "writing" lock: collection waits while we unpack

    def path(self, chain: str) -> Path:
        return self.root / hex_of(chain)

    def has(self, chain: str) -> bool:
        return self.path(chain).is_dir()

    def ensure(self, diff_ids: Sequence[str]) -> list[Path]:
        """The lower dirs for a layer stack, bottom to top, unpacking those not yet here."""
        paths = []
        for chain, diff_id in zip(chain_ids(diff_ids), diff_ids, strict=True):
            path = self.path(chain)
            if not path.is_dir():
                with self.guard:
                    self._unpack(diff_id, path)
            paths.append(path)
        return paths

    def adopt(self, parent_chain: str | None, diff_id: str, upper_dir: Path) -> Path:
        """Move a finished overlay upper dir in as the unpacked form of a new layer.

        ``upper_dir`` is consumed: renamed into place, or removed when that chain is already
        here. It must be on the store's filesystem (the builder keeps uppers under tmp/).
        """
        dest = self.path(chain_id(parent_chain, diff_id))
        with self.guard:
            if dest.is_dir():
                remove_tree(upper_dir, self.tmp)
                return dest
            self._install(Path(upper_dir), dest)
        return dest

    def unpack_to(self, diff_ids: Sequence[str], dest: Path) -> None:
        """Flatten a stack into a plain directory (whiteouts applied, not kept)."""
        from pybuild.layers.extract import apply_layer

        dest.mkdir(parents=True, exist_ok=True)
        for diff_id in diff_ids:
            with self.blobs.open(diff_id) as stream:
                apply_layer(stream, dest, mode="apply")

    def chains(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return ["sha256:" + name for name in sorted(os.listdir(self.root)) if len(name) == 64]

    def remove(self, chain: str) -> None:
        remove_tree(self.path(chain), self.tmp)

    def _unpack(self, diff_id: str, dest: Path) -> None:
        from pybuild.layers.extract import apply_layer

        self.tmp.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=self.tmp, prefix="unpack-"))
        try:
            os.chmod(work, 0o755)
            with self.blobs.open(diff_id) as stream:
                apply_layer(stream, work, mode="overlay")
            self._install(work, dest)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    def _install(self, src: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(src, dest)
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST) and dest.is_dir():
                remove_tree(src, self.tmp)  # another process unpacked the same chain first
                return
            if err.errno == errno.EXDEV:
                raise StoreError(f"{src} is not on the store's filesystem ({self.root})") from err
            raise
        with contextlib.suppress(OSError):
            fsync_dir(dest.parent)
