"""HEALTHCHECK as docker runs it: the test runs in the container every interval; a run that
fails or exceeds the timeout counts against it once the start period is over, and ``retries``
failures in a row make it unhealthy; one success makes it healthy again. The monitor runs
the loop; the result lives in ``health.json`` beside state.json (the last five runs).
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pybuild.errors import UsageError

DEFAULTS = {"interval": 30.0, "timeout": 30.0, "start_period": 0.0, "retries": 3}
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
Exec = Callable[[Sequence[str], float], tuple[int, str]]  # (argv, timeout) -> (code, output)


def duration(text: str, flag: str) -> float:
    """A Go duration ("30s", "1m30s", "500ms") in seconds."""
    if not text or _PART.sub("", text) != "":
        raise UsageError(f'invalid argument "{text}" for "{flag}" flag: time: invalid '
                         f'duration "{text}"')
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


def from_image(health: Any) -> dict[str, Any] | None:
    """The image's HealthConfig (nanoseconds) as the container's check (seconds)."""
    if health is None or not health.test:
        return None
    return {"test": list(health.test), "interval": health.interval / 1e9 or DEFAULTS["interval"],
            "timeout": health.timeout / 1e9 or DEFAULTS["timeout"],
            "start_period": health.start_period / 1e9,
            "retries": health.retries or DEFAULTS["retries"]}


def merged(image_check: Mapping[str, Any] | None, *, test: Sequence[str] | None = None,
           interval: float | None = None, timeout: float | None = None,
           start_period: float | None = None, retries: int | None = None) -> dict[str, Any] | None:
    """The check after the run's own settings (seconds), as docker merges them: a test of
    ``["NONE"]`` disables the image's."""
    check = dict(image_check or {})
    if test is not None:
        check["test"] = list(test)
    for key, value in (("interval", interval), ("timeout", timeout),
                       ("start_period", start_period)):
        if value is not None:
            if value < 0:
                raise UsageError(f"--health-{key.replace('_', '-')} cannot be negative")
            check[key] = value
    if retries is not None:
        if retries < 0:
            raise UsageError("--health-retries cannot be negative")
        check["retries"] = retries
    if not check.get("test") or check["test"][0] == "NONE":
        return None
    return {**DEFAULTS, **check}


def argv_of(test: Sequence[str]) -> list[str]:
    kind, *rest = test
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    if kind == "CMD":
        return list(rest)
    return list(test)  # docker takes a bare list as CMD


@dataclass(frozen=True)
class Health:
    status: str = "starting"  # starting | healthy | unhealthy
    failing_streak: int = 0
    log: tuple[dict[str, Any], ...] = field(default=())

    def to_docker(self) -> dict[str, Any]:
        return {"Status": self.status, "FailingStreak": self.failing_streak,
                "Log": list(self.log)}


def read(state_dir: Path) -> Health | None:
    try:
        raw = json.loads((state_dir / "health.json").read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return Health(raw.get("status", "starting"), int(raw.get("failing_streak", 0)),
                  tuple(raw.get("log", ())))


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def loop(check: Mapping[str, Any], run: Exec, record: Callable[[Health], None],
         stopped: threading.Event) -> None:
    """Run the check until ``stopped``; ``record`` gets each new Health."""
    argv = argv_of(check["test"])
    began = time.monotonic()
    health = Health()
    record(health)
    while not stopped.wait(check["interval"]):
        start = _stamp()
        try:
            code, output = run(argv, check["timeout"])
        except Exception as err:  # noqa: BLE001 - a check that cannot run is a failed run
            code, output = -1, str(err)
        entry = {"Start": start, "End": _stamp(), "ExitCode": code, "Output": output[-4096:]}
        grace = time.monotonic() - began < check["start_period"]
        if code == 0:
            health = Health("healthy", 0, (*health.log, entry)[-5:])
        elif grace:
            health = Health(health.status, health.failing_streak, (*health.log, entry)[-5:])
        else:
            streak = health.failing_streak + 1
            status = "unhealthy" if streak >= check["retries"] else health.status
            health = Health(status, streak, (*health.log, entry)[-5:])
        if not stopped.is_set():
            record(health)


def writer(state_dir: Path, tmp: Path) -> Callable[[Health], None]:
    from pybuild.store.fsutil import atomic_write

    def record(health: Health) -> None:
        if state_dir.is_dir():
            atomic_write(state_dir / "health.json", json.dumps(asdict(health)).encode(), tmp)

    return record


def exec_runner(store, config) -> Exec:
    """The check run in the container, as ``docker exec`` of it: its output (up to 4 KiB)
    and exit code; killed after the timeout (docker's -1 with its message)."""
    from pybuild.containers.exec import ExecOptions, exec_in
    from pybuild.errors import PybuildError

    def run(argv: Sequence[str], timeout: float) -> tuple[int, str]:
        out: list[bytes] = []
        started = time.monotonic()
        try:
            code = exec_in(store, config, ExecOptions(args=tuple(argv)), stdout=out.append,
                           stderr=out.append, timeout=timeout)
        except PybuildError as err:
            return -1, str(err)
        text = b"".join(out).decode("utf-8", "replace")
        if code == 137 and time.monotonic() - started >= timeout:
            return -1, f"Health check exceeded timeout ({timeout:g}s)"
        return code, text

    return run
