"""buildah as the oracle: golden cases built by ``buildah bud --layers --format docker`` and by
pybuild give the same config fields and the same filesystem tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.build import config_of, image_tree, new_store, prepare_context, run_build
from support.paths import TESTDATA
from support.tree import tree

from pybuild.runner.probe import probe as host_probe

pytestmark = [pytest.mark.root, pytest.mark.oracle]

FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
          "Labels", "OnBuild", "Shell", "StopSignal", "Healthcheck")
BUILDAH_LABEL = "io.buildah.version"


def _cases() -> list[str]:
    out = []
    for path in sorted((TESTDATA / "builds").iterdir()):
        expect = path / "expect.json"
        if expect.is_file():
            data = json.loads(expect.read_text())
            if "error" not in data and data.get("buildah", True):
                out.append(path.name)
    return out


class Buildah:
    def __init__(self, root: Path):
        self.cmd = ["buildah", "--root", str(root / "storage"), "--runroot",
                    str(root / "run"), "--storage-driver", "overlay"]
        self.env = {**os.environ, "BUILDAH_RUNTIME": shutil.which("runc") or "runc"}

    def __call__(self, *args: str) -> str:
        res = subprocess.run([*self.cmd, *args], capture_output=True, text=True, env=self.env)
        if res.returncode != 0:
            raise AssertionError(f"buildah {' '.join(args)}: {res.stderr.strip()}")
        return res.stdout.strip()


@pytest.fixture(scope="module")
def buildah(tmp_path_factory, busybox_tar):
    if shutil.which("buildah") is None or shutil.which("runc") is None:
        pytest.skip("buildah and runc are needed (.ci/run installs them)")
    why = host_probe().reason_if_missing
    if why:
        pytest.skip(why)
    root = tmp_path_factory.mktemp("buildah")
    b = Buildah(root)
    ctr = b("from", "scratch")
    b("add", ctr, str(busybox_tar), "/")
    b("commit", "-q", ctr, "localhost/bench/busybox:latest")
    b("rm", ctr)
    yield b
    subprocess.run([*b.cmd, "rm", "--all"], capture_output=True, env=b.env)
    subprocess.run([*b.cmd, "rmi", "--all", "--force"], capture_output=True, env=b.env)
    subprocess.run(["umount", "-R", str(root / "storage" / "overlay")], capture_output=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    return new_store(tmp_path_factory.mktemp("pb") / "root", busybox_tar)


# buildah 1.28 leaves the empty mount points of its RUN steps in the image; BuildKit and
# pybuild do not (their bind mounts never reach a layer).
MOUNT_POINTS = {"etc/hostname", "etc/hosts", "etc/resolv.conf", "run"}


def _buildah_tree(b: Buildah, image: str, ours: dict) -> dict:
    ctr = b("from", image)
    try:
        theirs = tree(b("mount", ctr))
        for path in MOUNT_POINTS - set(ours):
            if path in theirs and theirs[path][4] == 0:
                del theirs[path]
        return theirs
    finally:
        b("umount", ctr)
        b("rm", ctr)


def _normal(config: dict) -> dict:
    out = {k: config.get(k) or None for k in FIELDS}
    if out["WorkingDir"] == "/":  # what a process gets without one; BuildKit writes it on scratch
        out["WorkingDir"] = None
    if out["Labels"]:
        out["Labels"] = {k: v for k, v in out["Labels"].items() if k != BUILDAH_LABEL} or None
    return out


def test_enough_cases():
    assert len(_cases()) >= 20, "the oracle compares at least 20 golden cases"


@pytest.mark.parametrize("case", _cases())
def test_same_as_buildah(case, buildah, store, tmp_path):
    expect = json.loads((TESTDATA / "builds" / case / "expect.json").read_text())
    context = prepare_context(case, tmp_path / "ctx")
    args = [f"--build-arg={k}={v}" for k, v in expect.get("build_args", {}).items()]
    if expect.get("target"):
        args.append(f"--target={expect['target']}")
    tag = f"localhost/oracle/{case}:latest"
    buildah("bud", "--layers", "--format", "docker", "-q", *args, "-t", tag, str(context))
    theirs = json.loads(buildah("inspect", "--type", "image", tag))["Docker"]
    image, _ = run_build(store, context, build_args=expect.get("build_args", {}),
                         target=expect.get("target"))
    ours = config_of(store, image)
    assert _normal(ours["config"]) == _normal(theirs["config"])
    assert (ours.get("author") or "") == (theirs.get("author") or "")
    mine = image_tree(store, image, tmp_path / "rootfs")
    assert mine == _buildah_tree(buildah, tag, mine)
