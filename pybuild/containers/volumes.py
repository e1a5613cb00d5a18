"""A container's volumes: made (and filled from the image's content at the mount path,
docker's copy-up) when the container is created, mounted from their data dirs, and the
anonymous ones removed with the container when asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pybuild.containers.model import ContainerConfig, MountSpec
from pybuild.store import Store


def prepare(store: Store, mounts: Sequence[MountSpec], layers: Sequence[Path]) -> None:
    """Make each volume the container names that does not exist yet and copy the image's
    content at its mount path in, once (``nocopy`` skips that); ``layers`` are the image's
    unpacked layers, bottom to top."""
    if not any(m.type == "volume" for m in mounts):
        return  # nor load the volume modules
    from pybuild.volumes.record import ANONYMOUS_LABEL
    from pybuild.volumes.service import VolumeStore

    volumes = VolumeStore(store)
    for m in mounts:
        if m.type != "volume":
            continue
        volumes.create(m.source, labels={ANONYMOUS_LABEL: ""} if m.anonymous else None)
        volumes.populate_from_layers(m.source, list(layers), m.destination,
                                     nocopy="nocopy" in m.options)


def volume_path(store: Store, config: ContainerConfig) -> Callable[[MountSpec], Path]:
    """Where each volume mount's data is; the volume modules load on the first call."""
    def path(mount: MountSpec) -> Path:
        from pybuild.volumes.service import VolumeStore

        volumes = VolumeStore(store)
        volumes.get(mount.source)  # one clear line when it was removed meanwhile
        return volumes.data_dir(mount.source)

    return path


def remove_anonymous(store: Store, config: ContainerConfig) -> None:
    if not any(m.type == "volume" and m.anonymous for m in config.mounts):
        return
    from pybuild.volumes.service import VolumeStore

    volumes = VolumeStore(store)
    for mount in config.mounts:
        if mount.type == "volume" and mount.anonymous:
            volumes.remove(mount.source, force=True)
