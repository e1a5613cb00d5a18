"""docker-py's keyword arguments (and the CLI's values) as ``CreateOptions`` fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pybuild.containers.model import MountSpec, RestartPolicy
from pybuild.containers.mountspec import parse_volume
from pybuild.errors import UsageError


def restart_policy(value: str | Mapping[str, Any] | None) -> RestartPolicy:
    """``no``, ``always``, ``unless-stopped``, ``on-failure[:N]``, or docker-py's dict."""
    if value is None:
        return RestartPolicy()
    if isinstance(value, Mapping):
        name = str(value.get("Name", "no")) or "no"
        count = int(value.get("MaximumRetryCount", 0) or 0)
    else:
        name, _, count_text = str(value).partition(":")
        if count_text and not count_text.isdigit():
            raise UsageError(f"invalid restart policy {value!r}: maximum retry count must be "
                             "a number")
        count = int(count_text or 0)
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise UsageError(f"invalid restart policy {value!r}: use no, always, on-failure[:N] "
                         "or unless-stopped")
    if count and name != "on-failure":
        raise UsageError(f"invalid restart policy {value!r}: maximum retry count applies to "
                         "on-failure only")
    return RestartPolicy(name, count)


def volumes(value: Mapping[str, Any] | Sequence[str] | None,
            cwd: str | None = None) -> tuple[MountSpec, ...]:
    """docker-py's ``volumes``: ["src:/dst:ro", ...] or {src: {"bind": dst, "mode": "ro"}}."""
    if not value:
        return ()
    if isinstance(value, Mapping):
        items = [f"{src}:{spec['bind']}:{spec.get('mode', 'rw')}" if isinstance(spec, Mapping)
                 else f"{src}:{spec}" for src, spec in value.items()]
    else:
        items = list(value)
    return tuple(parse_volume(item, cwd) for item in items)


def environment(value: Mapping[str, str] | Sequence[str] | None) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, Mapping):
        return tuple(f"{k}={v}" for k, v in value.items())
    return tuple(value)


def resources(**flags: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """docker's limit flags as the sandbox's Resources fields (those set), checked with
    docker's messages, and docker's warnings for the caller to show."""
    given = {k: v for k, v in flags.items() if v is not None and v is not False}
    if not given:
        return {}, ()
    from pybuild.runner.limits import parse_limits
    from pybuild.runner.spec import Resources

    res, warnings = parse_limits(**given)
    defaults = Resources()
    return {f.name: getattr(res, f.name) for f in dataclasses.fields(res)
            if getattr(res, f.name) != getattr(defaults, f.name)}, tuple(warnings)
