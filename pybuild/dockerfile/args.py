"""The argument nodes of each instruction, from the argument text after the flags.

Which form an instruction's arguments take (JSON array, split words, one verbatim string,
key/value triples) is decided here; the forms themselves are grammar.lark's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pybuild.dockerfile.dump import go_quote
from pybuild.dockerfile.grammar import json_array, split_words
from pybuild.errors import ParseError
from pybuild.spaces import GO_SPACES

Args = tuple[tuple[str, ...], bool]  # (argument nodes, came from the JSON form)
_WS = re.compile(r"[ \t\v\f\r]+")  # BuildKit's word separator: ASCII only, unlike GO_SPACES
_NONE: Args = ((), False)
_ArgParser = Callable[[str, str], Args]


def _split(rest: str, escape: str) -> Args:
    return (tuple(_WS.split(rest)), False) if rest else _NONE


def _maybe_json_list(rest: str, escape: str) -> Args:
    values = json_array(rest) if rest[:1] == "[" else None
    return (tuple(values), True) if values is not None else _split(rest, escape)


def _maybe_json(rest: str, escape: str) -> Args:
    if not rest:
        return _NONE
    values = json_array(rest) if rest[0] == "[" else None
    return (tuple(values), True) if values is not None else ((rest,), False)


def _verbatim(rest: str, escape: str) -> Args:
    return ((rest,), False) if rest else _NONE


def _words(rest: str, escape: str) -> Args:
    return tuple(split_words(rest, escape)), False


def _name_values(key: str) -> _ArgParser:
    def parse(rest: str, escape: str) -> Args:
        words = split_words(rest, escape)
        if not words:
            return _NONE
        if "=" not in words[0]:  # legacy form: KEY name value...
            parts = _WS.split(rest, maxsplit=1)
            if len(parts) < 2:
                raise ParseError(f"{key} must have two arguments")
            return (parts[0], parts[1], ""), False
        out: list[str] = []
        for word in words:
            name, eq, value = word.partition("=")
            if not eq:
                raise ParseError(f"Syntax error - can't find = in {go_quote(word)}. "
                                 "Must be of the form: name=value")
            out += (name, value, "=")
        return tuple(out), False
    return parse


def _healthcheck(rest: str, escape: str) -> Args:
    end = 0
    while end < len(rest) and rest[end] not in GO_SPACES:
        end += 1
    if end == 0:
        return _NONE
    args, is_json = _maybe_json(rest[end:].lstrip(GO_SPACES), escape)
    return (rest[:end], *args), is_json


def ignored(rest: str, escape: str) -> Args:
    return ("",), False


ARG_FORMS: dict[str, _ArgParser] = {
    "add": _maybe_json_list,
    "arg": _words,
    "cmd": _maybe_json,
    "copy": _maybe_json_list,
    "entrypoint": _maybe_json,
    "env": _name_values("ENV"),
    "expose": _split,
    "from": _split,
    "healthcheck": _healthcheck,
    "label": _name_values("LABEL"),
    "maintainer": _verbatim,
    "run": _maybe_json,
    "shell": _maybe_json,
    "stopsignal": _verbatim,
    "user": _verbatim,
    "volume": _maybe_json_list,
    "workdir": _verbatim,
}


def arguments(keyword: str, rest: str, escape: str = "\\") -> Args:
    """Argument nodes for lower-cased ``keyword`` (not ONBUILD, whose argument is a node)."""
    return ARG_FORMS.get(keyword, ignored)(rest, escape)
