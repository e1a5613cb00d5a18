"""The replay of an unchanged build (pybuild.cache.replay): it answers only when nothing that could
change the image moved, and then with the image the step-by-step cache would give."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from support.build import new_store, pybuild_cmd

from pybuild.client import Client
from pybuild.progress import BuildReplayed, StepStarted
from pybuild.runner.probe import probe as host_probe

pytestmark = pytest.mark.root
REPLAYED = "every step CACHED: nothing changed"


@pytest.fixture()
def setup(tmp_path, busybox_tar):
    why = host_probe().reason_if_missing
    if why:
        pytest.skip(why)
    store = new_store(tmp_path / "root", busybox_tar)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM localhost/bench/busybox:latest\nARG V=1\nCOPY f /f\nRUN echo $V > /v\n")
    (ctx / "f").write_text("one\n")
    (ctx / "unused").write_text("not copied\n")
    old = time.time() - 10  # older than the racy window, as a checkout would be
    for path in ctx.iterdir():
        os.utime(path, (old, old))
    return store, ctx


def run(store, *args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """``pybuild ARGS`` under ``-X importtime``, so a test can tell whether click was loaded:
    the console entry answers from the command-line memo before importing it."""
    cmd = pybuild_cmd(store.root)
    cmd[1:1] = ["-X", "importtime"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})})


def answered_early(res: subprocess.CompletedProcess) -> bool:
    return " click\n" not in res.stderr and res.returncode == 0


def build(store, ctx, *extra: str, env: dict | None = None) -> tuple[str, str]:
    res = run(store, "build", "--progress", "plain", "-t", "replay/x", *extra, str(ctx), env=env)
    assert res.returncode == 0, res.stderr
    image = [line for line in res.stderr.splitlines() if "writing image" in line][-1]
    assert (REPLAYED in res.stderr) >= answered_early(res)  # early only with the same words
    return image.split()[3], res.stderr


def test_unchanged_build_replays_the_same_image(setup):
    store, ctx = setup
    first, log = build(store, ctx)
    assert REPLAYED not in log
    res = run(store, "build", "--progress", "plain", "-t", "replay/x", str(ctx))
    assert answered_early(res) and REPLAYED in res.stderr and first in res.stderr
    assert "#2 naming to replay/x done" in res.stderr


def test_same_request_spelled_otherwise_is_answered_by_the_library_then_early(setup):
    store, ctx = setup
    first, _ = build(store, ctx)
    args = ("build", "--progress", "plain", "--tag=replay/x", str(ctx))
    res = run(store, *args)  # no memo for this command line: click parses it
    assert not answered_early(res) and REPLAYED in res.stderr and first in res.stderr
    assert "RUN echo" not in res.stderr  # the library answered from the record: no step ran
    res = run(store, *args)
    assert answered_early(res) and first in res.stderr


def test_library_build_gets_the_same_answer(setup):
    store, ctx = setup
    first, _ = build(store, ctx)
    events: list = []
    image = Client(store.root).images.build(ctx, tag="replay/x", on_event=events.append)
    assert image.id == first and [type(e).__name__ for e in events] == [
        "BuildStarted", "BuildReplayed", "BuildDone"]
    events.clear()
    Client(store.root).images.build(ctx, tag="replay/x", nocache=True, on_event=events.append)
    assert not any(isinstance(e, BuildReplayed) for e in events)
    assert any(isinstance(e, StepStarted) for e in events)


def test_touch_replays_edit_and_chmod_do_not(setup):
    store, ctx = setup
    first, _ = build(store, ctx)
    os.utime(ctx / "f")
    again, log = build(store, ctx)
    assert REPLAYED in log and again == first
    (ctx / "f").write_text("two\n")
    edited, log = build(store, ctx)
    assert REPLAYED not in log and edited != first
    os.chmod(ctx / "f", 0o600)
    _, log = build(store, ctx)
    assert REPLAYED not in log
    build(store, ctx)
    with (ctx / "Dockerfile").open("a") as f:
        f.write("LABEL edited=1\n")
    relabeled, log = build(store, ctx)
    assert REPLAYED not in log and relabeled != edited


def test_any_file_added_removed_or_touched_unhashed_falls_back(setup):
    store, ctx = setup
    build(store, ctx)
    (ctx / "new").write_text("x")
    _, log = build(store, ctx)
    assert REPLAYED not in log
    os.utime(ctx / "unused")  # never hashed: a stat change alone means build again
    _, log = build(store, ctx)
    assert REPLAYED not in log


def test_options_and_store_changes_fall_back(setup):
    store, ctx = setup
    first, _ = build(store, ctx)
    other, log = build(store, ctx, "--build-arg", "V=2")
    assert REPLAYED not in log and other != first
    back, log = build(store, ctx)  # V=1 again: the tag moved meanwhile, so built (cached)
    assert REPLAYED not in log and back == first
    back, log = build(store, ctx)
    assert REPLAYED in log and back == first
    fresh, log = build(store, ctx, "--no-cache")  # never replayed, but recorded
    assert REPLAYED not in log
    again, log = build(store, ctx)
    assert REPLAYED in log and again == fresh
    subprocess.run([*pybuild_cmd(store.root), "tag", "localhost/bench/busybox:latest",
                    "something/else"], check=True, capture_output=True)
    _, log = build(store, ctx)  # refs moved: the base might have been retagged
    assert REPLAYED not in log


def test_removed_image_is_built_again(setup):
    store, ctx = setup
    first, _ = build(store, ctx)
    subprocess.run([*pybuild_cmd(store.root), "rmi", "replay/x"], check=True,
                   capture_output=True)
    again, log = build(store, ctx)
    assert REPLAYED not in log and again == first
    listed = subprocess.run([*pybuild_cmd(store.root), "images", "-q"], check=True,
                            capture_output=True, text=True).stdout
    assert first.split(":")[1][:12] in listed


def test_quiet_replay_prints_only_the_id(setup, tmp_path):
    store, ctx = setup
    first, _ = build(store, ctx)
    iid = tmp_path / "iid"
    args = ["build", "-q", "-t", "replay/x", "--iidfile", str(iid), str(ctx)]
    for _ in range(2):  # the library answers, then (from the memo) the entry
        iid.unlink(missing_ok=True)
        res = subprocess.run([*pybuild_cmd(store.root), *args], capture_output=True, text=True)
        assert res.stdout == first + "\n" and res.stderr == ""
        assert iid.read_text() == first
    assert answered_early(run(store, *args))


def test_no_cache_secrets_and_output_are_never_answered_early(setup, tmp_path):
    store, ctx = setup
    build(store, ctx)
    (tmp_path / "tok").write_text("t")
    archive = tmp_path / "out.tar"
    for extra in (["--no-cache"], ["--secret", f"id=tok,src={tmp_path / 'tok'}"]):
        for _ in range(2):
            _, log = build(store, ctx, *extra)
            assert REPLAYED not in log, extra
    # --no-cache builds refill the cache, so what a cached build gives now is asked again
    # (it equals `first` only when the rebuilds happened within the same second)
    latest, _ = build(store, ctx)
    for _ in range(2):
        archive.unlink(missing_ok=True)
        res = run(store, "build", "-q", "-t", "replay/x", "--output",
                  f"type=oci,dest={archive}", str(ctx))
        assert res.returncode == 0 and not answered_early(res), res.stderr
        assert res.stdout == latest + "\n" and archive.stat().st_size > 0


def test_environment_and_directory_belong_to_the_command_line(setup, tmp_path):
    store, ctx = setup
    one, _ = build(store, ctx, "--build-arg", "V", env={"V": "1"})
    res = run(store, "build", "--progress", "plain", "-t", "replay/x", "--build-arg", "V",
              str(ctx), env={"V": "1"})
    assert answered_early(res) and one in res.stderr
    two, log = build(store, ctx, "--build-arg", "V", env={"V": "2"})
    assert REPLAYED not in log and two != one
    dated, log = build(store, ctx, "--build-arg", "V", env={"V": "2", "SOURCE_DATE_EPOCH": "9"})
    assert REPLAYED not in log and dated not in (one, two)
    other = tmp_path / "other"
    other.mkdir()
    (other / "Dockerfile").write_text("FROM localhost/bench/busybox:latest\nRUN echo o > /o\n")
    old = time.time() - 10
    os.utime(other / "Dockerfile", (old, old))
    args = ("build", "--progress", "plain", "-t", "replay/dot", ".")
    here = [run(store, *args, cwd=ctx) for _ in range(2)]
    assert not answered_early(here[0]) and answered_early(here[1])
    there = run(store, *args, cwd=other)
    assert not answered_early(there) and REPLAYED not in there.stderr


def test_unreadable_memo_takes_the_ordinary_path(setup):
    store, ctx = setup
    first, _ = build(store, ctx)
    memos = list((store.root / "cache" / "cli").iterdir())
    assert memos
    for path in memos:
        path.write_text('{"argv": ')
    res = run(store, "build", "--progress", "plain", "-t", "replay/x", str(ctx))
    assert not answered_early(res) and REPLAYED in res.stderr  # the library still answers
    res = run(store, "build", "--progress", "plain", "-t", "replay/x", str(ctx))
    assert answered_early(res) and first in res.stderr  # and the memo was written anew
