"""Volumes through the library: a real store under tmp_path, real files, root's chown."""

from __future__ import annotations

import json
import re
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybuild.client import Client
from pybuild.errors import PybuildError, UsageError, VolumeError
from pybuild.volumes import ANONYMOUS_LABEL, check_name


@pytest.fixture
def client(tmp_path):
    return Client(tmp_path / "root")


def test_create_inspect_shape(client, tmp_path):
    vol = client.volumes.create("data", labels={"a": "1"}, driver_opts={})
    assert vol.name == vol.id == "data"
    attrs = vol.attrs
    assert sorted(attrs) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options",
                             "Scope"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", attrs["CreatedAt"])
    assert (attrs["Driver"], attrs["Scope"], attrs["Labels"]) == ("local", "local", {"a": "1"})
    mountpoint = tmp_path / "root" / "volumes" / "data" / "_data"
    assert attrs["Mountpoint"] == str(mountpoint) and mountpoint.is_dir()
    assert stat.S_IMODE(mountpoint.stat().st_mode) == 0o755
    meta = json.loads((mountpoint.parent / "volume.json").read_text())
    assert meta["Anonymous"] is False and meta["Driver"] == "local"


def test_create_existing_returns_it(client):
    first = client.volumes.create("same", labels={"v": "1"})
    again = client.volumes.create("same", labels={"v": "2"})
    assert again.attrs == first.attrs  # docker keeps the first volume as it was
    assert [v.name for v in client.volumes.list()] == ["same"]


def test_anonymous_volume(client):
    vol = client.volumes.create()
    assert re.fullmatch(r"[0-9a-f]{64}", vol.name)
    assert vol.attrs["Labels"] == {ANONYMOUS_LABEL: ""}
    assert client.volumes.create().name != vol.name
    assert client.volumes.create("").attrs["Labels"] == {ANONYMOUS_LABEL: ""}  # as docker's API


def test_bad_driver_and_options(client):
    with pytest.raises(VolumeError, match="driver 'nfsplugin' not found"):
        client.volumes.create("x1", driver="nfsplugin")
    with pytest.raises(VolumeError, match="invalid option 'bogus'"):
        client.volumes.create("x2", driver_opts={"bogus": "1"})
    with pytest.raises(VolumeError, match="quota"):
        client.volumes.create("x3", driver_opts={"size": "1G"})
    vol = client.volumes.create("x4", driver_opts={"type": "tmpfs", "device": "tmpfs",
                                                   "o": "size=1m"})
    assert vol.attrs["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    assert [v.name for v in client.volumes.list()] == ["x4"]  # nothing half-made


@pytest.mark.parametrize("name", ["a", "-x", ".hidden", "a/b", "../up", "sp ace", "é1",
                                  "x" * 256])
def test_invalid_names_refused(client, name):
    with pytest.raises(VolumeError) as info:
        client.volumes.create(name)
    assert "\n" not in str(info.value) and (name[:20] in str(info.value))
    assert client.volumes.list() == []


@given(st.text(max_size=12))
def test_name_rule_is_dockers(name):
    valid = re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name, flags=re.ASCII) is not None
    try:
        check_name(name)
        accepted = True
    except VolumeError as err:
        accepted = False
        assert "\n" not in str(err) or "\n" in name
    assert accepted == valid


def test_get_missing_and_traversal(client):
    with pytest.raises(VolumeError, match="^No such volume: nope$"):
        client.volumes.get("nope")
    with pytest.raises(VolumeError, match="No such volume"):
        client.volumes.get("../../etc")


def test_list_filters(client):
    client.volumes.create("web-data", labels={"app": "web", "tier": "front"})
    client.volumes.create("db-data", labels={"app": "db"})
    anon = client.volumes.create().name
    names = lambda f: [v.name for v in client.volumes.list(f)]  # noqa: E731
    assert names(None) == sorted(["web-data", "db-data", anon])
    assert names({"name": "data"}) == ["db-data", "web-data"]  # a part of the name
    assert names({"name": "^web"}) == ["web-data"]  # docker's regular expression match
    assert names({"label": "app"}) == ["db-data", "web-data"]
    assert names({"label": ["app=web", "tier=front"]}) == ["web-data"]  # all labels
    assert names({"label": "app=nope"}) == []
    assert names({"driver": "local"}) == sorted(["web-data", "db-data", anon])
    used = {"db-data": ["c1"]}
    client.volumes.in_use = lambda n: used.get(n, [])
    assert names({"dangling": True}) == sorted(["web-data", anon])
    assert names({"dangling": "false"}) == ["db-data"]
    with pytest.raises(UsageError, match="dangling=maybe"):
        names({"dangling": "maybe"})
    with pytest.raises(UsageError, match="'colour'"):
        names({"colour": "red"})


