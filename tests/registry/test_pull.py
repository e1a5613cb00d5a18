"""pybuild pull from a real registry (docker-registry 2.8 on 127.0.0.1): images skopeo pushed,
by tag and digest, all tags, mirrors, zstd and plain layers, and what a bad blob leaves."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest
import zstandard
from support.net import OFFLINE
from support.pushpull import (
    GZIP_LAYER,
    OCI_INDEX,
    blob_gets,
    cli,
    layer_tar,
    make_image,
    push_raw,
    put_manifest,
    raw_manifest,
    sha,
    skopeo,
    store_state,
)
from support.registry import free_port

from pybuild.errors import DigestMismatch, RegistryError, UsageError
from pybuild.registry.events import BlobProgress
from pybuild.registry.pull import pull
from pybuild.registry.push import push
from pybuild.store import Store

pytestmark = pytest.mark.oracle
GZIP = GZIP_LAYER


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A store to push from."""
    return Store(tmp_path_factory.mktemp("source") / "root")


def test_an_image_skopeo_pushed_pulls_and_runs(busybox_tar, registry, tmp_path):
    from support.build import new_store

    from pybuild.runner.probe import probe

    origin = new_store(tmp_path / "origin", busybox_tar)
    saved = cli(origin.root, "save", "-o", str(tmp_path / "bb.tar"),
                "localhost/bench/busybox:latest")
    assert saved.returncode == 0, saved.stderr
    res = skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{tmp_path / 'bb.tar'}",
                 f"docker://{registry.host}/skopeo/bb:1")
    assert res.returncode == 0, res.stderr
    root = tmp_path / "fresh"
    pulled = cli(root, "pull", f"{registry.host}/skopeo/bb:1")
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.splitlines()[-1] == f"{registry.host}/skopeo/bb:1"
    want = json.loads(cli(origin.root, "inspect", "localhost/bench/busybox").stdout)[0]
    got = json.loads(cli(root, "inspect", f"{registry.host}/skopeo/bb:1").stdout)[0]
    assert got["Id"] == want["Id"] and got["RootFS"] == want["RootFS"]
    raw = raw_manifest(f"{registry.host}/skopeo/bb:1")
    assert got["RepoDigests"] == [f"{registry.host}/skopeo/bb@{sha(raw)}"]
    why = probe().reason_if_missing
    if why:
        pytest.skip(why)
    ran = cli(root, "run", "--rm", "--network", "none", f"{registry.host}/skopeo/bb:1",
              "echo", "ok")
    assert (ran.returncode, ran.stdout) == (0, "ok\n"), ran.stderr


def test_pull_by_digest_and_a_second_pull_fetches_no_blob(source, registry, tmp_path):
    image_id = make_image(source, f"{registry.host}/bydigest:1", ["p1", "p2"])
    [pushed] = push(source, f"{registry.host}/bydigest:1")
    store = Store(tmp_path / "root")
    [record] = pull(store, f"{registry.host}/bydigest@{pushed.digest}")
    assert record.id == image_id
    table = store.refs.load()
    assert table.digests == {f"{registry.host}/bydigest@{pushed.digest}": image_id}
    assert table.tags == {}  # a digest names no tag
    before = blob_gets(registry.log, "bydigest")
    events: list = []
    pull(store, f"{registry.host}/bydigest:1", on_event=events.append)
    assert blob_gets(registry.log, "bydigest") == before
    states = [e.status for e in events if isinstance(e, BlobProgress)]
    assert states == ["Already exists", "Already exists"]
    assert store.refs.load().tags == {f"{registry.host}/bydigest:1": image_id}


