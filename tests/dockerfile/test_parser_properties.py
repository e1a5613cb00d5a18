"""Properties of the Dockerfile parser, checked on generated input (hypothesis)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybuild.dockerfile import parser
from pybuild.dockerfile.syntax import Document
from pybuild.errors import ParseError, PybuildError

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Text that is likely to hit the parser's special cases.
_SPECIAL = st.sampled_from(list("\\`#\"' \t\n\r[]{},:<>-=$") + ["\\\n", "<<EOF", "--", "\ufeff",
                                                               "\u00a0", "\x85", "\udcff"])
_KEYWORDS = ["FROM", "RUN", "CMD", "COPY", "ADD", "ENTRYPOINT", "SHELL", "VOLUME", "EXPOSE",
             "USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER", "LABEL", "ENV", "ARG", "ONBUILD",
             "HEALTHCHECK", "FOO"]
_NOISY_TEXT = st.lists(st.one_of(st.text(max_size=8), _SPECIAL,
                                 st.sampled_from([k + " " for k in _KEYWORDS]),
                                 st.sampled_from(["# escape=`\n", "# syntax=x\n", "\n"])),
                       max_size=30).map("".join)


def _parse_or_error(text: str | bytes) -> Document | str:
    try:
        return parser.parse(text)
    except PybuildError as err:
        return f"{type(err).__name__}: {err}"


def _check_spans(doc: Document, text: str) -> None:
    if text.startswith("\ufeff"):  # the parser drops one byte-order mark, as BuildKit does
        text = text[1:]
    lines = text.split("\n")
    count = len(lines) - (lines[-1] == "")
    previous_end = 0
    for node in doc.nodes:
        assert previous_end < node.start_line <= node.end_line <= count
        previous_end = node.end_line
    assert (doc.start_line, doc.end_line) == (doc.nodes[0].start_line, doc.nodes[-1].end_line)


@SETTINGS
@given(_NOISY_TEXT)
def test_any_text_parses_or_raises_pybuild_error(text: str) -> None:
    result = _parse_or_error(text)
    if isinstance(result, Document):
        _check_spans(result, text)
        assert parser.dump(result).count("\n") == len(result.nodes)
    else:
        assert "\n" not in result


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_pybuild_error(data: bytes) -> None:
    result = _parse_or_error(data)
    if isinstance(result, Document):
        _check_spans(result, data.decode("utf-8", "surrogateescape"))


# ---- generated instructions parse back to what generated them ------------------------------

_WORD = st.text("abcxyzABC019_./:@%+", min_size=1, max_size=8)
_FLAG_NAME = st.text("abcdefgh-", min_size=1, max_size=6).filter(lambda s: s[0] != "-")
_KEY = st.text("abcxyzABC_", min_size=1, max_size=5)
_JSON_FORM = {"run", "cmd", "entrypoint", "shell", "copy", "add", "volume"}
_SPLIT = {"from", "expose", "copy", "add", "volume"}
_VERBATIM = {"run", "cmd", "entrypoint", "shell", "user", "workdir", "stopsignal", "maintainer"}


@dataclass(frozen=True)
class Generated:
    text: str  # the logical line
    keyword: str
    original: str
    flags: tuple[str, ...]
    args: tuple[str, ...]
    json: bool


@st.composite
def _flags(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    written, decoded = [], []
    for name in draw(st.lists(_FLAG_NAME, max_size=3)):
        values = draw(st.lists(_WORD, max_size=2))
        if draw(st.booleans()) and values:  # a quoted value with a space in it
            written.append(f'--{name}="{" ".join(values)}"')
            decoded.append(f"--{name}={' '.join(values)}")
        else:
            written.append(f"--{name}={''.join(values)}")
            decoded.append(written[-1])
    return written, decoded


@st.composite
def _arguments(draw: st.DrawFn, keyword: str) -> tuple[str, tuple[str, ...], bool]:
    if keyword in _JSON_FORM and draw(st.booleans()):
        values = draw(st.lists(st.text(max_size=6), max_size=4))
        text = json.dumps(values, ensure_ascii=draw(st.booleans()))
        return text, tuple(values), True
    if keyword in ("env", "label"):
        pairs = draw(st.lists(st.tuples(_KEY, st.lists(_WORD, max_size=2)), min_size=1,
                              max_size=3))
        words = [f'{k}="{" ".join(v)}"' if len(v) > 1 else f"{k}={''.join(v)}" for k, v in pairs]
        args = [x for w in words for x in (w.split("=", 1)[0], w.split("=", 1)[1], "=")]
        return " ".join(words), tuple(args), False
    words = draw(st.lists(_WORD, min_size=1, max_size=5))
    text = draw(st.sampled_from([" ", "  ", "\t"])).join(words)
    if keyword in _SPLIT:
        return text, tuple(text.split()), False
    if keyword in _VERBATIM:
        return text, (text,), False
    if keyword == "arg":
        return text, tuple(words), False
    return text, ("",), False


@st.composite
def instructions(draw: st.DrawFn) -> Generated:
    keyword = draw(st.sampled_from(sorted(_JSON_FORM | _SPLIT | _VERBATIM
                                          | {"env", "label", "arg", "foo"})))
    original = "".join(c.upper() if draw(st.booleans()) else c for c in keyword)
    written, decoded = draw(_flags())
    text, args, is_json = draw(_arguments(keyword))
    line = " ".join([original, *written, text])
    return Generated(line, keyword, original, tuple(decoded), args, is_json)


def _render(draw: st.DrawFn, line: str, escape: str) -> tuple[list[str], bool]:
    """Physical lines for one logical line: continuations at some spaces, comments between."""
    cuts = [k for k in range(1, len(line)) if line[k] == " " and line[k - 1] != escape
            and not line[k:].lstrip().startswith("#")]
    chosen = sorted(draw(st.sets(st.sampled_from(cuts), max_size=3))) if cuts else []
    out, start, blank = [], 0, False
    for k in chosen:
        out.append(line[start:k] + escape)
        extra = draw(st.sampled_from(["", "# a comment", "   # indented comment", ""]))
        if extra:
            out.append(extra)
        start = k
    out.append(line[start:])
    if len(out) > 1 and draw(st.integers(0, 4)) == 0:
        out.insert(1, "")  # an empty continuation line: allowed, with a warning
        blank = True
    return out, blank


@SETTINGS
@given(st.data(), st.lists(instructions(), min_size=1, max_size=5), st.sampled_from("\\`"))
def test_generated_instructions_round_trip(data: st.DataObject, generated: list[Generated],
                                           escape: str) -> None:
    physical = [] if escape == "\\" else ["# escape=`"]
    spans, warned = [], []
    for item in generated:
        physical += data.draw(st.sampled_from([[], [""], ["# comment"]]))
        lines, blank = _render(data.draw, item.text, escape)
        spans.append((len(physical) + 1, len(physical) + len(lines)))
        warned += [len(physical) + len(lines)] if blank else []
        physical += lines
    text = "\n".join(physical) + data.draw(st.sampled_from(["", "\n", "\r\n"]))
    doc = parser.parse(text)
    got = [(n.keyword, n.original, n.flags, n.args, n.json) for n in doc.nodes]
    assert got == [(g.keyword, g.original, g.flags, g.args, g.json) for g in generated]
    assert [(n.start_line, n.end_line) for n in doc.nodes] == spans
    assert [w.line for w in doc.warnings] == warned
    assert doc.escape == escape


@SETTINGS
@given(st.lists(st.text(max_size=8), max_size=5), st.booleans())
def test_json_form_decodes_any_strings(values: list[str], ascii_only: bool) -> None:
    text = json.dumps(values, ensure_ascii=ascii_only)
    node = parser.parse("CMD " + text).nodes[0]
    assert node.json and list(node.args) == values


@SETTINGS
@given(st.text(max_size=40))
def test_heredoc_helpers_only_raise_parse_error(word: str) -> None:
    try:
        parser.parse_heredoc_word(word)
    except ParseError:
        pass
    parser.heredocs_from_line("RUN " + word)


# JSON form: the grammar's json_array rule must decide as a strict JSON decoder does (Python's
# json module stands in for Go's encoding/json): decoded strings, shell form, or the
# not-strings error.
_JSON_VALUE = st.recursive(
    st.one_of(st.text(max_size=6), st.integers(), st.floats(allow_nan=False), st.booleans(),
              st.none()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=2),
    max_leaves=6)
_JSON_TEXT = st.one_of(
    st.lists(st.text(max_size=8), max_size=4).map(json.dumps),
    st.lists(_JSON_VALUE, max_size=4).map(json.dumps),
    st.lists(st.one_of(st.lists(st.text(max_size=4), max_size=3).map(json.dumps),
                       st.sampled_from(["[", "]", ",", '"', "\\", " ", "\t", "1e999", "NaN",
                                        "-", "\\u00", "\\ud800", "\x01", "\xa0", "{", ":"])),
             min_size=1, max_size=6).map(lambda parts: "[" + "".join(parts)))


@SETTINGS
@given(_JSON_TEXT)
def test_json_form_decides_as_a_json_decoder(text: str) -> None:
    from pybuild.dockerfile.grammar import json_array

    assert _outcome(json_array, text) == _json_oracle(text)


def _refuse(name: str) -> None:
    raise ValueError(name)  # NaN and Infinity are not JSON


def _leaves(value):
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def _json_oracle(text: str):
    from pybuild.dockerfile.grammar import NOT_STRING_ARRAY

    try:
        value = json.loads(text, parse_constant=_refuse)
    except ValueError:
        return None
    if not isinstance(value, list) or any(v in (math.inf, -math.inf) for v in _leaves(value)):
        return None  # out of float64's range is malformed to Go
    if any(type(v) is not str for v in value):
        return NOT_STRING_ARRAY
    return [re.sub("[\ud800-\udfff]", "\ufffd", v) for v in value]


def _outcome(fn, text: str):
    """What ``fn(text)`` returns, or the message of the ParseError it raises."""
    try:
        return fn(text)
    except ParseError as err:
        return err.message
