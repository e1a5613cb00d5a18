"""pybuild push against a real registry (docker-registry 2.8 on 127.0.0.1, open, plain
http), checked with skopeo as the oracle."""

from __future__ import annotations

import json

import pytest
from support.pushpull import blob_gets, cli, make_image, raw_manifest, sha, skopeo, store_state
from support.registry import serve

from pybuild.client import Client
from pybuild.errors import RegistryError
from pybuild.registry.events import BlobProgress
from pybuild.registry.push import push
from pybuild.registry.upload import UploadPolicy
from pybuild.store import Store
from pybuild.store.images import tag

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(tmp_path_factory.mktemp("push") / "root")


def test_skopeo_sees_the_pushed_digests(store, registry, tmp_path):
    image_id = make_image(store, f"{registry.host}/pushed:1", ["a1", "a2"])
    [pushed] = Client(store.root).images.push(f"{registry.host}/pushed:1")
    raw = raw_manifest(f"{registry.host}/pushed:1")
    assert sha(raw) == pushed.digest and len(raw) == pushed.size
    manifest = json.loads(raw)
    assert manifest["config"]["digest"] == image_id
    info = json.loads(skopeo("inspect", "--tls-verify=false",
                             f"docker://{registry.host}/pushed:1").stdout)
    assert info["Digest"] == pushed.digest
    assert info["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    assert all(layer["mediaType"].endswith("+gzip") for layer in manifest["layers"])
    # skopeo copies it out, checking every blob against the digests pybuild sent
    res = skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/pushed:1",
                 f"oci:{tmp_path / 'oci'}:x")
    assert res.returncode == 0, res.stderr
    index = json.loads((tmp_path / "oci" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed.digest
    table = store.refs.load()
    assert table.digests[f"{registry.host}/pushed@{pushed.digest}"] == image_id


def test_a_second_push_uploads_nothing_and_another_repo_mounts(store, registry):
    make_image(store, f"{registry.host}/again:1", ["b1"])
    push(store, f"{registry.host}/again:1")
    events: list = []
    push(store, f"{registry.host}/again:1", on_event=events.append)
    states = [e.status for e in events if isinstance(e, BlobProgress)]
    assert "Layer already exists" in states and "Pushed" not in states
    events.clear()
    tag(store, f"{registry.host}/again:1", f"{registry.host}/other:2")
    push(store, f"{registry.host}/other:2", on_event=events.append)
    states = [e.status for e in events if isinstance(e, BlobProgress)]
    assert "Mounted from again" in states and "Pushed" not in states
    assert raw_manifest(f"{registry.host}/other:2") == raw_manifest(f"{registry.host}/again:1")


def test_chunked_upload_is_the_same_blob(store, registry, tmp_path):
    make_image(store, f"{registry.host}/chunked:1", ["c1"], size=700_000)
    before = registry.log.read_text().count('"PATCH /v2/chunked/blobs/uploads/')
    [pushed] = push(store, f"{registry.host}/chunked:1",
                    policy=UploadPolicy(threshold=100_000, chunk=150_000))
    patches = registry.log.read_text().count('"PATCH /v2/chunked/blobs/uploads/') - before
    assert patches >= 4  # 700 kB of random bytes stay about that big when gzipped
    res = skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/chunked:1",
                 f"oci:{tmp_path / 'oci'}:x")
    assert res.returncode == 0, res.stderr
    assert sha(raw_manifest(f"{registry.host}/chunked:1")) == pushed.digest


def test_registry_killed_mid_push_then_the_next_push_completes(tmp_path):
    store = Store(tmp_path / "root")
    with serve(tmp_path) as reg:
        make_image(store, f"{reg.host}/killed:1", ["k1", "k2", "k3"], size=300_000)
        before = store_state(store)

        def kill_after_first_layer(event):
            if isinstance(event, BlobProgress) and event.status == "Pushed":
                reg.kill()

        with pytest.raises(RegistryError, match=f"{reg.host}/killed"):
            push(store, f"{reg.host}/killed:1", on_event=kill_after_first_layer)
        records, tags, digests, _blobs = store_state(store)
        assert (records, tags, digests) == before[:3]
        reg.start()
        [pushed] = push(store, f"{reg.host}/killed:1")
        assert sha(raw_manifest(f"{reg.host}/killed:1")) == pushed.digest
        records, tags, digests, _blobs = store_state(store)
        assert (records, tags) == before[:2]
        assert digests == {**before[2], f"{reg.host}/killed@{pushed.digest}": records[0]}


def test_push_cli_prints_dockers_last_line_and_errors_in_one(store, registry):
    make_image(store, f"{registry.host}/cli:1", ["d1"])
    res = cli(store.root, "push", f"{registry.host}/cli:1")
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("1: digest: sha256:") and last.endswith(
        f"size: {len(raw_manifest(f'{registry.host}/cli:1'))}")
    assert res.stdout.startswith(f"The push refers to repository [{registry.host}/cli]")
    quiet = cli(store.root, "push", "-q", f"{registry.host}/cli:1")
    assert quiet.stdout == f"{registry.host}/cli:1\n"
    missing = cli(store.root, "push", f"{registry.host}/cli:nope")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "cli:nope" in missing.stderr


def test_push_all_tags(store, registry):
    make_image(store, f"{registry.host}/many:1", ["e1"])
    make_image(store, f"{registry.host}/many:2", ["e2"])
    pushed = push(store, f"{registry.host}/many", all_tags=True)
    assert [p.tag for p in pushed] == ["1", "2"]
    for item in pushed:
        assert sha(raw_manifest(f"{registry.host}/many:{item.tag}")) == item.digest
    assert blob_gets(registry.log, "many") == 0  # a push reads no blob back
