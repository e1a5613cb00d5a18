"""Build arguments BuildKit defines without an ARG line."""

from __future__ import annotations

# BuildKit's automatic platform ARGs, for a linux/amd64 build on a linux/amd64 host. They are
# in the global scope (usable in FROM) and take these values when a stage redeclares them.
PLATFORM_ARGS: dict[str, str] = {
    "BUILDPLATFORM": "linux/amd64",
    "BUILDOS": "linux",
    "BUILDARCH": "amd64",
    "BUILDVARIANT": "",
    "TARGETPLATFORM": "linux/amd64",
    "TARGETOS": "linux",
    "TARGETARCH": "amd64",
    "TARGETVARIANT": "",
}

# Accepted as --build-arg without a declaration, never reported unused, passed to RUN only.
PROXY_ARGS: frozenset[str] = frozenset(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
)


def is_builtin(name: str) -> bool:
    """True for arguments pybuild knows without a declaration (platform, proxy, BUILDKIT_*)."""
    return name in PLATFORM_ARGS or name in PROXY_ARGS or name.startswith("BUILDKIT_")
