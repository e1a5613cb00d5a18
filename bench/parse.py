"""Parse benchmark: this tree and, with ``--baseline DIR``, an earlier checkout, in one run.

    python3 bench/parse.py [--baseline DIR] [--rounds 15]

Every figure is a median over the rounds; the trees take turns within each round.
  python        ``python3 -c pass``, the floor a Python command cannot go below
  --version     ``pybuild --version`` as a new process          target: under 3x python
  parse FILE    ``pybuild parse FILE`` as a new process         target: under 3x python
  first parse   parse + typed instructions of FILE, the first in a process (lark's tables
                are loaded then)                                target: under 5 ms
  next parses   the same, once the process has parsed before
FILE is the largest Dockerfile of the corpus (BuildKit's parser test files under
../shared/conformance, else our golden cases). Both trees run from compiled bytecode, as an
installed pybuild does, with PYTHONDONTWRITEBYTECODE unset.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(os.environ.get("PYBUILD_CONFORMANCE", REPO.parent / "shared" / "conformance"))

_ENTRY = "import sys; sys.argv[0] = 'pybuild'; from pybuild.entry import main; main()"
# Run inside a tree's process: prints the first parse's time and the median of the next ones.
_IN_PROCESS = """
import sys, time, statistics
from pybuild.dockerfile.parser import parse
from pybuild.instructions import from_document
text = open(sys.argv[1], "rb").read()
times = []
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    from_document(parse(text))
    times.append(time.perf_counter() - started)
print(times[0], statistics.median(times[1:]))
"""


def largest_dockerfile() -> Path:
    roots = [CONFORMANCE / "buildkit" / "parser" / "testfiles", REPO / "testdata" / "dockerfiles"]
    files = [p for root in roots if root.is_dir() for p in root.glob("*/Dockerfile")]
    return max(files, key=lambda p: (p.stat().st_size, str(p)))


class Tree:
    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {**env, "PYTHONPATH": str(path)}
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(path / "pybuild")],
                       check=True, stdout=subprocess.DEVNULL)

    def timed(self, args: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-P", "-c", _ENTRY, *args], check=True, env=self.env,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - started

    def in_process(self, file: Path) -> tuple[float, float]:
        out = subprocess.run([sys.executable, "-P", "-c", _IN_PROCESS, str(file), "50"], check=True,
                             env=self.env, capture_output=True, text=True).stdout.split()
        return float(out[0]), float(out[1])


def python_pass() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--baseline", type=Path, help="an earlier pybuild checkout to run too")
    opts = ap.parse_args()
    file = largest_dockerfile()
    trees = [Tree("pybuild", REPO)]
    if opts.baseline:
        trees.append(Tree("before", opts.baseline.resolve()))
    samples: dict[tuple[str, str], list[float]] = {}

    def add(tree: str, figure: str, seconds: float) -> None:
        samples.setdefault((tree, figure), []).append(seconds)

    for _ in range(opts.rounds):
        add("python", "python", python_pass())
        for tree in trees:
            add(tree.name, "--version", tree.timed(["--version"]))
            add(tree.name, "parse FILE", tree.timed(["parse", str(file)]))
            first, rest = tree.in_process(file)
            add(tree.name, "first parse", first)
            add(tree.name, "next parses", rest)

    floor = statistics.median(samples["python", "python"])
    print("bytecode: compiled (compileall) for every tree; PYTHONDONTWRITEBYTECODE unset")
    print(f"file: {file} ({file.stat().st_size} bytes, {opts.rounds} rounds)")
    print(f"{'python -c pass':<14} {floor * 1e3:8.1f} ms")
    for figure in ("--version", "parse FILE", "first parse", "next parses"):
        row = f"{figure:<14}"
        for tree in trees:
            value = statistics.median(samples[tree.name, figure])
            row += f" {tree.name} {value * 1e3:8.2f} ms"
            if figure in ("--version", "parse FILE"):
                row += f" ({value / floor:.2f}x python)"
        if len(trees) == 2:
            now, before = (statistics.median(samples[t.name, figure]) for t in trees)
            row += f"   now/before {now / before:.2f}"
        print(row)


if __name__ == "__main__":
    main()
