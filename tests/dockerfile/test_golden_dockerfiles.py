"""Golden Dockerfiles: typed stages as JSON, and the exact error line of negative cases.

``testdata/dockerfiles/<case>/`` holds a Dockerfile and ``expected.json`` (what
``pybuild parse --format json`` prints); an optional ``cmdline`` file holds extra options,
one per line (``--build-arg``, ``NAME=V``, ``--target``, ``T``).
An optional ``expected-checks`` holds the ``pybuild parse --check`` lines (none when absent).
``testdata/dockerfiles-negative/<case>/`` holds ``expected-error``, the one line printed.
Set PYBUILD_UPDATE_GOLDEN=1 to rewrite the expected files from the current output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import REPO, TESTDATA

from pybuild.dockerfile import parser
from pybuild.dockerfile.checks import check_config, run_checks
from pybuild.errors import PybuildError
from pybuild.instructions import from_document
from pybuild.plan.serialize import build_data
from pybuild.plan.stages import resolve

POSITIVE = sorted(p for p in (TESTDATA / "dockerfiles").iterdir() if p.is_dir())
NEGATIVE = sorted(p for p in (TESTDATA / "dockerfiles-negative").iterdir() if p.is_dir())
# Cases also run through the installed CLI in a subprocess (slower, so only a few).
VIA_CLI = {"build-args", "copy-heredoc", "escape-backtick", "multi-stage-copy-from",
           "unknown-instruction", "copy-from-circular", "target-unknown"}


def options(case: Path) -> tuple[dict[str, str | None], str | None, list[str]]:
    path = case / "cmdline"
    words = path.read_text().splitlines() if path.exists() else []
    build_args: dict[str, str | None] = {}
    target = None
    for flag, value in zip(words[::2], words[1::2]):
        if flag == "--target":
            target = value
        else:
            name, eq, val = value.partition("=")
            build_args[name] = val if eq else None
    return build_args, target, words


def render_case(case: Path) -> str:
    """What ``pybuild parse --format json`` prints for the case, computed in-process."""
    build_args, target, _ = options(case)
    text = (case / "Dockerfile").read_text(encoding="utf-8")
    doc = parser.parse(text, file="Dockerfile")
    instructions = from_document(doc)
    stages = resolve(instructions, build_args, target, escape=doc.escape, file=doc.file)
    return json.dumps(build_data(doc, instructions, stages), sort_keys=True, indent=2,
                      ensure_ascii=False) + "\n"


def run_cli(case: Path, *extra: str) -> subprocess.CompletedProcess:
    _, _, words = options(case)
    return subprocess.run(
        [sys.executable, "-m", "pybuild", "parse", *extra, *words, "Dockerfile"],
        cwd=case, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_enough_cases():
    assert len(POSITIVE) >= 40 and len(NEGATIVE) >= 20


@pytest.mark.parametrize("case", POSITIVE, ids=lambda p: p.name)
def test_positive(case: Path):
    got = render_case(case)
    expected = case / "expected.json"
    if os.environ.get("PYBUILD_UPDATE_GOLDEN") or not expected.exists():
        expected.write_text(got, encoding="utf-8")
    assert got == expected.read_text(encoding="utf-8")


def check_lines(case: Path) -> str:
    doc = parser.parse((case / "Dockerfile").read_text(encoding="utf-8"), file="Dockerfile")
    return "".join(f"{doc.file}:{w.line}: {w.rule}: {w.message}\n" for w in run_checks(doc))


@pytest.mark.parametrize("case", POSITIVE, ids=lambda p: p.name)
def test_checks(case: Path):
    got = check_lines(case)
    expected = case / "expected-checks"
    if os.environ.get("PYBUILD_UPDATE_GOLDEN") and got:
        expected.write_text(got, encoding="utf-8")
    assert got == (expected.read_text(encoding="utf-8") if expected.exists() else "")


def test_check_error_directive_via_cli():
    case = TESTDATA / "dockerfiles" / "checks-error"
    result = run_cli(case, "--check")
    assert result.returncode == 1
    assert result.stdout == (case / "expected-checks").read_text()
    doc = parser.parse((case / "Dockerfile").read_text(), file="Dockerfile")
    assert check_config(doc).error


@pytest.mark.parametrize("case", NEGATIVE, ids=lambda p: p.name)
def test_negative(case: Path):
    with pytest.raises(PybuildError) as info:
        render_case(case)
    assert str(info.value) == (case / "expected-error").read_text().rstrip("\n")


@pytest.mark.parametrize("case", [c for c in POSITIVE if c.name in VIA_CLI], ids=lambda p: p.name)
def test_positive_via_cli(case: Path):
    result = run_cli(case, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (case / "expected.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", [c for c in NEGATIVE if c.name in VIA_CLI], ids=lambda p: p.name)
def test_negative_via_cli(case: Path):
    result = run_cli(case, "--format", "json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (case / "expected-error").read_text()


def test_cli_dump_passes_unknown_instructions(tmp_path: Path):
    (tmp_path / "Dockerfile").write_text("FROM a\nCOPPY --bogus x y\n")
    result = subprocess.run([sys.executable, "-m", "pybuild", "parse", "Dockerfile"],
                            cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == '(from "a")\n(coppy ["--bogus"] "")\n'


def test_cli_check_and_missing_file(tmp_path: Path):
    (tmp_path / "Dockerfile").write_text("# check=error=true\nFROM a\nMAINTAINER me\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "pybuild", "parse", "--check", "-f",
                             "Dockerfile"], cwd=tmp_path, capture_output=True, text=True,
                            env=env)
    assert result.returncode == 1
    assert result.stdout == ("Dockerfile:3: MaintainerDeprecated: Maintainer instruction is "
                             "deprecated in favor of using label\n")
    missing = subprocess.run([sys.executable, "-m", "pybuild", "parse", "nope/Dockerfile"],
                             cwd=tmp_path, capture_output=True, text=True, env=env)
    assert missing.returncode == 1
    assert missing.stderr == "nope/Dockerfile: no such file or directory\n"


def test_empty_continuation_check_through_the_parser():
    doc = parser.parse("FROM alpine\nRUN echo a \\\n\n  b\n", file="Dockerfile")
    assert [(w.rule, w.line, w.message) for w in run_checks(doc)] == [
        ("NoEmptyContinuation", 4, "Empty continuation line")]
