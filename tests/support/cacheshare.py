"""Helpers for the shared build cache tests (--cache-to / --cache-from): stores with the
busybox base imported as every machine of a fleet would, a small sample build, and what its
events say about each step."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pybuild.build import BuildOptions, build
from pybuild.progress import StepStarted
from pybuild.store import Store
from support.build import BASE, pybuild_cmd


def epoch_env() -> dict[str, str]:
    """This process's environment now (the session's bridge settings included, which a copy
    made at import would miss) with a fixed SOURCE_DATE_EPOCH, so two stores import one id."""
    return {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}

DOCKERFILE = f"""FROM {BASE}
ENV GREETING=hello
COPY a.txt /data/a.txt
RUN echo "$GREETING" > /data/greeting && cat /data/a.txt >> /data/greeting
WORKDIR /data/sub
COPY b.txt .
RUN ls /data > /data/listing
"""
SAMPLE_STEPS = 5  # COPY, RUN, WORKDIR (it makes /data/sub), COPY, RUN


def new_store(root: Path, busybox_tar: Path) -> Store:
    """A store with the busybox base imported with one created time, so one image id in
    every store (the parent of every cache key)."""
    subprocess.run([*pybuild_cmd(root), "import", str(busybox_tar), BASE], check=True,
                   capture_output=True, env=epoch_env())
    return Store(root)


def sample_context(directory: Path) -> Path:
    """The sample build's context; skips where this host cannot give RUN a sandbox."""
    import pytest

    from pybuild.runner.probe import probe as host_probe

    why = host_probe().reason_if_missing
    if why:
        pytest.skip(why)
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "a.txt").write_text("file a\n")
    (directory / "b.txt").write_text("file b\n")
    return directory


def run(store: Store, ctx: Path, **kw) -> tuple[str, list]:
    events: list = []
    result = build(store, BuildOptions(context=str(ctx), source_date_epoch=1700000000, **kw),
                   events.append)
    return result.image_id, events


def steps_with(events: list, kind: type) -> set[int]:
    return {e.step for e in events if isinstance(e, kind)}


def layer_steps(events: list) -> set[int]:
    """The steps after each stage's FROM."""
    return {e.step for e in events if isinstance(e, StepStarted) and e.index > 1}
