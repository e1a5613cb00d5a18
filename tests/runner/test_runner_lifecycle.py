"""Stopping a sandbox: cancel, an outside SIGKILL, SIGTERM/SIGINT to the caller. Afterwards
no sandbox process, no mount and no cgroup may be left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from support.runner import Box, host_mountinfo, make_box, processes_with, run_capture, running

from pybuild.runner import run

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return make_box(tmp_path)


def _wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _assert_nothing_left(box: Box, marker: str) -> None:
    assert _wait_for(lambda: not processes_with(marker), 5), processes_with(marker)
    mounts = host_mountinfo()
    assert str(box.upper) not in mounts and "pybuild/rootfs" not in mounts


def _start(box: Box, marker: str, **kwargs: object) -> tuple[threading.Thread, list[int]]:
    result: list[int] = []
    spec = box.spec(f"echo started; exec sleep {marker}")

    def target() -> None:
        result.append(run(spec, stdout=lambda b: None, **kwargs))  # type: ignore[arg-type]

    thread = threading.Thread(target=target)
    thread.start()
    assert _wait_for(lambda: bool(processes_with(f"sleep {marker}")))
    return thread, result


def test_cancel_kills_the_sandbox(box: Box) -> None:
    cancel = threading.Event()
    marker = "4711.25"
    thread, result = _start(box, marker, cancel=cancel)
    try:
        started = time.monotonic()
        cancel.set()
        thread.join(10)
        assert not thread.is_alive()
        assert result == [137]
        assert time.monotonic() - started < 2
    finally:
        cancel.set()
        thread.join(10)
        _assert_nothing_left(box, marker)


def test_cancel_before_start_leaves_no_orphan(box: Box) -> None:
    # Killing the first child before PID 1 armed its parent-death signal must not orphan it.
    for i in range(10):
        cancel = threading.Event()
        cancel.set()
        assert run(box.spec(f"exec sleep 4714.{i}"), cancel=cancel) == 137
    time.sleep(0.2)
    assert not processes_with("sleep 4714.")
    _assert_nothing_left(box, "4714.")


def test_killed_by_signal_is_128_plus_n(box: Box) -> None:
    marker = "4712.25"
    thread, result = _start(box, marker)
    try:
        for pid in processes_with(f"sleep {marker}"):
            os.kill(pid, signal.SIGKILL)
        thread.join(10)
        assert result == [128 + signal.SIGKILL]
    finally:
        for pid in processes_with(f"sleep {marker}"):
            os.kill(pid, signal.SIGKILL)
        thread.join(10)
        _assert_nothing_left(box, marker)


def _caller_script(box: Box, marker: str) -> str:
    return textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
        from pathlib import Path
        from support.runner import Box
        box = Box(Path({str(box.lower)!r}), Path({str(box.upper)!r}), Path({str(box.work)!r}))
        from pybuild.runner import run
        print("ready", flush=True)
        run(box.spec("touch /in-upper; exec sleep {marker}"))
    """)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_signal_to_the_caller_leaves_nothing(box: Box, signum: int) -> None:
    marker = f"47{signum:02d}.5"
    proc = subprocess.Popen([sys.executable, "-c", _caller_script(box, marker)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the sleep itself, not the caller's script that names it: then the touch is done
        assert _wait_for(lambda: bool(running(f"sleep {marker}"))), proc.stderr
        os.kill(proc.pid, signum)
        proc.wait(10)
        assert proc.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _assert_nothing_left(box, marker)
    assert (box.upper / "in-upper").exists()  # it did run


def test_output_streams_live(box: Box) -> None:
    # The first line must reach the callback while the workload still runs.
    seen = threading.Event()
    cancel = threading.Event()

    def on_out(chunk: bytes) -> None:
        if b"first" in chunk:
            seen.set()

    spec = box.spec("echo first; exec sleep 4713.5")
    thread = threading.Thread(target=run, args=(spec,),
                              kwargs={"stdout": on_out, "cancel": cancel})
    thread.start()
    try:
        assert seen.wait(10)
        # the echo comes before the exec: give the shell a moment to become the sleep
        assert _wait_for(lambda: bool(running("sleep 4713.5")))
    finally:
        cancel.set()
        thread.join(10)
        _assert_nothing_left(box, "4713.5")


def test_concurrent_runs_do_not_share_anything(box: Box, tmp_path: Path) -> None:
    boxes = [box] + [make_box(tmp_path / f"b{i}") for i in range(3)]
    results: dict[int, object] = {}

    def go(i: int, b: Box) -> None:
        results[i] = run_capture(b.spec(f"echo {i} > /id; cat /id; hostname",
                                        hostname=f"h{i}"))

    threads = [threading.Thread(target=go, args=(i, b)) for i, b in enumerate(boxes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, b in enumerate(boxes):
        assert results[i].out == f"{i}\nh{i}\n"  # type: ignore[attr-defined]
        assert (b.upper / "id").read_text() == f"{i}\n"


def test_run_true_is_fast(box: Box) -> None:
    spec = box.spec("")
    spec = spec.__class__(rootfs=spec.rootfs, process=spec.process.__class__(args=("/bin/true",)))
    times = []
    for _ in range(15):
        started = time.perf_counter()
        assert run(spec) == 0
        times.append(time.perf_counter() - started)
    times.sort()
    assert times[len(times) // 2] < 0.25, times  # ~30 ms on an idle 2-core box
