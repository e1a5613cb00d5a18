"""The runc command line, with a state root of pybuild's own.

runc keeps each container's state under ``--root``; pybuild uses a private one (not
runc's default /run/runc), so ``runc list`` there shows pybuild's containers only and
other runc users are never touched. runc's own errors go to a JSON log file, not to the
container's stderr, so a failed setup reads as a RunnerError and not as output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import RunnerError

DEFAULT_ROOT = Path("/run/pybuild/runc")
# runc's own rule for container ids (libcontainer's idRegex).
_ID = re.compile(r"[\w+\-.]+")


def binary() -> str | None:
    """The runc on PATH, or None."""
    return shutil.which("runc")


def check_id(container_id: str) -> str:
    if not _ID.fullmatch(container_id) or container_id in (".", ".."):
        raise RunnerError(f"container id {container_id!r}: runc takes only letters, digits, "
                          "'_', '+', '-' and '.'")
    return container_id


@dataclass(frozen=True)
class Runc:
    root: Path = DEFAULT_ROOT
    path: str = "runc"

    def command(self, *args: str, log: Path | None = None) -> list[str]:
        base = [self.path, "--root", os.fspath(self.root)]
        if log is not None:
            base += ["--log", os.fspath(log), "--log-format", "json"]
        return [*base, *args]

    def prepare(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise RunnerError(f"runc state root {self.root}: {e.strerror}") from e

    def list(self) -> list[dict[str, object]]:
        """``runc list`` as parsed JSON (empty when the root holds no container)."""
        out = self._call("list", "--format", "json")
        return json.loads(out) if out.strip() and out.strip() != "null" else []

    def delete(self, container_id: str) -> None:
        """``runc delete -f``: kills what is left and removes the state and cgroup;
        a container runc does not know is no error."""
        subprocess.run(self.command("delete", "-f", container_id),
                       stdin=subprocess.DEVNULL, capture_output=True, check=False)

    def kill(self, container_id: str, signal: str = "KILL") -> None:
        subprocess.run(self.command("kill", container_id, signal),
                       stdin=subprocess.DEVNULL, capture_output=True, check=False)

    def _call(self, *args: str) -> str:
        proc = subprocess.run(self.command(*args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RunnerError(f"runc {args[0]}: {proc.stderr.strip() or proc.returncode}")
        return proc.stdout


def log_errors(log: Path) -> list[str]:
    """The error messages runc wrote to its JSON log (warnings and info left out)."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return []
    errors = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            errors.append(str(entry.get("msg", "")))
    return errors
