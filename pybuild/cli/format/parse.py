"""Lexer and parser for ``pybuild.cli.format.template``: template text to a small frozen tree.

Trim markers (``{{- `` and `` -}}``) are applied while lexing; ``{{else if}}`` becomes a
nested ``if`` that shares the outer ``{{end}}``, as in Go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pybuild.cli.format.funcs import FUNCS, TemplateError

_SPACE = " \t\r\n"
_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>/\*.*?\*/)|(?P<declare>:=)|(?P<assign>=)
    |(?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
    |(?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|\d[\d_]*\.?[\d_]*(?:[eE][+-]?\d+)?|\.\d+))
    |(?P<dot>\.)|(?P<var>\$[A-Za-z0-9_]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<char>'(?:[^'\\\n]|\\.)+')
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),|])""",
    re.X | re.S,
)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    value: str
    start: int
    end: int


# --- syntax tree ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    kind: str                      # field dot var literal func pipe
    value: Any = None              # variable or function name, literal value, sub-pipeline
    fields: tuple[str, ...] = ()   # a chain applied to the value: $x.A.B, (pipe).A


@dataclass(frozen=True)
class Pipe:
    decl: tuple[str, ...]
    assign: bool                   # "=" re-assigns, ":=" declares
    cmds: tuple[tuple[Term, ...], ...]


@dataclass(frozen=True)
class Node:
    kind: str                      # text action if range with break continue
    text: str = ""
    pipe: Pipe | None = None
    body: tuple[Node, ...] = ()
    orelse: tuple[Node, ...] = ()


# --- lexing --------------------------------------------------------------------------------
def lex(src: str) -> list[str | list[_Tok]]:
    """Alternate text and actions; trim markers are applied to the text here."""
    items: list[str | list[_Tok]] = []
    pos, trim_next = 0, False
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(_SPACE)
        if start < 0:
            items.append(text)
            return items
        p = start + 2
        if src[p:p + 1] == "-" and src[p + 1:p + 2] in tuple(_SPACE):
            text, p = text.rstrip(_SPACE), p + 2
        items.append(text)
        tokens, pos, trim_next = _lex_action(src, p)
        items.append(tokens)


def _lex_action(src: str, pos: int) -> tuple[list[_Tok], int, bool]:
    tokens: list[_Tok] = []
    while True:
        if src.startswith("}}", pos):
            return tokens, pos + 2, False
        trim = re.compile(r"[ \t\r\n]+-}}").match(src, pos)
        if trim:
            return tokens, trim.end(), True
        m = _TOKEN.match(src, pos)
        if m is None:
            if pos >= len(src):
                raise TemplateError(f":{_line(src, pos)}: unclosed action")
            raise TemplateError(f":{_line(src, pos)}: unexpected {src[pos]!r} in command")
        if m.lastgroup not in ("ws", "comment"):
            tokens.append(_Tok(m.lastgroup or "", m.group(), m.start(), m.end()))
        pos = m.end()


def _line(src: str, pos: int) -> int:
    return src.count("\n", 0, pos) + 1


def _unquote(tok: _Tok) -> Any:
    if tok.kind == "raw":
        return tok.value[1:-1]
    out, body, i = [], tok.value[1:-1], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[esc]
            out.append(chr(int(body[i + 2:i + 2 + n], 16)))
            i += 2 + n
        elif esc in "01234567":
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            raise TemplateError(f"unknown escape sequence in {tok.value}")
    text = "".join(out)
    return ord(text) if tok.kind == "char" else text


def _number(text: str) -> int | float:
    text = text.replace("_", "")
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


