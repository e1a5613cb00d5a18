"""grammar.lark, run by lark's LALR parser: an instruction line's word, flags and arguments,
the JSON (exec) form, and the quote-aware words of ARG, ENV and LABEL.

The parser tables are built once per process, from lark's cache file when it is fresh, and
only when the first line is parsed, so that commands which parse nothing never import lark.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pybuild.errors import ParseError
from pybuild.spaces import GO_SPACES

if TYPE_CHECKING:
    import lark

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")
START = ("line_bs", "line_bt", "json_array", "words_bs", "words_bt")
NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"

_SUFFIX = {"\\": "bs", "`": "bt"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_MAX_DEPTH = 10000  # Go's encoding/json gives up beyond this: malformed, so shell form


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
def lalr() -> lark.Lark:
    """The LALR parser for grammar.lark (lark checks that a cache file matches the grammar
    and its own version before it uses it)."""
    import lark

    return lark.Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr", start=list(START),
                     cache=_cache_file() or False)


def decode_flag(word: str, escape: str) -> str:
    """Quotes toggle and are removed; the escape character takes the next one literally."""
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


def split_line(line: str, escape: str = "\\") -> tuple[str, tuple[str, ...], str]:
    """A trimmed logical line -> (instruction word as written, decoded flags, argument text)."""
    tree = lalr().parse(line, start="line_" + _SUFFIX[escape])
    if not tree.children:
        return "", (), ""
    keyword, *tokens = tree.children
    flags: list[str] = []
    for token in tokens:
        if hasattr(token, "children"):  # the tail
            # a bare "--" (END_FLAGS) ends the flags and is not kept; REST or AFTER_END follows
            rest = [t for t in token.children if t.type != "END_FLAGS"]
            return str(keyword), tuple(flags), str(rest[0]).strip(GO_SPACES) if rest else ""
        flag = decode_flag(str(token).lstrip(GO_SPACES), escape)
        if flag == "--":  # --"" decodes to a bare "--": the end of the flags all the same
            return str(keyword), tuple(flags), line[token.end_pos:].strip(GO_SPACES)
        flags.append(flag)
    return str(keyword), tuple(flags), ""


def split_words(text: str, escape: str = "\\") -> list[str]:
    """The quote-aware splitter: words keep their quotes and escape characters."""
    return [str(t) for t in lalr().parse(text, start="words_" + _SUFFIX[escape]).children]


def json_array(text: str) -> list[str] | None:
    """JSON form: the decoded strings, or None when ``text`` is not a JSON array (shell form).

    A well-formed array with an element that is not a string raises ParseError.
    """
    import lark

    if not text.startswith("[") or _too_deep(text):
        return None
    try:
        tree = lalr().parse(text, start="json_array")
    except lark.exceptions.LarkError:
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


def _decode_string(token: str) -> str:
    value = json.loads(token)  # the token is a JSON string literal the grammar has checked
    if not value.isascii():
        value = _SURROGATE.sub("\ufffd", value)  # as Go's decoder does for broken UTF-16/UTF-8
    return value


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
