"""grammar.lark, run two ways: lark's LALR parser, and a regex fast path built from its terminals.

The instruction-line and word rules of the grammar are regular, and calling lark costs 20-35
microseconds per line, ten times what a whole line may cost if parsing is to keep up with
``dockerfile-parse``. So the hot path matches the grammar's own terminal patterns (read from
grammar.lark, in the grammar's priority order) with ``re``. The JSON form is strict JSON, which
the json module's C scanner reads exactly; lark's LALR parser, loaded on first use, takes the
part that is not: arrays that are not a flat list of strings (nested values decide between a
hard error and the shell-form fallback). Tests run every line of the corpus and of the property
tests, and generated JSON texts, through both ways and require the same result.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from pybuild.errors import ParseError
from pybuild.memo import memo

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")
START = ("line_bs", "line_bt", "json_array", "words_bs", "words_bt")
# Go's unicode.IsSpace; str.isspace() would also take \x1c-\x1f.
USPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"

_TERMINAL_DEF = re.compile(r"^([A-Z_][A-Z0-9_]*)(?:\.\d+)?:[ \t]*/(.*)/[ \t]*$", re.M)
_SUFFIX = {"\\": "BS", "`": "BT"}
_SURROGATE = re.compile("[\ud800-\udfff]")


@cache
def terminals() -> dict[str, str]:
    """The grammar's regular-expression terminals, name -> pattern, as written in the file."""
    text = GRAMMAR_PATH.read_text(encoding="utf-8")
    return {m.group(1): m.group(2) for m in _TERMINAL_DEF.finditer(text)}


class _FastPath:
    """The grammar's line and word rules compiled into plain regexes."""

    def __init__(self) -> None:
        t = terminals()
        self.keyword = re.compile(t["KEYWORD"])
        self.after_end = re.compile(t["AFTER_END"])
        # One alternation per escape character, in the grammar's terminal priority order.
        self.after_keyword = {
            esc: re.compile(f"(?P<END>{t['END_FLAGS']})|(?P<FLAG>{t['FLAG_' + sfx]})"
                            f"|(?P<REST>{t['REST']})")
            for esc, sfx in _SUFFIX.items()
        }
        self.flag = {esc: re.compile(t["FLAG_" + sfx]) for esc, sfx in _SUFFIX.items()}
        # Most lines are WORD [FLAG...] [REST]: one match settles them. The word and each flag
        # are atomic and a flag is never END_FLAGS, as the lexer's longest match and priorities
        # have it. Anything else takes the token-by-token scan.
        self.head = {
            esc: re.compile(f"(?>({t['KEYWORD']}))((?:(?!{t['END_FLAGS']})(?>{t['FLAG_' + sfx]}))*)"
                            f"({t['REST']})?\\Z")
            for esc, sfx in _SUFFIX.items()
        }
        self.word = {esc: re.compile(t["WORD_" + sfx]) for esc, sfx in _SUFFIX.items()}


_FAST: _FastPath | None = None  # compiled on first use, so that importing stays cheap


def _fast() -> _FastPath:
    global _FAST
    if _FAST is None:
        _FAST = _FastPath()
    return _FAST


def _decode_flag(word: str, escape: str) -> str:
    """Quotes toggle and are removed; the escape character takes the next one literally."""
    if "'" not in word and '"' not in word and escape not in word:
        return word
    out: list[str] = []
    quote = ""
    i, n = 0, len(word)
    while i < n:
        ch = word[i]
        if ch == escape:
            i += 1
            if i < n:
                out.append(word[i])
        elif quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _finish_line(line: str, keyword: str, tokens: list[tuple[str, str, int]],
                 escape: str) -> tuple[str, tuple[str, ...], str]:
    """(kind, text, end) tokens after the keyword -> (keyword, flags, rest)."""
    flags: list[str] = []
    for kind, text, end in tokens:
        if kind == "FLAG":
            flag = _decode_flag(text.lstrip(USPACE), escape)
            if flag == "--":  # e.g. --"" : still the end of the flags
                return keyword, tuple(flags), line[end:].strip(USPACE)
            flags.append(flag)
        elif kind == "END":
            continue
        else:
            return keyword, tuple(flags), text.strip(USPACE)
    return keyword, tuple(flags), ""


def head_matcher(escape: str) -> Callable[[str], re.Match[str] | None]:
    """Matches a trimmed line that is a word, flags and arguments; groups: the word, the flags'
    raw text ("" when none) and the arguments (None when none).

    The arguments keep their leading spaces and the line may end in spaces. A line with a bare
    ``--`` does not match (``split_line`` takes it token by token).
    """
    return (_FAST or _fast()).head[escape].match


@memo()  # Dockerfiles repeat the same few flag sets (--from=build, --link)
def decode_flags(raw: str, escape: str) -> tuple[str, ...] | None:
    """The decoded flags in the raw flag text of a ``head_matcher`` match; None when one of
    them decodes to ``--`` (which ends the flags: ``split_line`` knows how)."""
    fast = _FAST or _fast()
    flags = tuple(_decode_flag(f.lstrip(USPACE), escape) for f in fast.flag[escape].findall(raw))
    return None if "--" in flags else flags


def split_line(line: str, escape: str = "\\") -> tuple[str, tuple[str, ...], str]:
    """A trimmed logical line -> (instruction word as written, decoded flags, argument text)."""
    m = (_FAST or _fast()).head[escape].match(line)
    if m is not None:
        word, raw, rest = m.groups()
        flags = decode_flags(raw, escape) if raw else ()
        if flags is not None:
            return word, flags, rest.strip(USPACE) if rest else ""
    return _scan_line(line, escape)


