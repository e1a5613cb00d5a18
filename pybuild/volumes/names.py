"""Volume names: docker's rule for the local driver, and random names for anonymous volumes."""

from __future__ import annotations

import re

from pybuild.errors import VolumeError
from pybuild.randomid import hex_id

# docker's validVolumeName: at least two characters, so "a" is refused as docker refuses it
_VALID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
VALID_PATTERN = "[a-zA-Z0-9][a-zA-Z0-9_.-]"  # as docker's message spells the rule
MAX_LENGTH = 255  # the name is the volume's directory name


def check_name(name: str) -> str:
    """``name`` if it is a valid local volume name, else a one-line VolumeError naming it."""
    if isinstance(name, str) and len(name) == 1 and _VALID.fullmatch(name + "0"):
        raise VolumeError(f"create {name}: a volume name has at least 2 characters")
    if not isinstance(name, str) or _VALID.fullmatch(name) is None:
        hint = "; to bind a host directory, give an absolute path" if "/" in str(name) else ""
        raise VolumeError(f"create {name}: {name!r} includes invalid characters for a local "
                          f"volume name, only {VALID_PATTERN!r} are allowed{hint}")
    if len(name) > MAX_LENGTH:
        raise VolumeError(f"create {name[:20]}...: a volume name has at most {MAX_LENGTH} "
                          f"characters (a directory name), this one has {len(name)}")
    return name


def anonymous_name() -> str:
    """A fresh name for an anonymous volume: 64 hex digits, as docker gives them."""
    return hex_id()
