"""A push where a cross-repository mount is not allowed: the token server grants push on the
target but nothing on the repository the layer is known from; the layer is uploaded instead
and the push completes (as docker falls back)."""

from __future__ import annotations

from support.pushpull import make_image
from support.registry import serve
from support.registry_auth import TokenServer, isolate

from pybuild.registry.credentials import Credentials
from pybuild.registry.events import BlobProgress
from pybuild.registry.push import push
from pybuild.store import Store
from pybuild.store.images import tag

USERS = {"alice": "alices-pw", "bob": "bobs-pw"}
GRANTS = {"alice": {"alice/app": {"pull", "push"}}, "bob": {"bob/app": {"pull", "push"}}}


def as_user(monkeypatch, user: str) -> None:
    monkeypatch.setattr("pybuild.registry.transport.lookup",
                        lambda host: Credentials(user, USERS[user]))


def test_a_mount_refused_is_an_upload(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    with TokenServer(tmp_path / "tokens", USERS, GRANTS) as tokens, \
            serve(tmp_path, auth=tokens.auth_section()) as reg:
        store = Store(tmp_path / "root")
        make_image(store, f"{reg.host}/alice/app:1", ["shared"])
        as_user(monkeypatch, "alice")
        push(store, f"{reg.host}/alice/app:1")
        tag(store, f"{reg.host}/alice/app:1", f"{reg.host}/bob/app:1")
        as_user(monkeypatch, "bob")
        events: list = []
        [pushed] = push(store, f"{reg.host}/bob/app:1", on_event=events.append)
        states = [e.status for e in events if isinstance(e, BlobProgress)]
        assert "Pushed" in states and not any(s.startswith("Mounted") for s in states)
        assert pushed.digest.startswith("sha256:")
        # bob cannot read alice's repository, but his own has the layer now
        assert tokens.token_hits("repository:alice/app:pull") >= 1