# --- parsing -------------------------------------------------------------------------------
class Parser:
    def __init__(self, items: list[str | list[_Tok]]):
        self.items, self.i = items, 0

    def parse(self) -> tuple[Node, ...]:
        nodes, stop, _ = self.list(frozenset())
        return nodes

    def list(self, stops: frozenset[str]) -> tuple[tuple[Node, ...], str, list[_Tok]]:
        nodes: list[Node] = []
        while self.i < len(self.items):
            item = self.items[self.i]
            self.i += 1
            if isinstance(item, str):
                if item:
                    nodes.append(Node("text", text=item))
                continue
            if not item:
                continue  # a comment
            head = item[0].value if item[0].kind == "ident" else ""
            if head in ("end", "else"):
                if head not in stops:
                    raise TemplateError(f"unexpected {{{{{head}}}}}")
                return tuple(nodes), head, item[1:]
            nodes.append(self.action(head, item))
        if stops:
            raise TemplateError("unexpected EOF")
        return tuple(nodes), "", []

    def action(self, head: str, item: list[_Tok]) -> Node:
        if head in ("if", "range", "with"):
            return self.control(head, item[1:])
        if head in ("break", "continue"):
            return Node(head)
        if head in ("define", "template", "block"):
            raise TemplateError(f"{{{{{head}}}}} is not supported")
        return Node("action", pipe=PipeParser(item).pipeline(allow_decl=True))

    def control(self, kind: str, toks: list[_Tok]) -> Node:
        if not toks:
            raise TemplateError(f"missing value for {kind}")
        pipe = PipeParser(toks).pipeline(allow_decl=True)
        body, stop, rest = self.list(frozenset({"else", "end"}))
        orelse: tuple[Node, ...] = ()
        if stop == "else" and rest and rest[0].value in ("if", "with") and kind != "range":
            orelse = (self.control(rest[0].value, rest[1:]),)  # {{else if}} shares one {{end}}
        elif stop == "else":
            orelse, _, _ = self.list(frozenset({"end"}))
        return Node(kind, pipe=pipe, body=body, orelse=orelse)


class PipeParser:
    def __init__(self, toks: list[_Tok]):
        self.toks, self.i = toks, 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def pipeline(self, allow_decl: bool = False, close: str = "") -> Pipe:
        decl, assign = self.declarations() if allow_decl else ((), False)
        cmds: list[tuple[Term, ...]] = []
        terms: list[Term] = []
        while (tok := self.peek()) is not None and tok.value != close:
            if tok.value == "|":
                if not terms:
                    raise TemplateError("missing command before |")
                cmds.append(tuple(terms))
                terms = []
                self.i += 1
                continue
            terms.append(self.term())
        if close and self.peek() is None:
            raise TemplateError("unclosed left paren")
        if not terms:
            raise TemplateError("missing value for command")
        cmds.append(tuple(terms))
        return Pipe(decl, assign, tuple(cmds))

    def declarations(self) -> tuple[tuple[str, ...], bool]:
        kinds = [t.kind for t in self.toks[:4]]
        for pattern in (["var", "declare"], ["var", "assign"],
                        ["var", "punct", "var", "declare"], ["var", "punct", "var", "assign"]):
            if kinds[:len(pattern)] == pattern and (len(pattern) == 2 or self.toks[1].value == ","):
                names = tuple(t.value for t in self.toks[:len(pattern) - 1:2])
                self.i = len(pattern)
                return names, pattern[-1] == "assign"
        return (), False

    def term(self) -> Term:
        tok = self.toks[self.i]
        self.i += 1
        if tok.kind == "field":
            return Term("field", fields=(tok.value[1:], *self.chain(tok)))
        if tok.kind == "punct" and tok.value == "(":
            sub = self.pipeline(close=")")
            close = self.toks[self.i]
            self.i += 1
            return Term("pipe", sub, tuple(self.chain(close)))
        if tok.kind == "var":
            return Term("var", tok.value, tuple(self.chain(tok)))
        if tok.kind == "dot":
            return Term("dot")
        if tok.kind in ("string", "raw", "char"):
            return Term("literal", _unquote(tok))
        if tok.kind == "number":
            return Term("literal", _number(tok.value))
        if tok.kind == "ident":
            consts = {"true": True, "false": False, "nil": None}
            if tok.value in consts:
                return Term("literal", consts[tok.value])
            if tok.value not in FUNCS:
                raise TemplateError(f'function "{tok.value}" not defined')
            return Term("func", tok.value)
        raise TemplateError(f"unexpected {tok.value!r} in operand")

    def chain(self, prev: _Tok) -> list[str]:
        """Fields written right after a term with no space: ``$x.A.B``, ``(pipe).A``."""
        names = []
        while (tok := self.peek()) is not None and tok.kind == "field" and tok.start == prev.end:
            names.append(tok.value[1:])
            prev = tok
            self.i += 1
        return names


def compile_template(template: str) -> tuple[Node, ...]:
    return Parser(lex(template)).parse()
