"""config.json credentials: pybuild's file, docker's, and docker-credential-* helpers (a real
helper executable the test writes, speaking the helpers' protocol over stdin/stdout)."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from support.registry_auth import install_helper, isolate

from pybuild.errors import RegistryError
from pybuild.registry import credentials
from pybuild.registry.credentials import Credentials, erase, lookup, store


@pytest.fixture
def home(monkeypatch, tmp_path):
    home = isolate(monkeypatch, tmp_path)
    install_helper(monkeypatch, home)
    return home


def own(home):
    return home / "pybuild-config.json"


def write_docker(home, doc):
    (home / "docker").mkdir(exist_ok=True)
    (home / "docker" / "config.json").write_text(json.dumps(doc))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_store_lookup_erase_in_pybuilds_file(home):
    assert lookup("myreg:5000") is None
    assert store("myreg:5000", Credentials("alice", "s3:cret")) == own(home)
    assert stat.S_IMODE(own(home).stat().st_mode) == 0o600
    doc = json.loads(own(home).read_text())
    assert doc["auths"]["myreg:5000"] == {"auth": b64("alice:s3:cret")}
    assert lookup("myreg:5000") == Credentials("alice", "s3:cret")
    assert erase("myreg:5000") is True
    assert erase("myreg:5000") is False
    assert lookup("myreg:5000") is None


def test_docker_hub_is_keyed_as_docker_keys_it(home):
    store("docker.io", Credentials("bob", "pw"))
    assert list(json.loads(own(home).read_text())["auths"]) == ["https://index.docker.io/v1/"]
    assert lookup("registry-1.docker.io") == Credentials("bob", "pw")
    assert lookup("index.docker.io") == Credentials("bob", "pw")


def test_dockers_file_is_read_with_url_keys_and_identity_tokens(home):
    write_docker(home, {"auths": {"https://myreg:5000/v1/": {"auth": b64("carol:pw")},
                                  "tok.example": {"auth": b64("dave:"),
                                                  "identitytoken": "refresh-123"}}})
    assert lookup("myreg:5000") == Credentials("carol", "pw")
    assert lookup("tok.example") == Credentials("dave", "", "refresh-123")
    # pybuild's own file wins, and docker's is never written
    before = (home / "docker" / "config.json").read_text()
    store("myreg:5000", Credentials("eve", "pw2"))
    assert lookup("myreg:5000") == Credentials("eve", "pw2")
    erase("myreg:5000")
    assert lookup("myreg:5000") == Credentials("carol", "pw")
    assert (home / "docker" / "config.json").read_text() == before


def test_a_helper_named_in_dockers_file(home):
    write_docker(home, {"credHelpers": {"myreg:5000": "testhelper"},
                        "auths": {"other:1": {"auth": b64("x:y")}}})
    (home / "helper.json").write_text(json.dumps({"myreg:5000": ["frank", "pw"],
                                                  "tokreg": ["<token>", "idtok"]}))
    assert lookup("myreg:5000") == Credentials("frank", "pw")
    assert lookup("other:1") == Credentials("x", "y")  # credHelpers is per host
    write_docker(home, {"credsStore": "testhelper"})
    assert lookup("tokreg") == Credentials(identity_token="idtok")
    assert lookup("unknown:1") is None  # "not found" is no credentials, not an error


def test_a_missing_helper_in_dockers_file_is_passed_over(home):
    write_docker(home, {"credsStore": "nosuchhelper", "auths": {"myreg": {"auth": b64("g:h")}}})
    assert lookup("myreg") == Credentials("g", "h")


def test_pybuilds_credsstore_keeps_secrets_out_of_the_file(home):
    own(home).write_text(json.dumps({"credsStore": "testhelper"}))
    assert store("myreg:5000", Credentials("henry", "pw")) == "testhelper"
    doc = json.loads(own(home).read_text())
    assert doc["auths"] == {"myreg:5000": {}} and "pw" not in own(home).read_text()
    assert json.loads((home / "helper.json").read_text()) == {"myreg:5000": ["henry", "pw"]}
    assert lookup("myreg:5000") == Credentials("henry", "pw")
    assert erase("myreg:5000") is True
    assert json.loads((home / "helper.json").read_text()) == {}
    assert "myreg:5000" not in json.loads(own(home).read_text())["auths"]


def test_a_missing_helper_in_pybuilds_file_is_an_error(home):
    own(home).write_text(json.dumps({"credHelpers": {"myreg": "nosuchhelper"}}))
    with pytest.raises(RegistryError, match="docker-credential-nosuchhelper: credential "
                                            "helper not found"):
        lookup("myreg")


def test_a_broken_file_is_one_line_naming_it(home):
    own(home).write_text("{not json")
    with pytest.raises(RegistryError, match=f"{own(home)}: invalid JSON"):
        lookup("myreg")
    own(home).write_text(json.dumps({"auths": {"myreg": {"auth": "%%%"}}}))
    with pytest.raises(RegistryError, match="not base64"):
        lookup("myreg")


def test_the_default_locations(monkeypatch, tmp_path):
    monkeypatch.delenv("PYBUILD_AUTH_CONFIG", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert credentials.own_config() == tmp_path / ".config/pybuild/config.json"
    assert credentials.docker_config() == tmp_path / ".docker/config.json"


def test_an_unwritable_file_is_one_line(home, monkeypatch):
    blocker = home / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("PYBUILD_AUTH_CONFIG", str(blocker / "config.json"))
    with pytest.raises(RegistryError, match="cannot write the credentials file"):
        store("myreg", Credentials("a", "b"))
