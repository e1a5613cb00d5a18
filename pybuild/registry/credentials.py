"""Registry credentials in docker's config.json shape.

Skeleton: no credentials anywhere. (config.json, credHelpers, credsStore: to do.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # a refresh token (config.json's identitytoken), instead of a password


def lookup(host: str) -> Credentials | None:
    """The credentials stored for ``host`` (docker.io's under https://index.docker.io/v1/)."""
    return None
