"""``VolumeStore``: docker's local volumes under ``<store root>/volumes/<name>/``.

Each volume is a directory holding ``_data`` (what containers mount) and ``volume.json`` (its
metadata). A volume appears whole or not at all: it is made in the store's tmp/ and renamed
into place, and a removal renames it out of sight before deleting it. Read-modify-write of the
metadata, creation and removal hold the store's lock; staging holds ``writing()`` so a
garbage collection does not sweep tmp/ under it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybuild.errors import VolumeError
from pybuild.image.config import rfc3339
from pybuild.store import Store
from pybuild.store.fsutil import atomic_write, dir_size, remove_tree
from pybuild.volumes import copyup, filters
from pybuild.volumes.names import anonymous_name, check_name
from pybuild.volumes.record import ANONYMOUS_LABEL, LOCAL, VolumeRecord, check_options

InUse = Callable[[str], list[str]]  # volume name -> the containers using it
META = "volume.json"
DATA = "_data"


def none_in_use(_name: str) -> list[str]:
    return []


@dataclass(frozen=True)
class PruneResult:
    names: tuple[str, ...]
    reclaimed: int  # bytes of the removed volumes' files


class VolumeStore:
    """Volumes of one store. ``in_use`` names the containers using a volume (none by default):
    removal refuses a used volume, prune and ``dangling=false`` count it as used."""

    def __init__(self, store: Store, in_use: InUse | None = None):
        self.store = store
        self.root = store.root.absolute() / "volumes"
        self.in_use: InUse = in_use or none_in_use

    def data_dir(self, name: str) -> Path:
        """The volume's ``_data``: its Mountpoint, what a container mounts."""
        return self.root / name / DATA

    def create(self, name: str | None = None, labels: Mapping[str, str] | None = None,
               driver: str = LOCAL, options: Mapping[str, str] | None = None) -> VolumeRecord:
        """A new volume, or the existing one of that name (as docker); no name (or "") makes an
        anonymous volume with a random name, labelled as docker 23+ labels them."""
        anonymous = not name  # docker's API takes "" as no name too
        name = anonymous_name() if not name else check_name(name)
        driver = driver or LOCAL
        options = dict(options or {})
        check_options(name, driver, options)
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        with self.store.lock():
            existing = self._read(name)
            if existing is not None:
                return existing
        record = VolumeRecord(name, rfc3339(int(time.time())), driver, labels, options,
                              anonymous)
        with self.store.writing():  # the lock order: writing, then lock
            staged = Path(tempfile.mkdtemp(dir=self._tmp(), prefix="vol-"))
            try:
                (staged / DATA).mkdir(mode=0o755)
                os.chmod(staged / DATA, 0o755)  # whatever the umask
                atomic_write(staged / META, record.to_json(), self.store.tmp)
                with self.store.lock():
                    existing = self._read(name)
                    if existing is not None:  # another process made it meanwhile
                        return existing
                    self.root.mkdir(mode=0o701, parents=True, exist_ok=True)
                    os.rename(staged, self.root / name)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
        return record

    def get(self, name: str) -> VolumeRecord:
        record = self._read(name)
        if record is None:
            raise VolumeError(f"No such volume: {name}")
        return record

    def list(self, filter_map: Mapping[str, Any] | None = None) -> list[VolumeRecord]:
        """Volumes sorted by name, kept by docker's ``volume ls`` filters (name, label,
        dangling, driver)."""
        wanted = filters.normalise(filter_map, filters.LIST_KEYS)
        return filters.select(self._all(), wanted, self.in_use)

    def inspect(self, name: str) -> dict[str, Any]:
        return self.get(name).inspect(self.data_dir(name))

    def remove(self, name: str, *, force: bool = False) -> None:
        """Remove a volume and its data. A used volume is refused, with or without ``force``
        (as docker); ``force`` only lets a missing one pass."""
        with self.store.lock():
            if self._read(name) is None:
                if force:
                    return
                raise VolumeError(f"No such volume: {name}")
            users = self.in_use(name)
            if users:
                raise VolumeError(f"remove {name}: volume is in use - [{', '.join(users)}]")
            remove_tree(self.root / name, self._tmp())

    def prune(self, filter_map: Mapping[str, Any] | None = None) -> PruneResult:
        """Remove unused volumes: only anonymous ones unless ``{"all": True}`` (docker 23+),
        kept by ``label`` / ``label!`` filters. The names removed and the bytes freed."""
        wanted = filters.normalise(filter_map, filters.PRUNE_KEYS)
        names, freed = [], 0
        with self.store.lock():
            for record in filters.prunable(self._all(), wanted, self.in_use):
                freed += dir_size(self.data_dir(record.name))
                remove_tree(self.root / record.name, self._tmp())
                names.append(record.name)
        return PruneResult(tuple(names), freed)

    def populate(self, name: str, source_dir: Path, *, nocopy: bool = False) -> bool:
        """Docker's copy-up from a plain directory (the mount path in a mounted rootfs)."""
        return self._populate(name, copyup.DirSource(Path(source_dir)), nocopy)

    def populate_from_layers(self, name: str, lowerdirs: Sequence[Path], path: str, *,
                             nocopy: bool = False) -> bool:
        """Docker's copy-up from an image's unpacked layers (bottom to top) at ``path``."""
        return self._populate(name, copyup.LayerSource(lowerdirs, path), nocopy)

    def _populate(self, name: str, source: copyup.Source, nocopy: bool) -> bool:
        """Copy the source into the volume if this is its first copy-up and ``_data`` is
        empty; True if something was copied. ``nocopy`` skips it and leaves the volume new.
        The copy is staged beside ``_data`` and moved in only once whole."""
        with self.store.lock():
            record = self.get(name)
            if nocopy or record.populated:
                return False
            volume_dir = self.root / name
            try:
                copied = self._copy_in(volume_dir, source)
            except OSError as err:  # the staged copy is gone; the volume is as it was
                where = f": {err.filename}" if err.filename else ""
                raise VolumeError(f"copy-up into volume {name}: {err.strerror}{where}") from None
            atomic_write(volume_dir / META, record.marked_populated().to_json(), self.store.tmp)
        return copied

    def _copy_in(self, volume_dir: Path, source: copyup.Source) -> bool:
        try:
            data_fd = os.open(volume_dir / DATA, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                              | os.O_CLOEXEC)
        except OSError as err:  # a symlink or file put in place of _data: never write there
            raise VolumeError(f"{volume_dir / DATA}: not a directory ({err.strerror})") from None
        try:
            if os.listdir(data_fd):
                return False
            for stale in volume_dir.glob(".copyup-*"):  # a copy a crash interrupted
                shutil.rmtree(stale, ignore_errors=True)
            staged = tempfile.mkdtemp(dir=volume_dir, prefix=".copyup-")
            try:
                top = copyup.copy_tree(source, Path(staged))
                if top is None:
                    return False
                staged_fd = os.open(staged, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                try:
                    for entry in os.listdir(staged_fd):
                        os.rename(entry, entry, src_dir_fd=staged_fd, dst_dir_fd=data_fd)
                finally:
                    os.close(staged_fd)
                copyup.apply_metadata(top, data_fd)  # the volume takes the image dir's owner
                return True
            finally:
                shutil.rmtree(staged, ignore_errors=True)
        finally:
            os.close(data_fd)

    def _read(self, name: str) -> VolumeRecord | None:
        try:
            check_name(name)
        except VolumeError:
            return None  # no volume can have such a name
        path = self.root / name / META
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return VolumeRecord.from_json(data, path)

    def _all(self) -> list[VolumeRecord]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        records = []
        for name in names:
            try:
                record = self._read(name)
            except VolumeError:  # unreadable metadata: skipped, as a broken image is
                continue
            if record is not None:
                records.append(record)
        return records

    def _tmp(self) -> Path:
        self.store.tmp.mkdir(parents=True, exist_ok=True)
        return self.store.tmp
