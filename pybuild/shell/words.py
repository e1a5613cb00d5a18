"""Shell-word lexing and variable expansion with BuildKit's semantics.

This is not a shell: there is no command substitution, globbing or arithmetic. A word is
scanned once, left to right: quotes are removed, the escape character (``\\`` or a backtick)
protects the next character, and ``$name`` / ``${name...}`` are replaced from ``env``. The
supported ``${}`` forms are ``-``, ``+``, ``?`` (each optionally with ``:``), ``#``, ``##``,
``%``, ``%%``, ``/`` and ``//``. Anything else is an :class:`ExpansionError`.

Three modes exist for the parser's heredoc detection: ``keep_quotes`` leaves quote characters in
the output, ``keep_escapes`` leaves escape characters in, and ``keep_unset`` writes references to
unset variables back as they were written instead of expanding them to nothing. With
``plain_quotes`` quote characters are ordinary text, as when BuildKit expands a heredoc body
(``COPY <<EOF``): only ``$`` and the escape character act.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from pybuild.errors import ExpansionError
from pybuild.shell import pattern as shellpattern
from pybuild.shell.pattern import shell_pattern_to_regex
from pybuild.spaces import GO_SPACES

__all__ = ["Expansion", "expand", "expand_with_matches", "shell_pattern_to_regex", "split_words"]

_SPACE_RUN = re.compile("[" + re.escape(GO_SPACES) + "]+")  # BuildKit splits words on these
# POSIX special parameters: never set in a Dockerfile, but `$@` must eat one character.
_SPECIAL_PARAMS = frozenset("@*#?-$!")
_ASCII_NAME = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_MODIFIERS = frozenset("+-?#%")
# ${a:-${b:-...}} recurses; real Dockerfiles nest a few levels, Python's stack allows ~190.
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Expansion:
    """A word's expansion plus the variable names it looked up, found or not."""

    value: str
    matched: frozenset[str]
    unmatched: frozenset[str]


def expand(word: str, env: Mapping[str, str], *, escape: str = "\\", keep_quotes: bool = False,
           keep_escapes: bool = False, keep_unset: bool = False,
           plain_quotes: bool = False) -> str:
    """Expand one word: quote removal, escapes and variables, without word splitting."""
    if _specials(escape, "").search(word) is None and not word.startswith("\ufeff"):
        return word  # the common case: nothing to do, so do not build a lexer
    lexer = _Lexer(word, env, escape, keep_quotes, keep_escapes, keep_unset, plain_quotes)
    return lexer.run(None)


def expand_with_matches(word: str, env: Mapping[str, str], *, escape: str = "\\",
                        keep_quotes: bool = False, keep_escapes: bool = False,
                        keep_unset: bool = False, plain_quotes: bool = False) -> Expansion:
    """Like :func:`expand`, and also report which variable names were set and which were not."""
    lexer = _Lexer(word, env, escape, keep_quotes, keep_escapes, keep_unset, plain_quotes)
    value = lexer.run(None)
    return Expansion(value, frozenset(lexer.matched), frozenset(lexer.unmatched))


def split_words(text: str, env: Mapping[str, str], *, escape: str = "\\",
                keep_quotes: bool = False, keep_escapes: bool = False,
                keep_unset: bool = False, plain_quotes: bool = False) -> list[str]:
    """Expand ``text`` and split it into words on unquoted whitespace.

    Whitespace that an unquoted variable expands to splits too; quoted or escaped whitespace
    does not. Empty words are dropped.
    """
    lexer = _Lexer(text, env, escape, keep_quotes, keep_escapes, keep_unset, plain_quotes)
    pieces: list[tuple[str, bool]] = []
    lexer.run(pieces)
    return _split_pieces(pieces)


def _split_pieces(pieces: list[tuple[str, bool]]) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    for text, splittable in pieces:
        if not splittable:
            current.append(text)
            continue
        parts = _SPACE_RUN.split(text)
        current.append(parts[0])
        for part in parts[1:]:
            word = "".join(current)
            if word:
                words.append(word)
            current = [part]
    word = "".join(current)
    if word:
        words.append(word)
    return words


@lru_cache(maxsize=32)
def _finder(chars: str) -> re.Pattern[str]:
    """Finds the next character the lexer must look at; everything before it is plain text."""
    return re.compile("[" + re.escape(chars) + "]")


def _specials(escape: str, stop: str) -> re.Pattern[str]:
    return _finder("$'\"" + escape + stop)


