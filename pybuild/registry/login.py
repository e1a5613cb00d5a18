"""``pybuild login``/``logout``: check credentials against a registry, keep or forget them.

A login is docker's: ``GET /v2/`` through whatever challenge the registry makes (Basic, or a
Bearer token asked for with no scope), and only when that succeeds are the credentials
stored. A token server that hands out a refresh token on login (``offline_token``) has it
stored as the identity token instead of the password, as docker does.
"""

from __future__ import annotations

from pathlib import Path

from pybuild.errors import RegistryError
from pybuild.registry import credentials
from pybuild.registry.auth import Authorizer
from pybuild.registry.credentials import Credentials

DOCKER_HUB_API = "registry-1.docker.io"
SUCCEEDED = "Login Succeeded"


def server_host(registry: str | None) -> str:
    """The host a login argument names: ``https://HOST/v1/`` -> ``HOST``; none, or any of
    docker.io's names, is ``docker.io``."""
    host = credentials.hostname(registry or "docker.io")
    if not host:
        raise RegistryError(f"invalid registry {registry!r}")
    return host


def login(username: str, password: str, registry: str | None = None) -> str:
    """Check ``username``/``password`` against ``registry`` (docker.io when None) and store
    them; the registry's status line."""
    host = server_host(registry)
    if not username:
        raise RegistryError(f"{host}: a username is required")
    if not password:
        raise RegistryError(f"{host}: a password is required")
    given = Credentials(username, password)
    refresh = check(host, given, offline=True)
    keep = Credentials(username, identity_token=refresh) if refresh else given
    credentials.store(host, keep)
    return SUCCEEDED


def check(host: str, given: Credentials, *, offline: bool = False) -> str:
    """Raise RegistryError unless ``given`` opens ``host``'s API root; the refresh token the
    token server gave, or ""."""
    from pybuild.registry.transport import Transport

    api = DOCKER_HUB_API if host == "docker.io" else host
    with Transport(api, backoff=()) as transport:
        authorizer = Authorizer(api, given, transport.session, offline=offline)
        transport.authorizer = authorizer
        transport.request("GET", "/v2/", scope="", what=host)
        return authorizer.refresh_token


def stored(host: str) -> Credentials | None:
    """What a login without a password would use: the credentials already kept for ``host``."""
    return credentials.lookup(server_host(host))


def storage_of(host: str) -> Path | str:
    """Where ``login`` keeps ``host``'s credentials: pybuild's config file, or a helper's name."""
    doc = credentials.read_config(credentials.own_config())
    helper = credentials.helper_for(doc, server_host(host))
    return helper or credentials.own_config()


def logout(registry: str | None = None) -> str:
    """Forget the credentials pybuild keeps for ``registry``; docker's status line."""
    host = server_host(registry)
    if not credentials.erase(host):
        return f"Not logged in to {host}"
    return f"Removing login credentials for {host}"
