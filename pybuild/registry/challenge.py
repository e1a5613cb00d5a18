"""RFC 7235's ``WWW-Authenticate``: a list of challenges, each a scheme with a token68 or
``name=value`` parameters (a token or a quoted-string with backslash escapes).

Several challenges may share one header (requests also joins repeated headers with ", "), so
after a parameter a comma either starts the next parameter (``name=``) or the next challenge
(a bare token). Lenient where registries are: an unquoted value runs to the next comma or
space (``realm=https://x/token`` is seen in the wild), and parameter names are case-folded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_SPACE = re.compile(r"[ \t]*")
_PARAM_START = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*=(?!=)")
_BARE = re.compile(r"[^,\s]*")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # case-folded: "basic", "bearer"
    params: Mapping[str, str] = field(default_factory=dict)  # names case-folded
    token68: str = ""


def find(challenges: Iterable[Challenge], scheme: str) -> Challenge | None:
    return next((c for c in challenges if c.scheme == scheme), None)


def parse(header: str) -> list[Challenge]:
    """Every challenge in ``header``, in order; what cannot be read is skipped."""
    out: list[Challenge] = []
    i, n = 0, len(header)
    while i < n:
        i = _skip_separators(header, i)
        m = _TOKEN.match(header, i)
        if not m:
            i = _next_comma(header, i)
            continue
        scheme, i = m.group().lower(), _SPACE.match(header, m.end()).end()
        params: dict[str, str] = {}
        token68 = ""
        if not _PARAM_START.match(header, i):
            t = _TOKEN68.match(header, i)
            if t and _at_separator(header, t.end()):
                token68, i = t.group(), t.end()
        else:
            i = _read_params(header, i, params)
        out.append(Challenge(scheme, params, token68))
    return out


def _read_params(header: str, i: int, params: dict[str, str]) -> int:
    n = len(header)
    while i < n:
        m = _PARAM_START.match(header, i)
        if not m:
            return i
        name = header[i:m.end() - 1].rstrip(" \t").lower()
        i = _SPACE.match(header, m.end()).end()
        if i < n and header[i] == '"':
            value, i = _quoted(header, i + 1)
        else:
            v = _BARE.match(header, i)
            value, i = v.group(), v.end()
        params.setdefault(name, value)
        j = _SPACE.match(header, i).end()
        if j < n and header[j] != ",":
            return _next_comma(header, j)  # junk after a value: drop it
        i = _skip_separators(header, j)
        if not _PARAM_START.match(header, i):
            return i  # the next challenge, or the end
    return i


def _quoted(header: str, i: int) -> tuple[str, int]:
    chars = []
    n = len(header)
    while i < n:
        c = header[i]
        if c == "\\" and i + 1 < n:
            chars.append(header[i + 1])
            i += 2
        elif c == '"':
            return "".join(chars), i + 1
        else:
            chars.append(c)
            i += 1
    return "".join(chars), i  # unterminated: what there was


def _skip_separators(header: str, i: int) -> int:
    while i < len(header) and header[i] in " \t,":
        i += 1
    return i


def _next_comma(header: str, i: int) -> int:
    j = header.find(",", i)
    return len(header) if j < 0 else j + 1


def _at_separator(header: str, i: int) -> bool:
    j = _SPACE.match(header, i).end()
    return j >= len(header) or header[j] == ","


def render(challenges: Iterable[Challenge]) -> str:
    """``challenges`` as a header value (parameters always quoted): what servers send, and
    the parser's inverse for tests."""
    parts = []
    for c in challenges:
        if c.token68:
            parts.append(f"{c.scheme} {c.token68}")
        elif c.params:
            body = ", ".join(f'{k}="{_escape(v)}"' for k, v in c.params.items())
            parts.append(f"{c.scheme} {body}")
        else:
            parts.append(c.scheme)
    return ", ".join(parts)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