class _Lexer:
    """One pass over one word; ``pos`` is the index of the next unread character."""

    __slots__ = ("src", "n", "pos", "env", "esc", "keep_quotes", "keep_escapes", "keep_unset",
                 "quotes", "depth", "matched", "unmatched")

    def __init__(self, src: str, env: Mapping[str, str], escape: str, keep_quotes: bool,
                 keep_escapes: bool, keep_unset: bool, plain_quotes: bool):
        if len(escape) != 1 or escape in "$'\"{}/":
            raise ValueError(f"unusable escape character {escape!r}")
        # Go's text/scanner drops a byte-order mark at the very start of its input.
        self.src = src[1:] if src.startswith("\ufeff") else src
        self.n = len(self.src)
        self.pos = 0
        self.env = env
        self.esc = escape
        self.keep_quotes = keep_quotes
        self.keep_escapes = keep_escapes
        self.keep_unset = keep_unset
        self.quotes = "" if plain_quotes else "'\""  # the quote characters that quote
        self.depth = 0
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def run(self, pieces: list[tuple[str, bool]] | None) -> str:
        try:
            return self.lex("", self.keep_escapes, pieces)
        except ExpansionError as err:
            raise ExpansionError(f"failed to process {_quote(self.src)}: {err}") from None
        except RecursionError:  # the caller's own stack was already deep
            msg = f"failed to process {_quote(self.src)}: substitutions nested too deeply"
            raise ExpansionError(msg) from None

    def lex(self, stop: str, raw_escapes: bool,
            pieces: list[tuple[str, bool]] | None = None) -> str:
        """Lex up to the unescaped ``stop`` character (consumed) or, if ``stop`` is "", the end.

        ``pieces`` collects (text, splittable) pairs for word splitting: plain text and unquoted
        expansions may split on whitespace, quoted or escaped text never does.
        """
        src, n, esc = self.src, self.n, self.esc
        # '<' matters only to word splitting, so expand() does not even look for it
        heredoc = pieces is not None
        find = _finder("$" + self.quotes + esc + stop + ("<" if heredoc else "")).search
        out: list[str] = []
        while self.pos < n:
            ch = src[self.pos]
            if ch == stop:
                self.pos += 1
                return "".join(out)
            splittable = False
            if ch == "$":
                piece, splittable = self.dollar(), True
            elif ch in self.quotes:
                piece = self.single_quoted() if ch == "'" else self.double_quoted(raw_escapes)
            elif ch == esc:
                piece = self.escaped(raw_escapes)
            elif ch == "<" and heredoc:
                piece = self.heredoc_marker()
            else:
                match = find(src, self.pos)
                end = match.start() if match else n
                piece, splittable = src[self.pos:end], True
                self.pos = end
            out.append(piece)
            if pieces is not None:
                pieces.append((piece, splittable))
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def heredoc_marker(self) -> str:
        """``<<`` keeps the blanks after it in its word, so that BuildKit's heredoc detection
        sees ``<< EOF`` as one word; a lone ``<`` is plain text."""
        start = self.pos
        self.pos += 1
        if self.pos < self.n and self.src[self.pos] == "<":
            self.pos += 1
            while self.pos < self.n and self.src[self.pos] in " \t\r\n":
                self.pos += 1
        return self.src[start:self.pos]

    def escaped(self, raw_escapes: bool) -> str:
        """The escape character and what it protects; a trailing lone escape vanishes."""
        self.pos += 1
        prefix = self.esc if raw_escapes else ""
        if self.pos >= self.n:
            return prefix
        self.pos += 1
        return prefix + self.src[self.pos - 1]

    def single_quoted(self) -> str:
        start = self.pos + 1
        end = self.src.find("'", start)
        if end < 0:
            self.pos = self.n
            raise ExpansionError(
                "unexpected end of statement while looking for matching single-quote")
        self.pos = end + 1
        return self.src[start - 1:end + 1] if self.keep_quotes else self.src[start:end]

    def double_quoted(self, raw_escapes: bool) -> str:
        """``"..."``: only ``$`` and the escape character are special inside."""
        src, n, esc = self.src, self.n, self.esc
        find = _finder('"$' + esc).search
        out = ['"'] if self.keep_quotes else []
        pos = self.pos + 1
        while True:
            match = find(src, pos)
            if match is None:
                self.pos = n
                raise ExpansionError(
                    "unexpected end of statement while looking for matching double-quote")
            out.append(src[pos:match.start()])
            pos, ch = match.end(), match.group()
            if ch == '"':
                self.pos = pos
                if self.keep_quotes:
                    out.append('"')
                return "".join(out)
            if ch == "$":
                self.pos = pos - 1
                out.append(self.dollar())
                pos = self.pos
                continue
            out.append(self._dq_escape(pos, raw_escapes))
            if pos < n and src[pos] in ('"', "$", esc):
                pos += 1

    def _dq_escape(self, pos: int, raw_escapes: bool) -> str:
        """Text for an escape character inside double quotes, ``pos`` being just after it.

        Only ``"``, ``$`` and the escape character itself can be escaped; before anything else
        the escape character stays. With raw escapes BuildKit writes it twice in that case, a
        quirk kept so that the heredoc detection sees what BuildKit sees.
        """
        esc = self.esc
        prefix = esc if raw_escapes else ""
        if pos >= self.n:
            return prefix
        nxt = self.src[pos]
        if nxt in ('"', "$", esc):
            return prefix + nxt
        return prefix + esc

    def name(self) -> str:
        """Read a variable name: letters, digits, ``_``; or all digits; or one special char."""
        src, n, start = self.src, self.n, self.pos
        if start >= n:
            return ""
        ch = src[start]
        end = start + 1
        if ch.isdecimal():
            while end < n and src[end].isdecimal():
                end += 1
        elif ch in _SPECIAL_PARAMS:
            pass
        elif _is_name_char(ch):
            while end < n and _is_name_char(src[end]):
                end += 1
        else:
            return ""
        self.pos = end
        return src[start:end]

    def lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            self.unmatched.add(name)
        else:
            self.matched.add(name)
        return value

    def dollar(self) -> str:
        """``$name`` or ``${...}``; ``pos`` is at the ``$``."""
        self.pos += 1
        if self.pos < self.n and self.src[self.pos] == "{":
            self.pos += 1
            return self.braced()
        name = self.name()
        if not name:
            return "$"
        value = self.lookup(name)
        if value is None:
            return "$" + name if self.keep_unset else ""
        return value

    def braced(self) -> str:
        """The inside of ``${...}``, ``pos`` just after the brace."""
        if self.pos >= self.n:
            raise ExpansionError("syntax error: missing '}'")
        if self.src[self.pos] in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        if self.pos >= self.n:
            raise ExpansionError("syntax error: missing '}'")
        op = self.src[self.pos]
        self.pos += 1
        if op == "}":
            value = self.lookup(name)
            if value is None:
                return "${" + name + "}" if self.keep_unset else ""
            return value
        if op == "/":
            return self.replace(name)
        if op == ":":
            return self.colon_modifier(name)
        if op not in _MODIFIERS:
            raise ExpansionError(f"unsupported modifier ({op}) in substitution")
        return self.modifier(name, op, "")

    def colon_modifier(self, name: str) -> str:
        if self.pos >= self.n:
            raise ExpansionError("syntax error: missing '}'")
        op = self.src[self.pos]
        self.pos += 1
        if op in "#%":
            raise ExpansionError(f"unsupported modifier (:{op}) in substitution")
        return self.modifier(name, op, ":")

    def modifier(self, name: str, op: str, colon: str) -> str:
        """``${name[:]op word}``; an unknown op after ``:`` still lexes its word first."""
        word = self.nested("}", op in "#%", "syntax error: missing '}'")
        value = self.lookup(name)
        if value is None and self.keep_unset:
            return "${" + name + colon + op + word + "}"
        empty = value is None or (colon and value == "")
        if op == "-":
            return word if empty or value is None else value
        if op == "+":
            return "" if empty else word
        if op == "?":
            if value is None:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            if empty:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if op not in "#%":
            raise ExpansionError(f"unsupported modifier ({colon}{op}) in substitution")
        # Like BuildKit, `##` is recognised on the lexed word, so ${v#$P} with P="#x" is greedy.
        greedy = word[:1] == op
        pattern = word[1:] if greedy else word
        return shellpattern.trim(value or "", pattern, suffix=op == "%", greedy=greedy)

    def nested(self, stop: str, raw_escapes: bool, eof_message: str) -> str:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ExpansionError("substitutions nested too deeply")
        try:
            return self.lex(stop, raw_escapes)
        except ExpansionError:
            if self.pos >= self.n:
                raise ExpansionError(eof_message) from None
            raise
        finally:
            self.depth -= 1

    def replace(self, name: str) -> str:
        """``${name/pattern/replacement}`` and ``${name//pattern/replacement}``."""
        replace_all = self.pos < self.n and self.src[self.pos] == "/"
        if replace_all:
            self.pos += 1
        pattern = self.nested("/", True, "syntax error: missing '/' in ${}")
        replacement = self.nested("}", True, "syntax error: missing '}'")
        value = self.lookup(name)
        if value is None:
            if self.keep_unset:  # as written (BuildKit drops the second '/' of '//' here)
                slashes = "//" if replace_all else "/"
                return "${" + name + slashes + pattern + "/" + replacement + "}"
            value = ""
        return shellpattern.replace(value, pattern, replacement, replace_all=replace_all)


def _is_name_char(ch: str) -> bool:
    # Go's unicode.IsLetter / IsDigit: isdecimal, not isdigit, which also takes superscripts.
    return ch in _ASCII_NAME or ch.isalpha() or ch.isdecimal()


def _quote(text: str) -> str:
    """Roughly Go's %q, for error messages."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
