"""The store-backed :class:`~pybuild.build.stepcontext.StepContext` one build hands its steps."""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
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
        """The merged tree read from the stage's unpacked layers, not from its tars: a layer
        the build made has none yet, and writing it only to extract it cost two copies."""
        if ref not in self._flats:  # each stage or image is flattened once per build
            tree = self.tempdir("flat-")
            with self.store.writing():  # collection must not take the layers away meanwhile
                copy_view(self.view(self.state_for(ref, 0)), "/", tree)
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


def copy_view(view: RootfsView, path: str, dest: Path) -> None:
    """The merged contents of image directory ``path`` into ``dest``, whiteouts and opaque
    dirs applied by ``view``. Files are hard links to the layers' own: a flattened tree is
    only bind-mounted read-only or copied again (rw binds, cache seeds), and never written."""
    for name in view.listdir(path):
        child = posixpath.join(path, name)
        found = view.lookup(child)
        if found is None:
            continue
        st, target = found.st, dest / name
        if stat.S_ISDIR(st.st_mode):
            target.mkdir()
            copy_view(view, child, target)
            _copy_meta(found.host, st, target)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(found.host), target)
            os.lchown(target, st.st_uid, st.st_gid)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        elif stat.S_ISREG(st.st_mode):
            try:
                os.link(found.host, target, follow_symlinks=False)
            except OSError:  # another file system: a copy with the same metadata
                shutil.copyfile(found.host, target)
                _copy_meta(found.host, st, target)
        else:  # fifo or device node
            os.mknod(target, st.st_mode, st.st_rdev)
            _copy_meta(found.host, st, target)


def _copy_meta(host: str, st: os.stat_result, target: Path) -> None:
    """Owner, mode, xattrs (overlay's own left out) and time, last: writing into a
    directory changes its mtime, and a chown drops a file capability."""
    os.chown(target, st.st_uid, st.st_gid)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    for key in os.listxattr(host, follow_symlinks=False):
        if not key.startswith("trusted.overlay."):
            os.setxattr(target, key, os.getxattr(host, key, follow_symlinks=False))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
