"""``--change`` for ``import``: the Dockerfile instructions docker accepts there, applied to a
container config. Deliberately simple: one instruction per string, no variable expansion."""

from __future__ import annotations

import json
import posixpath
import shlex
from dataclasses import replace

from pybuild.errors import UsageError
from pybuild.image.config import ContainerConfig

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR")


def apply_changes(config: ContainerConfig, changes: list[str] | tuple[str, ...]) -> ContainerConfig:
    for change in changes:
        config = apply_change(config, change)
    return config


def apply_change(config: ContainerConfig, change: str) -> ContainerConfig:
    keyword, _, rest = change.strip().partition(" ")
    keyword, rest = keyword.upper(), rest.strip()
    if keyword not in ALLOWED:
        raise UsageError(f"{keyword or change!r} is not a valid change command "
                         f"(allowed: {', '.join(ALLOWED)})")
    if not rest:
        raise UsageError(f"{keyword} requires at least one argument")
    if keyword in ("CMD", "ENTRYPOINT"):
        argv = _json_list(rest) or ("/bin/sh", "-c", rest)
        return replace(config, **{keyword.lower(): tuple(argv)})
    if keyword == "ENV":
        for key, value in _pairs(rest, keyword):
            config = config.with_env(key, value)
        return config
    if keyword == "LABEL":
        return replace(config, labels={**config.labels, **dict(_pairs(rest, keyword))})
    if keyword == "EXPOSE":
        ports = set(config.exposed_ports) | {p for w in rest.split() for p in _ports(w)}
        return replace(config, exposed_ports=tuple(sorted(ports)))
    if keyword == "VOLUME":
        vols = _json_list(rest) or rest.split()
        return replace(config, volumes=tuple(sorted(set(config.volumes) | set(vols))))
    if keyword == "ONBUILD":
        return replace(config, on_build=(*config.on_build, rest))
    if keyword == "USER":
        return replace(config, user=rest)
    return replace(config, working_dir=posixpath.normpath(
        posixpath.join(config.working_dir or "/", rest)))


def _json_list(text: str) -> list[str] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _pairs(text: str, keyword: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise UsageError(f"{keyword}: {err}") from err
    if words and "=" not in words[0]:
        # the legacy one-pair form: ENV KEY value with spaces
        key, _, value = text.partition(" ")
        if not value.strip():
            raise UsageError(f"{keyword} {key}: needs a value (KEY VALUE or KEY=VALUE)")
        return [(key, " ".join(shlex.split(value.strip())))]
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise UsageError(f"{keyword} needs KEY=VALUE pairs, got {word!r}")
        pairs.append((key, value))
    return pairs


def _ports(word: str) -> list[str]:
    port, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    low, _, high = port.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise UsageError(f"invalid port {word!r}") from None
    if not 0 < first <= last <= 65535 or proto not in ("tcp", "udp", "sctp"):
        raise UsageError(f"invalid port {word!r}")
    return [f"{p}/{proto}" for p in range(first, last + 1)]
