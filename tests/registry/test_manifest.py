"""``pybuild manifest inspect`` prints the registry's own bytes; what a manifest is, from
its mediaType or Content-Type, and schema 1 refused."""

from __future__ import annotations

import json

import pytest
from support.pushpull import GZIP_LAYER, cli, layer_tar, push_raw, sha

from pybuild.errors import RegistryError
from pybuild.image import mediatypes as mt
from pybuild.registry.manifests import classify


def test_inspect_prints_the_raw_manifest(registry, tmp_path):
    import gzip

    tar = layer_tar("i1", 1000)
    digest, config, size = push_raw(registry.host, "inspected", "1",
                                    [(gzip.compress(tar, mtime=0), GZIP_LAYER)], [sha(tar)])
    res = cli(tmp_path / "root", "manifest", "inspect", f"{registry.host}/inspected:1")
    assert res.returncode == 0, res.stderr
    raw = res.stdout.rstrip("\n").encode()
    assert sha(raw) == digest and len(raw) == size
    assert json.loads(raw)["config"]["digest"] == config
    by_digest = cli(tmp_path / "root", "manifest", "inspect",
                    f"{registry.host}/inspected@{digest}")
    assert by_digest.stdout == res.stdout
    missing = cli(tmp_path / "root", "manifest", "inspect", f"{registry.host}/inspected:2")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == f"error: {registry.host}/inspected:2: manifest unknown\n"


def test_schema1_is_refused_in_one_line():
    doc = json.dumps({"schemaVersion": 1, "name": "x", "tag": "1", "fsLayers": []}).encode()
    with pytest.raises(RegistryError, match="schema 1 are not supported") as err:
        classify(doc, "application/vnd.docker.distribution.manifest.v1+prettyjws", "h/x:1")
    assert str(err.value).startswith("h/x:1: ") and "\n" not in str(err.value)


@pytest.mark.parametrize(("doc", "content_type", "kind"), [
    ({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST, "config": {}}, "", mt.DOCKER_MANIFEST),
    ({"schemaVersion": 2, "config": {}, "layers": []}, mt.OCI_MANIFEST, mt.OCI_MANIFEST),
    ({"schemaVersion": 2, "manifests": []}, "application/json", mt.OCI_INDEX),
    ({"schemaVersion": 2, "manifests": []}, mt.DOCKER_MANIFEST_LIST + "; charset=utf-8",
     mt.DOCKER_MANIFEST_LIST),
])
def test_the_kind_comes_from_the_document_then_the_header(doc, content_type, kind):
    fetched = classify(json.dumps(doc).encode(), content_type, "w")
    assert fetched.media_type == kind
    assert fetched.is_index == (kind in mt.INDEXES)
