"""``pybuild cp`` and client.containers' copy methods against real containers: docker's
rules for files, directories and contents, owners, tar streams, and no path ever leaving the
container's root (CVE-2018-15664, CVE-2019-14271), also while the container races it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from pybuild.client import Client
from pybuild.errors import ContainerError

_SETUP = ("mkdir -p {host} && echo hi > /f && mkdir -p /d/sub && echo x > /d/sub/y"
          " && chown 123:456 /d/sub/y"
          " && ln -s / /esc1 && ln -s ../../../../../.. /esc2 && ln -s {host} /esc3"
          " && ln -s /etc /etclink && touch /ready && sleep 100")


@pytest.fixture
def client(store) -> Client:
    return Client(store.root)


@pytest.fixture
def canary(tmp_path) -> Path:
    """A host directory with a secret; the container links to its path."""
    d = tmp_path / "canary"
    d.mkdir()
    (d / "secret").write_text("host secret\n")
    return d


def _wait_file(c, path: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(f"/proc/{c.state().pid}/root{path}"):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture
def running(client, image, canary):
    c = client.containers.run(image, ["sh", "-c", _SETUP.format(host=canary)], detach=True,
                              name=f"cp-{uuid.uuid4().hex[:8]}")
    try:
        _wait_file(c, "/ready")
        yield c
    finally:
        c.remove(force=True)


@pytest.fixture
def stopped(client, image, canary):
    setup = _SETUP.format(host=canary).replace(" && sleep 100", "")
    c = client.containers.run(image, ["sh", "-c", setup], detach=True,
                              name=f"cp-{uuid.uuid4().hex[:8]}")
    try:
        assert c.wait(timeout=30)["StatusCode"] == 0
        yield c
    finally:
        c.remove(force=True)


def _inside(c, path: str) -> Path:
    return Path(f"/proc/{c.state().pid}/root{path}")


def test_files_dirs_and_contents_out_of_a_container(running, tmp_path):
    running.copy_from("/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "hi\n"
    (tmp_path / "into").mkdir()
    running.copy_from("/f", str(tmp_path / "into"))
    assert (tmp_path / "into" / "f").read_text() == "hi\n"
    running.copy_from("/d", str(tmp_path / "new"))  # missing: made, with d's contents
    assert (tmp_path / "new" / "sub" / "y").read_text() == "x\n"
    running.copy_from("/d", str(tmp_path / "into"))  # a dir: d goes in under its name
    assert (tmp_path / "into" / "d" / "sub" / "y").is_file()
    (tmp_path / "contents").mkdir()
    running.copy_from("/d/.", str(tmp_path / "contents"))
    assert sorted(os.listdir(tmp_path / "contents")) == ["sub"]
    with pytest.raises(ContainerError, match="Could not find the file /nope in container"):
        running.copy_from("/nope", str(tmp_path / "x"))
    with pytest.raises(ContainerError, match="cannot copy a directory to a file"):
        running.copy_from("/d", str(tmp_path / "f"))
    with pytest.raises(ContainerError, match="does not exist"):
        running.copy_from("/f", str(tmp_path / "missing" / "deeper"))


def test_owners_are_the_callers_unless_archive_mode(running, tmp_path):
    running.copy_from("/d", str(tmp_path / "plain"))
    st = (tmp_path / "plain" / "sub" / "y").stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    running.copy_from("/d", str(tmp_path / "kept"), archive=True)
    st = (tmp_path / "kept" / "sub" / "y").stat()
    assert (st.st_uid, st.st_gid) == (123, 456)
    local = tmp_path / "mine"
    local.write_text("local\n")
    os.chown(local, 1000, 1001)
    running.copy_to(str(local), "/plain")
    running.copy_to(str(local), "/kept", archive=True)
    assert _inside(running, "/plain").read_text() == "local\n"
    assert (_inside(running, "/plain").stat().st_uid, _inside(running, "/plain").stat().st_gid) \
        == (0, 0)
    assert (_inside(running, "/kept").stat().st_uid, _inside(running, "/kept").stat().st_gid) \
        == (1000, 1001)


def test_into_a_container_by_docker_rules(running, tmp_path):
    src = tmp_path / "tree"
    (src / "a").mkdir(parents=True)
    (src / "a" / "b").write_text("b\n")
    os.symlink("a/b", src / "link")
    running.copy_to(str(src), "/")  # into "/" under its own name
    assert _inside(running, "/tree/a/b").read_text() == "b\n"
    assert os.readlink(_inside(running, "/tree/link")) == "a/b"
    running.copy_to(str(src) + "/.", "/d")  # contents into an existing dir
    assert _inside(running, "/d/a/b").is_file() and _inside(running, "/d/sub/y").is_file()
    running.copy_to(str(src / "link"), "/copied-link")  # the link itself, not its target
    assert os.readlink(_inside(running, "/copied-link")) == "a/b"
    running.copy_to(str(src / "link"), "/followed", follow_link=True)
    assert _inside(running, "/followed").read_text() == "b\n"
    running.copy_to(str(src / "a" / "b"), "/f")  # over an existing file
    assert _inside(running, "/f").read_text() == "b\n"
    with pytest.raises(ContainerError, match="destination directory"):
        running.copy_to(str(src / "a" / "b"), "/nodir/")


def test_a_stopped_container_through_its_overlay(stopped, client, image, tmp_path):
    stopped.copy_from("/d/sub/y", str(tmp_path / "y"))
    assert (tmp_path / "y").read_text() == "x\n"
    (tmp_path / "new").write_text("new\n")
    stopped.copy_to(str(tmp_path / "new"), "/d/sub/")
    stopped.copy_from("/d/sub/new", str(tmp_path / "back"))
    assert (tmp_path / "back").read_text() == "new\n"
    # a created container starts with what was copied in
    c = client.containers.create(image, ["cat", "/etc/copied"])
    try:
        c.copy_to(str(tmp_path / "new"), "/etc/copied")
        c.start()
        assert c.wait(timeout=30)["StatusCode"] == 0
        assert c.logs() == b"new\n"
    finally:
        c.remove(force=True)


def _escapes(c, canary: Path, tmp_path: Path) -> None:
    """Every way a link could lead to the host, both directions: nothing read, nothing
    written there."""
    payload = tmp_path / "payload"
    payload.write_text("pwned\n")
    prefixes = [f"/esc1{canary}", f"/esc2{canary}", "/esc3"]
    for prefix in prefixes:
        with pytest.raises(ContainerError, match="Could not find the file"):
            c.copy_from(f"{prefix}/secret", str(tmp_path / "stolen"))
        assert not (tmp_path / "stolen").exists()
    for prefix in prefixes:
        for dest in (f"{prefix}/secret", f"{prefix}/", f"{prefix}/new"):
            c.copy_to(str(payload), dest)  # into the container's dir of that name
        c.copy_from(f"{prefix}/secret", str(tmp_path / "read"))
        assert (tmp_path / "read").read_text() == "pwned\n"
    c.copy_to(str(payload), "/etclink/passwd-copy")  # /etc of the container, not the host
    assert not Path("/etc/passwd-copy").exists()
    out = tmp_path / "out"
    out.mkdir()
    c.copy_from("/esc3", str(out / "l"))  # the link itself
    assert os.readlink(out / "l") == str(canary)
    c.copy_from("/esc3", str(out / "followed"), follow_link=True)  # the container's dir
    assert (out / "followed" / "secret").read_text() == "pwned\n"
    assert sorted(os.listdir(canary)) == ["secret"]
    assert (canary / "secret").read_text() == "host secret\n"


def test_links_out_of_a_running_container_stay_inside(running, canary, tmp_path):
    _escapes(running, canary, tmp_path)
    assert _inside(running, f"{canary}/secret").read_text() == "pwned\n"  # where it went


def test_links_out_of_a_stopped_container_stay_inside(stopped, canary, tmp_path):
    _escapes(stopped, canary, tmp_path)


def test_a_link_swapped_in_a_loop_never_lets_a_write_out(client, image, canary, tmp_path):
    swap = (f"mkdir -p {canary}; while true; do rm -rf /race; mkdir /race; "
            f"rm -rf /race; ln -s {canary} /race; done")
    c = client.containers.run(image, ["sh", "-c", swap], detach=True,
                              name=f"cp-race-{uuid.uuid4().hex[:8]}")
    payload = tmp_path / "pwned"
    payload.write_text("pwned\n")
    copies = reads = 0
    try:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            for dest in ("/race/pwned", "/race/", "/race/secret"):
                try:
                    c.copy_to(str(payload), dest)
                    copies += 1
                except ContainerError:
                    pass
            try:
                c.copy_from("/race/secret", str(tmp_path / "read"))
                reads += 1
            except ContainerError:
                pass
            assert not (tmp_path / "read").exists() or \
                (tmp_path / "read").read_text() != "host secret\n"
    finally:
        c.remove(force=True)
    assert copies > 0  # the race was run, not only refused
    assert sorted(os.listdir(canary)) == ["secret"]
    assert (canary / "secret").read_text() == "host secret\n"


def test_tar_streams_on_stdout_and_stdin(running, tmp_path):
    base = [sys.executable, "-m", "pybuild", "--root", str(running.client.store.root)]
    res = subprocess.run([*base, "cp", f"{running.name}:/d", "-"], capture_output=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
        names = tar.getnames()
        assert tar.getmember("d/sub/y").uid == 123  # a stream keeps the owners
    assert names == ["d", "d/sub", "d/sub/y"]
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("streamed/file")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    res = subprocess.run([*base, "cp", "-", f"{running.name}:/d"], input=data.getvalue(),
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert _inside(running, "/d/streamed/file").read_bytes() == b"abc"
    res = subprocess.run([*base, "cp", "-", f"{running.name}:/f"], input=data.getvalue(),
                         capture_output=True, timeout=60)
    assert res.returncode != 0 and b"must be a directory" in res.stderr


def test_cli_arguments_and_read_only_targets(cli, image, tmp_path):
    res = cli("cp", "a:/x", "b:/y")
    assert res.returncode != 0 and "copying between containers is not supported" in res.stderr
    res = cli("cp", str(tmp_path), "./x:y")
    assert "must specify at least one container source" in res.stderr
    ro_dir = tmp_path / "ro"
    ro_dir.mkdir()
    name = f"cp-ro-{uuid.uuid4().hex[:8]}"
    cli("create", "--name", name, "--read-only", "-v", f"{ro_dir}:/ro:ro", image, "true",
        check=True)
    try:
        (tmp_path / "p").write_text("p")
        res = cli("cp", str(tmp_path / "p"), f"{name}:/p")
        assert res.returncode != 0 and "container rootfs is marked read-only" in res.stderr
        res = cli("cp", str(tmp_path / "p"), f"{name}:/ro/p")
        assert res.returncode != 0 and "mounted volume is marked read-only" in res.stderr
        assert os.listdir(ro_dir) == []
    finally:
        cli("rm", "-f", name)


def test_a_stopped_containers_volume_is_copied_into(client, image, tmp_path):
    volume = f"cp-vol-{uuid.uuid4().hex[:8]}"
    c = client.containers.create(image, ["cat", "/data/file"], volumes={volume: {"bind": "/data"}})
    try:
        (tmp_path / "file").write_text("in the volume\n")
        c.copy_to(str(tmp_path / "file"), "/data/")
        c.copy_from("/data/file", str(tmp_path / "back"))
        assert (tmp_path / "back").read_text() == "in the volume\n"
        c.start()
        assert c.wait(timeout=30)["StatusCode"] == 0
        assert c.logs() == b"in the volume\n"
        upper = client.store.root / "containers" / c.id / "upper"
        assert not (upper / "data" / "file").exists()  # not under the mount point
    finally:
        c.remove(force=True)
        client.volumes.get(volume).remove(force=True)
