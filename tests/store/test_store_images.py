"""``rmi`` at the store level (pybuild.store.images.remove): by name, by id, forced, and an
image a container uses (its gc root ``container-<id>``, as containers.create writes)."""

from __future__ import annotations

import pytest

from pybuild.errors import ImageError
from pybuild.image.config import ImageConfig
from pybuild.store import LayerRef, Store
from pybuild.store.images import Removal, remove

CTR = "c0ffee" * 10 + "abcd"
DIGEST = "sha256:" + "d" * 64


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "pb-images-root")


def commit(store: Store, *names: str) -> str:
    """A one-layer image under ``names`` (full docker.io references)."""
    layer = store.blobs.put_bytes(b"rmi test layer")
    config = ImageConfig(diff_ids=(layer.digest,)).to_bytes()
    record = store.commit_image(config, [LayerRef(layer.digest, layer.size)])

    def name(tags: dict[str, str], digests: dict[str, str]) -> None:
        for n in names:
            (digests if "@" in n else tags)[n] = record.id

    store.refs.update(name)
    return record.id


def use(store: Store, image_id: str) -> None:
    store.set_gc_root(f"container-{CTR}", blobs=[image_id])


def names(store: Store) -> set[str]:
    table = store.refs.load()
    return set(table.tags) | set(table.digests)


def test_by_id_of_image_in_use_is_refused_and_keeps_everything(store):
    image_id = commit(store, "docker.io/library/app:latest", "docker.io/library/app:v1")
    use(store, image_id)
    with pytest.raises(ImageError) as err:
        remove(store, image_id[7:19])
    assert str(err.value) == (f"conflict: unable to delete {image_id[7:19]} (must be forced) - "
                              f"image is being used by stopped container {CTR[:12]}")
    assert store.records.has(image_id)
    assert names(store) == {"docker.io/library/app:latest", "docker.io/library/app:v1"}


def test_by_id_in_several_repositories_says_so_first(store):
    image_id = commit(store, "docker.io/library/app:latest", "docker.io/library/other:1")
    use(store, image_id)
    with pytest.raises(ImageError, match="referenced in multiple repositories"):
        remove(store, image_id[7:15])


def test_by_name_in_use_refused_when_last_name_else_untagged(store):
    image_id = commit(store, "docker.io/library/app:latest", "docker.io/library/app:v1")
    use(store, image_id)
    assert remove(store, "app:v1") == [Removal("Untagged", "app:v1")]
    with pytest.raises(ImageError, match='unable to remove repository reference "app"'):
        remove(store, "app")
    assert remove(store, "app", force=True) == [Removal("Untagged", "app:latest")]
    assert store.records.has(image_id) and names(store) == set()


def test_forced_by_id_in_use_untags_each_name_once_in_one_update(store, monkeypatch):
    image_id = commit(store, "docker.io/library/app:latest", f"docker.io/library/app@{DIGEST}")
    use(store, image_id)
    updates = []
    real_update = store.refs.update
    monkeypatch.setattr(store.refs, "update", lambda change: updates.append(change)
                        or real_update(change))
    out = remove(store, image_id[7:19], force=True)
    assert out == [Removal("Untagged", "app:latest"), Removal("Untagged", f"app@{DIGEST}")]
    assert len(updates) == 1
    assert names(store) == set() and store.records.has(image_id)  # its container keeps it


def test_by_id_not_in_use_deletes_its_names_and_itself(store):
    image_id = commit(store, "docker.io/library/app:latest", "docker.io/library/app:v1")
    out = remove(store, image_id[7:19])
    assert out == [Removal("Untagged", "app:latest"), Removal("Untagged", "app:v1"),
                   Removal("Deleted", image_id)]
    assert not store.records.has(image_id) and names(store) == set()
