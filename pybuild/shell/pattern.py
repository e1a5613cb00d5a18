"""Glob patterns inside ``${v#p}``, ``${v%p}`` and ``${v/p/r}``, with BuildKit's semantics.

``*`` is any string, ``?`` any one character, ``\\*``, ``\\?`` and ``\\\\`` are literal, and
``\\}`` / ``\\/`` (escaped only to get past the ``${}`` lexer) are ``}`` and ``/``. There are no
bracket expressions. Patterns become Python regexes whose text is the same as Go's.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pybuild.errors import ExpansionError

__all__ = ["replace", "shell_pattern_to_regex", "trim"]

# Characters Go's regexp would misread; quoting exactly these keeps our regex text equal to Go's.
_REGEX_META = frozenset("[]{}.+()|^$")
_TEMPLATE_NAME = re.compile(r"\{(\w+)\}|(\w+)")


def _pattern_tokens(pattern: str) -> list[str]:
    """Split a ``${v#pattern}`` pattern into ``*``, ``?`` and escaped-literal regex tokens."""
    tokens: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*" or ch == "?":
            tokens.append(ch)
        elif ch == "\\":
            nxt = pattern[i] if i < n else ""
            i += 1
            if nxt in ("}", "/"):  # escaped only to get past the ${} lexer
                tokens.append("\\" + nxt if nxt in _REGEX_META else nxt)
            elif nxt in ("*", "?", "\\"):
                tokens.append("\\" + nxt)
            else:
                raise ExpansionError(f"invalid pattern ({pattern}) in substitution: "
                                     f"invalid escape '\\{nxt}'")
        else:
            tokens.append("\\" + ch if ch in _REGEX_META else ch)
    return tokens


def shell_pattern_to_regex(pattern: str, *, greedy: bool = True, anchored: bool = True) -> str:
    """The regular expression (Go and Python agree on its text) for a ``${}`` glob pattern."""
    return _regex_text(_pattern_tokens(pattern), greedy, anchored)


def _regex_text(tokens: list[str], greedy: bool, anchored: bool) -> str:
    star = ".*" if greedy else ".*?"
    body = "".join(star if t == "*" else "." if t == "?" else t for t in tokens)
    return "^" + body if anchored else body


@lru_cache(maxsize=256)
def _compile(pattern: str, greedy: bool, anchored: bool, reverse: bool) -> re.Pattern[str]:
    tokens = _pattern_tokens(pattern)
    if reverse:
        tokens.reverse()
    return re.compile(_regex_text(tokens, greedy, anchored))


def trim(value: str, pattern: str, *, suffix: bool, greedy: bool) -> str:
    """Remove the shortest (or longest) prefix or suffix of ``value`` matching ``pattern``.

    A regex finds the shortest leftmost match but not the shortest rightmost one, so suffixes
    are found by reversing both the pattern and the value.
    """
    regex = _compile(pattern, greedy, True, suffix)
    subject = value[::-1] if suffix else value
    match = regex.match(subject)
    if match is None:
        return value
    rest = subject[match.end():]
    return rest[::-1] if suffix else rest


def replace(value: str, pattern: str, replacement: str, *, replace_all: bool) -> str:
    """``${v/pattern/replacement}`` (first match) or ``${v//...}`` (all); ``*`` is greedy."""
    regex = _compile(pattern, True, False, False)
    if replace_all:
        return _go_replace_all(regex, value, replacement)
    match = regex.search(value)
    if match is None:
        return value
    return value[:match.start()] + replacement + value[match.end():]


def _go_replace_all(regex: re.Pattern[str], value: str, replacement: str) -> str:
    """Go's Regexp.ReplaceAllString: an empty match right after a match is not replaced
    (Python's re.sub does replace it), and ``$`` in the replacement is a template."""
    out: list[str] = []
    last_end = search = 0
    n = len(value)
    while search <= n:
        match = regex.search(value, search)
        if match is None:
            break
        start, end = match.span()
        out.append(value[last_end:start])
        if end > last_end or start == 0:
            out.append(_go_template(replacement, match))
        last_end = end
        search = end if end > search else search + 1
    out.append(value[last_end:])
    return "".join(out)


def _go_template(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand with no capture groups: ``$$`` is ``$``, ``$0`` the match, other
    ``$name`` / ``${name}`` nothing, and a malformed ``$`` stays as it is."""
    if "$" not in template:
        return template
    out: list[str] = []
    i = 0
    while (dollar := template.find("$", i)) >= 0:
        out.append(template[i:dollar])
        i = dollar + 1
        if template.startswith("$", i):
            out.append("$")
            i += 1
            continue
        ref = _TEMPLATE_NAME.match(template, i)
        if ref is None:
            out.append("$")
            continue
        i = ref.end()
        name = ref.group(1) or ref.group(2)
        if name.isascii() and name.isdigit() and int(name) == 0:
            out.append(match.group())
    out.append(template[i:])
    return "".join(out)
