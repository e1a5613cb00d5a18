"""``client.volumes`` in docker-py's shape: ``VolumeCollection`` and ``Volume``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pybuild.volumes.service import InUse, VolumeStore, none_in_use

if TYPE_CHECKING:
    from pybuild.client import Client


class Volume:
    """One volume as docker-py models it: ``name``, ``id`` (the name), ``attrs`` (the inspect
    dict). Not frozen, as docker-py's is not: ``reload()`` refreshes ``attrs`` in place."""

    def __init__(self, collection: VolumeCollection, attrs: dict[str, Any]):
        self.collection = collection
        self.attrs = attrs

    @property
    def name(self) -> str:
        return str(self.attrs["Name"])

    @property
    def id(self) -> str:
        return self.name

    @property
    def mountpoint(self) -> Path:
        return Path(self.attrs["Mountpoint"])

    def remove(self, force: bool = False) -> None:
        self.collection.remove(self.name, force=force)

    def reload(self) -> None:
        self.attrs = self.collection.get(self.name).attrs

    def __repr__(self) -> str:
        return f"<Volume: {self.name[:12]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Volume) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class VolumeCollection:
    """``client.volumes``: create, get, list, prune, remove, and the copy-up containers use.

    Which containers use a volume comes from ``in_use`` when set, else from
    ``client.containers.using_volume(name) -> list[str]`` when the client has containers,
    else none are."""

    def __init__(self, client: Client, in_use: InUse | None = None):
        self._client = client
        self.in_use = in_use

    @property
    def service(self) -> VolumeStore:
        return VolumeStore(self._client.store, self._users)

    def create(self, name: str | None = None, driver: str | None = None,
               driver_opts: Mapping[str, str] | None = None,
               labels: Mapping[str, str] | None = None) -> Volume:
        record = self.service.create(name, labels, driver or "local", driver_opts)
        return self.get(record.name)

    def get(self, name: str) -> Volume:
        return Volume(self, self.service.inspect(name))

    def list(self, filters: Mapping[str, Any] | None = None) -> list[Volume]:
        service = self.service
        return [Volume(self, r.inspect(service.data_dir(r.name))) for r in service.list(filters)]

    def remove(self, name: str, force: bool = False) -> None:
        self.service.remove(name, force=force)

    def prune(self, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """docker-py's result: ``{"VolumesDeleted": [names], "SpaceReclaimed": bytes}``.
        Only anonymous volumes go unless ``filters={"all": True}`` (docker 23+)."""
        result = self.service.prune(filters)
        return {"VolumesDeleted": list(result.names), "SpaceReclaimed": result.reclaimed}

    def populate(self, name: str, source_dir: str | Path, *, nocopy: bool = False) -> bool:
        """Docker's copy-up into a new, empty volume from a directory (a mounted rootfs's
        mount path); True when something was copied."""
        return self.service.populate(name, Path(source_dir), nocopy=nocopy)

    def populate_from_layers(self, name: str, lowerdirs: Sequence[Path], path: str, *,
                             nocopy: bool = False) -> bool:
        """Copy-up from an image's unpacked layers (bottom to top) at the image path ``path``."""
        return self.service.populate_from_layers(name, lowerdirs, path, nocopy=nocopy)

    def _users(self, name: str) -> list[str]:
        if self.in_use is not None:
            return self.in_use(name)
        containers = getattr(self._client, "containers", None)
        using = getattr(containers, "using_volume", None)
        return list(using(name)) if callable(using) else none_in_use(name)