def test_a_manifest_list_selects_the_platform(source, registry, tmp_path):
    amd = make_image(source, f"{registry.host}/multi:amd64", ["m1"], arch="amd64")
    arm = make_image(source, f"{registry.host}/multi:arm64", ["m2"], arch="arm64")
    descs = []
    for arch in ("arm64", "amd64"):
        [pushed] = push(source, f"{registry.host}/multi:{arch}")
        descs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "digest": pushed.digest, "size": pushed.size,
                      "platform": {"architecture": arch, "os": "linux"}})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs}
    index_digest = put_manifest(registry.host, "multi", "latest", index, OCI_INDEX)
    store = Store(tmp_path / "root")
    [record] = pull(store, f"{registry.host}/multi")
    assert record.id == amd
    assert store.refs.load().digests[f"{registry.host}/multi@{index_digest}"] == amd
    [other] = pull(store, f"{registry.host}/multi:latest", platform="linux/arm64")
    assert other.id == arm
    res = cli(tmp_path / "root", "pull", "--platform", "linux/s390x", f"{registry.host}/multi")
    assert res.returncode == 1 and res.stderr.count("\n") == 1
    assert "linux/s390x" in res.stderr and "linux/amd64" in res.stderr
    with pytest.raises(RegistryError, match="is for linux/arm64, not linux/amd64"):
        pull(store, f"{registry.host}/multi:arm64", platform="linux/amd64")
    shown = cli(tmp_path / "root", "manifest", "inspect", f"{registry.host}/multi")
    assert json.loads(shown.stdout) == index


def test_zstd_and_plain_layers(registry, tmp_path):
    plain, other = layer_tar("z1", 50_000), layer_tar("z2", 50_000)
    layers = [(zstandard.ZstdCompressor().compress(plain),
               "application/vnd.oci.image.layer.v1.tar+zstd"),
              (other, "application/vnd.oci.image.layer.v1.tar")]
    _digest, config, _size = push_raw(registry.host, "zstd", "1", layers,
                                      [sha(plain), sha(other)])
    store = Store(tmp_path / "root")
    [record] = pull(store, f"{registry.host}/zstd:1")
    assert record.id == config and record.diff_ids == (sha(plain), sha(other))
    assert store.blobs.read_bytes(sha(plain)) == plain


def test_a_corrupt_blob_keeps_nothing(registry, tmp_path):
    good, bad = layer_tar("x1", 300_000), layer_tar("x2", 300_000)
    blobs = [gzip.compress(good, mtime=0), gzip.compress(bad, mtime=0)]
    push_raw(registry.host, "corrupt", "1", [(b, GZIP) for b in blobs], [sha(good), sha(bad)])
    path = registry.blob_path(sha(blobs[1]))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    store = Store(tmp_path / "root")
    before = store_state(store)
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        pull(store, f"{registry.host}/corrupt:1")
    assert store_state(store) == before == ([], {}, {}, [])
    assert not any((tmp_path / "root" / "tmp").iterdir())
    res = cli(tmp_path / "root", "pull", f"{registry.host}/corrupt:1")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "digest mismatch" in res.stderr


def test_missing_tag_and_unknown_host_are_one_line(registry, tmp_path):
    # without the tests' dead proxy a name is looked up: in a netns of its own, where the
    # lookup fails without leaving the machine (a .invalid name never resolves, RFC 2606)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    missing = cli(tmp_path / "root", "pull", f"{registry.host}/nothing:here")
    unknown = subprocess.run([*OFFLINE, sys.executable, "-m", "pybuild", "--root",
                              str(tmp_path / "root"), "pull", "no-such-host.invalid/x:1"],
                             capture_output=True, text=True, timeout=60, env=env)
    for name, words, res in ((f"{registry.host}/nothing:here", "manifest unknown", missing),
                             ("no-such-host.invalid/x:1", "unknown host", unknown)):
        assert res.returncode == 1 and res.stdout == ""
        assert res.stderr == f"error: {name}: {words}\n" or (
            res.stderr.count("\n") == 1 and words in res.stderr), res.stderr


def test_all_tags(source, registry, tmp_path):
    ids = {t: make_image(source, f"{registry.host}/tags:{t}", [f"t{t}"]) for t in ("a", "b")}
    push(source, f"{registry.host}/tags", all_tags=True)
    store = Store(tmp_path / "root")
    res = cli(tmp_path / "root", "pull", "-a", "-q", f"{registry.host}/tags")
    assert res.returncode == 0, res.stderr
    assert store.refs.load().tags == {f"{registry.host}/tags:{t}": i for t, i in ids.items()}


