"""Helpers for the archive tests: a busybox image with two more layers, hand-made tars."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

from pybuild.client import Client
from pybuild.image.config import HistoryEntry, ImageConfig
from pybuild.store import LayerRef

TAG = "docker.io/library/busybox:latest"


def tar_bytes(entries: list[tuple], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar of (name, kind, payload, mode[, uid]): kind file|dir|symlink|hardlink|fifo|chr."""
    buf = io.BytesIO()
    kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, payload, mode, *rest in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kinds[kind], mode
            info.uid = info.gid = rest[0] if rest else 0
            data = None
            if kind == "file":
                info.size, data = len(payload), io.BytesIO(payload)
            elif kind in ("symlink", "hardlink"):
                info.linkname = payload
            tar.addfile(info, data)
    return buf.getvalue()


LAYER_2 = [
    ("etc", "dir", None, 0o755),
    ("etc/hello", "file", b"hello\n", 0o644),
    ("opt", "dir", None, 0o755),
    ("opt/app", "dir", None, 0o750, 1000),
    ("opt/app/run.sh", "file", b"#!/bin/sh\necho run\n", 0o755, 1000),
    ("opt/app/link", "symlink", "run.sh", 0o777),
    ("opt/app/hard", "hardlink", "opt/app/run.sh", 0o755),
    ("opt/app/big", "file", bytes(range(256)) * 4096, 0o600),
]
LAYER_3 = [
    ("etc", "dir", None, 0o755),
    ("etc/.wh.hello", "file", b"", 0o644),
    ("opt", "dir", None, 0o755),
    ("opt/app", "dir", None, 0o750, 1000),
    ("opt/app/.wh..wh..opq", "file", b"", 0o644),
    ("opt/app/new", "file", b"replaced\n", 0o640, 1000),
    ("root", "dir", None, 0o700),
    ("root/.profile", "file", b"export PS1='# '\n", 0o644),
]


def make_image(root: Path, busybox_tar: Path, tag: str = TAG) -> str:
    """Import busybox and commit two more layers on top; the image id."""
    client = Client(root)
    base = client.images.import_(busybox_tar)
    store = client.store
    record = store.records.get(base.id)
    config = ImageConfig.from_bytes(store.blobs.read_bytes(base.id))
    layers = list(record.layers)
    history = list(config.history)
    for entries in (LAYER_2, LAYER_3):
        info = store.blobs.put(io.BytesIO(tar_bytes(entries)))
        layers.append(LayerRef(info.digest, info.size))
        history.append(HistoryEntry(created=config.created, created_by="test layer"))
    config = replace(config, diff_ids=tuple(ly.diff_id for ly in layers),
                     history=tuple(history))
    new = store.commit_image(config.to_bytes(), layers)
    store.refs.update(lambda tags, _d: tags.__setitem__(tag, new.id))
    return new.id


def pybuild_argv(root: Path, *args: object) -> list[str]:
    """The command line of ``pybuild --root ROOT ARGS...`` run from this checkout."""
    return [sys.executable, "-m", "pybuild", "--root", str(root), *map(str, args)]


def pybuild(root: Path, *args: str, input: bytes | None = None,  # noqa: A002
            check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(pybuild_argv(root, *args), input=input, capture_output=True)
    if check and result.returncode != 0:
        raise AssertionError(f"pybuild {args} failed: {result.stderr.decode()}")
    return result


def store_state(root: Path) -> dict[str, str]:
    """Every file under the store root except tmp/ and locks, with a hash of its content."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("tmp") or rel in ("lock", "gc.lock") or not path.is_file():
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def system_check_clean(root: Path) -> None:
    result = pybuild(root, "system", "check", check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def read_tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def docker_manifest(data: bytes) -> list[dict]:
    return json.loads(read_tar_members(data)["manifest.json"])
