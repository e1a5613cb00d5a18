"""Go ``filepath.Match`` wildcards and dockerignore-style pattern lists.

Used for COPY/ADD source wildcards and ``--exclude``, and as the ``.dockerignore`` matcher
until ``pybuild.dockerignore`` provides the shared one. Semantics as moby/patternmatcher:
``**`` spans directories, the last matching pattern wins, ``!`` re-includes, and a path is
matched when it or one of its parent directories is.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pybuild.errors import BuildError


@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for one Go ``filepath.Match`` pattern (``*``, ``?``, ``[...]``, ``\\``)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 >= n:
                raise BuildError(f"syntax error in pattern: {pattern}")
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i = _char_class(pattern, i, out)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _char_class(pattern: str, i: int, out: list[str]) -> int:
    end = i + 1
    negate = end < len(pattern) and pattern[end] == "^"
    end += negate
    body: list[str] = []
    while end < len(pattern) and (pattern[end] != "]" or not body):
        c = pattern[end]
        if c == "\\" and end + 1 < len(pattern):
            end += 1
            c = pattern[end]
        elif c in "-]":  # Go rejects a bare '-' or ']' where a range end is expected
            if c == "]" or not body or end + 1 >= len(pattern) or pattern[end + 1] == "]":
                raise BuildError(f"syntax error in pattern: {pattern}")
            body.append("-")
            end += 1
            continue
        body.append(re.escape(c))
        end += 1
    if end >= len(pattern) or not body:
        raise BuildError(f"syntax error in pattern: {pattern}")
    out.append("[" + ("^" if negate else "") + "".join(body) + "]")
    return end + 1


def _path_regex(pattern: str) -> re.Pattern[str]:
    """A whole-path regex where a ``**`` component matches any number of directories."""
    comps = pattern.split("/")
    regex, need_sep = "", False
    for i, comp in enumerate(comps):
        if comp != "**":
            regex += ("/" if need_sep else "") + glob_regex(comp).pattern[:-2]
            need_sep = True
        elif i == len(comps) - 1:
            regex += "(?:/.*)?" if need_sep else ".*"
        else:
            regex += "(?:/.*)?/" if need_sep else "(?:.*/)?"
            need_sep = False
    return re.compile(regex + r"\Z", re.DOTALL)


@dataclass(frozen=True)
class PatternSet:
    """dockerignore-style patterns: last match wins, ``!`` re-includes, parents match too."""

    rules: tuple[tuple[bool, str, re.Pattern[str]], ...]  # (negated, cleaned pattern, regex)

    @classmethod
    def parse(cls, lines: Iterable[str]) -> PatternSet:
        rules = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            pat = posixpath.normpath(line[1:].strip() if neg else line).lstrip("/") or "."
            rules.append((neg, pat, _path_regex(pat)))
        return cls(tuple(rules))

    def matches(self, relpath: str) -> bool:
        if not self.rules:
            return False
        paths = _self_and_parents(relpath)
        hit = False
        for neg, _pat, regex in self.rules:
            if any(regex.match(p) for p in paths):
                hit = not neg
        return hit

    def may_contain_included(self, dirpath: str) -> bool:
        comps = dirpath.split("/")
        return any(neg and _could_match_below(pat.split("/"), comps)
                   for neg, pat, _r in self.rules)


def _self_and_parents(relpath: str) -> list[str]:
    parts = relpath.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _could_match_below(pattern: list[str], comps: list[str]) -> bool:
    for i, comp in enumerate(comps):
        if i >= len(pattern) or pattern[i] == "**":
            return True
        if not glob_regex(pattern[i]).match(comp):
            return False
    return True
