"""Go ``filepath.Match`` wildcards, one path component at a time, for COPY/ADD sources.

BuildKit resolves COPY wildcards with ``filepath.Match`` (``*`` and ``?`` never cross "/"),
not with the .dockerignore matcher, whose ``**`` and prefix shortcuts differ; so the two stay
apart. ``.dockerignore`` and ``--exclude`` live in ``pybuild.context.dockerignore``.
"""

from __future__ import annotations

import re
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
