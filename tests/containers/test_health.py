"""HEALTHCHECK's rules (the loop, with a stand-in for running the test, as the layer above
the exec that really runs it), and how a container records its check."""

from __future__ import annotations

import json
import threading

import pytest

from pybuild.containers import health
from pybuild.errors import UsageError


def run_loop(codes: list[int], **check) -> list[health.Health]:
    check = {**health.DEFAULTS, "test": ["CMD", "probe"], "interval": 0.001, **check}
    seen: list[health.Health] = []
    stopped = threading.Event()
    calls = iter(codes)

    def run(argv, timeout):
        assert argv == ["probe"] and timeout == check["timeout"]
        try:
            return next(calls), "out"
        except StopIteration:
            stopped.set()
            return 0, ""

    health.loop(check, run, seen.append, stopped)
    return seen


def test_retries_failures_in_a_row_make_it_unhealthy_and_one_success_heals():
    seen = run_loop([0, 1, 1, 1, 0], retries=3)
    assert [h.status for h in seen] == ["starting", "healthy", "healthy", "healthy",
                                        "unhealthy", "healthy"]
    assert seen[4].failing_streak == 3 and seen[5].failing_streak == 0
    assert len(seen[-1].log) == 5 and seen[-1].log[-1]["ExitCode"] == 0


def test_failures_in_the_start_period_do_not_count():
    seen = run_loop([1, 1, 1, 1], retries=1, start_period=3600)
    assert {h.status for h in seen} == {"starting"}


def test_durations_and_merging():
    assert health.duration("1m30s", "--x") == 90 and health.duration("500ms", "--x") == 0.5
    with pytest.raises(UsageError, match='invalid duration "5 s"'):
        health.duration("5 s", "--health-interval")
    image = {"test": ["CMD-SHELL", "true"], "interval": 5.0, "timeout": 1.0,
             "start_period": 0.0, "retries": 2}
    assert health.merged(image, test=["NONE"]) is None
    assert health.merged(image, interval=1.0)["interval"] == 1.0
    assert health.merged(None, test=["CMD-SHELL", "x"])["retries"] == 3
    assert health.argv_of(["CMD-SHELL", "curl -f x"]) == ["/bin/sh", "-c", "curl -f x"]


def test_the_image_check_and_the_flags_are_recorded(cli, image, store, tmp_path):
    from support.build import run_build

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {image}\nHEALTHCHECK --interval=5s --retries=2 "
                                    "CMD test -e /tmp/ok\n")
    run_build(store, ctx, tags=("health/img:1",))
    cid = cli("create", "--health-timeout", "2s", "health/img:1", "sleep", "1",
              check=True).stdout.strip()
    check = json.loads(cli("inspect", cid).stdout)[0]["Config"]["Healthcheck"]
    assert check == {"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 5_000_000_000,
                     "Timeout": 2_000_000_000, "StartPeriod": 0, "Retries": 2}
    off = cli("create", "--no-healthcheck", "health/img:1", "true", check=True).stdout.strip()
    assert "Healthcheck" not in json.loads(cli("inspect", off).stdout)[0]["Config"]
    bad = cli("create", "--no-healthcheck", "--health-cmd", "x", "health/img:1", "true")
    assert bad.returncode != 0 and "conflicts" in bad.stderr
    cli("rm", cid, off, check=True)


def test_a_check_runs_in_the_container_and_a_slow_one_is_cut_off(cli, image, store):
    import time

    from pybuild.containers.lifecycle import dirs_of

    cli("run", "-d", "--name", "checked", image, "sh", "-c",
        "echo ok > /tmp/flag; sleep 60", check=True)
    try:
        run = health.exec_runner(store, dirs_of(store).resolve("checked"))
        assert run(["cat", "/tmp/flag"], 10) == (0, "ok\n")
        assert run(["sh", "-c", "exit 2"], 10)[0] == 2
        started = time.monotonic()
        code, message = run(["sleep", "30"], 0.5)
        assert code == -1 and "exceeded timeout" in message
        assert time.monotonic() - started < 5
    finally:
        cli("rm", "-f", "checked")


def test_a_running_container_becomes_healthy_then_unhealthy(cli, image):
    import time

    cli("run", "-d", "--name", "probed", "--health-cmd", "test -e /tmp/ok",
        "--health-interval", "200ms", "--health-retries", "2", image, "sh", "-c",
        "touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 60", check=True)
    try:
        def status() -> str:
            return cli("inspect", "-f", "{{.State.Health.Status}}", "probed").stdout.strip()

        deadline = time.monotonic() + 20
        while status() != "healthy" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status() == "healthy"
        assert "(healthy)" in cli("ps").stdout
        while status() != "unhealthy" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status() == "unhealthy"
        log = json.loads(cli("inspect", "probed").stdout)[0]["State"]["Health"]
        assert log["FailingStreak"] >= 2 and log["Log"][-1]["ExitCode"] == 1
        assert "(unhealthy)" in cli("ps").stdout
    finally:
        cli("rm", "-f", "probed")
