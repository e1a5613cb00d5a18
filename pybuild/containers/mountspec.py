"""docker's mount flags as ``MountSpec``s: ``-v``, ``--mount``, ``--tmpfs``, and the anonymous
volumes an image's VOLUME paths get when nothing else is mounted there."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Sequence

from pybuild.containers.model import MountSpec
from pybuild.errors import UsageError
from pybuild.randomid import hex_id

_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_V_OPTIONS = {"ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave",
              "private", "rprivate", "delegated", "cached", "consistent"}


def _destination(path: str, flag: str) -> str:
    if not path.startswith("/"):
        raise UsageError(f"invalid {flag} target {path!r}: must be an absolute path")
    clean = posixpath.normpath(path)
    if clean == "/":
        raise UsageError(f"invalid {flag} target {path!r}: cannot be '/'")
    return clean


def parse_volume(text: str, cwd: str | None = None) -> MountSpec:
    """``-v``: ``NAME:/path``, ``/host:/path`` or ``/path`` (anonymous), then ``:ro`` etc."""
    parts = text.split(":")
    options: list[str] = []
    if len(parts) >= 2 and set(parts[-1].split(",")) <= _V_OPTIONS and parts[-1]:
        options = parts.pop().split(",")
    if len(parts) == 1:
        return MountSpec("volume", hex_id(), _destination(parts[0], "-v"),
                         "ro" in options, tuple(o for o in options if o == "nocopy"),
                         anonymous=True)
    if len(parts) != 2 or not parts[0]:
        raise UsageError(f"invalid volume specification: {text!r}")
    source, dest = parts
    readonly = "ro" in options
    if source.startswith((".", "/", "~")):
        if source.startswith("~"):
            source = os.path.expanduser(source)
        host = os.path.abspath(os.path.join(cwd or os.getcwd(), source))
        return MountSpec("bind", host, _destination(dest, "-v"), readonly)
    if not _VOLUME_NAME.fullmatch(source):
        raise UsageError(f'invalid volume name "{source}" in {text!r}: only '
                         "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return MountSpec("volume", source, _destination(dest, "-v"), readonly,
                     tuple(o for o in options if o == "nocopy"))


def parse_mount(text: str, cwd: str | None = None) -> MountSpec:
    """``--mount type=bind|volume|tmpfs,source=...,target=...[,readonly]``."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro") and not sep:
            value = "true"
        fields[key] = value
    kind = fields.pop("type", "volume")
    source = fields.pop("source", fields.pop("src", ""))
    target = fields.pop("target", fields.pop("destination", fields.pop("dst", "")))
    readonly = fields.pop("readonly", fields.pop("ro", "false")).lower() in ("true", "1", "")
    if not target:
        raise UsageError(f"invalid --mount {text!r}: target is required")
    dest = _destination(target, "--mount")
    if kind == "bind":
        if not source:
            raise UsageError(f"invalid --mount {text!r}: a bind needs a source")
        host = os.path.abspath(os.path.join(cwd or os.getcwd(), source))
        if not os.path.exists(host):
            raise UsageError(f"invalid mount config for type \"bind\": bind source path does "
                             f"not exist: {host}")
        return MountSpec("bind", host, dest, readonly, (), False)
    if kind == "volume":
        options = ("nocopy",) if fields.pop("volume-nocopy", "false") in ("true", "") else ()
        if not source:
            return MountSpec("volume", hex_id(), dest, readonly, options, True)
        if not _VOLUME_NAME.fullmatch(source):
            raise UsageError(f'invalid volume name "{source}" in --mount {text!r}')
        return MountSpec("volume", source, dest, readonly, options)
    if kind == "tmpfs":
        options = []
        if "tmpfs-size" in fields:
            options.append(f"size={fields.pop('tmpfs-size')}")
        if "tmpfs-mode" in fields:
            options.append(f"mode={int(fields.pop('tmpfs-mode'), 8):o}")
        return MountSpec("tmpfs", "tmpfs", dest, readonly, tuple(options))
    raise UsageError(f"invalid --mount {text!r}: unknown type {kind!r}")


def parse_tmpfs(text: str) -> MountSpec:
    """``--tmpfs /path[:size=64m,mode=1777]``."""
    path, _, options = text.partition(":")
    opts = tuple(o for o in options.split(",") if o)
    return MountSpec("tmpfs", "tmpfs", _destination(path, "--tmpfs"), "ro" in opts,
                     tuple(o for o in opts if o not in ("ro", "rw")))



def anonymous_volumes(paths: Iterable[str], given: Sequence[MountSpec]) -> list[MountSpec]:
    """A new anonymous volume for each image VOLUME path nothing else is mounted on."""
    taken = {m.destination for m in given}
    out = []
    for path in paths:
        dest = posixpath.normpath(path)
        if dest not in taken:
            out.append(MountSpec("volume", hex_id(), dest, anonymous=True))
            taken.add(dest)
    return out
