"""How pybuild decides to reach a registry: certs.d, insecure-registries, loopback."""

from __future__ import annotations

import http.server
import ssl
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.registry_auth import isolate, make_tls, trust

from pybuild.errors import RegistryError
from pybuild.registry.tls import (
    describe_tls_error,
    endpoint_for,
    is_insecure,
    speaks_tls,
    split_host,
)


@pytest.fixture
def home(monkeypatch, tmp_path):
    return isolate(monkeypatch, tmp_path)


@contextmanager
def http_server(tls: Path | None = None):
    """An http.server on 127.0.0.1 (TLS with ``tls``'s certificate when given)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             http.server.BaseHTTPRequestHandler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls / "server.crt", tls / "server.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_remote_registry_is_verified_https(home):
    e = endpoint_for("registry.example:5000")
    assert (e.schemes, e.verify, e.cert) == (("https",), True, None)


def test_certs_d_cas_merge_with_the_systems_and_a_client_pair_is_used(home, tmp_path):
    tls = make_tls(tmp_path / "tls")
    d = trust(home, "registry.example:5000", tls.ca)
    (d / "extra.crt").write_bytes(tls.cert.read_bytes())
    (d / "client.cert").write_bytes(tls.cert.read_bytes())
    (d / "client.key").write_bytes(tls.key.read_bytes())
    e = endpoint_for("registry.example:5000")
    bundle = Path(e.verify).read_text()
    assert tls.ca.read_text().strip() in bundle and tls.cert.read_text().strip() in bundle
    system = Path(ssl.get_default_verify_paths().cafile or "/nonexistent")
    if system.is_file():
        assert system.read_text().strip()[:200] in bundle
    assert e.cert == (str(d / "client.cert"), str(d / "client.key"))
    assert e.schemes == ("https",)
    # other hosts are not touched by this directory
    assert endpoint_for("registry.example:5001").verify is True


def test_a_client_certificate_without_its_key_is_one_line(home, tmp_path):
    tls = make_tls(tmp_path / "tls")
    d = trust(home, "registry.example", tls.ca)
    (d / "client.cert").write_bytes(tls.cert.read_bytes())
    with pytest.raises(RegistryError, match=r"missing key client\.key for client\.cert"):
        endpoint_for("registry.example")


def test_insecure_registries_by_name_and_by_cidr(home):
    (home / "daemon.json").write_text('{"insecure-registries": ["myreg:5000", "10.1.0.0/16"]}')
    assert endpoint_for("myreg:5000").schemes == ("https", "http")
    assert endpoint_for("myreg:5000").verify is False
    assert endpoint_for("myreg:5001").verify is True  # exact match, as docker's index configs
    assert endpoint_for("10.1.2.3:443").verify is False
    assert endpoint_for("10.2.0.1").verify is True
    assert is_insecure("[::1]:5000", ("::1/128",))
    assert is_insecure("localhost:5000", ("127.0.0.0/8",))  # a name is resolved, as docker does
    assert not is_insecure("localhost:5000", ("not a cidr/x",))


def test_loopback_is_plain_http_only_where_the_port_does_not_speak_tls(home, tmp_path):
    tls = make_tls(tmp_path / "tls")
    with http_server() as plain, http_server(tmp_path / "tls") as secure:
        assert speaks_tls(*_split(plain)) is False
        assert speaks_tls(*_split(secure)) is True
        assert endpoint_for(plain).schemes == ("http",)
        e = endpoint_for(secure)
        assert (e.schemes, e.verify) == (("https",), True)  # verified, unlike docker
        trust(home, secure, tls.ca)
        assert endpoint_for(secure).verify != True  # noqa: E712 (a bundle path)
        localhost = "localhost:" + plain.rsplit(":", 1)[1]
        assert endpoint_for(localhost).schemes == ("http",)
    # nothing listening: both are left to the connection, https first
    assert endpoint_for(plain).schemes == ("https", "http")


def _split(host: str) -> tuple[str, int]:
    name, port = split_host(host)
    assert port is not None
    return name, port


def test_split_host_forms():
    assert split_host("[::1]:5000") == ("::1", 5000)
    assert split_host("[::1]") == ("::1", None)
    assert split_host("example.com") == ("example.com", None)
    with pytest.raises(RegistryError, match="invalid port"):
        split_host("example.com:x")


def test_tls_errors_are_described_with_where_the_fix_goes(home):
    host = "127.0.0.1:5000"
    d = str(home / "certs.d" / host)
    unknown = ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get "
               "local issuer certificate (_ssl.c:1006)")
    assert describe_tls_error(unknown, host) == (
        f"TLS certificate not trusted (unable to get local issuer certificate): give its CA "
        f"as {d}/ca.crt, or list {host} in insecure-registries")
    refused = "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580)"
    assert describe_tls_error(refused, host).startswith("the registry refused the client "
                                                        "certificate")
    assert "plain http" in describe_tls_error("[SSL: WRONG_VERSION_NUMBER] wrong version", host)
    assert describe_tls_error("something else", host) == "TLS handshake failed"
