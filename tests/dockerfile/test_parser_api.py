"""The parser's public API, its errors, and the grammar behind both of its engines."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.paths import REPO

from pybuild.dockerfile import parser
from pybuild.dockerfile.grammar import FAST, LALR, lalr, terminals
from pybuild.dockerfile.nodes import make_node, replace
from pybuild.dockerfile.syntax import Heredoc, Node
from pybuild.errors import ContextError, ParseError, PybuildError, UsageError


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


def test_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parser.parse("FROM x", engine="earley")


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


def test_fast_nodes_equal_dataclass_nodes() -> None:
    child = Node("run", "RUN", args=("x",), start_line=1, end_line=1, raw="RUN x", rest="x")
    fast = make_node("onbuild", "ONBUILD", ("--a",), (), False, child, 1, 2, "ONBUILD RUN x",
                     "RUN x")
    slow = Node("onbuild", "ONBUILD", ("--a",), (), False, (), child, 1, 2, "ONBUILD RUN x",
                "RUN x")
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert replace(fast, end_line=3) == dataclasses.replace(slow, end_line=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.keyword = "x"  # type: ignore[misc]
    doc = parser.parse("FROM x")
    assert doc == dataclasses.replace(doc)


def test_fast_path_uses_the_grammars_terminals() -> None:
    """The regexes read from grammar.lark are the ones lark compiles for the LALR parser."""
    from lark.load_grammar import eval_escaping  # how lark reads a regex literal

    compiled = {t.name: t.pattern.value for t in lalr().terminals}
    for name, pattern in terminals().items():
        assert compiled[name] == eval_escaping(pattern), name


def test_both_engines_agree_on_corpus_lines(buildkit_corpus: Path) -> None:
    for path in sorted((buildkit_corpus / "parser").glob("*/*/Dockerfile")):
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            line = line.strip()
            for escape in "\\`":
                assert FAST.line(line, escape) == LALR.line(line, escape), line
                assert FAST.words(line, escape) == LALR.words(line, escape), line


def test_importing_and_parsing_does_not_load_lark() -> None:
    code = ("import sys, pybuild.dockerfile.parser as p; "
            "p.parse('FROM x\\nRUN [\"a\"]\\nCMD [\"a\"'); "
            "print('lark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


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
    for engine in ("fast", "lalr"):
        try:
            parser.parse(text, engine=engine)
        except PybuildError:
            pass
    assert time.perf_counter() - started < 5


def test_parsed_nodes_equal_dataclass_nodes() -> None:
    """Every way the parser builds objects (the hot loop's inline Node, make_node, make_heredoc,
    replace) gives what the dataclass constructors give: every field reads the same (the hot
    loop leaves default-valued fields to the class) and nothing else is stored."""
    text = ("FROM a AS b\nWORKDIR /w\nRUN --mount=type=cache,target=/c x\nCMD [\"a\"]\n"
            "RUN <<EOF\nbody\nEOF\n  ENV a=1 \\\n  b=2\nONBUILD COPY <<X /x\nhi\nX\n")

    def rebuilt(value):
        if isinstance(value, tuple):
            return tuple(rebuilt(v) for v in value)
        if dataclasses.is_dataclass(value):
            return type(value)(**{f.name: rebuilt(getattr(value, f.name))
                                  for f in dataclasses.fields(value)})
        return value

    for node in parser.parse(text).nodes:
        for obj in (node, node.child, *node.heredocs):
            if obj is None:
                continue
            made = rebuilt(obj)
            assert obj == made and hash(obj) == hash(made) and repr(obj) == repr(made)
            names = {f.name for f in dataclasses.fields(obj)}
            assert {n: getattr(obj, n) for n in names} == vars(made)
            assert set(vars(obj)) <= names
