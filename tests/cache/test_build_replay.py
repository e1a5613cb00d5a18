"""The replay of an unchanged build (pybuild.cache.replay): it answers only when nothing that could
change the image moved, and then with the image the step-by-step cache would give."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from support.build import new_store, pybuild_cmd

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


def build(store, ctx, *extra: str) -> tuple[str, str]:
    res = subprocess.run([*pybuild_cmd(store.root), "build", "--progress", "plain",
                          "-t", "replay/x", *extra, str(ctx)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    image = [line for line in res.stderr.splitlines() if "writing image" in line][-1]
    return image.split()[3], res.stderr


def test_unchanged_build_replays_the_same_image(setup):
    store, ctx = setup
    first, log = build(store, ctx)
    assert REPLAYED not in log
    second, log = build(store, ctx)
    assert REPLAYED in log and second == first


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
    res = subprocess.run([*pybuild_cmd(store.root), "build", "-q", "-t", "replay/x",
                          "--iidfile", str(iid), str(ctx)], capture_output=True, text=True)
    assert res.stdout == first + "\n" and res.stderr == ""
    assert iid.read_text() == first
