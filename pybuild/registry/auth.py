"""Answering a registry's 401: Basic, or Bearer tokens from the realm it names.

Skeleton: no authorization at all. (the challenge, token cache per scope: to do.)
"""

from __future__ import annotations

import requests

from pybuild.registry.credentials import Credentials


class Authorizer:
    """The Authorization headers for one registry host, cached per scope.

    ``scope`` is the distribution spec's scope string, as ``repository:user/app:pull,push``.
    """

    def __init__(self, host: str, credentials: Credentials | None, session: requests.Session):
        self.host = host
        self.credentials = credentials
        self.session = session

    def header(self, scope: str) -> dict[str, str]:
        """What to send before any challenge: a cached, unexpired token or Basic header for
        ``scope``, else nothing."""
        return {}

    def challenge(self, response: requests.Response, scope: str) -> dict[str, str]:
        """The headers that answer ``response`` (a 401 with WWW-Authenticate) for ``scope``;
        raises RegistryError (one line: wrong credentials, no permission) when it cannot."""
        from pybuild.errors import RegistryError

        raise RegistryError(f"{self.host}: authentication required")
