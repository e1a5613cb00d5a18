"""``pybuild build`` through the CLI: the flags that only the command line has (``-q``,
``--iidfile``, ``--label``, ``--build-arg NAME`` from the environment, ``--secret``,
``--output``, ``--compression``, ``--platform``) and its failures (one line, exit 1, nothing
left behind, ``system check`` clean)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.build import config_of, leftover_mounts, probe, pybuild_cmd, sandbox_store

pytestmark = pytest.mark.root
DOCKERFILE = """\
FROM localhost/bench/busybox:latest
ARG FROMENV
RUN echo "$FROMENV" > /fromenv
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /toklen
LABEL in.file=1
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    return sandbox_store(tmp_path_factory, busybox_tar, "cli")


def pybuild(store, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*pybuild_cmd(store.root), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def make_context(tmp_path: Path, text: str = DOCKERFILE) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(text)
    return ctx


def clean(store) -> None:
    assert leftover_mounts(store.root) == []
    tmp = store.root / "tmp"
    assert [p for p in os.listdir(tmp) if not p.startswith("rec-")] == []
    check = pybuild(store, "system", "check")
    assert check.returncode == 0 and check.stdout == "", check.stdout + check.stderr


def test_quiet_iidfile_label_build_arg_from_env_secret(store, tmp_path):
    ctx = make_context(tmp_path)
    (tmp_path / "tok").write_text("12345")
    iid = tmp_path / "iid"
    res = pybuild(store, "build", "-q", "--iidfile", str(iid), "--label", "cli=yes",
                  "--build-arg", "FROMENV", "--secret", f"id=tok,src={tmp_path / 'tok'}",
                  "-t", "cli/one", "-t", "cli/two:v2", str(ctx), env={"FROMENV": "from-env"})
    assert res.returncode == 0, res.stderr
    image = res.stdout.strip()
    assert res.stdout == image + "\n" and image.startswith("sha256:")
    assert iid.read_text() == image
    config = config_of(store, "cli/two:v2")
    assert config["config"]["Labels"] == {"in.file": "1", "cli": "yes"}
    assert probe(store, "cli/one", "cat /fromenv /toklen") == "from-env\n5\n"
    clean(store)


def test_secret_from_env(store, tmp_path):
    text = ("FROM localhost/bench/busybox:latest\n"
            "RUN --mount=type=secret,id=tok,env=T echo ${#T} > /n\n")
    ctx = make_context(tmp_path, text)
    res = pybuild(store, "build", "-q", "--secret", "id=tok,env=MYTOK", str(ctx),
                  env={"MYTOK": "abc"})
    assert res.returncode == 0, res.stderr
    assert probe(store, res.stdout.strip(), "cat /n") == "3\n"


@pytest.mark.parametrize("kind,compression,media", [
    ("docker", "gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
    ("oci", "zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
    ("oci", "none", "application/vnd.oci.image.layer.v1.tar"),
])
def test_output_archive(store, tmp_path, kind, compression, media):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is needed")
    ctx = make_context(tmp_path, "FROM localhost/bench/busybox:latest\nRUN echo x > /x\n")
    dest = tmp_path / "out.tar"
    res = pybuild(store, "build", "-q", "-t", f"cli/out-{kind}", "--output",
                  f"type={kind},dest={dest}", "--compression", compression, str(ctx))
    assert res.returncode == 0, res.stderr
    transport = "docker-archive" if kind == "docker" else "oci-archive"
    inspect = subprocess.run(["skopeo", "inspect", f"{transport}:{dest}"], capture_output=True,
                             text=True)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Architecture"] == "amd64"
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{dest}"],
                         capture_output=True, text=True, check=True)
    layers = json.loads(raw.stdout)["layers"]
    assert layers and {layer["mediaType"] for layer in layers} <= {
        media, media.replace("vnd.oci.image.layer.v1.tar", "vnd.docker.image.rootfs.diff.tar")}


def _fails(store, tmp_path, args, text, want):
    ctx = make_context(tmp_path, text) if text is not None else tmp_path / "nowhere"
    res = pybuild(store, "build", *args, str(ctx))
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) >= 1 and want in lines[-1], res.stderr
    clean(store)


def test_output_that_cannot_be_written_fails_in_one_line(store, tmp_path):
    (tmp_path / "taken").mkdir()
    _fails(store, tmp_path, ["--output", f"type=docker,dest={tmp_path / 'taken'}"],
           "FROM localhost/bench/busybox:latest\n", f"cannot write {tmp_path / 'taken'}")


def test_platform_flag_other_than_amd64_fails(store, tmp_path):
    _fails(store, tmp_path, ["--platform", "linux/arm64"],
           "FROM localhost/bench/busybox:latest\n", "linux/arm64 is not supported")


def test_from_platform_fails_with_line(store, tmp_path):
    _fails(store, tmp_path, [], "FROM --platform=linux/s390x localhost/bench/busybox:latest\n",
           "Dockerfile:1: platform linux/s390x is not supported")


def test_missing_context_fails(store, tmp_path):
    _fails(store, tmp_path, [], None, "not found")


def test_failing_run_fails_clean(store, tmp_path):
    _fails(store, tmp_path, [], "FROM localhost/bench/busybox:latest\nRUN false\n",
           'Dockerfile:2: process "/bin/sh -c false" did not complete successfully')


def test_missing_image_fails(store, tmp_path):
    # not in the store, so pulled: from a registry port where nothing listens
    _fails(store, tmp_path, [], "FROM 127.0.0.1:1/no/such:image\n",
           "Dockerfile:1: 127.0.0.1:1/no/such:image: connection refused")


def test_env_secret_leaves_no_temp_file(store, tmp_path):
    import tempfile

    before = set(os.listdir(tempfile.gettempdir()))
    test_secret_from_env(store, tmp_path)
    left = set(os.listdir(tempfile.gettempdir())) - before
    assert [p for p in left if p.startswith("secret-tok-")] == []
