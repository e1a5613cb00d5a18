"""BuildKit as the oracle: every case under testdata/oracle/ is built by docker 20.10 with
BuildKit (a private dockerd this module starts) and by pybuild, both images are saved, and
their configs, flattened filesystems and failures must agree (tests/support/oracle.py says
how they are compared)."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support import dockerd
from support.oracle import Case, differences, load_cases, make_context, read_saved
from support.paths import TESTDATA

pytestmark = [pytest.mark.root, pytest.mark.oracle, pytest.mark.slow]

CASES = load_cases(TESTDATA / "oracle")


class Builders:
    def __init__(self, work: Path, engine: dockerd.Dockerd, busybox_tar: Path):
        self.work, self.engine = work, engine
        self.root = work / "pybuild-root"
        engine.run("import", str(busybox_tar), "base:latest")
        self.pybuild("import", str(busybox_tar), "base:latest")

    def pybuild(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([sys.executable, "-m", "pybuild", "--root", str(self.root), *args],
                             capture_output=True, text=True, timeout=300)
        if check and res.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)}: {res.stderr.strip()}")
        return res

    def build_both(self, case: Case, ctx: Path, tag: str) -> dict[str, tuple]:
        """builder -> (saved archive or None when the build failed, stderr, time window).
        The two builds run at once: they share nothing but the context, which both only read."""
        options = [f"--build-arg={k}={v}" for k, v in case.build_args.items()]
        if case.target:
            options.append(f"--target={case.target}")
        per_builder = {"buildkit": list(options), "pybuild": options}
        if case.buildkit_dockerfile is not None:  # beside the context, so COPY . cannot see it
            dockerfile = ctx.parent / "buildkit.Dockerfile"
            dockerfile.write_text(case.buildkit_dockerfile)
            per_builder["buildkit"] += ["-f", str(dockerfile)]
        with ThreadPoolExecutor(2) as pool:
            runs = {name: pool.submit(self._build, name, per_builder[name], ctx, tag)
                    for name in ("buildkit", "pybuild")}
            return {name: run.result() for name, run in runs.items()}

    def _build(self, name: str, options: list[str], ctx: Path, tag: str) -> tuple:
        saved = self.work / f"{tag.replace('/', '-')}.{name}.tar"
        started = time.time()
        if name == "buildkit":
            # BuildKit 0.8 answers a WORKDIR from its cache even with --no-cache: start empty
            self.engine.run("builder", "prune", "-af")
            started = time.time()
            res = self.engine.run("build", "--network=none", "--no-cache", "-q", "-t", tag,
                                  *options, str(ctx), check=False)
        else:
            res = self.pybuild("build", "--no-cache", "-q", "-t", tag, *options, str(ctx),
                               check=False)
        ended = time.time()
        if res.returncode != 0:
            return None, res.stderr.strip(), (started, ended)
        if name == "buildkit":
            self.engine.run("save", "-o", str(saved), tag)
        else:
            self.pybuild("save", "--compression", "none", "-o", str(saved), tag)
        return saved, res.stderr.strip(), (started, ended)


@pytest.fixture(scope="module")
def builders(tmp_path_factory, busybox_tar):
    why = dockerd.missing()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("oracle")
    engine = dockerd.Dockerd(work)
    try:
        engine.start()
        yield Builders(work, engine, busybox_tar)
    finally:
        engine.stop()


def test_enough_cases():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(1 for c in CASES if c.known) <= 5


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_result_as_buildkit(builders: Builders, case: Case, tmp_path: Path) -> None:
    ctx = make_context(case, tmp_path / "context")
    tag = f"oracle/{case.file}-{case.name}".lower()
    result = builders.build_both(case, ctx, tag)
    (bk, bk_err, bk_window), (pb, pb_err, pb_window) = result["buildkit"], result["pybuild"]
    if case.fail:
        assert bk is None, "BuildKit built a case that is marked to fail"
    else:
        assert bk is not None, f"BuildKit refused a case not marked to fail: {bk_err}"
    found: list[str]
    if (bk is None) != (pb is None):
        found = [f"buildkit {'failed: ' + bk_err.splitlines()[-1] if bk is None else 'built'}; "
                 f"pybuild {'failed: ' + pb_err if pb is None else 'built'}"]
    elif bk is None:
        found = []
    else:
        found = differences(read_saved(bk), read_saved(pb), bk_window, pb_window)
    for mark in (case.known, case.open):
        if mark:
            if not found:
                pytest.fail(f"marked as a difference ({mark}) but both agree now")
            pytest.xfail(mark)
    assert not found, "\n".join(found)
