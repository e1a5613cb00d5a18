"""The library Client: typed images, names, history rows, filters, parents."""

from __future__ import annotations

import dataclasses

import pytest

import pybuild
from pybuild.client import Client, Image
from pybuild.errors import ImageError, ImageNotFound
from pybuild.image.config import HistoryEntry
from pybuild.store import LayerRef


@pytest.fixture
def client(tmp_path, busybox_tar):
    client = Client(tmp_path / "root")
    client.images.import_(busybox_tar, "base", changes=["LABEL tier=base"])
    return client


def child(client: Client, name: str, parent: str) -> Image:
    """A two-layer image on top of ``parent``, as the builder would commit it."""
    base = client.images.get(parent)
    layer = client.store.blobs.put_bytes(b"\0" * 1024)  # stands in for a tar
    config = dataclasses.replace(
        base.config, created="2030-01-01T00:00:00Z", diff_ids=(*base.layers, layer.digest),
        config=dataclasses.replace(base.config.config, labels={"tier": "app"}),
        history=(*base.config.history,
                 HistoryEntry(created="2030-01-01T00:00:00Z", created_by="ENV X=1",
                              empty_layer=True),
                 HistoryEntry(created="2030-01-01T00:00:00Z", created_by="RUN make")))
    record = client.store.records.get(base.id)
    new = client.store.commit_image(config.to_bytes(),
                                    [*record.layers, LayerRef(layer.digest, 1024)],
                                    parent=base.id)
    client.images.tag(new.id, name)
    return client.images.get(name)


def test_exported_and_typed(client):
    assert pybuild.Client is Client
    image = client.images.get("base")
    assert isinstance(image, Image) and image.tags == ("base:latest",)
    assert image.short_id == image.id[7:19] and image.labels == {"tier": "base"}
    assert client.images.get(image.id) == image == client.images.get(image.id[7:14])
    assert client.images.get("docker.io/library/base:latest") == image
    with pytest.raises(dataclasses.FrozenInstanceError):
        image.size = 1  # type: ignore[misc]
    with pytest.raises(ImageNotFound):
        client.images.get("absent")


def test_history_rows_map_layers_and_empty_steps(client):
    app = child(client, "app", "base")
    rows = client.images.history("app")
    assert [r.created_by for r in rows] == ["RUN make", "ENV X=1", ""]
    assert [r.size for r in rows] == [1024, 0, app.size - 1024]
    assert rows[0].id == app.id and rows[1].id == "<missing>"
    assert rows[1].empty_layer and rows[0].tags == ("app:latest",)


def test_children_protect_parents(client):
    child(client, "app", "base")
    base = client.images.get("base")
    with pytest.raises(ImageError, match="dependent child images"):
        client.images.remove(base.id, force=True)
    removed = client.images.remove("base")  # untagging the parent is fine; it stays
    assert [r.action for r in removed] == ["Untagged"]
    assert client.images.get(base.id).tags == ()  # still there, by id, with no name
    assert [i.id for i in client.images.list()] == [client.images.get("app").id]
    assert len(client.images.list(all=True)) == 2  # the untagged parent is intermediate


def test_filters(client):
    app = child(client, "app", "base")
    client.images.tag("app", "localhost/team/app:2")
    base = client.images.get("base")
    ids = lambda **f: [i.id for i in client.images.list(filters=f)]  # noqa: E731
    assert ids(label=["tier=app"]) == [app.id]
    assert ids(label=["tier"]) == [app.id, base.id]
    assert ids(dangling=["false"]) == [app.id, base.id] and ids(dangling=["true"]) == []
    assert ids(since=["base"]) == [app.id] and ids(before=["app"]) == [base.id]
    [only] = client.images.list(filters={"reference": ["localhost/*/*"]})
    assert only.tags == ("localhost/team/app:2",)
    assert [i.tags for i in client.images.list(filters={"reference": ["app:latest"]})] == [
        ("app:latest",)]


def test_repo_digests_go_with_their_last_tag(client):
    from pybuild.image.reference import parse_normalized
    from pybuild.store.images import set_repo_digest

    image = client.images.get("base")
    digest = "sha256:" + "c" * 64
    set_repo_digest(client.store, parse_normalized(f"base@{digest}"), image.id)
    assert client.images.get(f"base@{digest}").digests == (f"base@{digest}",)
    client.images.tag("base", "keep")
    removed = client.images.remove("base")
    assert [(r.action, r.subject) for r in removed] == [
        ("Untagged", "base:latest"), ("Untagged", f"base@{digest}")]
    assert client.images.get("keep").digests == ()
