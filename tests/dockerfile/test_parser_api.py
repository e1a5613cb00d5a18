"""The parser's public API and its errors."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from pybuild.dockerfile import parser
from pybuild.dockerfile.syntax import Heredoc
from pybuild.errors import ContextError, ParseError, PybuildError


@pytest.mark.parametrize("text, message", [
    ("# escape=`\n# escape=\\\nFROM x",
     "Dockerfile:2: only one escape parser directive can be used"),
    ("# syntax=a\n#SYNTAX=b\nFROM x", "Dockerfile:2: only one syntax parser directive can be used"),
    ("# escape=x\nFROM x", "Dockerfile:1: invalid escape token 'x' does not match ` or \\"),
    ("FROM x\n\nRUN <<EOF\nfoo\n", "Dockerfile:3: unterminated heredoc"),
    ("FROM x\nRUN <<A <<B\nA\n", "Dockerfile:2: unterminated heredoc"),
    ("FROM x\nRUN <<${x:-'a b'}\nfoo\n",
     "Dockerfile:2: failed to process \"${x:-'a\": syntax error: missing '}'"),
    ("FROM x\nENV a=b \\\n  c", "Dockerfile:2: Syntax error - can't find = in \"c\". "
                                "Must be of the form: name=value"),
    ("LABEL foo", "Dockerfile:1: LABEL must have two arguments"),
    ("FROM x\n\n\nRUN [\"a\", 1]", "Dockerfile:4: when using JSON array syntax, arrays must be "
                                  "comprised of strings only"),
    ("# just a comment\n\n", "Dockerfile:2: file with no instructions"),
    ("ONBUILD " * 70 + "RUN x", "Dockerfile:1: ONBUILD is nested too deeply"),
])
def test_errors_are_one_located_line(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parser.parse(text)
    assert str(info.value) == message


def test_error_names_the_file() -> None:
    with pytest.raises(ParseError, match=r"^build/Dockerfile\.dev:1: ENV must have two"):
        parser.parse("ENV PATH", file="build/Dockerfile.dev")


def test_parse_file(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"\xef\xbb\xbfFROM busybox\r\nRUN echo \xff\r\n")
    doc = parser.parse_file(str(path))
    assert doc.file == str(path)
    assert parser.dump(doc) == '(from "busybox")\n(run "echo \\xff")\n'
    with pytest.raises(ContextError, match="no such file: .*missing"):
        parser.parse_file(str(tmp_path / "missing"))
    with pytest.raises(ContextError):
        parser.parse_file(str(tmp_path))  # a directory


def test_node_fields() -> None:
    text = "FROM x\n  Copy --from=build --chown='a b' -- --odd /dst  \n"
    node = parser.parse(text).nodes[1]
    assert (node.keyword, node.original) == ("copy", "Copy")
    assert node.flags == ("--from=build", "--chown=a b")
    assert node.args == ("--odd", "/dst") and node.rest == "--odd /dst"
    assert node.raw == "Copy --from=build --chown='a b' -- --odd /dst  "
    assert (node.start_line, node.end_line, node.json, node.child) == (2, 2, False, None)


def test_onbuild_child_and_heredocs() -> None:
    doc = parser.parse("FROM x\nONBUILD RUN --mount=type=cache <<-EOF cat\n\thi\n\tEOF\nUSER me")
    node = doc.nodes[1]
    assert node.keyword == "onbuild" and node.args == () and node.rest.startswith("RUN ")
    heredoc = Heredoc("EOF", "\thi\n", expand=True, chomp=True, fd=0)
    assert node.heredocs == (heredoc,) and (node.start_line, node.end_line) == (2, 4)
    child = node.child
    assert child is not None and child.keyword == "run" and child.flags == ("--mount=type=cache",)
    assert child.heredocs == (heredoc,) and child.args == ("<<-EOF cat",)
    assert parser.dump_node(node) == 'onbuild (run ["--mount=type=cache"] "<<-EOF cat")'
    assert doc.nodes[2].start_line == 5


def test_healthcheck_and_unknown_instructions() -> None:
    doc = parser.parse('HEALTHCHECK --retries=3 CMD ["true"]\nFOO bar baz\n\\\n')
    health, foo, empty = doc.nodes
    assert health.args == ("CMD", "true") and health.json and health.flags == ("--retries=3",)
    assert foo.args == ("",) and foo.rest == "bar baz"
    assert parser.dump(doc).splitlines()[1:] == ['(foo "")', '("")']
    assert empty.keyword == ""


def test_directives_and_escape() -> None:
    doc = parser.parse("# syntax=docker/dockerfile:1\n# Escape = `\n# check=skip=all\n"
                       "FROM x\nRUN a `\n  b\n# escape=\\\n")
    assert doc.directives == {"syntax": "docker/dockerfile:1", "escape": "`", "check": "skip=all"}
    assert doc.escape == "`" and doc.nodes[1].args == ("a   b",)
    assert parser.detect_syntax(b"#!/bin/sh\n# syntax = a b\n") == parser.DirectiveValue(
        "a", "a b", 2)


@pytest.mark.parametrize("value, quoted", [
    ("plain", '"plain"'),
    ('" \\ / \b \f \n \r \t \x00 \a \v', '"\\" \\\\ / \\b \\f \\n \\r \\t \\x00 \\a \\v"'),
    ("♥ 한 é", '"♥ 한 é"'),
    ("\x7f\u00a0\u2028\ufeff", '"\\x7f\\u00a0\\u2028\\ufeff"'),
    ("\U0001f600\U000e0001", '"\U0001f600\\U000e0001"'),
    ("\udcff\udc80", '"\\xff\\x80"'),  # bytes that were not UTF-8
])
def test_go_quote(value: str, quoted: str) -> None:
    assert parser.go_quote(value) == quoted


def test_only_pybuild_errors_escape_for_odd_input() -> None:
    for text in ["\\", "`", "\n\n", "#", "\x00", "RUN <<", "COPY <<'", "CMD [" * 40000,
                 "ENV =", "ARG \\", "LABEL \"", "\ufeff\ufeff"]:
        try:
            parser.parse(text)
        except PybuildError:
            pass


@pytest.mark.parametrize("text", [
    'CMD ["' + "a" * 20000, 'CMD ["' + "a" * 20000 + '", 1', "CMD [" + '"a",' * 5000,
    'RUN --x="' + "a b" * 5000, "RUN --x=" + "\\a" * 10000, 'ENV a="' + "b\\ " * 5000,
    "ARG " + "'x " * 5000, 'RUN <<"' + "a" * 20000, "RUN" + "\u00a0 " * 10000 + "--",
], ids=["json-open", "json-bad", "json-many", "flag-quotes", "flag-escapes", "env-words",
        "arg-quotes", "heredoc-open", "unicode-spaces"])
def test_no_regex_blowup_on_long_lines(text: str) -> None:
    """Terminals with nested repeats must not backtrack exponentially when a match fails."""
    started = time.perf_counter()
    try:
        parser.parse(text)
    except PybuildError:
        pass
    assert time.perf_counter() - started < 5


def test_grammar_spaces_are_gos() -> None:
    """grammar.lark spells Go's unicode.IsSpace in its terminals; it must be pybuild.spaces'."""
    from pybuild.dockerfile.grammar import lalr
    from pybuild.spaces import GO_SPACES

    spaces = next(t for t in lalr().terminals if t.name == "_SPACES").pattern.to_regexp()
    matched = {chr(c) for c in range(0x3100) if re.fullmatch(spaces, chr(c))}
    assert matched == set(GO_SPACES)
