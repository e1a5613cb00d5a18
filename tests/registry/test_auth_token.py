"""Token auth, the real Bearer flow: docker-registry 2.8 with ``auth: token`` trusting a token
server the test runs (RS256 JWTs, per-user per-repository grants), pybuild as the client."""

from __future__ import annotations

import json
import time

import pytest
from support.pushpull import cli, make_image
from support.registry import free_port, serve
from support.registry_auth import TokenServer, isolate

from pybuild.errors import RegistryError
from pybuild.registry.auth import Authorizer
from pybuild.registry.credentials import Credentials
from pybuild.registry.transport import Transport
from pybuild.store import Store

USERS = {"alice": "alices-pw", "bob": "bobs-pw"}
GRANTS = {
    None: {"public/app": {"pull"}},  # anonymous
    "alice": {"public/app": {"pull", "push"}, "alice/app": {"pull", "push"}},
    "bob": {"alice/app": {"pull"}},
}
PULL_PUBLIC = "repository:public/app:pull"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    with TokenServer(tmp_path_factory.mktemp("tokens"), USERS, GRANTS) as server:
        yield server


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tokens):
    with serve(tmp_path_factory.mktemp("token-registry"), auth=tokens.auth_section()) as reg:
        yield reg


@pytest.fixture
def home(monkeypatch, tmp_path, tokens):
    tokens.hits.clear()
    tokens.expires_in, tokens.token_field = 300, "token"
    yield isolate(monkeypatch, tmp_path)
    tokens.expires_in, tokens.token_field = 300, "token"


@pytest.fixture(scope="module")
def published(tmp_path_factory, registry, tokens):
    """public/app:1 and alice/app:1 on the registry, pushed as alice."""
    root = tmp_path_factory.mktemp("published") / "root"
    store = Store(root)
    for repo in ("public/app", "alice/app"):
        make_image(store, f"{registry.host}/{repo}:1", [f"{repo}-a"], size=20_000)
    from pybuild.registry.push import push

    with pytest.MonkeyPatch.context() as mp:  # as alice, without touching any config file
        mp.setattr("pybuild.registry.transport.lookup",
                   lambda host: Credentials("alice", USERS["alice"]))
        for repo in ("public/app", "alice/app"):
            push(store, f"{registry.host}/{repo}:1")
    return store


def transport_for(registry, credentials=None) -> Transport:
    transport = Transport(registry.host)
    transport.authorizer = Authorizer(registry.host, credentials, transport.session)
    return transport


def tags(transport, repo):
    res = transport.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
    return res.json()["tags"]


def test_anonymous_pull_only_token(home, registry, tokens, published):
    with transport_for(registry) as transport:
        assert tags(transport, "public/app") == ["1"]
        with pytest.raises(RegistryError) as err:
            transport.request("HEAD", "/v2/public/app/blobs/sha256:" + "0" * 64,
                              scope="repository:public/app:pull,push", ok=(404,))
    assert str(err.value) == (f"{registry.host}: denied: no permission to push repository "
                              "public/app (as anonymous)")
    assert [(h.user, h.scopes) for h in tokens.hits] == [
        (None, [PULL_PUBLIC]), (None, ["repository:public/app:pull,push"])]


def test_tokens_are_cached_per_scope(home, registry, tokens, published):
    creds = Credentials("alice", USERS["alice"])
    with transport_for(registry, creds) as transport:
        for _ in range(3):
            assert tags(transport, "public/app") == ["1"]
            assert tags(transport, "alice/app") == ["1"]
    assert tokens.token_hits(PULL_PUBLIC) == 1
    assert tokens.token_hits("repository:alice/app:pull") == 1
    assert all(h.user == "alice" for h in tokens.hits)


def test_an_expired_token_is_refreshed(home, registry, tokens, published):
    tokens.expires_in = 1
    with transport_for(registry) as transport:
        assert tags(transport, "public/app") == ["1"]
        assert tags(transport, "public/app") == ["1"]
        assert tokens.token_hits(PULL_PUBLIC) == 1
        time.sleep(1.2)
        assert tags(transport, "public/app") == ["1"]
        assert tokens.token_hits(PULL_PUBLIC) == 2


