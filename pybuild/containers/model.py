"""What a container is (``ContainerConfig``, fixed at create) and where it is (``State``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

STATUSES = ("created", "running", "restarting", "exited", "dead", "paused", "removing")


@dataclass(frozen=True)
class MountSpec:
    """One mount: a bind (``source`` a host path), a named or anonymous volume (``source``
    its name) or a tmpfs; ``destination`` in the container."""

    type: str  # bind | volume | tmpfs
    source: str
    destination: str
    readonly: bool = False
    options: tuple[str, ...] = ()
    anonymous: bool = False


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"  # no | always | on-failure | unless-stopped
    maximum_retry_count: int = 0

    def should_restart(self, exit_code: int, restarts: int) -> bool:
        if self.name in ("always", "unless-stopped"):
            return True
        if self.name == "on-failure":
            limit = self.maximum_retry_count
            return exit_code != 0 and (limit == 0 or restarts < limit)
        return False


@dataclass(frozen=True)
class ContainerConfig:
    id: str
    name: str
    image: str  # as the user named it
    image_id: str
    created: str
    args: tuple[str, ...]  # entrypoint + cmd, what runs
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = "/"
    user: str = ""
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    hostname: str = ""
    domainname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    open_stdin: bool = False
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    auto_remove: bool = False
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    network_mode: str = "none"
    # bridge and user networks: {"name", "aliases", "ip"} each (networking.create_fields);
    # published ports: network.ports.PortBinding fields, host port 0 picked at each start
    networks: tuple[dict[str, Any], ...] = ()
    ports: tuple[dict[str, Any], ...] = ()
    mounts: tuple[MountSpec, ...] = ()
    read_only: bool = False
    capabilities: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privileges: bool = True
    seccomp: str | None = "default"
    resources: dict[str, Any] = field(default_factory=dict)  # runner Resources fields
    ulimits: tuple[tuple[str, int, int], ...] = ()
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    init: bool = False
    runtime: str = "pybuild"  # pybuild's own sandbox, or "runc" for the same bundle
    healthcheck: dict[str, Any] | None = None  # health.merged(): test, interval, ... (s)
    devices: tuple[dict[str, Any], ...] = ()  # runner.spec.Device fields, from --device
    volumes_from: tuple[str, ...] = ()
    lowerdirs: tuple[str, ...] = ()  # the image's unpacked layers, top first

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ContainerConfig:
        raw = json.loads(data)
        names = {f.name for f in fields(cls)}
        raw = {k: v for k, v in raw.items() if k in names}
        raw["restart"] = RestartPolicy(**raw.get("restart", {}))
        raw["mounts"] = tuple(MountSpec(**{**m, "options": tuple(m.get("options", ()))})
                              for m in raw.get("mounts", ()))
        raw["ulimits"] = tuple(tuple(u) for u in raw.get("ulimits", ()))
        raw["devices"] = tuple(raw.get("devices", ()))
        raw["networks"] = tuple(raw.get("networks", ()))
        raw["ports"] = tuple(raw.get("ports", ()))
        for key in ("args", "entrypoint", "cmd", "env", "additional_gids", "capabilities",
                    "extra_hosts", "dns", "dns_search", "volumes_from", "lowerdirs"):
            raw[key] = tuple(raw.get(key, ()))
        return cls(**raw)


@dataclass(frozen=True)
class State:
    status: str = "created"
    pid: int = 0
    monitor_pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    restart_count: int = 0

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> State:
        raw = json.loads(data)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def update(self, **changes: Any) -> State:
        return replace(self, **changes)

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")
