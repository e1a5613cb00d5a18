"""Hostile and broken archives: refused with one line, exit 1, nothing written outside,
the store unchanged; and a load killed at random leaves a store that checks clean."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import zstandard
from support.archive import (
    make_image,
    pybuild,
    pybuild_argv,
    store_state,
    system_check_clean,
    tar_bytes,
)

from pybuild.archive import save
from pybuild.store import Store

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


@pytest.fixture(scope="module")
def source(tmp_path_factory, busybox_tar):
    root = tmp_path_factory.mktemp("hostile") / "root"
    image_id = make_image(root, busybox_tar)
    out = io.BytesIO()
    save(Store(root), ["busybox"], out)
    store = Store(root)
    layers = [store.blobs.read_bytes(d) for d in store.records.get(image_id).diff_ids]
    return root, image_id, out.getvalue(), store.blobs.read_bytes(image_id), layers


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(config: bytes, layers: list[bytes], media: str = GZIP, *, drop: tuple = (),
          before: list[tuple] = (), after: list[tuple] = ()) -> bytes:
    """A consistent docker + OCI archive from raw parts (layers as they go in the tar)."""
    blobs = {_sha(config): config}
    descs = []
    for layer in layers:
        blobs[_sha(layer)] = layer
        descs.append({"mediaType": media, "digest": _sha(layer), "size": len(layer)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType":
                           "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _sha(config), "size": len(config)},
                           "layers": descs}).encode()
    blobs[_sha(manifest)] = manifest
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(manifest),
         "size": len(manifest), "annotations": {
             "io.containerd.image.name": "docker.io/library/evil:1"}}]}
    docker = [{"Config": "blobs/sha256/" + _sha(config)[7:], "RepoTags": ["evil:1"],
               "Layers": ["blobs/sha256/" + d["digest"][7:] for d in descs]}]
    entries = list(before)
    entries += [("blobs/sha256/" + d[7:], "file", b, 0o644) for d, b in sorted(blobs.items())
                if d not in drop]
    entries += [("index.json", "file", json.dumps(index).encode(), 0o644),
                ("manifest.json", "file", json.dumps(docker).encode(), 0o644),
                ("oci-layout", "file", b'{"imageLayoutVersion":"1.0.0"}', 0o644)]
    return tar_bytes(entries + list(after))


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _cases(source, outside: Path) -> dict[str, tuple[bytes, str]]:
    _root, _id, good, config, layers = source
    gz = [_gz(layer) for layer in layers]
    payload = ("evil", "file", b"pwned\n", 0o644)
    truncated_gz = gz[:2] + [gz[2][: len(gz[2]) // 2]]
    zst = [zstandard.ZstdCompressor().compress(layer) for layer in layers]
    wrong_config = json.loads(config)
    wrong_config["rootfs"]["diff_ids"][1] = _sha(b"something else")
    return {
        "dotdot": (build(config, gz, before=[("../" * 8 + str(outside)[1:] + "/evil",)
                                              + payload[1:]]), "'..' leads outside"),
        "absolute": (build(config, gz, before=[(str(outside / "evil"),) + payload[1:]]),
                     "absolute path"),
        "symlink-write-through": (build(config, gz, before=[
            ("blobs", "symlink", str(outside), 0o777), ("blobs/evil",) + payload[1:]]),
            "absolute target"),
        "relative-symlink-escape": (build(config, gz, before=[
            ("x", "symlink", "../../../../../../..", 0o777), ("x/evil",) + payload[1:]]),
            "points outside"),
        "symlink-inside-then-through": (build(config, gz, before=[
            ("d", "symlink", "blobs", 0o777), ("d/evil",) + payload[1:]]),
            "is a link"),
        "hardlink-outside": (build(config, gz, before=[
            ("passwd", "hardlink", "/etc/passwd", 0o644)]), "absolute target"),
        "hardlink-dotdot": (build(config, gz, before=[
            ("passwd", "hardlink", "../../../etc/passwd", 0o644)]), "points outside"),
        "device": (build(config, gz, before=[("null", "chr", None, 0o666)]),
                   "character device"),
        "fifo": (build(config, gz, before=[("pipe", "fifo", None, 0o666)]), "fifo"),
        "digest-mismatch": (_flip_layer_byte(good), "content has digest"),
        "truncated-gzip": (build(config, truncated_gz), "truncated gzip"),
        "truncated-zstd": (build(config, zst[:2] + [zst[2][:-9]], ZSTD), "zstd"),
        "missing-blob": (build(config, gz, drop=(_sha(gz[1]),)), "not in the archive"),
        "diff-id-mismatch": (build(json.dumps(wrong_config).encode(), gz),
                             "the config says"),
        "duplicate-entry": (build(config, gz, after=[("index.json", "file", b"{}", 0o644)]),
                            "two entries"),
        "truncated-archive": (good[: len(good) // 2], "truncated"),
        "not-a-tar": (b"hello world, not a tar" * 100, "not a tar archive"),
    }


def _flip_layer_byte(data: bytes) -> bytes:
    """The same archive with one byte of the largest blob changed, name kept."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
        members = src.getmembers()
        biggest = max(members, key=lambda m: m.size)
        for member in members:
            body = src.extractfile(member).read() if member.isfile() else None
            if member is biggest:
                body = body[:100] + bytes([body[100] ^ 1]) + body[101:]
            dst.addfile(member, io.BytesIO(body) if body is not None else None)
    return out.getvalue()


