"""How to reach a registry host: scheme, certificate checks, client certificates.

Skeleton: localhost and 127.0.0.1 over plain http, everything else https verified against
the system's CAs. (certs.d, insecure-registries: to do.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    host: str  # as in a reference: name[:port]
    schemes: tuple[str, ...]  # tried in order, "https" and/or "http"
    verify: bool | str = True  # requests' verify: False, True, or a CA bundle path
    cert: tuple[str, str] | None = None  # (client cert, key) for mutual TLS

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://{self.host}{path}"


def endpoint_for(host: str) -> Endpoint:
    """How to connect to ``host`` (daemon.json's insecure-registries, certs.d)."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    if name in ("localhost", "127.0.0.1", "[::1]"):
        return Endpoint(host, ("http",))
    return Endpoint(host, ("https",))
