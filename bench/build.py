"""Build benchmark: the shared sample built by pybuild, buildah and (when it can start) docker
with BuildKit, in one run, alternating; prints medians and ratios for four cases.

    python3 bench/build.py [--rounds 5] [--work /var/tmp/pybuild-bench-build] [--baseline DIR]

Cases: cold (--no-cache), no-change rebuild, rebuild after `touch` of one small file, rebuild
after editing one small file. With ``--baseline DIR`` (a checkout of an earlier pybuild, e.g.
``git worktree add /tmp/basewt main``), that tree runs too as ``pybuild-before``, so a change
is measured against what it replaces in the same run. Both trees run from compiled bytecode:
the script compiles them first and runs pybuild with PYTHONDONTWRITEBYTECODE unset.

Needs busybox-static and buildah; docker with BuildKit is used
when Debian's docker.io (/usr/sbin/dockerd, /usr/bin/docker) is installed (see
../shared/bench/README.md), and skipped with a note otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PYBUILD_SHARED", REPO.parent / "shared"))
SAMPLE = SHARED / "bench" / "sample"
BASE = "localhost/bench/busybox:latest"
CASES = ("cold", "no-change", "touch", "edit")
SMALL = "small/d01/f003.txt"


def sh(cmd: list[str], env: dict | None = None, quiet: bool = True) -> None:
    out = subprocess.DEVNULL if quiet else None
    subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.PIPE if quiet else None,
                   env={**os.environ, **(env or {})})


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Tool:
    name = ""

    def setup(self, work: Path, base_tar: Path) -> None: ...
    def build(self, ctx: Path, nocache: bool) -> None: ...
    def teardown(self) -> None: ...


# what the console script runs, with the tree chosen by PYTHONPATH
_ENTRY = "import sys; sys.argv[0] = 'pybuild'; from pybuild.entry import main; main()"


def compile_tree(tree: Path) -> None:
    """Bytecode for every module, as a user's install has it."""
    sh([sys.executable, "-m", "compileall", "-q", str(tree / "pybuild")])


