"""Heredoc openers (``<<EOF``, ``<<-'EOF'``, ``3<<EOF``) on RUN/COPY/ADD lines.

Finding them needs shell words, with quotes and escapes kept and unset variables left as
written. That is a different mode from ``pybuild.shell.words`` (which expands), and one rule is
particular to heredocs (spaces right after ``<<`` stay in the word), so this module has its own
small lexer: it only has to find word boundaries and quoting, never to expand.
"""

from __future__ import annotations

import re

from pybuild.dockerfile.dump import go_quote
from pybuild.dockerfile.syntax import Heredoc
from pybuild.errors import ParseError
from pybuild.spaces import GO_SPACES

_OPENER = re.compile(r"(\d*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
# Text without these characters lexes to its space-separated pieces, so it needs no lexer.
_LEXED = re.compile(r"[\\'\"$]")
_SPACES = re.compile(f"([{GO_SPACES}]+)")
_LEADING_TABS = re.compile(r"^\t+", re.M)
_SPECIAL_PARAMS = "@*#?-$!"
_MAX_FD = 2**64


class _LexError(Exception):
    pass


class _Words:
    """Accumulates words; unquoted spaces split them."""

    def __init__(self, heredoc_spaces: bool) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False
        self.heredoc_spaces = heredoc_spaces

    def char(self, ch: str) -> None:
        if ch not in GO_SPACES:
            self.raw(ch)
        elif self.in_word and self.word:
            if self.heredoc_spaces and self.word.rstrip(GO_SPACES).endswith("<<"):
                self.word += ch  # "<<  EOF" is one word
                return
            self.words.append(self.word)
            self.word, self.in_word = "", False

    def string(self, text: str) -> None:
        for ch in text:
            self.char(ch)

    def raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def finish(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
        return self.words


class _Lexer:
    """Shell words of ``text`` with escape ``\\``; variables are all unset and kept as written."""

    def __init__(self, text: str, *, raw_quotes: bool, raw_escapes: bool,
                 heredoc_spaces: bool = False) -> None:
        self.text, self.pos = text, 0
        self.raw_quotes, self.raw_escapes = raw_quotes, raw_escapes
        self.heredoc_spaces = heredoc_spaces

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def words(self) -> list[str]:
        return self.until("", self.raw_escapes)[1]

    def until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words(self.heredoc_spaces)
        while (ch := self.peek()):
            if stop and ch == stop:
                self.next()
                return "".join(out), words.finish()
            if ch in "$'\"":
                piece = self.dollar() if ch == "$" else self.quoted(ch)
                out.append(piece)
                if ch == "$":
                    words.string(piece)  # an expansion's spaces split words
                else:
                    words.raw(piece)
                continue
            self.next()
            if ch == "\\":
                if raw_escapes:
                    words.raw(ch)
                    out.append(ch)
                ch = self.next()
                if not ch:
                    break
                words.raw(ch)
            else:
                words.char(ch)
            out.append(ch)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.finish()

    def quoted(self, quote: str) -> str:
        self.next()
        out = [quote] if self.raw_quotes else []
        kind = "single-quote" if quote == "'" else "double-quote"
        while True:
            ch = self.peek()
            if not ch:
                raise _LexError(f"unexpected end of statement while looking for matching {kind}")
            if ch == quote:
                self.next()
                out.append(quote if self.raw_quotes else "")
                return "".join(out)
            if quote == '"' and ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if quote == '"' and ch == "\\":
                if self.raw_escapes:
                    out.append(ch)
                after = self.peek()
                if not after:
                    continue  # the loop then reports the open quote
                if after in '"$\\':
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        start = self.pos
        ch = self.peek()
        if ch and ch.isdecimal():
            while self.peek() and self.peek().isdecimal():
                self.next()
            return self.text[start:self.pos]
        if ch and ch in _SPECIAL_PARAMS:
            return self.next()
        while (ch := self.peek()) and (ch.isalpha() or ch.isdecimal() or ch == "_"):
            self.next()
        return self.text[start:self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return "$" + name
        self.next()
        if not self.peek():
            raise _LexError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        if not op:
            raise _LexError("syntax error: missing '}'")
        if op == "}":
            return "${" + name + "}"
        if op == ":":
            op += self.next()
        if op[0] in ":+-?#%":
            word = self.inner("}", raw_escapes=op[-1:] in ("#", "%"))
            return "${" + name + op + word + "}"
        if op == "/":
            if self.peek() == "/":
                self.next()
            pattern = self.inner("/", raw_escapes=True)
            return "${" + name + "/" + pattern + "/" + self.inner("}", raw_escapes=True) + "}"
        raise _LexError(f"unsupported modifier ({op}) in substitution")

    def inner(self, stop: str, raw_escapes: bool) -> str:
        try:
            return self.until(stop, raw_escapes)[0]
        except _LexError:
            if not self.peek():
                raise _LexError(f"syntax error: missing '{stop}'") from None
            raise


def _quotes(text: str) -> int:
    return text.count("'") + text.count('"')


def parse_heredoc_word(word: str) -> Heredoc | None:
    """The heredoc that ``word`` opens, or None if it opens none.

    Raises ParseError when the word has a heredoc's shape but broken quoting (``<<'EOF``).
    """
    m = _OPENER.match(word)
    if m is None or not m.group(3):
        return None
    digits, rest = m.group(1), m.group(3)
    if _LEXED.search(rest) is None:  # nothing quoted: the name is the one piece, as written
        name = rest.strip(GO_SPACES)
        expand = True
        if not name or _SPACES.search(name) is not None:
            return None
    else:
        lexed = _lexed_name(rest)
        if lexed is None:
            return None
        name, expand = lexed
    return Heredoc(name, "", expand, m.group(2) == "-", _fd(digits))


def _fd(digits: str) -> int:
    """The ``3`` of ``3<<EOF``; 0 when absent or beyond what a file descriptor can be."""
    fd = int(digits) if digits and len(digits) <= 20 else 0
    return fd if fd < _MAX_FD else 0


def _lexed_name(rest: str) -> tuple[str, bool] | None:
    """(name, expand) when ``rest`` is one shell word; quoting any of it turns expansion off."""
    try:
        words = _Lexer(rest, raw_quotes=False, raw_escapes=False).words()
        if len(words) != 1:
            return None
        raw = _Lexer(rest, raw_quotes=True, raw_escapes=False).words()
    except _LexError as err:
        raise ParseError(f"failed to process {go_quote(rest)}: {err}") from None
    return words[0], _quotes(words[0]) == _quotes(raw[0])


def heredocs_from_line(line: str) -> list[Heredoc]:
    """The heredocs a whole instruction line opens, in order (their content still empty): the
    line's shell words, each tried as an opener."""
    try:
        words = _Lexer(line, raw_quotes=True, raw_escapes=True, heredoc_spaces=True).words()
    except _LexError:
        return []  # as BuildKit: a line the shell lexer rejects opens no heredoc
    found = []
    for word in words:
        heredoc = parse_heredoc_word(word) if "<<" in word else None
        if heredoc is not None:
            found.append(heredoc)
    return found


def chomp_heredoc_content(content: str) -> str:
    """The body of a ``<<-`` heredoc as used: leading tabs removed from every line."""
    return _LEADING_TABS.sub("", content)
