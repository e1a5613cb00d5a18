"""Word expansion for planning: ``pybuild.shell`` when present, else a small stand-in.

The stand-in covers what planning needs (quotes, ``$V``, ``${V}``, ``${V:-w}``, ``${V:+w}``)
so that stages resolve while ``pybuild.shell`` is being written; it is not the full lexer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pybuild.errors import ExpansionError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}")


def _shell():
    try:
        from pybuild import shell
    except ImportError:
        return None
    return shell


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``word`` with quotes removed and variables substituted (one word, no splitting)."""
    shell = _shell()
    if shell is not None:
        return shell.expand(word, env, escape=escape)
    return _Lexer(word, env, escape).run()


def expand_matches(word: str, env: Mapping[str, str],
                   escape: str = "\\") -> tuple[str, frozenset[str], frozenset[str]]:
    """The expansion plus the names it found in ``env`` and the names it did not."""
    shell = _shell()
    if shell is not None and hasattr(shell, "expand_with_matches"):
        result = shell.expand_with_matches(word, env, escape=escape)
        return result.value, frozenset(result.matched), frozenset(result.unmatched)
    lexer = _Lexer(word, env, escape)
    value = lexer.run()
    return value, frozenset(lexer.found), frozenset(lexer.missing)


def unmatched(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Names ``word`` refers to that ``env`` does not define, sorted."""
    return sorted(expand_matches(word, env, escape)[2])


class _Lexer:
    def __init__(self, word: str, env: Mapping[str, str], escape: str):
        self.word, self.env, self.escape = word, env, escape
        self.pos, self.missing, self.found = 0, [], []

    def run(self) -> str:
        out, quote, w = [], None, self.word
        while self.pos < len(w):
            ch = w[self.pos]
            self.pos += 1
            if ch == "'" and quote in (None, "'"):
                quote = None if quote else "'"
            elif ch == '"' and quote in (None, '"'):
                quote = None if quote else '"'
            elif ch == self.escape and quote != "'" and self.pos < len(w):
                nxt = w[self.pos]
                keep = quote == '"' and nxt not in ('"', "$", self.escape)
                out.append(ch + nxt if keep else nxt)
                self.pos += 1
            elif ch == "$" and quote != "'":
                out.append(self._variable())
            else:
                out.append(ch)
        if quote:
            raise ExpansionError(f"unexpected end of statement while looking for matching {quote}")
        return "".join(out)

    def _lookup(self, name: str) -> str | None:
        if name not in self.env:
            self.missing.append(name)
            return None
        self.found.append(name)
        return self.env[name]

    def _variable(self) -> str:
        rest = self.word[self.pos:]
        match = _NAME.match(rest)
        if match:
            self.pos += match.end()
            return self._lookup(match.group()) or ""
        match = _BRACED.match(rest)
        if not match:
            if rest.startswith("{"):
                raise ExpansionError(f"bad substitution in {self.word!r}")
            return "$"
        self.pos += match.end()
        name, op, alt = match.groups()
        value = self._lookup(name)
        if op is None:
            return value or ""
        is_set = value is not None and (value != "" or ":" not in op)
        if op.endswith("-"):
            return value if is_set else _Lexer(alt, self.env, self.escape).run()
        return _Lexer(alt, self.env, self.escape).run() if is_set else ""
