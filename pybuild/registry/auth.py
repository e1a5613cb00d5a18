"""Answering a registry's 401: Basic, or Bearer tokens from the realm it names.

The challenge is RFC 7235's ``WWW-Authenticate`` (``challenge.parse``). Basic sends the stored
user and password. Bearer is the distribution spec's token flow: ``GET realm?service=&scope=``
with Basic credentials when there are some (anonymous otherwise), or, holding an identity
token, the OAuth2 ``POST`` with ``grant_type=refresh_token``, as docker does. The token
(``token`` or ``access_token``) is cached per scope until ``issued_at`` + ``expires_in`` (60 s
when not given, the spec's default); once the realm is known, ``header`` hands out a cached
token or fetches a fresh one, so an expired token is replaced before the request that would
have met a 401.

A token whose JWT ``access`` claim grants less than the request's own scope asks for is
refused here as "no permission", in one line, rather than sent to meet the registry's bare
"authentication required". Only the first scope is checked: the others a request names (a
mount's source repository) are optional to it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import requests

from pybuild.errors import RegistryError
from pybuild.registry.challenge import Challenge, find, parse
from pybuild.registry.credentials import Credentials

DEFAULT_EXPIRES_IN = 60  # seconds, the token spec's default
CLIENT_ID = "pybuild"
TIMEOUT = (10.0, 60.0)


@dataclass(frozen=True)
class Token:
    value: str
    expires: float  # a time.time() value
    refresh_token: str = ""


class Authorizer:
    """The Authorization headers for one registry host, cached per scope.

    ``scope`` is the distribution spec's scope string, as ``repository:user/app:pull,push``;
    several are separated by spaces. ``offline`` asks the token server for a refresh token
    (``pybuild login`` keeps it as the identity token, as docker does).
    """

    def __init__(self, host: str, credentials: Credentials | None, session: requests.Session,
                 *, offline: bool = False, clock: Callable[[], float] = time.time):
        self.host = host
        self.credentials = credentials
        self.session = session
        self.offline = offline
        self.refresh_token = ""  # the last one a token server gave
        self._clock = clock
        self._lock = threading.Lock()  # parallel downloads share one authorizer
        self._bearer: Challenge | None = None
        self._basic = False
        self._tokens: dict[str, Token] = {}

    def header(self, scope: str) -> dict[str, str]:
        """What to send before any challenge: a cached, unexpired token or Basic header for
        ``scope``, else nothing."""
        if self._basic and self._has_password():
            return self._basic_header()
        if self._bearer is None:
            return {}
        return {"Authorization": f"Bearer {self._token(scope).value}"}

    def challenge(self, response: requests.Response, scope: str) -> dict[str, str]:
        """The headers that answer ``response`` (a 401 with WWW-Authenticate) for ``scope``;
        raises RegistryError (one line: wrong credentials, no permission) when it cannot."""
        challenges = parse(response.headers.get("WWW-Authenticate", ""))
        sent = (response.request.headers.get("Authorization", "") if response.request
                else "")
        bearer = find(challenges, "bearer")
        if bearer is not None and bearer.params.get("realm"):
            with self._lock:
                old = self._tokens.get(scope)
                if old and sent == f"Bearer {old.value}" and \
                        bearer.params.get("error") == "insufficient_scope":
                    raise RegistryError(f"{self.host}: denied: no permission for {scope}")
                self._bearer = bearer
                self._tokens.pop(scope, None)
            return {"Authorization": f"Bearer {self._token(scope).value}"}
        if find(challenges, "basic") is not None:
            if not self._has_password():
                raise RegistryError(f"{self.host}: unauthorized: authentication required "
                                    f"(pybuild login {self.host})")
            if sent.startswith("Basic "):
                raise self._wrong_password()
            self._check_basic(response)
            self._basic = True
            return self._basic_header()
        schemes = ", ".join(c.scheme for c in challenges) or "none given"
        raise RegistryError(f"{self.host}: unauthorized: unsupported authentication "
                            f"({schemes})")

    def _tls(self) -> dict:
        """Per-request settings: requests lets $REQUESTS_CA_BUNDLE override a session's
        ``verify`` (psf/requests#3829), so the session's is passed with each request."""
        return {"verify": self.session.verify, "cert": self.session.cert, "timeout": TIMEOUT}

    # Basic

    def _has_password(self) -> bool:
        c = self.credentials
        return c is not None and bool(c.username or c.password)

    def _basic_header(self) -> dict[str, str]:
        assert self.credentials is not None
        pair = f"{self.credentials.username}:{self.credentials.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def _check_basic(self, response: requests.Response) -> None:
        """Try the password on the API root once, so that a wrong one is said as such and
        not as whatever the retried request would have met."""
        parts = urlsplit(response.url)
        try:
            answer = self.session.get(f"{parts.scheme}://{parts.netloc}/v2/",
                                      headers=self._basic_header(), **self._tls())
        except requests.RequestException:
            return  # the retried request will meet the same problem and say it
        answer.close()
        if answer.status_code == 401:
            raise self._wrong_password()

    def _wrong_password(self) -> RegistryError:
        return RegistryError(f"{self.host}: unauthorized: incorrect username or password")

    # Bearer

    def _token(self, scope: str) -> Token:
        with self._lock:
            token = self._tokens.get(scope)
            if token is None or self._clock() >= token.expires:
                token = self._fetch(scope)
                self._tokens[scope] = token
            return token

    def _fetch(self, scope: str) -> Token:
        assert self._bearer is not None
        realm = self._bearer.params["realm"]
        service = self._bearer.params.get("service", "")
        scopes = scope.split()
        creds = self.credentials
        try:
            if creds is not None and creds.identity_token:
                answer = self.session.post(realm, data={
                    "grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "service": service, "scope": " ".join(scopes), "client_id": CLIENT_ID,
                    "access_type": "offline" if self.offline else "online"}, **self._tls())
            else:
                answer = self.session.get(realm, params=self._query(service, scopes),
                                          auth=self._basic_auth(), **self._tls())
        except requests.RequestException as err:
            raise RegistryError(f"{self.host}: token server {realm} unreachable: "
                                f"{_reason(err)}") from None
        with answer:
            return self._read_token(answer, realm, scopes)

    def _query(self, service: str, scopes: list[str]) -> list[tuple[str, str]]:
        query = [("service", service)] if service else []
        query += [("scope", s) for s in scopes]
        if self._has_password():
            assert self.credentials is not None
            query.append(("account", self.credentials.username))
        if self.offline:
            query += [("offline_token", "true"), ("client_id", CLIENT_ID)]
        return query

    def _basic_auth(self) -> tuple[str, str] | None:
        if not self._has_password():
            return None
        assert self.credentials is not None
        return self.credentials.username, self.credentials.password

    def _read_token(self, answer: requests.Response, realm: str, scopes: list[str]) -> Token:
        if answer.status_code == 401:
            if self._has_password() or (self.credentials and self.credentials.identity_token):
                raise self._wrong_password()
            raise RegistryError(f"{self.host}: unauthorized: authentication required "
                                f"(pybuild login {self.host})")
        if answer.status_code == 403:
            raise RegistryError(f"{self.host}: denied: no permission for {' '.join(scopes)}")
        if not answer.ok:
            raise RegistryError(f"{self.host}: token server {realm} answered "
                                f"{answer.status_code} {answer.reason or ''}".rstrip())
        try:
            doc = json.loads(answer.content)
            value = str(doc.get("token") or doc.get("access_token") or "")
        except (ValueError, AttributeError):
            value, doc = "", {}
        if not value:
            raise RegistryError(f"{self.host}: token server {realm} gave no token")
        refresh = str(doc.get("refresh_token") or "")
        if refresh:
            self.refresh_token = refresh
        if scopes:
            self._check_granted(value, scopes[0])
        return Token(value, _expiry(doc, self._clock()), refresh)

    def _check_granted(self, value: str, scope: str) -> None:
        """Refuse a JWT that grants less than ``scope`` asks for (see the module docstring);
        an opaque token is left to the registry."""
        access = jwt_access(value)
        if access is None:
            return
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        wanted = {a for a in actions.split(",") if a}
        granted: set[str] = set()
        for entry in access:
            if isinstance(entry, dict) and entry.get("type") == kind \
                    and entry.get("name") == name:
                granted.update(str(a) for a in entry.get("actions") or ())
        if "*" in granted:
            return
        missing = sorted(wanted - granted)
        if missing:
            raise RegistryError(f"{self.host}: denied: no permission to {','.join(missing)} "
                                f"{kind} {name} (as {self._who()})")

    def _who(self) -> str:
        c = self.credentials
        if c is not None and c.username:
            return c.username
        return "the identity token's user" if c is not None and c.identity_token \
            else "anonymous"


def jwt_access(value: str) -> list | None:
    """A JWT's ``access`` claim (unverified: only the registry checks signatures), or None
    when ``value`` is no JWT or has no such claim."""
    parts = value.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return None
    access = claims.get("access") if isinstance(claims, dict) else None
    return access if isinstance(access, list) else None


def _expiry(doc: dict, now: float) -> float:
    try:
        lifetime = int(doc.get("expires_in") or 0)
    except (TypeError, ValueError):
        lifetime = 0
    if lifetime <= 0:
        lifetime = DEFAULT_EXPIRES_IN
    issued = _rfc3339(doc.get("issued_at"))
    # a server clock ahead of ours would make the token live longer here than there
    start = min(issued, now) if issued is not None else now
    return start + lifetime


def _rfc3339(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    # Go writes up to nine fractional digits; fromisoformat takes six
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _reason(err: requests.RequestException) -> str:
    text = str(err)
    if isinstance(err, requests.exceptions.SSLError):
        return "TLS certificate not trusted"
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(err, requests.Timeout):
        return "timed out"
    if "Name or service not known" in text or "name resolution" in text:
        return "unknown host"
    return "cannot connect"
