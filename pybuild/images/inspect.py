"""Docker's JSON shapes for ``inspect`` and the rows of ``history``, from store data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pybuild.image.config import ImageConfig
from pybuild.store.records import ImageRecord

ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class HistoryItem:
    id: str  # the image id on the top row, "<missing>" below (as docker shows pulled images)
    created: str
    created_by: str
    size: int
    comment: str
    empty_layer: bool
    tags: tuple[str, ...] = ()


def container_config(config: ImageConfig) -> dict[str, Any]:
    """The ``Config`` object of ``docker image inspect``."""
    c = config.config
    out: dict[str, Any] = {
        "Hostname": "", "Domainname": "", "User": c.user,
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
    }
    if c.exposed_ports:
        out["ExposedPorts"] = {p: {} for p in c.exposed_ports}
    out.update({
        "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": list(c.env) or None, "Cmd": _list(c.cmd),
    })
    if c.healthcheck is not None:
        out["Healthcheck"] = c.healthcheck.to_json()
    if c.args_escaped:
        out["ArgsEscaped"] = True
    out.update({
        "Image": "", "Volumes": {v: {} for v in c.volumes} or None,
        "WorkingDir": c.working_dir, "Entrypoint": _list(c.entrypoint),
        "OnBuild": list(c.on_build) or None, "Labels": dict(c.labels) or None,
    })
    if c.stop_signal:
        out["StopSignal"] = c.stop_signal
    if c.shell:
        out["Shell"] = list(c.shell)
    return out


def _list(value: tuple[str, ...] | None) -> list[str] | None:
    return None if value is None else list(value)


def inspect_data(record: ImageRecord, config: ImageConfig, tags: list[str],
                 digests: list[str]) -> dict[str, Any]:
    """One element of ``docker image inspect``'s list."""
    comment = config.extra.get("comment") or ""
    out: dict[str, Any] = {
        "Id": record.id, "RepoTags": tags, "RepoDigests": digests, "Parent": record.parent,
        "Comment": comment, "Created": config.created or record.created,
        "DockerVersion": config.extra.get("docker_version", ""), "Author": config.author,
        "Config": container_config(config), "Architecture": config.architecture,
    }
    if config.variant:
        out["Variant"] = config.variant
    out.update({
        "Os": config.os, "Size": record.size,
        "GraphDriver": {"Data": None, "Name": "overlay"},
        "RootFS": {"Type": "layers", "Layers": list(config.diff_ids)},
        "Metadata": {"LastTagTime": ZERO_TIME},
    })
    return out


def history_items(record: ImageRecord, config: ImageConfig,
                  tags: tuple[str, ...] = ()) -> list[HistoryItem]:
    """Newest first, as ``docker history`` lists them; sizes from the layers."""
    entries = list(config.history)
    sizes = [layer.size for layer in record.layers]
    if not entries:  # configs without history: one anonymous row per layer
        entries = [None] * len(sizes)  # type: ignore[list-item]
    rows = []
    layer = 0
    for entry in entries:
        empty = bool(entry and entry.empty_layer)
        size = 0 if empty or layer >= len(sizes) else sizes[layer]
        if not empty:
            layer += 1
        rows.append(HistoryItem("<missing>", entry.created if entry else "",
                                entry.created_by if entry else "", size,
                                entry.comment if entry else "", empty))
    rows.reverse()
    if rows:
        top = rows[0]
        rows[0] = HistoryItem(record.id, top.created, top.created_by, top.size, top.comment,
                              top.empty_layer, tags)
    return rows
