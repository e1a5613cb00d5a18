"""Parser directives (``# syntax=``, ``# escape=``, ``# check=``) at the top of a Dockerfile."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pybuild.errors import ParseError
from pybuild.spaces import GO_SPACES

KNOWN = frozenset({"syntax", "escape", "check"})
# Go's \s is ASCII: [\t\n\f\r ] (no \v).
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z",
                        re.S)


@dataclass(frozen=True)
class Directive:
    name: str  # lower-cased key
    value: str
    line: int  # 1-based physical line


class DirectiveScanner:
    """Feeds on lines from the top of a file until the first line that is not a directive."""

    def __init__(self, prefix: str = "#") -> None:
        self.prefix = prefix
        self.done = False
        self.found: dict[str, Directive] = {}

    def feed(self, line: str, lineno: int) -> Directive | None:
        """Look at one line (EOL stripped). Raises ParseError for a repeated key."""
        if self.done:
            return None
        if not line.startswith(self.prefix):
            self.done = True
            return None
        m = _DIRECTIVE.match(line[len(self.prefix):].lstrip(GO_SPACES))
        key = m.group(1).lower() if m else ""
        if key not in KNOWN:
            self.done = True
            return None
        if key in self.found:
            raise ParseError(f"only one {key} parser directive can be used", line=lineno)
        directive = Directive(key, m.group(2), lineno)  # type: ignore[union-attr]
        self.found[key] = directive
        return directive


def _lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n")]


def _strip_bom(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return text[1:] if text.startswith("\ufeff") else text


def _scan(text: str, prefix: str, first_line: int) -> list[Directive]:
    scanner = DirectiveScanner(prefix)
    out: list[Directive] = []
    for offset, line in enumerate(_lines(text)):
        if scanner.done:
            break
        try:
            directive = scanner.feed(line, first_line + offset)
        except ParseError:
            break
        if directive is not None:
            out.append(directive)
    return out


def parse_directives(text: str | bytes, prefix: str = "#") -> list[tuple[str, str]]:
    """The leading directives of ``text`` as (name, value) pairs, names lower-cased."""
    return [(d.name, d.value) for d in _scan(_strip_bom(text), prefix, 1)]


@dataclass(frozen=True)
class DirectiveValue:
    ref: str  # the value up to its first space
    cmdline: str  # the whole value
    line: int | None  # 1-based line of the directive (None for the JSON form)


def _split_shebang(text: str) -> tuple[str, int]:
    first, nl, rest = text.partition("\n")
    return (rest, 2) if first.startswith("#!") else (text, 1)


def parse_directive(key: str, text: str | bytes, any_format: bool = False) -> DirectiveValue | None:
    """Find directive ``key``, skipping a ``#!`` first line.

    With ``any_format`` (the syntax directive) also accept ``//key=value`` lines and a file
    that is one JSON object with a string ``key``.
    """
    body, first_line = _split_shebang(_strip_bom(text))
    for prefix in ("#", "//") if any_format else ("#",):
        for d in _scan(body, prefix, first_line):
            if d.name == key:
                return DirectiveValue(d.value.split(" ", 1)[0], d.value, d.line)
    if any_format:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, str):
            return DirectiveValue(value, value, None)
    return None


def detect_syntax(text: str | bytes) -> DirectiveValue | None:
    """The ``syntax`` directive, as BuildKit's frontend selection finds it."""
    return parse_directive("syntax", text, any_format=True)