class Pybuild(Tool):
    def __init__(self, name: str, tree: Path):
        self.name, self.tree = name, tree

    def setup(self, work: Path, base_tar: Path) -> None:
        self.root = work / f"{self.name}-root"
        shutil.rmtree(self.root, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {**env, "PYTHONPATH": str(self.tree)}
        self.cli(["import", str(base_tar), BASE])

    def cli(self, args: list[str]) -> None:
        subprocess.run([sys.executable, "-P", "-c", _ENTRY, "--root", str(self.root), *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env=self.env)

    def build(self, ctx: Path, nocache: bool) -> None:
        args = ["build", "-q", "--network", "none", "-t", "sample", "-f",
                str(SAMPLE / "Dockerfile")]
        self.cli(args + (["--no-cache"] if nocache else []) + [str(ctx)])


class Buildah(Tool):
    name = "buildah"

    def setup(self, work: Path, base_tar: Path) -> None:
        self.prefix = ["buildah", "--root", str(work / "buildah-root"), "--runroot",
                       str(work / "buildah-runroot"), "--storage-driver", "overlay"]
        self.env = {"BUILDAH_RUNTIME": "runc"}
        self.teardown()
        ctr = subprocess.run(self.prefix + ["from", "scratch"], check=True, text=True,
                             capture_output=True, env={**os.environ, **self.env}).stdout.strip()
        sh(self.prefix + ["add", ctr, str(base_tar), "/"], self.env)
        sh(self.prefix + ["commit", "-q", ctr, BASE], self.env)
        sh(self.prefix + ["rm", ctr], self.env)

    def build(self, ctx: Path, nocache: bool) -> None:
        cmd = self.prefix + ["bud", "--layers", "--format", "docker", "-q", "-t", "sample",
                             "-f", str(SAMPLE / "Dockerfile")]
        sh(cmd + (["--no-cache"] if nocache else []) + [str(ctx)], self.env)

    def teardown(self) -> None:
        subprocess.run(self.prefix + ["rm", "--all"], capture_output=True)
        subprocess.run(self.prefix + ["rmi", "--all", "--force"], capture_output=True)


class Docker(Tool):
    """A private dockerd on a unix socket, as ../shared/bench/README.md describes."""

    name = "docker"

    def setup(self, work: Path, base_tar: Path) -> None:
        # what dockerd makes outside its roots; removed after unless it was there before
        self.leftovers = [p for p in ("/etc/docker", "/run/docker") if not os.path.exists(p)]
        self.run = Path("/run/pybuild-bench-docker")
        self.run.mkdir(parents=True, exist_ok=True)
        conf = work / "daemon.json"
        conf.write_text("{}")
        self.env = {"DOCKER_BUILDKIT": "1", "DOCKER_HOST": f"unix://{self.run}.sock"}
        # No bridge and no firewall: both builds run their RUN with --network=none
        self.proc = subprocess.Popen(
            ["dockerd", "--config-file", str(conf), "--data-root", str(work / "docker-root"),
             "--exec-root", str(self.run), "--pidfile", f"{self.run}.pid",
             "-H", f"unix://{self.run}.sock", "--storage-driver", "overlay2",
             "--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(100):
            if subprocess.run(["/usr/bin/docker", "info"], capture_output=True,
                              env={**os.environ, **self.env}).returncode == 0:
                break
            time.sleep(0.2)
        sh(["/usr/bin/docker", "import", str(base_tar), BASE], self.env)

    def build(self, ctx: Path, nocache: bool) -> None:
        cmd = ["/usr/bin/docker", "build", "--network=none", "-q", "-t", "sample", "-f",
               str(SAMPLE / "Dockerfile")]
        sh(cmd + (["--no-cache"] if nocache else []) + [str(ctx)], self.env)

    def teardown(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        for path in self.leftovers:
            subprocess.run(["rm", "-rf", path])


def run_round(tools: list[Tool], ctx: Path, results: dict) -> None:
    small = ctx / SMALL
    for tool in tools:
        results[tool.name]["cold"].append(timed(lambda t=tool: t.build(ctx, True)))
        results[tool.name]["no-change"].append(timed(lambda t=tool: t.build(ctx, False)))
        os.utime(small)
        results[tool.name]["touch"].append(timed(lambda t=tool: t.build(ctx, False)))
        with small.open("a") as f:
            f.write(f"edit {time.time_ns()}\n")
        results[tool.name]["edit"].append(timed(lambda t=tool: t.build(ctx, False)))
        sh([str(SAMPLE / "gen-context.sh"), str(ctx)])  # back to the pristine context


def report(results: dict) -> None:
    names = list(results)
    others = [n for n in names if n != "pybuild"]
    print(f"{'case':<10}" + "".join(f"{n:>16}" for n in names)
          + "".join(f"{'pybuild/' + n:>24}" for n in others))
    for case in CASES:
        med = {n: statistics.median(results[n][case]) for n in names}
        row = f"{case:<10}" + "".join(f"{med[n]:>15.3f}s" for n in names)
        row += "".join(f"{med['pybuild'] / med[n]:>23.2f}x" for n in others)
        print(row)
    print(json.dumps({n: {c: statistics.median(v) for c, v in r.items()}
                      for n, r in results.items()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/pybuild-bench-build"))
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--baseline", type=Path, help="an earlier pybuild checkout to run too")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base_tar, ctx = args.work / "busybox.tar", args.work / "ctx"
    sh([str(REPO / "scripts" / "busybox-rootfs.sh"), str(base_tar)])
    sh([str(SAMPLE / "gen-context.sh"), str(ctx)])
    tools: list[Tool] = [Pybuild("pybuild", REPO)]
    if args.baseline:
        tools.append(Pybuild("pybuild-before", args.baseline.resolve()))
    for tool in tools:
        compile_tree(tool.tree)
    print("bytecode: compiled (compileall) for " + ", ".join(str(t.tree) for t in tools)
          + "; pybuild runs with PYTHONDONTWRITEBYTECODE unset")
    tools.append(Buildah())
    if not args.no_docker and shutil.which("dockerd") and Path("/usr/bin/docker").exists():
        tools.append(Docker())
    else:
        print("docker: skipped (install Debian's docker.io; see ../shared/bench/README.md)")
    for tool in tools:
        tool.setup(args.work, base_tar)
    results = {t.name: {c: [] for c in CASES} for t in tools}
    try:
        for _ in range(args.rounds):
            run_round(tools, ctx, results)
    finally:
        for tool in tools:
            tool.teardown()
    report(results)


if __name__ == "__main__":
    main()
