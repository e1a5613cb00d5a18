"""Entry names inside an archive: normalised, and refused when they could reach outside it.

pybuild never extracts an archive by its names (entries go to content-addressed temp files),
but a name that climbs out, a link that points outside, or a device says the archive was made
to attack naive extractors; such archives are refused with one line naming the entry.
"""

from __future__ import annotations

import posixpath
import tarfile

from pybuild.errors import UnsafePathError


def normalize(name: str, *, what: str = "archive entry") -> str:
    """``./a//b/`` -> ``a/b``; UnsafePathError for absolute names and ``..``."""
    if name.startswith("/"):
        raise UnsafePathError(f"refusing {what} {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"refusing {what} {name!r}: '..' leads outside the archive")
    if any("\0" in p for p in parts):
        raise UnsafePathError(f"refusing {what} {name!r}: NUL in name")
    return "/".join(parts)


def link_target(name: str, target: str, *, hard: bool) -> str:
    """Where a link entry points, as an archive name; refused when it leaves the archive."""
    kind = "hard link" if hard else "symlink"
    if target.startswith("/"):
        raise UnsafePathError(f"refusing {kind} {name!r} -> {target!r}: absolute target")
    joined = target if hard else posixpath.join(posixpath.dirname(name), target)
    resolved = posixpath.normpath(joined)
    if resolved == ".." or resolved.startswith("../") or resolved == ".":
        raise UnsafePathError(f"refusing {kind} {name!r} -> {target!r}: points outside the archive")
    return normalize(resolved)


def member_kind(member: tarfile.TarInfo) -> str:
    """"file", "dir" or "link"; UnsafePathError for devices, fifos and anything stranger."""
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym() or member.islnk():
        return "link"
    kind = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
            tarfile.FIFOTYPE: "fifo"}.get(member.type, f"entry of type {member.type!r}")
    raise UnsafePathError(f"refusing {kind} {member.name!r} in the archive")
