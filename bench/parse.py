"""Parse benchmark: pybuild (syntax tree + typed instructions) against the PyPI package
``dockerfile-parse`` on the same few hundred Dockerfiles, in one process; then the cold start
of ``pybuild parse FILE`` against ``python -c pass``.

    python3 bench/parse.py [--rounds 5] [--generated 60] [--cold 11]

Corpus: BuildKit's parser test files (../shared/conformance), our golden cases, and generated
multi-stage Dockerfiles of a few hundred instructions each. Files that pybuild refuses (the
BuildKit corpus has unknown flags on purpose) still count: the work up to the error is done.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PYBUILD_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO))


def corpus_files() -> list[Path]:
    roots = [SHARED / "conformance" / "buildkit" / "parser" / "testfiles",
             REPO / "testdata" / "dockerfiles"]
    return sorted(p for root in roots if root.is_dir() for p in root.glob("*/Dockerfile"))


def generated(count: int, seed: int = 7) -> list[str]:
    """Deterministic multi-stage Dockerfiles of 100-600 instructions."""
    rng = random.Random(seed)
    lines_for = [
        lambda i: f"RUN apt-get update && \\\n    apt-get install -y pkg{i} \\\n    && rm -rf /x",
        lambda i: f"COPY --chown=1000:1000 --link src/{i}/ /app/{i}/",
        lambda i: f'ENV VAR{i}="value {i}" OTHER{i}=${{VAR{i}}}-x',
        lambda i: f"ARG A{i}=default{i}",
        lambda i: f"LABEL org.example.k{i}=v{i}",
        lambda i: f"RUN --mount=type=cache,target=/root/.cache/{i},sharing=locked make t{i}",
        lambda i: f"WORKDIR /srv/{i}",
        lambda i: f"RUN <<EOF\necho {i}\nls /\nEOF",
        lambda i: f'CMD ["/bin/app", "--n", "{i}"]',
        lambda i: f"EXPOSE {1000 + i}/tcp",
        lambda i: f"# a comment about step {i}",
    ]
    out = []
    for _ in range(count):
        lines = ["# syntax=docker/dockerfile:1", "ARG BASE=debian:12"]
        for stage in range(rng.randint(2, 5)):
            lines.append(f"FROM ${{BASE}} AS s{stage}")
            lines += [rng.choice(lines_for)(i) for i in range(rng.randint(50, 150))]
        out.append("\n".join(lines) + "\n")
    return out


def forget_memos() -> None:
    """Every round starts without what the last one memoised (decoded and checked flag sets,
    RUN --mount specs), so that repeating the same files does not flatter pybuild; reuse
    within a round still counts."""
    from pybuild import memo

    memo.forget()


def run_pybuild(texts: list[str]) -> None:
    from pybuild.dockerfile import parser
    from pybuild.errors import PybuildError
    from pybuild.instructions import from_document

    forget_memos()
    for text in texts:
        try:
            from_document(parser.parse(text, file="Dockerfile"))
        except PybuildError:
            pass


def run_parser_only(texts: list[str]) -> None:
    from pybuild.dockerfile import parser
    from pybuild.errors import PybuildError

    for text in texts:
        try:
            parser.parse(text, file="Dockerfile")
        except PybuildError:
            pass


def instructions_only(texts: list[str]):
    """A runner over pre-parsed documents: the instruction layer's share on its own."""
    from pybuild.dockerfile import parser
    from pybuild.errors import PybuildError
    from pybuild.instructions import from_document

    docs = []
    for text in texts:
        try:
            docs.append(parser.parse(text, file="Dockerfile"))
        except PybuildError:
            pass
    by_text = dict(zip(texts, docs))

    def run(batch: list[str]) -> None:
        forget_memos()
        for text in batch:
            doc = by_text.get(text)
            try:
                if doc is not None:
                    from_document(doc)
            except PybuildError:
                pass

    return run


def run_dockerfile_parse(texts: list[str]) -> None:
    from dockerfile_parse import DockerfileParser

    for text in texts:
        parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8", "surrogateescape")))
        parser.structure  # noqa: B018 - the property does the parsing


def throughput(runners: dict[str, object], texts: list[str], rounds: int) -> dict[str, float]:
    """Files per second for each runner, from the median of ``rounds`` runs. The runners take
    turns within each round, so that a machine that slows down for a while (a shared VM)
    slows all of them alike and leaves the ratios alone."""
    for fn in runners.values():
        fn(texts[:5])  # imports and caches out of the measurement
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            start = time.perf_counter()
            fn(texts)
            times[name].append(time.perf_counter() - start)
    return {name: len(texts) / statistics.median(t) for name, t in times.items()}


def cold_start(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--generated", type=int, default=60)
    ap.add_argument("--cold", type=int, default=11)
    opts = ap.parse_args()
    files = corpus_files()
    texts = [p.read_text(encoding="utf-8", errors="surrogateescape") for p in files]
    texts += generated(opts.generated)
    lines = sum(t.count("\n") for t in texts)
    print(f"corpus: {len(texts)} Dockerfiles ({len(files)} on disk, {opts.generated} "
          f"generated), {lines} lines")
    rates = throughput({"ours": run_pybuild, "theirs": run_dockerfile_parse,
                        "parse_only": run_parser_only, "typed_only": instructions_only(texts)},
                       texts, opts.rounds)
    ours, theirs = rates["ours"], rates["theirs"]
    parse_only, typed_only = rates["parse_only"], rates["typed_only"]
    print(f"pybuild (parse + instructions): {ours:9.1f} files/s")
    print(f"  of which parser alone:        {parse_only:9.1f} files/s")
    print(f"  of which instructions alone:  {typed_only:9.1f} files/s")
    print(f"dockerfile-parse (structure):   {theirs:9.1f} files/s")
    print(f"ratio pybuild/dockerfile-parse: {ours / theirs:9.2f}x")
    script = Path(sys.executable).parent / "pybuild"
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "Dockerfile"
        sample.write_text(generated(1, seed=3)[0])
        base = cold_start([sys.executable, "-c", "pass"], opts.cold)
        ours_cold = cold_start([str(script), "parse", str(sample)], opts.cold)
    print(f"cold start python -c pass:      {base * 1000:9.1f} ms")
    print(f"cold start pybuild parse FILE:  {ours_cold * 1000:9.1f} ms ({script})")
    print(f"ratio:                          {ours_cold / base:9.2f}x (aim: < 6x)")


if __name__ == "__main__":
    main()