def test_docker_io_names_go_to_a_mirror_first(source, registry, tmp_path, monkeypatch):
    image_id = make_image(source, f"{registry.host}/library/mirrored:1", ["mm"])
    push(source, f"{registry.host}/library/mirrored:1")
    config = tmp_path / "daemon.json"
    dead = f"http://127.0.0.1:{free_port()}"  # the first mirror is down: the next is asked
    config.write_text(json.dumps({"registry-mirrors": [dead, f"http://{registry.host}"]}))
    monkeypatch.setenv("PYBUILD_CONFIG", str(config))
    store = Store(tmp_path / "root")
    [record] = pull(store, "mirrored:1")
    assert record.id == image_id
    assert store.refs.load().tags == {"docker.io/library/mirrored:1": image_id}


def test_a_pulled_image_goes_back_without_uploading_a_layer(registry, tmp_path, busybox_tar):
    from support.build import new_store

    origin = new_store(tmp_path / "origin", busybox_tar)
    cli(origin.root, "save", "-o", str(tmp_path / "bb.tar"), "localhost/bench/busybox:latest")
    res = skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{tmp_path / 'bb.tar'}",
                 f"docker://{registry.host}/schema2/bb:1")
    assert res.returncode == 0, res.stderr
    theirs = json.loads(raw_manifest(f"{registry.host}/schema2/bb:1"))
    assert theirs["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    store = Store(tmp_path / "root")
    pull(store, f"{registry.host}/schema2/bb:1")
    cli(store.root, "tag", f"{registry.host}/schema2/bb:1", f"{registry.host}/schema2/back:1")
    events: list = []
    [pushed] = push(store, f"{registry.host}/schema2/back:1", on_event=events.append)
    states = [e.status for e in events if isinstance(e, BlobProgress)]
    assert states == ["Preparing", "Mounted from schema2/bb"]
    ours = json.loads(raw_manifest(f"{registry.host}/schema2/back:1"))
    assert ours["mediaType"] == theirs["mediaType"]
    assert ours["layers"] == theirs["layers"] and ours["config"] == theirs["config"]
    assert not list((tmp_path / "root" / "compressed").glob("*.json"))  # nothing recompressed
    assert pushed.digest.startswith("sha256:")


def test_the_client_takes_docker_pys_arguments(source, registry, tmp_path):
    from pybuild.client import Client

    ids = {t: make_image(source, f"{registry.host}/client:{t}", [f"cl{t}"]) for t in ("1", "2")}
    push(source, f"{registry.host}/client", all_tags=True)
    client = Client(tmp_path / "root")
    image = client.images.pull(f"{registry.host}/client", tag="1")
    assert image.id == ids["1"] and f"{registry.host}/client:1" in image.tags
    images = client.images.pull(f"{registry.host}/client", all_tags=True)
    assert sorted(i.id for i in images) == sorted(ids.values())
    with pytest.raises(UsageError):
        client.images.pull(f"{registry.host}/client:1", tag="2")
    pushed = client.images.push(f"{registry.host}/client", tag="2")
    assert [p.reference for p in pushed] == [f"{registry.host}/client:2"]


def test_a_layer_twice_in_one_image_is_fetched_once(registry, tmp_path):
    tar = layer_tar("twice", 20_000)
    blob = gzip.compress(tar, mtime=0)
    _digest, config, _size = push_raw(registry.host, "twice", "1",
                                      [(blob, GZIP_LAYER), (blob, GZIP_LAYER)],
                                      [sha(tar), sha(tar)])
    store = Store(tmp_path / "root")
    before = blob_gets(registry.log, "twice")
    [record] = pull(store, f"{registry.host}/twice:1")
    assert record.id == config and record.diff_ids == (sha(tar), sha(tar))
    assert blob_gets(registry.log, "twice") - before == 2  # the config and the layer once
