"""Helpers for build tests: a store with the busybox base, builds through the library, the
image's tree through pybuild's own unpack, and a probe run inside the image."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pybuild.build import BuildOptions, build
from pybuild.store import Store
from support.paths import TESTDATA
from support.tree import tree

BASE = "localhost/bench/busybox:latest"


def new_store(root: Path, busybox_tar: Path) -> Store:
    subprocess.run([*pybuild_cmd(root), "import", str(busybox_tar), BASE], check=True,
                   capture_output=True)
    return Store(root)


def sandbox_store(tmp_path_factory, busybox_tar: Path, name: str) -> Store:
    """A store with the busybox base for tests that run RUN steps; skips with the probe's
    reason where this host cannot give a sandbox."""
    import pytest

    from pybuild.runner.probe import probe as host_probe

    why = host_probe().reason_if_missing
    if why:
        pytest.skip(why)
    return new_store(tmp_path_factory.mktemp(name) / "root", busybox_tar)


def pybuild_cmd(root: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "pybuild", "--root", str(root)]


def run_build(store: Store, context: Path, **kw) -> tuple[str, list]:
    events: list = []
    result = build(store, BuildOptions(context=str(context), **kw), events.append)
    return result.image_id, events


def image_tree(store: Store, image: str, dest: Path) -> dict[str, tuple]:
    from pybuild.store.images import resolve

    record = resolve(store, image)
    store.layers.unpack_to(record.diff_ids, dest)
    return tree(dest)


def config_of(store: Store, image: str) -> dict:
    import json

    from pybuild.store.images import resolve

    record = resolve(store, image)
    return json.loads(store.blobs.read_bytes(record.config_digest))


def probe(store: Store, image: str, command: str, *, user: str = "") -> str:
    """Run ``sh -c command`` in the image (a throwaway upper dir) and return its stdout."""
    from pybuild.runner.sandbox import run
    from pybuild.runner.spec import Process, Rootfs, RunSpec
    from pybuild.store.images import resolve

    record = resolve(store, image)
    lowers = tuple(reversed(store.layers.ensure(record.diff_ids)))
    scratch = Path(tempfile.mkdtemp(prefix="probe-", dir=store.root / "tmp"))
    try:
        (scratch / "u").mkdir()
        (scratch / "w").mkdir()
        out: list[bytes] = []
        env = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
        spec = RunSpec(Rootfs(lowers, scratch / "u", scratch / "w"),
                       Process(("/bin/sh", "-c", command), env=env))
        code = run(spec, stdout=out.append, stderr=out.append)
        text = b"".join(out).decode()
        assert code == 0, f"probe {command!r} exited {code}: {text}"
        return text
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def leftover_mounts(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(root) in line]


def no_leftovers(root: Path) -> None:
    assert leftover_mounts(root) == []
    tmp = root / "tmp"
    left = [p for p in os.listdir(tmp)] if tmp.is_dir() else []
    assert [p for p in left if not p.startswith("rec-")] == [], left


def prepare_context(case: str, dest: Path) -> Path:
    src = TESTDATA / "builds" / case
    shutil.copytree(src / "context", dest, symlinks=True)
    if (src / "setup.sh").is_file():
        subprocess.run(["bash", str(src / "setup.sh")], cwd=dest, check=True)
    return dest