def _scan_line(line: str, escape: str) -> tuple[str, tuple[str, ...], str]:
    fast = _FAST or _fast()
    m = fast.keyword.match(line)
    if m is None:
        return "", (), ""
    pos, n = m.end(), len(line)
    if pos == n:
        return m.group(), (), ""
    scan = fast.after_keyword[escape]
    tokens: list[tuple[str, str, int]] = []
    while pos < n:
        t = scan.match(line, pos)
        if t is None:  # cannot happen for a trimmed line; let the LALR parser say why
            return lalr_line(line, escape)
        kind = t.lastgroup or ""
        tokens.append((kind, t.group(), t.end()))
        pos = t.end()
        if kind == "END":
            after = fast.after_end.match(line, pos)
            if after is not None:
                tokens.append(("REST", after.group(), after.end()))
            break
        if kind == "REST":
            break
    return _finish_line(line, m.group(), tokens, escape)


def split_words(text: str, escape: str = "\\") -> list[str]:
    """The quote-aware splitter: words keep their quotes and escape characters."""
    return (_FAST or _fast()).word[escape].findall(text)


def _decode_string(token: str) -> str:
    value = json.loads(token) if "\\" in token else token[1:-1]
    if not value.isascii():
        value = _SURROGATE.sub("\ufffd", value)  # as Go's decoder does for broken UTF-16/UTF-8
    return value


def json_array(text: str) -> list[str] | None:
    """JSON form: the decoded strings, or None when ``text`` is not a JSON array (shell form).

    A well-formed array with an element that is not a string raises ParseError.
    """
    if not text.startswith("["):
        return None
    # The json module accepts exactly the grammar's strict JSON (once NaN and Infinity are
    # refused), decodes it in C, and answers "malformed" (shell form) in C too. What is left
    # for the LALR parser is a well-formed array with other elements, to be rejected.
    try:
        values, end = _SCAN(text, 0)  # the text is trimmed: it must end where the array does
    except (ValueError, StopIteration):
        return None
    except RecursionError:
        return lalr_json(text)  # deeper than the json module goes; the LALR parser has no limit
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return None  # more after the array: malformed, so shell form
    for value in values:
        if type(value) is not str:
            return lalr_json(text)
    return values if text.isascii() else [_SURROGATE.sub("\ufffd", v) for v in values]


_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_MAX_DEPTH = 10000  # Go's encoding/json gives up beyond this: malformed, so shell form


def _too_deep(text: str) -> bool:
    if text.count("[") + text.count("{") <= _MAX_DEPTH:
        return False
    depth = 0
    for m in _NESTING.finditer(text):
        ch = m.group()
        if ch in "[{":
            depth += 1
            if depth > _MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _refuse(name: str) -> None:
    raise ValueError(name)


_SCAN = json.JSONDecoder(parse_constant=_refuse).scan_once  # one value at an index, in C


# ---- lark's LALR parser ------------------------------------------------------------------


def _cache_file() -> str | None:
    """A per-user file for lark's grammar cache, or None when no such directory is writable."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "pybuild")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    return os.path.join(path, "grammar-lalr.cache") if os.access(path, os.W_OK) else None


@cache
def lalr() -> Any:
    """The LALR parser for grammar.lark, built once per process (from lark's cache if fresh)."""
    import lark

    return lark.Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr", start=list(START),
                     cache=_cache_file() or False)


def _lark_errors() -> tuple[type[BaseException], ...]:
    import lark

    return (lark.exceptions.LarkError,)


def lalr_line(line: str, escape: str = "\\") -> tuple[str, tuple[str, ...], str]:
    """``split_line`` by the LALR parser."""
    tree = lalr().parse(line, start="line_" + _SUFFIX[escape].lower())
    if not tree.children:
        return "", (), ""
    keyword, *rest = tree.children
    tokens: list[tuple[str, str, int]] = []
    for item in rest:
        for tok in (item.children if hasattr(item, "children") else [item]):
            kind = "FLAG" if tok.type.startswith("FLAG") else (
                "END" if tok.type == "END_FLAGS" else "REST")
            tokens.append((kind, str(tok), tok.end_pos))
    return _finish_line(line, str(keyword), tokens, escape)


def lalr_words(text: str, escape: str = "\\") -> list[str]:
    """``split_words`` by the LALR parser."""
    return [str(t) for t in lalr().parse(text, start="words_" + _SUFFIX[escape].lower()).children]


def lalr_json(text: str) -> list[str] | None:
    """``json_array`` by the LALR parser."""
    if not text.startswith("["):
        return None
    if _too_deep(text):
        return None
    try:
        tree = lalr().parse(text, start="json_array")
    except _lark_errors():
        return None
    for subtree in tree.iter_subtrees():  # iterative: arrays may nest thousands deep
        for token in subtree.children:
            if getattr(token, "type", "") == "JSON_SCALAR" and token[0] in "-0123456789" \
                    and abs(float(token)) == float("inf"):
                return None  # out of float64 range: malformed to Go, so shell form
    values = tree.children
    if any(getattr(v, "type", "") != "JSON_STRING" for v in values):
        raise ParseError(NOT_STRING_ARRAY)
    return [_decode_string(str(v)) for v in values]


class Engine(NamedTuple):
    """How logical lines are taken apart: the same three rules, run one way or the other."""

    name: str
    line: Callable[[str, str], tuple[str, tuple[str, ...], str]]
    words: Callable[[str, str], list[str]]
    json: Callable[[str], list[str] | None]


FAST = Engine("fast", split_line, split_words, json_array)
LALR = Engine("lalr", lalr_line, lalr_words, lalr_json)
ENGINES = {e.name: e for e in (FAST, LALR)}
