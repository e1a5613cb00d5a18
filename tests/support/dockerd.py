"""A private docker engine (Debian's docker.io 20.10, BuildKit inside) for oracle tests.

It gets its own data root, exec root, pid file and unix socket under a temp dir, no bridge
(``--bridge=none``: builds run with ``--network=none``, as pybuild's RUN does), and touches
no firewall or sysctl. ``stop`` ends it and removes what it leaves behind on the host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # the 20.10 CLI; /usr/local/bin/docker may be a CLI without buildx
# Files dockerd makes outside its roots, whatever it is told.
_HOST_LEFTOVERS = (Path("/etc/docker/key.json"), Path("/etc/docker"), Path("/run/docker"))


def missing() -> str | None:
    """Why no engine can be started here, or None."""
    for tool in (DOCKERD, DOCKER):
        if not os.access(tool, os.X_OK):
            return f"needs Debian's docker.io ({tool}); .ci/run installs it"
    if os.geteuid() != 0:
        return "dockerd needs root"
    return None


class Dockerd:
    def __init__(self, work: Path):
        self.work = work
        self.socket = work / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "1",
                    "DOCKER_CONFIG": str(work / "client")}
        self.process: subprocess.Popen | None = None
        self._existed = {p: p.exists() for p in _HOST_LEFTOVERS}

    def start(self, timeout: float = 60) -> None:
        config = self.work / "daemon.json"
        config.write_text(json.dumps({}))
        self.log = open(self.work / "dockerd.log", "wb")
        self.process = subprocess.Popen(
            [DOCKERD, "--config-file", str(config), "--data-root", str(self.work / "data"),
             "--exec-root", str(self.work / "exec"), "--pidfile", str(self.work / "dockerd.pid"),
             "-H", f"unix://{self.socket}", "--storage-driver", "overlay2", "--bridge=none",
             "--iptables=false", "--ip-forward=false", "--ip-masq=false"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self._log_tail()}")
            if self.socket.exists() and self.run("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer in {timeout}s: {self._log_tail()}")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([DOCKER, *args], capture_output=True, text=True, env=self.env,
                             timeout=300)
        if check and res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {res.stderr.strip()}")
        return res

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
        self._unmount_below(self.work)
        for path, existed in self._existed.items():
            if not existed and path.exists():
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()

    @staticmethod
    def _unmount_below(root: Path) -> None:
        prefix = str(root) + "/"
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)

    def _log_tail(self) -> str:
        self.log.flush()
        text = (self.work / "dockerd.log").read_text(errors="replace")
        return " | ".join(text.strip().splitlines()[-5:])
