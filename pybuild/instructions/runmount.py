"""``RUN --mount=...``: the CSV mount spec, checked as BuildKit checks it."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from pybuild.errors import InstructionError
from pybuild.instructions.base import with_suggestion

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING = ("shared", "private", "locked")
_KEYS = ("type", "from", "source", "src", "target", "dst", "destination", "readonly", "ro",
         "readwrite", "rw", "id", "sharing", "required", "mode", "uid", "gid", "size", "env")
_ALIASES = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly",
            "rw": "readwrite"}
_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


@dataclass(frozen=True)
class Mount:
    """One ``--mount``; values are unexpanded, as BuildKit expands them at build time."""

    type: str = "bind"
    source: str | None = None
    target: str | None = None
    from_: str | None = None
    readonly: bool = True  # BuildKit's default: read-only except cache and tmpfs
    id: str | None = None
    sharing: str | None = None
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: str | None = None  # tmpfs size, kept as written (e.g. "64m")
    env: str | None = None  # secret exposed as an environment variable


def _parse_bool(key: str, value: str) -> bool:
    try:
        return _BOOLS[value.lower()]
    except KeyError:
        raise InstructionError(f"invalid value for {key}: {value}") from None


def _parse_uint(key: str, value: str, base: int) -> int:
    try:
        number = int(value, base)
    except ValueError:
        number = -1
    if number < 0 or number >= 2**32 or not value.isalnum():
        raise InstructionError(f"invalid value {value} for {key}")
    return number


def _fields(spec: str) -> list[str]:
    try:
        rows = list(csv.reader([spec], strict=True))
    except csv.Error as err:
        raise InstructionError(f"failed to parse csv mounts: {err}") from None
    return rows[0] if rows else []


def parse_mount(spec: str) -> Mount:
    """A Mount from one ``--mount`` value; InstructionError (without a line) when wrong."""
    values: dict[str, object] = {}
    ro_given = False
    for item in _fields(spec):
        key, eq, value = item.partition("=")
        key = _ALIASES.get(key.lower(), key.lower())
        if not eq:
            if key not in ("readonly", "readwrite", "required"):
                raise InstructionError(f"invalid field '{item}' must be a key=value pair")
            value = "true"
        ro_given |= key in ("readonly", "readwrite")
        _set(values, key, value, item)
    mount_type = str(values.pop("type", "bind"))
    if "readwrite" in values:
        values["readonly"] = not values.pop("readwrite")
    if not ro_given:
        values["readonly"] = mount_type not in ("cache", "tmpfs")
    _validate(mount_type, values)
    values["type"] = mount_type
    return Mount(**values)


def _set(values: dict[str, object], key: str, value: str, item: str) -> None:
    if key == "type":
        if value.lower() not in MOUNT_TYPES:
            msg = with_suggestion(f'unsupported mount type "{value}"', value, MOUNT_TYPES)
            raise InstructionError(msg)
        values["type"] = value.lower()
    elif key == "from":
        if re.search(r"\$.", value):
            raise InstructionError(
                "'from' doesn't support variable expansion, define alias stage instead")
        values["from_"] = value
    elif key in ("source", "target", "id", "size", "env"):
        values[key] = value
    elif key in ("readonly", "readwrite", "required"):
        values[key] = _parse_bool(key, value)
    elif key == "sharing":
        if value.lower() not in SHARING:
            raise InstructionError(f'unsupported sharing value "{value}"')
        values["sharing"] = value.lower()
    elif key in ("mode", "uid", "gid"):
        values[key] = _parse_uint(key, value, 8 if key == "mode" else 10)
    else:
        msg = with_suggestion(f"unexpected key '{key}' in '{item}'", key, _KEYS)
        raise InstructionError(msg)


def _validate(kind: str, v: dict[str, object]) -> None:
    if v.get("required") and kind not in ("secret", "ssh"):
        raise InstructionError(f"unexpected key 'required' for mount type '{kind}'")
    for key in ("mode", "uid", "gid"):
        if key in v and kind not in ("secret", "ssh", "cache"):
            raise InstructionError(f'{key} not allowed for "{kind}" type mounts')
    if "sharing" in v and kind != "cache":
        raise InstructionError(f"invalid cache sharing set for {kind} mount")
    if "size" in v and kind != "tmpfs":
        raise InstructionError(f"unexpected key 'size' for mount type '{kind}'")
    if "env" in v and kind != "secret":
        raise InstructionError(f"unexpected key 'env' for mount type '{kind}'")
    if kind == "secret":
        if "from_" in v:
            raise InstructionError("secret mount should not have a from")
        if not any(k in v for k in ("source", "target", "id", "env")):
            raise InstructionError("invalid secret mount. one of source, target required")
        if "source" in v and "id" in v:
            raise InstructionError("both source and id can't be set")
