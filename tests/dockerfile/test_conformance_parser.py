"""BuildKit's Dockerfile parser corpus: dumps, failures, line spans and the extracted vectors.

Every positive case must dump byte for byte as BuildKit does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.paths import conformance_root

from pybuild.dockerfile import parser
from pybuild.dockerfile.grammar import json_array
from pybuild.errors import ParseError

_ROOT = conformance_root()
_BK = _ROOT / "buildkit" if _ROOT else None
_MISSING = "corpus-missing"  # a single id whose test skips through the fixture


def _cases(sub: str) -> list[str]:
    folder = _BK / "parser" / sub if _BK else None
    if folder is None or not folder.is_dir():
        return [_MISSING]
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def _vectors(name: str) -> dict[str, Any]:
    path = _BK / "extracted" / name if _BK else None
    return json.loads(path.read_text(encoding="utf-8")) if path and path.is_file() else {}


def _params(items: list[Any], ids: list[str]) -> Any:
    """Cases for parametrize, or one that skips when the corpus is missing."""
    if not items:
        return [pytest.param(None, id=_MISSING)]
    return [pytest.param(item, id=i) for item, i in zip(items, ids)]


HEREDOC = _vectors("parser_heredoc.json")
JSONV = _vectors("parser_json.json")
LINE_PARSERS = _vectors("parser_line_parsers.json")
MISC = _vectors("parser_misc.json")
DIRECTIVES = _vectors("parser_directives.json")

NEGATIVE_MESSAGES = {
    "empty_dockerfile": "Dockerfile:1: file with no instructions",
    "env_no_value": "Dockerfile:3: ENV must have two arguments",
    "only_comments": "Dockerfile:3: file with no instructions",
    "shykes-nested-json": "Dockerfile:1: when using JSON array syntax, arrays must be comprised "
                          "of strings only",
}


@pytest.mark.parametrize("case", _cases("testfiles"))
def test_positive_dump(buildkit_corpus: Path, case: str) -> None:
    folder = buildkit_corpus / "parser" / "testfiles" / case
    doc = parser.parse((folder / "Dockerfile").read_bytes())
    assert parser.dump(doc) == (folder / "result").read_bytes().decode("utf-8")


def test_positive_count(buildkit_corpus: Path) -> None:
    assert len(_cases("testfiles")) == 33
    assert len(_cases("testfiles-negative")) == 4


@pytest.mark.parametrize("case", _cases("testfiles-negative"))
def test_negative(buildkit_corpus: Path, case: str) -> None:
    data = (buildkit_corpus / "parser" / "testfiles-negative" / case / "Dockerfile").read_bytes()
    with pytest.raises(ParseError) as info:
        parser.parse(data)
    assert str(info.value) == NEGATIVE_MESSAGES[case]
    assert "\n" not in str(info.value)


def test_line_spans(buildkit_corpus: Path) -> None:
    expected = MISC["line_numbers"]
    doc = parser.parse((buildkit_corpus / expected["file"]).read_bytes())
    assert [doc.start_line, doc.end_line] == expected["root"]
    assert [[n.start_line, n.end_line] for n in doc.nodes] == expected["children"]
    assert doc.directives == {"escape": "\\"}  # "# ESCAPE=\": an upper-case key


# ---- parser_heredoc.json ------------------------------------------------------------------

_EXTRACT = HEREDOC.get("extract_heredocs", {}).get("expected", [])


@pytest.mark.parametrize("index", _params(list(range(len(_EXTRACT))),
                                          [e["instruction"] for e in _EXTRACT]))
def test_extract_heredocs(buildkit_corpus: Path, index: int) -> None:
    doc = parser.parse(HEREDOC["extract_heredocs"]["dockerfile"])
    assert len(doc.nodes) == len(_EXTRACT) + 1
    node, expected = doc.nodes[index + 1], _EXTRACT[index]
    assert node.raw == expected["instruction"]
    got = [{"name": h.name, "content": h.content, "expand": h.expand, "chomp": h.chomp,
            "fd": h.fd} for h in node.heredocs]
    assert (got or None) == expected["heredocs"]


def test_json_form_has_no_heredocs(buildkit_corpus: Path) -> None:
    doc = parser.parse(HEREDOC["json_form_has_no_heredocs"]["dockerfile"])
    assert [n.heredocs for n in doc.nodes[1:4]] == [(), (), ()]
    assert all(n.json for n in doc.nodes[1:4])


def test_chomp_content(buildkit_corpus: Path) -> None:
    vector = HEREDOC["chomp_content"]
    assert parser.chomp_heredoc_content(vector["input"]) == vector["expected"]


_WORDS = HEREDOC.get("parse_heredoc_word", {})


@pytest.mark.parametrize("word", _params(_WORDS.get("valid_name_EOF", []),
                                         _WORDS.get("valid_name_EOF", [])))
def test_heredoc_word_valid(buildkit_corpus: Path, word: str) -> None:
    heredoc = parser.parse_heredoc_word(word)
    assert heredoc is not None and heredoc.name == "EOF"
    assert heredoc.chomp == word.startswith("<<-")
    assert heredoc.expand == ("'" not in word and '"' not in word)


@pytest.mark.parametrize("word", _params(_WORDS.get("invalid_error", []),
                                         _WORDS.get("invalid_error", [])))
def test_heredoc_word_invalid(buildkit_corpus: Path, word: str) -> None:
    with pytest.raises(ParseError):
        parser.parse_heredoc_word(word)


@pytest.mark.parametrize("word", _params(_WORDS.get("not_heredoc", []),
                                         [repr(w) for w in _WORDS.get("not_heredoc", [])]))
def test_heredoc_word_not_heredoc(buildkit_corpus: Path, word: str) -> None:
    assert parser.parse_heredoc_word(word) is None


_FROM_LINE = [c for c in HEREDOC.get("heredocs_from_line", {}).get("cases", [])
              if c.get("strict", True)]


@pytest.mark.parametrize("case", _params(_FROM_LINE, [c["line"] for c in _FROM_LINE]))
def test_heredocs_from_line(buildkit_corpus: Path, case: dict[str, Any]) -> None:
    assert [h.name for h in parser.heredocs_from_line(case["line"])] == case["names"]


# ---- parser_json.json, parser_line_parsers.json ------------------------------------------

_VALID = JSONV.get("valid", [])


@pytest.mark.parametrize("case", _params(_VALID, [c["input"] for c in _VALID]))
def test_json_valid(buildkit_corpus: Path, case: dict[str, Any]) -> None:
    # Argument text reaches the JSON form trimmed, as in "CMD <text>".
    assert json_array(case["input"].strip(" \t")) == case["expected"]
    doc = parser.parse("CMD " + case["input"])
    assert doc.nodes[0].json and list(doc.nodes[0].args) == case["expected"]


@pytest.mark.parametrize("text", _params(JSONV.get("not_string_array", []),
                                         JSONV.get("not_string_array", [])))
def test_json_not_string_array(buildkit_corpus: Path, text: str) -> None:
    with pytest.raises(ParseError, match="arrays must be comprised of strings only"):
        json_array(text)
    with pytest.raises(ParseError) as info:
        parser.parse("FROM x\nCMD " + text)
    assert str(info.value).startswith("Dockerfile:2: ")


_LP = LINE_PARSERS.get("cases", [])


@pytest.mark.parametrize("case", _params(_LP, [f"{c['instruction']} {c['args']}" for c in _LP]))
def test_line_parsers(buildkit_corpus: Path, case: dict[str, Any]) -> None:
    text = f"{case['instruction']} {case['args']}"
    if case.get("error"):
        with pytest.raises(ParseError) as info:
            parser.parse(text)
        assert str(info.value) == f"Dockerfile:1: {case['error_message']}"
    else:
        assert list(parser.parse(text).nodes[0].args) == case["nodes"]


# ---- parser_misc.json ----------------------------------------------------------------------

_PW = MISC.get("parse_words", {}).get("cases", [])


@pytest.mark.parametrize("case", _params(_PW, [c["input"] for c in _PW]))
def test_parse_words(buildkit_corpus: Path, case: dict[str, Any]) -> None:
    assert parser.parse_words(case["input"]) == case["expected"]


def test_empty_continuation_warnings(buildkit_corpus: Path) -> None:
    vector = MISC["empty_continuation_warnings"]
    doc = parser.parse(vector["dockerfile"])
    assert len(doc.warnings) == vector["expected_warning_count"]
    for warning, text in zip(doc.warnings, vector["expected_warning_substrings"]):
        assert text in warning.message
        assert warning.rule == "NoEmptyContinuation"
    assert [w.line for w in doc.warnings] == [11, 15]  # the instruction's last line


def test_line_too_long(buildkit_corpus: Path) -> None:
    limit = MISC["line_too_long"]["max_line_bytes"]
    with pytest.raises(ParseError) as info:
        parser.parse("FROM image\nLABEL test=" + "a" * (limit + 1))
    assert str(info.value) == f"Dockerfile:2: dockerfile line greater than max allowed size " \
                              f"of {limit}"
    ok = parser.parse("FROM image\nLABEL t=" + "a" * (limit - len("LABEL t=")) + "\n")
    assert ok.nodes[1].args[1] == "a" * (limit - len("LABEL t="))


# ---- parser_directives.json ---------------------------------------------------------------

_PA = DIRECTIVES.get("parse_all", {}).get("cases", [])


@pytest.mark.parametrize("case", _params(_PA, [c["input"] for c in _PA]))
def test_parse_all_directives(buildkit_corpus: Path, case: dict[str, Any]) -> None:
    assert parser.parse_directives(case["input"]) == [tuple(d) for d in case["expected"]]


def _check_directive(found: parser.DirectiveValue | None, case: dict[str, Any]) -> None:
    assert (found is not None) == case["found"]
    if found is None:
        assert case.get("ref", "") == "" and case.get("cmdline", "") == ""
        return
    assert found.ref == case["ref"]
    if "cmdline" in case:
        assert found.cmdline == case["cmdline"]
    if "line" in case:
        assert found.line == case["line"]


_DS = DIRECTIVES.get("detect_syntax", {}).get("cases", [])


@pytest.mark.parametrize("case", _params(_DS, [c["input"] for c in _DS]))
def test_detect_syntax(buildkit_corpus: Path, case: dict[str, Any]) -> None:
    _check_directive(parser.detect_syntax(case["input"]), case)
    _check_directive(parser.detect_syntax(case["input"].encode("utf-8")), case)


_DC = DIRECTIVES.get("parse_directive_check", {}).get("cases", [])


@pytest.mark.parametrize("case", _params(_DC, [c["input"] for c in _DC]))
def test_parse_directive_check(buildkit_corpus: Path, case: dict[str, Any]) -> None:
    _check_directive(parser.parse_directive("check", case["input"]), case)
