"""htpasswd Basic auth over TLS, against the real registry (docker-registry 2.8) with a CA
the test makes: pybuild login/logout through the CLI, the certificate checks, and push/pull
with the stored credentials."""

from __future__ import annotations

import json

import pytest
from support.pushpull import cli, make_image
from support.registry import serve
from support.registry_auth import htpasswd, install_helper, isolate, make_tls, trust

from pybuild.errors import RegistryError
from pybuild.store import Store

USER, PASSWORD = "alice", "correct horse"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tls):
    directory = tmp_path_factory.mktemp("basic")
    users = htpasswd(directory / "htpasswd", {USER: PASSWORD, "bob": "bobs"})
    with serve(directory, auth={"htpasswd": {"realm": "pybuild-test", "path": str(users)}},
               tls={"certificate": str(tls.cert), "key": str(tls.key)}) as reg:
        yield reg


@pytest.fixture
def home(monkeypatch, tmp_path):
    return isolate(monkeypatch, tmp_path)


def login(root, host, password=PASSWORD, user=USER):
    return cli(root, "login", "-u", user, "--password-stdin", host, input=password + "\n")


def test_login_over_tls_stores_the_credentials(home, registry, tls, tmp_path):
    trust(home, registry.host, tls.ca)
    res = login(tmp_path / "root", registry.host)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "Login Succeeded\n"
    assert "WARNING! Your password will be stored unencrypted in" in res.stderr
    doc = json.loads((home / "pybuild-config.json").read_text())
    assert doc["auths"][registry.host]["auth"]  # base64 user:password
    res = cli(tmp_path / "root", "logout", registry.host)
    assert (res.returncode, res.stdout) == (0, f"Removing login credentials for "
                                                f"{registry.host}\n")
    assert registry.host not in json.loads((home / "pybuild-config.json").read_text())["auths"]


def test_a_wrong_password_is_one_line_and_stores_nothing(home, registry, tls, tmp_path):
    trust(home, registry.host, tls.ca)
    res = login(tmp_path / "root", registry.host, password="wrong")
    assert res.returncode == 1
    assert res.stderr == (f"error: {registry.host}: unauthorized: incorrect username or "
                          "password\n")
    assert not (home / "pybuild-config.json").exists()


def test_an_unknown_ca_is_one_line_about_the_certificate(home, registry, tmp_path):
    res = login(tmp_path / "root", registry.host)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and registry.host in lines[0] and "certificate" in lines[0], lines
    assert not (home / "pybuild-config.json").exists()


def test_insecure_registries_lets_an_unknown_ca_through(home, registry, tmp_path):
    (home / "daemon.json").write_text(json.dumps({"insecure-registries": [registry.host]}))
    res = login(tmp_path / "root", registry.host)
    assert res.returncode == 0, res.stderr


def test_push_and_pull_use_the_stored_credentials(home, registry, tls, tmp_path):
    trust(home, registry.host, tls.ca)
    source = Store(tmp_path / "source")
    ref = f"{registry.host}/team/app:1"
    image_id = make_image(source, ref, ["basic-1", "basic-2"], size=50_000)
    res = cli(source.root, "push", ref)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "authentication required" in res.stderr
    assert login(source.root, registry.host).returncode == 0
    res = cli(source.root, "push", ref)
    assert res.returncode == 0, res.stderr
    target = tmp_path / "target"
    res = cli(target, "pull", ref)
    assert res.returncode == 0, res.stderr
    assert Store(target).refs.load().tags[ref] == image_id


def test_a_stored_password_gone_wrong_is_said_on_pull(home, registry, tls, tmp_path):
    trust(home, registry.host, tls.ca)
    from pybuild.registry.credentials import Credentials, store

    store(registry.host, Credentials(USER, "changed"))
    res = cli(tmp_path / "root", "pull", f"{registry.host}/team/none:1")
    assert res.returncode == 1
    assert res.stderr == (f"error: {registry.host}: unauthorized: incorrect username or "
                          "password\n")


def test_a_credential_helper_keeps_the_password(home, registry, tls, tmp_path, monkeypatch):
    trust(home, registry.host, tls.ca)
    helper_store = install_helper(monkeypatch, home)
    (home / "pybuild-config.json").write_text(json.dumps({"credsStore": "testhelper"}))
    res = login(tmp_path / "root", registry.host)
    assert res.returncode == 0, res.stderr
    assert "stored unencrypted" not in res.stderr
    assert json.loads(helper_store.read_text()) == {registry.host: [USER, PASSWORD]}
    assert PASSWORD not in (home / "pybuild-config.json").read_text()
    # a pull's credentials come from the helper: past the challenge to the missing tag
    res = cli(tmp_path / "root", "pull", f"{registry.host}/team/none:1")
    assert res.returncode == 1 and "manifest unknown" in res.stderr, res.stderr
    assert "get " in (helper_store.parent / "helper.json.log").read_text()


def test_the_library_login(home, registry, tls, tmp_path):
    from pybuild.client import Client

    trust(home, registry.host, tls.ca)
    client = Client(tmp_path / "root")
    assert client.login(USER, PASSWORD, registry.host) == "Login Succeeded"
    with pytest.raises(RegistryError, match="incorrect username or password"):
        client.login(USER, "wrong", f"https://{registry.host}/v2/")
    assert client.logout(f"https://{registry.host}") == (f"Removing login credentials for "
                                                         f"{registry.host}")


def test_client_certificates_from_certs_d(home, tls, tmp_path):
    """A registry that asks for a client certificate (http.tls.clientcas) gets the
    certs.d pair."""
    users = htpasswd(tmp_path / "htpasswd", {USER: PASSWORD})
    with serve(tmp_path, auth={"htpasswd": {"realm": "r", "path": str(users)}},
               tls={"certificate": str(tls.cert), "key": str(tls.key),
                    "clientcas": [str(tls.ca)]}) as reg:
        directory = trust(home, reg.host, tls.ca)
        res = login(tmp_path / "root", reg.host)
        assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
        (directory / "client.cert").write_bytes(tls.client_cert.read_bytes())
        (directory / "client.key").write_bytes(tls.client_key.read_bytes())
        res = login(tmp_path / "root", reg.host)
        assert res.returncode == 0, res.stderr
