"""The sandbox's network modes the caller wires: ``bridge`` (a fresh netns, ``prepare`` run on
PID 1 before its setup) and ``container`` (another process's netns, joined)."""

from __future__ import annotations

import os
import subprocess

import pytest
from support.runner import make_box, run_capture

from pybuild.errors import RunnerError
from pybuild.runner.spec import Mount

pytestmark = pytest.mark.root


def test_prepare_runs_on_pid_1_before_the_workload(tmp_path):
    box = make_box(tmp_path / "box")
    shared = tmp_path / "shared"
    shared.mkdir()
    seen: list[str] = []

    def prepare(pid: int) -> None:
        # PID 1 exists in its own netns and waits: what is written now, the workload sees
        seen.append(os.readlink(f"/proc/{pid}/ns/net"))
        (shared / "note").write_text("prepared\n")

    spec = box.spec("cat /shared/note; readlink /proc/self/ns/net; ip -o link | wc -l",
                    network="bridge", mounts=(Mount("bind", str(shared), "/shared"),))
    res = run_capture(spec, prepare=prepare)
    assert res.code == 0, res.err
    note, netns, links = res.out.split()
    assert note == "prepared" and [netns] == seen
    assert netns != os.readlink("/proc/self/ns/net") and links == "1"  # only lo


def test_a_failing_prepare_ends_the_run(tmp_path):
    box = make_box(tmp_path / "box")

    def prepare(pid: int) -> None:
        raise RunnerError("no veth today")

    with pytest.raises(RunnerError, match="no veth today"):
        run_capture(box.spec("echo ran"), prepare=prepare)


def test_container_mode_joins_another_netns(tmp_path):
    box = make_box(tmp_path / "box")
    other = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        own = os.readlink("/proc/self/ns/net")
        while os.readlink(f"/proc/{other.pid}/ns/net") == own:
            pass  # until unshare has exec'd sleep in its new netns
        path = f"/proc/{other.pid}/ns/net"
        res = run_capture(box.spec("readlink /proc/self/ns/net", network="container",
                                   netns=path))
        assert res.code == 0 and res.out.strip() == os.readlink(path)
    finally:
        other.kill()
        other.wait()