def test_access_token_field_and_default_lifetime(home, registry, tokens, published):
    tokens.token_field, tokens.expires_in = "access_token", None  # the spec's 60 s default
    with transport_for(registry) as transport:
        before = time.time()
        assert tags(transport, "public/app") == ["1"]
        [token] = transport.authorizer._tokens.values()
        assert before + 59 <= token.expires <= time.time() + 60


def test_no_permission_for_a_scope_is_one_line(home, registry, tokens, published, tmp_path):
    res = cli(tmp_path / "root", "login", "-u", "bob", "--password-stdin", registry.host,
              input=USERS["bob"])
    assert res.returncode == 0, res.stderr
    root = tmp_path / "root"
    res = cli(root, "pull", f"{registry.host}/alice/app:1")  # bob may pull it
    assert res.returncode == 0, res.stderr
    res = cli(root, "push", f"{registry.host}/alice/app:1")
    assert res.returncode == 1
    assert res.stderr == (f"error: {registry.host}: denied: no permission to push repository "
                          "alice/app (as bob)\n")


def test_login_keeps_the_identity_token_and_push_pull_use_it(home, registry, tokens,
                                                             tmp_path):
    res = cli(tmp_path / "a", "login", "-u", "alice", "--password-stdin", registry.host,
              input=USERS["alice"])
    assert (res.returncode, res.stdout) == (0, "Login Succeeded\n"), res.stderr
    entry = json.loads((home / "pybuild-config.json").read_text())["auths"][registry.host]
    assert entry["identitytoken"] in tokens.refresh_tokens
    assert USERS["alice"] not in (home / "pybuild-config.json").read_text()
    source = Store(tmp_path / "a")
    ref = f"{registry.host}/alice/app:2"
    image_id = make_image(source, ref, ["token-e2e"], size=30_000)
    tokens.hits.clear()
    res = cli(source.root, "push", ref)
    assert res.returncode == 0, res.stderr
    assert tokens.hits and all(h.method == "POST" and h.user == "alice" for h in tokens.hits)
    res = cli(tmp_path / "b", "pull", ref)
    assert res.returncode == 0, res.stderr
    assert Store(tmp_path / "b").refs.load().tags[ref] == image_id
    # logged out, alice's repository is closed to an anonymous pull
    assert cli(tmp_path / "b", "logout", registry.host).returncode == 0
    res = cli(tmp_path / "c", "pull", ref)
    assert res.returncode == 1
    assert res.stderr == (f"error: {registry.host}: denied: no permission to pull repository "
                          "alice/app (as anonymous)\n")


def test_a_wrong_password_at_the_token_server(home, registry, tmp_path):
    res = cli(tmp_path / "root", "login", "-u", "alice", "--password-stdin", registry.host,
              input="nope")
    assert res.returncode == 1
    assert res.stderr == (f"error: {registry.host}: unauthorized: incorrect username or "
                          "password\n")
    assert not (home / "pybuild-config.json").exists()


def test_an_unreachable_token_server_is_one_line(home, tmp_path):
    realm = f"http://127.0.0.1:{free_port()}/token"  # nothing listens there
    auth = {"token": {"realm": realm, "service": "s", "issuer": "i",
                      "rootcertbundle": str(_any_cert(tmp_path))}}
    with serve(tmp_path, auth=auth) as reg:
        res = cli(tmp_path / "root", "pull", f"{reg.host}/public/app:1")
    assert res.returncode == 1
    assert res.stderr == (f"error: {reg.host}: token server {realm} unreachable: connection "
                          "refused\n")


def _any_cert(tmp_path):
    from support.registry_auth import make_tls

    return make_tls(tmp_path / "unused-tls").ca


def test_parallel_layer_downloads_share_one_token(home, registry, tokens, tmp_path,
                                                   monkeypatch):
    source = Store(tmp_path / "source")
    ref = f"{registry.host}/public/app:layers"
    make_image(source, ref, ["par-1", "par-2", "par-3", "par-4"], size=40_000)
    from pybuild.registry.pull import pull
    from pybuild.registry.push import push

    monkeypatch.setattr("pybuild.registry.transport.lookup",
                        lambda host: Credentials("alice", USERS["alice"]))
    push(source, ref)
    monkeypatch.setattr("pybuild.registry.transport.lookup", lambda host: None)
    tokens.hits.clear()
    [record] = pull(Store(tmp_path / "target"), ref)
    assert record.id == source.refs.load().tags[ref]
    assert tokens.token_hits(PULL_PUBLIC) == 1, tokens.hits