CASES = ["dotdot", "absolute", "symlink-write-through", "relative-symlink-escape",
         "symlink-inside-then-through", "hardlink-outside", "hardlink-dotdot", "device", "fifo",
         "digest-mismatch", "truncated-gzip", "truncated-zstd", "missing-blob",
         "diff-id-mismatch", "duplicate-entry", "truncated-archive", "not-a-tar"]


# through a pipe too (the streaming path), for a few that fail at different stages
PIPED = ["dotdot", "symlink-write-through", "digest-mismatch", "truncated-gzip",
         "missing-blob", "truncated-archive"]


@pytest.mark.parametrize("case, via", [(c, "file") for c in CASES] + [(c, "pipe") for c in PIPED])
def test_hostile_archive_is_refused(source, tmp_path, case, via):
    outside = tmp_path / "outside"
    outside.mkdir()
    data, message = _cases(source, outside)[case]
    root = tmp_path / "store"
    pybuild(root, "system", "check")  # creates the root
    before = store_state(root)
    if via == "file":
        (tmp_path / "in.tar").write_bytes(data)
        result = pybuild(root, "load", "-i", str(tmp_path / "in.tar"), check=False)
    else:
        result = pybuild(root, "load", input=data, check=False)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert result.stdout == b""
    assert list(outside.iterdir()) == []
    assert not Path("/evil").exists()
    assert store_state(root) == before
    assert not (root / "tmp").exists() or list((root / "tmp").iterdir()) == []
    system_check_clean(root)


def test_a_layout_dir_with_a_link_outside_is_refused(source, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    layout = tmp_path / "layout"
    save(Store(source[0]), ["busybox"], format="oci-dir", dest_dir=layout)
    (outside / "index.json").write_bytes((layout / "index.json").read_bytes())
    (layout / "index.json").unlink()
    (layout / "index.json").symlink_to(outside / "index.json")
    result = pybuild(tmp_path / "store", "load", "-i", str(layout), check=False)
    assert result.returncode == 1 and "links outside" in result.stderr.decode()


def test_sigkill_during_load_leaves_a_clean_store(source, tmp_path):
    _root, _id, _good, config, layers = source
    big = tar_bytes([(f"big{i}", "file", os.urandom(16 << 20), 0o644) for i in range(4)])
    archive = tmp_path / "big.tar"
    archive.write_bytes(_big_archive(config, layers, big))
    start = time.perf_counter()
    pybuild(tmp_path / "timing", "load", "-i", str(archive))
    duration = time.perf_counter() - start
    rng, killed = random.Random(7), 0
    # Each kill gets a fresh store: a store that already holds some blobs loads faster,
    # and the later kills would then come too late.
    for n, fraction in enumerate((0.1, 0.2, 0.5, 0.8, 0.93, 0.98)):  # start-up .. committing
        store = tmp_path / f"store{n}"
        proc = subprocess.Popen(pybuild_argv(store, "load", "-i", archive),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * fraction * rng.uniform(0.97, 1.03))
        proc.send_signal(signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL
        if store.exists():
            system_check_clean(store)
    assert killed >= 2, "the loads finished before they could be killed"
    for n in range(6):  # a load over what each killed load left behind completes
        store = tmp_path / f"store{n}"
        result = pybuild(store, "load", "-i", str(archive))
        assert result.stdout.decode() == "Loaded image: evil:1\n"
        system_check_clean(store)


def _big_archive(config: bytes, layers: list[bytes], big: bytes) -> bytes:
    data = json.loads(config)
    data["rootfs"]["diff_ids"].append(_sha(big))
    data["history"] = data.get("history", []) + [{"created_by": "big"}]
    new_config = json.dumps(data).encode()
    return build(new_config, [_gz(layer) for layer in layers] + [big],
                 media="application/vnd.oci.image.layer.v1.tar")


def test_concurrent_loads_of_one_archive(source, tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(source[2])
    command = pybuild_argv(tmp_path / "store", "load", "-i", archive)
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert out.decode() == "Loaded image: busybox:latest\n"
    system_check_clean(tmp_path / "store")
