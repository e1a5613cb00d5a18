"""Helpers for the pull and push tests: scratch stores, images made from chosen layer bytes,
raw uploads straight through the distribution API (the registry's side, not pybuild's),
skopeo as the oracle, and the registry's access log read as counts."""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests

from pybuild.image.canonical import canonical_json
from pybuild.store import LayerRef, Store

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def cli(root: Path, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pybuild", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=timeout, **kw)


def skopeo(*args: str) -> subprocess.CompletedProcess:
    """``skopeo ARGS`` (the test skips where skopeo is not installed)."""
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def raw_manifest(ref: str) -> bytes:
    """The manifest's bytes as the registry holds them at ``ref`` (plain http), read by skopeo."""
    res = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    assert res.returncode == 0, res.stderr
    return res.stdout.encode()


def layer_tar(seed: str, size: int) -> bytes:
    """A tar holding one file of ``size`` bytes that do not compress (a seeded stream)."""
    data = random.Random(seed).randbytes(size)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"data/{seed}.bin")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_for(diff_ids: list[str], *, arch: str = "amd64", label: str = "") -> bytes:
    return canonical_json({
        "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Labels": {"seed": label} if label else None},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z"} for _ in diff_ids]})


def make_image(store: Store, name: str, seeds: list[str], size: int = 200_000, *,
               arch: str = "amd64") -> str:
    """An image of one layer per seed, tagged ``name``; its id."""
    with store.writing():
        layers = [store.put_layer(io.BytesIO(layer_tar(s, size))) for s in seeds]
        record = store.commit_image(config_for([ly.diff_id for ly in layers], arch=arch,
                                               label="/".join(seeds)),
                                    [LayerRef(ly.diff_id, ly.size) for ly in layers])
    _tag(store, name, record.id)
    return record.id


def _tag(store: Store, name: str, image_id: str) -> None:
    from pybuild.image.reference import parse_normalized

    key = str(parse_normalized(name))
    store.refs.update(lambda tags, _digests: tags.__setitem__(key, image_id))


def put_blob(host: str, repo: str, data: bytes) -> dict:
    """Upload ``data`` monolithically; its descriptor fields."""
    start = requests.post(f"http://{host}/v2/{repo}/blobs/uploads/", timeout=30)
    assert start.status_code == 202, start.text
    loc = start.headers["Location"]
    url = loc if loc.startswith("http") else f"http://{host}{loc}"
    put = requests.put(url, params={"digest": sha(data)}, data=data, timeout=60)
    assert put.status_code == 201, put.text
    return {"digest": sha(data), "size": len(data)}


def put_manifest(host: str, repo: str, ref: str, doc: dict, media_type: str) -> str:
    raw = json.dumps(doc).encode()
    res = requests.put(f"http://{host}/v2/{repo}/manifests/{ref}", data=raw,
                       headers={"Content-Type": media_type}, timeout=30)
    assert res.status_code == 201, res.text
    return sha(raw)


def push_raw(host: str, repo: str, ref: str, layers: list[tuple[bytes, str]], diff_ids: list[str],
             *, arch: str = "amd64") -> tuple[str, str, int]:
    """An image uploaded as given (layer bytes and media types): (manifest digest, config
    digest, manifest size)."""
    config = config_for(diff_ids, arch=arch)
    descs = [{"mediaType": kind, **put_blob(host, repo, data)} for data, kind in layers]
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": OCI_CONFIG, **put_blob(host, repo, config)}, "layers": descs}
    raw = json.dumps(doc).encode()
    return put_manifest(host, repo, ref, doc, OCI_MANIFEST), sha(config), len(raw)


def blob_gets(log: Path, repo: str) -> int:
    """How many blob GETs the registry's access log shows for ``repo``."""
    needle = f'"GET /v2/{repo}/blobs/'
    return log.read_text(errors="replace").count(needle)


def store_state(store: Store) -> tuple:
    """What a failed pull or push must not change: records, names, the blobs."""
    table = store.refs.load()
    return (sorted(store.records.ids()), dict(table.tags), dict(table.digests),
            sorted(store.blobs.digests()))
