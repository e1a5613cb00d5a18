"""Shared helpers for the runner tests: a busybox rootfs and a one-call runner.

No tests live here; the other ``test_runner_*`` modules import it.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pybuild.runner import Process, Rootfs, RunSpec, probe, run
from support.paths import busybox_missing, write_busybox_tar


def skip_unless(*features: str) -> None:
    reason = probe().missing(*features)
    if reason:
        pytest.skip(reason)


@functools.cache
def busybox_tar() -> Path:
    """The busybox rootfs tarball, written once per test process (removed at exit)."""
    why = busybox_missing()
    if why:
        pytest.skip(why)
    tmp = Path(tempfile.mkdtemp(prefix="pybuild-test-busybox-"))
    atexit.register(shutil.rmtree, tmp, True)
    tar = tmp / "rootfs.tar"
    return write_busybox_tar(tar)


@dataclass
class Box:
    """A busybox image as one lower dir plus a fresh upper and work dir."""

    lower: Path
    upper: Path
    work: Path

    @property
    def rootfs(self) -> Rootfs:
        return Rootfs(lowerdirs=(self.lower,), upperdir=self.upper, workdir=self.work)

    def spec(self, script: str, **changes: object) -> RunSpec:
        process = Process(args=("/bin/sh", "-c", script))
        spec = RunSpec(rootfs=self.rootfs, process=process)
        return replace(spec, **changes) if changes else spec


def make_box(tmp_path: Path) -> Box:
    """A fresh busybox overlay under ``tmp_path``; skips when the host cannot run it."""
    skip_unless("root", "namespaces", "overlay")
    dirs = [tmp_path / n for n in ("lower", "upper", "work")]
    for d in dirs:
        d.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(busybox_tar()), "-C", str(dirs[0])], check=True)
    return Box(*dirs)


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_capture(spec: RunSpec, **kwargs: object) -> Result:
    out: list[bytes] = []
    err: list[bytes] = []
    code = run(spec, stdout=out.append, stderr=err.append, **kwargs)  # type: ignore[arg-type]
    return Result(code, b"".join(out).decode(), b"".join(err).decode())


def host_mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


def _command_lines() -> list[tuple[int, str]]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        out.append((int(entry.name), cmdline))
    return out


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker``."""
    return [pid for pid, cmdline in _command_lines()
            if marker in cmdline and "pytest" not in cmdline]


def running(command: str) -> list[int]:
    """Host pids running exactly ``command`` (not a shell or a script that names it)."""
    return [pid for pid, cmdline in _command_lines() if cmdline == command]
