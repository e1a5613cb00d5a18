"""The registry the other tests use is the real server, listening on loopback only."""

from __future__ import annotations

import hashlib

import requests


def test_registry_answers_the_v2_api_on_loopback(registry):
    res = requests.get(f"http://{registry.host}/v2/", timeout=5)
    assert res.status_code == 200
    assert res.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert registry.config["http"]["addr"].startswith("127.0.0.1:")


def test_a_killed_registry_comes_back_with_its_storage(registry):
    blob = b"hello"

    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    start = requests.post(f"http://{registry.host}/v2/t/blobs/uploads/", timeout=5)
    assert start.status_code == 202
    loc = start.headers["Location"]
    url = loc if loc.startswith("http") else f"http://{registry.host}{loc}"
    put = requests.put(url, params={"digest": digest}, data=blob, timeout=5)
    assert put.status_code == 201
    registry.restart()
    got = requests.get(f"http://{registry.host}/v2/t/blobs/{digest}", timeout=5)
    assert got.content == blob
    assert registry.blob_path(digest).read_bytes() == blob
