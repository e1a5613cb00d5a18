"""The image config (OCI image-spec config.md, docker image spec v1.2) as typed frozen data.

Read side: ``ImageConfig.from_json`` accepts what docker, BuildKit and umoci write and keeps
unknown top-level fields in ``extra``. Write side: ``to_json`` gives canonical JSON, with empty
fields left out as docker's ``omitempty`` does, so one config gives one digest.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

from pybuild.errors import ImageError
from pybuild.image.canonical import canonical_json

_KNOWN = {"created", "author", "architecture", "os", "variant", "config", "rootfs", "history"}

# The PATH a Linux container gets when its image sets none (BuildKit's and runc's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class HealthConfig:
    test: tuple[str, ...] = ()
    interval: int = 0  # nanoseconds, as docker stores them
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (("Interval", self.interval), ("Timeout", self.timeout),
                           ("StartPeriod", self.start_period),
                           ("StartInterval", self.start_interval), ("Retries", self.retries)):
            if value:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HealthConfig:
        return cls(tuple(data.get("Test") or ()), int(data.get("Interval") or 0),
                   int(data.get("Timeout") or 0), int(data.get("StartPeriod") or 0),
                   int(data.get("StartInterval") or 0), int(data.get("Retries") or 0))


@dataclass(frozen=True)
class ContainerConfig:
    """The ``config`` object: what a container started from the image gets by default."""

    user: str = ""
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    volumes: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    on_build: tuple[str, ...] = ()
    healthcheck: HealthConfig | None = None
    stop_signal: str = ""
    shell: tuple[str, ...] = ()
    args_escaped: bool = False

    def env_dict(self) -> dict[str, str]:
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in self.env)

    def with_env(self, key: str, value: str) -> ContainerConfig:
        """Set one variable, keeping its position when it exists (as docker does)."""
        items = list(self.env)
        for i, item in enumerate(items):
            if item.split("=", 1)[0] == key:
                items[i] = f"{key}={value}"
                break
        else:
            items.append(f"{key}={value}")
        return replace(self, env=tuple(items))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put(out, "User", self.user)
        _put(out, "ExposedPorts", {port: {} for port in sorted(self.exposed_ports)})
        _put(out, "Env", list(self.env))
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        _put(out, "Volumes", {vol: {} for vol in sorted(self.volumes)})
        _put(out, "WorkingDir", self.working_dir)
        _put(out, "Labels", dict(self.labels))
        _put(out, "OnBuild", list(self.on_build))
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_json()
        _put(out, "StopSignal", self.stop_signal)
        _put(out, "Shell", list(self.shell))
        if self.args_escaped:
            out["ArgsEscaped"] = True
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ContainerConfig:
        data = data or {}
        health = data.get("Healthcheck")
        return cls(
            user=data.get("User") or "",
            env=tuple(data.get("Env") or ()),
            cmd=_opt_tuple(data.get("Cmd")),
            entrypoint=_opt_tuple(data.get("Entrypoint")),
            working_dir=data.get("WorkingDir") or "",
            exposed_ports=tuple(sorted(data.get("ExposedPorts") or {})),
            volumes=tuple(sorted(data.get("Volumes") or {})),
            labels=dict(data.get("Labels") or {}),
            on_build=tuple(data.get("OnBuild") or ()),
            healthcheck=HealthConfig.from_json(health) if health else None,
            stop_signal=data.get("StopSignal") or "",
            shell=tuple(data.get("Shell") or ()),
            args_escaped=bool(data.get("ArgsEscaped")),
        )


@dataclass(frozen=True)
class HistoryEntry:
    created: str = ""
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("created", "created_by", "author", "comment"):
            _put(out, key, getattr(self, key))
        if self.empty_layer:
            out["empty_layer"] = True
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryEntry:
        return cls(data.get("created") or "", data.get("created_by") or "",
                   data.get("author") or "", data.get("comment") or "",
                   bool(data.get("empty_layer")))


@dataclass(frozen=True)
class ImageConfig:
    architecture: str = "amd64"
    os: str = "linux"
    variant: str = ""
    created: str = ""
    author: str = ""
    config: ContainerConfig = field(default_factory=ContainerConfig)
    diff_ids: tuple[str, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(architecture=self.architecture, os=self.os,
                   config=self.config.to_json(),
                   rootfs={"type": "layers", "diff_ids": list(self.diff_ids)})
        for key in ("variant", "created", "author"):
            _put(out, key, getattr(self, key))
        _put(out, "history", [entry.to_json() for entry in self.history])
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageConfig:
        if not isinstance(data, dict):
            raise ImageError("image config is not a JSON object")
        rootfs = data.get("rootfs") or {}
        return cls(
            architecture=data.get("architecture") or "",
            os=data.get("os") or "",
            variant=data.get("variant") or "",
            created=data.get("created") or "",
            author=data.get("author") or "",
            config=ContainerConfig.from_json(data.get("config")),
            diff_ids=tuple(rootfs.get("diff_ids") or ()),
            history=tuple(HistoryEntry.from_json(h) for h in data.get("history") or ()),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> ImageConfig:
        try:
            return cls.from_json(json.loads(raw))
        except (ValueError, TypeError, AttributeError) as err:
            raise ImageError(f"malformed image config: {err}") from err


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value:
        out[key] = value


def _opt_tuple(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):  # docker accepted a bare string for Cmd in old configs
        return (value,)
    return tuple(value)


def rfc3339(epoch: float) -> str:
    """Docker's created format: UTC, seconds, nanoseconds only when non-zero."""
    seconds = int(epoch)
    nanos = round((epoch - seconds) * 1e9)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{base}.{nanos:09d}".rstrip("0") + "Z" if nanos else base + "Z"


def created_now() -> str:
    """Now, or ``SOURCE_DATE_EPOCH`` when set, so reproducible builds get one digest."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return rfc3339(int(epoch))
    return rfc3339(time.time())


def parse_rfc3339(text: str) -> float | None:
    """Seconds since the epoch for a config's created field, or None if it is unreadable."""
    import datetime as dt

    if not text:
        return None
    main, _, frac = text.rstrip("Z").partition(".")
    offset = ""
    for sign in ("+", "-"):
        if sign in frac:
            frac, offset = frac.split(sign, 1)[0], sign + frac.split(sign, 1)[1]
    if not frac and ("+" in main[10:] or main[10:].count("-")):
        pos = max(main.rfind("+"), main.rfind("-"))
        main, offset = main[:pos], main[pos:]
    try:
        stamp = dt.datetime.fromisoformat(main + (offset or "+00:00"))
    except ValueError:
        return None
    return stamp.timestamp() + (float("0." + frac[:9]) if frac.isdigit() else 0.0)
