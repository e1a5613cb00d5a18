"""BuildKit's shell lexer test data: envVarTest, wordsTest and the vectors in shell_lex.json.

Cases are read at collection time so that each line is its own test id; every test also asks
for the ``buildkit_corpus`` fixture, which skips them all when the corpus is not there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.paths import conformance_root

from pybuild.errors import ExpansionError
from pybuild.shell.words import expand, expand_with_matches, shell_pattern_to_regex, split_words

ROOT = conformance_root()
CORPUS = ROOT / "buildkit" if ROOT else None
ENV_VAR_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _read(rel: str) -> str:
    if CORPUS is None or not (CORPUS / rel).is_file():
        return ""
    return (CORPUS / rel).read_text(encoding="utf-8")


def env_var_cases() -> list:
    cases = []
    for lineno, line in enumerate(_read("shell/envVarTest").split("\n"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        platform, word, expected = (field.strip() for field in line.split("|"))
        if platform in ("A", "U"):
            cases.append(pytest.param(word, expected, id=f"L{lineno}-{platform}"))
    return cases


def words_cases() -> list:
    cases, env = [], {}
    for lineno, line in enumerate(_read("shell/wordsTest").split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        if line.startswith("ENV "):
            name, _, value = line[4:].lstrip(" ").partition("=")
            env[name] = value
            continue
        word, expected = line.split("|")
        cases.append(pytest.param(word.strip(), expected.lstrip(), dict(env), id=f"L{lineno}"))
    return cases


def lex_json() -> dict:
    text = _read("extracted/shell_lex.json")
    return json.loads(text) if text else {}


LEX = lex_json()
ENV_VAR_CASES = env_var_cases()
WORDS_CASES = words_cases()


def _section(name: str) -> list:
    cases = LEX.get(name, {}).get("cases", [])
    return [pytest.param(case, id=f"{i}-{case['input'][:40]}") for i, case in enumerate(cases)]


def test_case_counts(buildkit_corpus: Path) -> None:
    assert len(ENV_VAR_CASES) == 228
    assert len(WORDS_CASES) == 24
    assert len(LEX["process_word_with_matches"]["cases"]) == 47


@pytest.mark.parametrize(("word", "expected"), ENV_VAR_CASES)
def test_env_var(buildkit_corpus: Path, word: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(ExpansionError):
            expand(word, ENV_VAR_ENV)
    else:
        assert expand(word, ENV_VAR_ENV) == expected


@pytest.mark.parametrize(("word", "expected", "env"), WORDS_CASES)
def test_words(buildkit_corpus: Path, word: str, expected: str, env: dict) -> None:
    if expected == "error":
        with pytest.raises(ExpansionError):
            split_words(word, env)
    else:
        assert split_words(word, env) == expected.split(",")


@pytest.mark.parametrize("case", _section("process_word_with_matches"))
def test_process_word_with_matches(buildkit_corpus: Path, case: dict) -> None:
    if case.get("error"):
        with pytest.raises(ExpansionError):
            expand_with_matches(case["input"], case["env"])
        return
    result = expand_with_matches(case["input"], case["env"])
    assert result.value == case["expected"]
    assert result.matched == frozenset(case["matched"])
    assert result.unmatched == frozenset(case["unmatched"])
    assert expand(case["input"], case["env"]) == case["expected"]


@pytest.mark.parametrize("case", _section("process_word_platform"))
def test_process_word_platform(buildkit_corpus: Path, case: dict) -> None:
    assert expand(case["input"], case["env"]) == case["expected"]


@pytest.mark.parametrize("case", _section("mandatory_env_vars"))
def test_mandatory_env_vars(buildkit_corpus: Path, case: dict) -> None:
    if case.get("error"):
        with pytest.raises(ExpansionError, match=case["error_contains"]) as info:
            expand(case["input"], case["env"])
        assert "VAR" in str(info.value)
    else:
        assert expand(case["input"], case["env"]) == case["expected"]


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [pytest.param(p, r, id=p) for p, r in LEX.get("shell_pattern_to_regex", {})
     .get("valid", {}).items()],
)
def test_shell_pattern_to_regex(buildkit_corpus: Path, pattern: str, regex: str) -> None:
    assert shell_pattern_to_regex(pattern) == regex


@pytest.mark.parametrize(
    "pattern",
    [pytest.param(p, id=p) for p in LEX.get("shell_pattern_to_regex", {}).get("invalid", [])],
)
def test_shell_pattern_to_regex_invalid(buildkit_corpus: Path, pattern: str) -> None:
    with pytest.raises(ExpansionError):
        shell_pattern_to_regex(pattern)
    # the same pattern used in a word is an expansion error too
    with pytest.raises(ExpansionError):
        expand("${FOO#" + pattern.replace("}", "\\}") + "}", {"FOO": "x"})
