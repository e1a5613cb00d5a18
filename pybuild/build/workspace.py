"""The store-backed :class:`~pybuild.build.stepcontext.StepContext` one build hands its steps."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from pybuild.build.options import BuildOptions
from pybuild.build.rootfs import RootfsView
from pybuild.context.walk import BuildContext
from pybuild.plan.state import StageState
from pybuild.store import Store
from pybuild.store.filepool import FilePool
from pybuild.store.layercache import chain_ids
from pybuild.store.records import LayerRef

StateFor = Callable[[str, int], StageState]


class Workspace:
    def __init__(self, store: Store, options: BuildOptions, files: BuildContext,
                 state_for: StateFor):
        self.store = store
        self.options = options
        self.files = files
        self.state_for = state_for
        self._flats: dict[str, str] = {}

    @property
    def network(self) -> str:
        return self.options.network

    @property
    def build_args(self) -> Mapping[str, str | None]:
        return self.options.build_args

    @property
    def secrets(self) -> Mapping[str, str]:
        return self.options.secrets

    @property
    def scratch(self) -> Path:
        return self.store.tmp

    @property
    def cache_root(self) -> Path:
        return self.store.root

    @property
    def file_pool(self) -> FilePool:
        return self.store.files

    def flatten(self, ref: str) -> str:
        if ref not in self._flats:  # each stage or image is unpacked once per build
            state = self.state_for(ref, 0)
            tree = self.tempdir("flat-")
            self.store.layers.unpack_to(state.diff_ids, tree)
            self._flats[ref] = str(tree)
        return self._flats[ref]

    def lowerdirs(self, state: StageState) -> list[Path]:
        return self.store.layers.ensure(state.diff_ids)

    def view(self, state: StageState) -> RootfsView:
        return RootfsView(self.lowerdirs(state))

    def tempdir(self, prefix: str) -> Path:
        self.store.tmp.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.store.tmp))
        os.chmod(path, 0o755)
        return path

    def commit_dir(self, state: StageState, tree: Path, *, upper: bool) -> LayerRef:
        """Adopt ``tree`` as the unpacked form of a new layer, whose tar is only hashed here
        and written when first read (``pybuild.store.lazyblobs``)."""
        from pybuild.layers.create import write_layer_from_tree

        epoch = self.options.source_date_epoch
        with self.store.writing():
            info = write_layer_from_tree(tree, None, upper=upper, source_date_epoch=epoch)
            chains = chain_ids(state.diff_ids)
            parent = chains[-1] if chains else None
            adopted = self.store.layers.adopt(parent, info.diff_id, tree)
            blobs = self.store.blobs
            if blobs.lazy is not None and not blobs.path(info.diff_id).is_file():
                blobs.lazy.add(info.diff_id, info.size, "sha256:" + adopted.name, upper=upper,
                               epoch=epoch)
        return LayerRef(info.diff_id, info.size)

    def cleanup(self) -> None:
        for path in self._flats.values():
            shutil.rmtree(path, ignore_errors=True)
        self._flats.clear()
