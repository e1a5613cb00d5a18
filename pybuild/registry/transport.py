"""Requests to one registry host: authorization, retries with backoff, one-line errors.

A ``Transport`` owns one ``requests.Session`` for one host. Every request names the scope it
needs (``repository:user/app:pull``); the ``Authorizer`` gives the header to send first and
answers one 401 challenge. 5xx, 429 and dropped connections are retried on a bounded
schedule; anything else that fails becomes a ``RegistryError`` naming the host and what.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests

from pybuild.errors import RegistryError
from pybuild.registry import tls
from pybuild.registry.auth import Authorizer
from pybuild.registry.credentials import lookup

# seconds slept before each retry; its length bounds the attempts (one more than its length)
DEFAULT_BACKOFF = (0.2, 0.5, 1.0)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0


class Transport:
    """Requests to ``host`` (``name[:port]`` as in a reference)."""

    def __init__(self, host: str, *, backoff: Sequence[float] = DEFAULT_BACKOFF,
                 sleep: Callable[[float], None] = time.sleep,
                 endpoint: tls.Endpoint | None = None):
        self.host = host
        self.endpoint = endpoint or tls.endpoint_for(host)
        self.session = requests.Session()
        self.session.verify = self.endpoint.verify
        if self.endpoint.cert is not None:
            self.session.cert = self.endpoint.cert
        self.authorizer = Authorizer(host, lookup(host), self.session)
        self.backoff = tuple(backoff)
        self._sleep = sleep
        self._scheme: str | None = None  # the first scheme that answered

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """``path`` as a URL on this host; a full URL (a Location header) stays as it is."""
        if path.startswith(("http://", "https://")):
            return path
        return self.endpoint.url(self._scheme or self.endpoint.schemes[0], path)

    def request(self, method: str, path: str, *, scope: str, what: str = "",
                headers: dict[str, str] | None = None, data: Any = None,
                stream: bool = False, ok: Sequence[int] = (), retry: bool = True,
                **kwargs: Any) -> requests.Response:
        """Send, authorise, retry; the response when its status is 2xx or in ``ok``.

        ``what`` names the object for errors (``127.0.0.1:5000/app:missing``). ``data`` that is
        a callable is called for a fresh body on each attempt (a stream can be sent once).
        """
        what = what or self.host
        attempts = len(self.backoff) + 1 if retry else 1
        auth = self.authorizer.header(scope)
        challenged = False
        attempt = 0
        while True:
            body = data() if callable(data) else data
            try:
                response = self._send(method, path, {**(headers or {}), **auth}, body,
                                      stream, kwargs)
            except requests.ConnectionError as err:
                attempt += 1
                problem = _connection_problem(err, self.host)
                if attempt >= attempts or problem == "unknown host" or \
                        isinstance(err, requests.exceptions.SSLError):
                    raise RegistryError(f"{what}: {problem}") from None
                self._sleep(self.backoff[attempt - 1])
                continue
            except requests.Timeout:
                attempt += 1
                if attempt >= attempts:
                    raise RegistryError(f"{what}: timed out") from None
                self._sleep(self.backoff[attempt - 1])
                continue
            if response.status_code == 401 and not challenged:
                challenged = True
                auth = self.authorizer.challenge(response, scope)
                response.close()
                continue
            if response.status_code in RETRY_STATUS and attempt + 1 < attempts:
                attempt += 1
                response.close()
                self._sleep(_retry_after(response, self.backoff[attempt - 1]))
                continue
            if response.ok or response.status_code in ok:
                return response
            raise RegistryError(f"{what}: {describe(response)}")

    def _send(self, method: str, path: str, headers: dict[str, str], body: Any,
              stream: bool, kwargs: dict[str, Any]) -> requests.Response:
        timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
        # given per request: requests lets $REQUESTS_CA_BUNDLE override the session's verify
        kwargs = {"verify": self.session.verify, "cert": self.session.cert, **kwargs}
        if self._scheme is not None or path.startswith(("http://", "https://")):
            return self.session.request(method, self.url(path), headers=headers, data=body,
                                        stream=stream, timeout=timeout,
                                        allow_redirects=True, **kwargs)
        # the first request finds the scheme that answers (docker tries https, then http,
        # for registries it may reach in plain http)
        errors: list[Exception] = []
        for scheme in self.endpoint.schemes:
            try:
                response = self.session.request(
                    method, self.endpoint.url(scheme, path), headers=headers, data=body,
                    stream=stream, timeout=timeout, allow_redirects=True, **kwargs)
            except (requests.exceptions.SSLError, requests.ConnectionError) as err:
                errors.append(err)
                continue
            self._scheme = scheme
            return response
        # a failed handshake says more than the plain http tried after it
        tls_errors = [e for e in errors if isinstance(e, requests.exceptions.SSLError)]
        raise (tls_errors or errors)[0]


def describe(response: requests.Response) -> str:
    """The registry's own words for a failed response: its JSON ``errors`` (distribution
    spec), else the HTTP status."""
    try:
        errors = json.loads(response.content or b"{}").get("errors") or []
        texts = [" ".join(str(e.get("message") or "").split())
                 or str(e.get("code") or "").lower().replace("_", " ")
                 for e in errors if isinstance(e, dict)]
        text = "; ".join(" ".join(t.split()) for t in texts if t.strip())
        if text:
            return text  # one line, whatever the server wrote
    except (ValueError, AttributeError, TypeError):
        pass
    return f"{response.status_code} {response.reason or ''}".strip()


def _retry_after(response: requests.Response, default: float) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "")), 10.0)
    except ValueError:
        return default


def _connection_problem(err: requests.ConnectionError, host: str) -> str:
    text = str(err)
    if isinstance(err, requests.exceptions.ProxyError):
        return "cannot connect to the proxy (http_proxy/https_proxy)"
    if isinstance(err, requests.exceptions.SSLError):
        return tls.describe_tls_error(text, host)
    if any(s in text for s in ("Name or service not known", "nodename nor servname",
                               "Temporary failure in name resolution", "No address associated",
                               "getaddrinfo failed")):
        return "unknown host"
    if "Connection refused" in text:
        return "connection refused"
    if "Connection reset" in text or "RemoteDisconnected" in text or "aborted" in text:
        return "connection dropped"
    return "cannot connect"