def test_remove_and_in_use_refusal(tmp_path):
    users = {"keep": ["c0ffee", "beef"]}
    client = Client(tmp_path / "root")
    client.volumes.in_use = lambda n: users.get(n, [])
    client.volumes.create("keep")
    vol = client.volumes.create("gone")
    (vol.mountpoint / "f").write_text("x")
    vol.remove()
    assert not vol.mountpoint.exists()
    with pytest.raises(VolumeError, match=r"^remove keep: volume is in use - \[c0ffee, beef\]$"):
        client.volumes.remove("keep", force=True)  # force does not override use, as docker
    assert client.volumes.get("keep")
    with pytest.raises(VolumeError, match="No such volume: gone"):
        client.volumes.remove("gone")
    client.volumes.remove("gone", force=True)  # force lets a missing one pass
    assert not list((tmp_path / "root" / "tmp").iterdir())  # nothing left behind


def test_reload(client):
    vol = client.volumes.create("r1")
    before = vol.attrs
    client.volumes.remove("r1")
    client.volumes.create("r1", labels={"new": "1"})
    assert vol.attrs is before
    vol.reload()
    assert vol.attrs["Labels"] == {"new": "1"}
    vol.remove()
    with pytest.raises(VolumeError):
        vol.reload()


def test_prune_anonymous_only_unless_all(client):
    named = client.volumes.create("named")
    anon = client.volumes.create()
    busy = client.volumes.create()
    (anon.mountpoint / "blob").write_bytes(b"x" * 5000)
    client.volumes.in_use = lambda n: ["c1"] if n == busy.name else []
    result = client.volumes.prune()
    assert result == {"VolumesDeleted": [anon.name], "SpaceReclaimed": 5000}
    assert sorted(v.name for v in client.volumes.list()) == sorted([named.name, busy.name])
    (named.mountpoint / "n").write_bytes(b"y" * 10)
    assert client.volumes.prune({"all": True}) == {"VolumesDeleted": ["named"],
                                                   "SpaceReclaimed": 10}
    assert [v.name for v in client.volumes.list()] == [busy.name]


def test_prune_label_filters(client):
    client.volumes.create("a1", labels={"keep": "yes"})
    client.volumes.create("a2", labels={"team": "x"})
    client.volumes.create("a3")
    assert client.volumes.prune({"all": True, "label!": "keep"})["VolumesDeleted"] == \
        ["a2", "a3"]
    assert client.volumes.prune({"all": "true", "label": "keep=no"})["VolumesDeleted"] == []
    assert client.volumes.prune({"all": "1", "label": "keep=yes"})["VolumesDeleted"] == ["a1"]
    with pytest.raises(UsageError):
        client.volumes.prune({"dangling": True})


def test_unreadable_metadata_is_skipped_in_list(client):
    client.volumes.create("ok1")
    broken = client.store.root / "volumes" / "bad1"
    (broken / "_data").mkdir(parents=True)
    (broken / "volume.json").write_text("{not json")
    assert [v.name for v in client.volumes.list()] == ["ok1"]
    with pytest.raises(VolumeError, match="unreadable volume metadata"):
        client.volumes.get("bad1")


def test_volume_error_is_a_pybuild_error():
    assert issubclass(VolumeError, PybuildError)


def test_concurrent_creates_make_one_volume(tmp_path):
    import threading

    results, barrier = [], threading.Barrier(6)

    def create(i):
        client = Client(tmp_path / "root")  # its own lock file descriptor, as another process
        barrier.wait()
        results.append(client.volumes.create("shared", labels={"who": str(i)}).attrs)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(r == results[0] for r in results)
    assert [p.name for p in (tmp_path / "root" / "volumes").iterdir()] == ["shared"]
    assert list((tmp_path / "root" / "tmp").iterdir()) == []


def test_in_use_comes_from_the_clients_containers(client):
    from types import SimpleNamespace

    client.volumes.create("used")
    client.containers = SimpleNamespace(using_volume=lambda n: ["web1"] if n == "used" else [])
    with pytest.raises(VolumeError, match=r"in use - \[web1\]"):
        client.volumes.remove("used")
    assert client.volumes.prune({"all": True})["VolumesDeleted"] == []
