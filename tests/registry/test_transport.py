"""The transport against a scripted HTTP server on 127.0.0.1: retries on 5xx, 429 and dropped
connections on the schedule given, the registry's own error words, one-line failures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from support.net import OFFLINE
from support.registry import free_port

from pybuild.errors import RegistryError
from pybuild.registry.manifests import classify
from pybuild.registry.transport import Transport, describe

DROP = "drop"


class Script:
    """Answers in order; the last answer repeats."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.hits = 0
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            self.hits += 1
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def scripted():
    servers = []

    def start(*answers) -> tuple[str, Script]:
        script = Script(answers)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                answer = script.next()
                if answer == DROP:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                status, headers, body = answer
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"127.0.0.1:{server.server_address[1]}", script

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


OK = (200, {}, b"{}")


def errors(*pairs: tuple[str, str]) -> bytes:
    return json.dumps({"errors": [{"code": c, "message": m, "detail": {}} for c, m in pairs]
                       }).encode()


def transport(host: str, sleeps: list[float]) -> Transport:
    return Transport(host, backoff=(0.01, 0.02, 0.03), sleep=sleeps.append)


@pytest.mark.parametrize("failure", [(503, {}, b""), (502, {}, b"bad gateway"),
                                     (429, {"Retry-After": "0"}, b""), DROP])
def test_retried_until_it_works(scripted, failure):
    host, script = scripted(failure, failure, OK)
    sleeps: list[float] = []
    with transport(host, sleeps) as t:
        assert t.request("GET", "/v2/", scope="").status_code == 200
    assert script.hits == 3
    assert len(sleeps) == 2


def test_gives_up_after_the_schedule_with_the_registrys_words(scripted):
    host, script = scripted((500, {}, errors(("UNKNOWN", "storage is on fire"))))
    sleeps: list[float] = []
    with transport(host, sleeps) as t, pytest.raises(RegistryError) as err:
        t.request("GET", "/v2/x/manifests/1", scope="", what=f"{host}/x:1")
    assert str(err.value) == f"{host}/x:1: storage is on fire"
    assert script.hits == 4 and sleeps == [0.01, 0.02, 0.03]


def test_a_4xx_is_not_retried_and_names_what(scripted):
    host, script = scripted((404, {}, errors(("MANIFEST_UNKNOWN", "manifest unknown"))))
    with transport(host, []) as t, pytest.raises(RegistryError) as err:
        t.request("GET", "/v2/app/manifests/missing", scope="", what=f"{host}/app:missing")
    assert str(err.value) == f"{host}/app:missing: manifest unknown"
    assert script.hits == 1


def test_a_code_without_message_and_no_body(scripted):
    host, _ = scripted((404, {}, errors(("NAME_UNKNOWN", ""))))
    with transport(host, []) as t, pytest.raises(RegistryError, match="name unknown$"):
        t.request("GET", "/v2/nope/tags/list", scope="")
    host, _ = scripted((418, {}, b""))
    with transport(host, []) as t, pytest.raises(RegistryError, match=f"^{host}: 418"):
        t.request("GET", "/v2/", scope="")


def test_refused_is_one_line_after_the_retries():
    host = f"127.0.0.1:{free_port()}"
    sleeps: list[float] = []
    with transport(host, sleeps) as t, pytest.raises(RegistryError) as err:
        t.request("GET", "/v2/", scope="")
    assert str(err.value) == f"{host}: connection refused" and len(sleeps) == 3


PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")


_UNKNOWN_HOST = """
from pybuild.errors import RegistryError
from pybuild.registry.transport import Transport
sleeps = []
try:
    with Transport("no-such-host.invalid", backoff=(0.01, 0.02), sleep=sleeps.append) as t:
        t.request("GET", "/v2/", scope="")
except RegistryError as err:
    print(err, len(sleeps))
"""


def test_unknown_host_is_not_retried():
    # without the tests' dead proxy a name is looked up: in a netns of its own, where the
    # lookup fails without leaving the machine (a .invalid name never resolves, RFC 2606)
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    res = subprocess.run([*OFFLINE, sys.executable, "-c", _UNKNOWN_HOST], capture_output=True,
                         text=True, timeout=60, env=env)
    assert res.stdout == "no-such-host.invalid: unknown host 0\n", res.stderr


def test_a_dead_proxy_is_named():
    sleeps: list[float] = []
    with transport("registry.example.org", sleeps) as t, pytest.raises(RegistryError) as err:
        t.request("GET", "/v2/", scope="")
    assert str(err.value) == ("registry.example.org: cannot connect to the proxy "
                              "(http_proxy/https_proxy)")


def _response(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.reason = status, body, "Reason"
    return response


@given(st.integers(400, 599), st.one_of(st.binary(max_size=200), st.builds(
    lambda m: errors(("X_Y", m)), st.text(max_size=50))))
def test_describe_is_always_one_line(status, body):
    text = describe(_response(status, body))
    assert text and "\n" not in text and "\r" not in text


@given(st.binary(max_size=300), st.text(max_size=40))
def test_classify_accepts_or_refuses_in_one_line(raw, content_type):
    try:
        fetched = classify(raw, content_type, "where")
    except RegistryError as err:
        assert str(err).startswith("where: ") and "\n" not in str(err)
    else:
        assert fetched.raw == raw and fetched.digest.startswith("sha256:")


def test_an_untrusted_certificate_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    import ssl

    from support.registry_auth import isolate, make_tls

    isolate(monkeypatch, tmp_path)
    files = make_tls(tmp_path / "tls")
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    sleeps: list[float] = []
    try:
        with transport(host, sleeps) as t, pytest.raises(RegistryError) as err:
            t.request("GET", "/v2/", scope="")
    finally:
        server.shutdown()
        server.server_close()
    text = str(err.value)
    assert text.startswith(f"{host}: TLS certificate not trusted") and "ca.crt" in text
    assert "\n" not in text and sleeps == []
