"""Go text/template, the subset docker users script ``--format`` with.

``render(template, data)`` executes a template against JSON-like data (dicts, lists, scalars,
dataclasses) and prints values the way Go's ``fmt`` does, so scripts written for docker keep
working: maps print as ``map[k:v]`` with sorted keys, lists as ``[a b]``, a JSON null as
``<nil>`` and a missing key as ``<no value>``. ``render_rows`` adds docker's ``table`` prefix.
Execution semantics follow Go: a missing map key is not an error, a field of a null is.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pybuild.cli.format.funcs import FUNCS, MISSING, TemplateError, go_str, truth
from pybuild.cli.format.parse import Node, Pipe, Term, compile_template

__all__ = ["MISSING", "TemplateError", "render", "render_rows", "go_str"]

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# --- execution -----------------------------------------------------------------------------
class _Exec:
    def __init__(self, root: Any):
        self.vars: list[list[Any]] = [["$", root]]

    def walk(self, nodes: tuple[Node, ...], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    out.append(go_str(value, top=True))
            elif node.kind == "break":
                raise _Break
            elif node.kind == "continue":
                raise _Continue
            else:
                self.scoped(node, dot, out)

    def scoped(self, node: Node, dot: Any, out: list[str]) -> None:
        mark = len(self.vars)
        try:
            if node.kind == "range":
                self.range(node, dot, out)
                return
            value = self.pipe(node.pipe, dot)
            if truth(value):
                self.walk(node.body, value if node.kind == "with" else dot, out)
            else:
                self.walk(node.orelse, dot, out)
        finally:
            del self.vars[mark:]

    def range(self, node: Node, dot: Any, out: list[str]) -> None:
        pipe = node.pipe
        value = self.pipe(Pipe((), False, pipe.cmds), dot)
        items = _range_items(value)
        if not items:
            self.walk(node.orelse, dot, out)
            return
        mark = len(self.vars)
        for key, elem in items:
            del self.vars[mark:]
            if len(pipe.decl) == 1:
                self.vars.append([pipe.decl[0], elem])
            elif len(pipe.decl) == 2:
                self.vars += [[pipe.decl[0], key], [pipe.decl[1], elem]]
            try:
                self.walk(node.body, elem, out)
            except _Break:
                break
            except _Continue:
                continue

    def pipe(self, pipe: Pipe, dot: Any) -> Any:
        value: Any = _NOARG
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value)
        for name in pipe.decl:
            if pipe.assign:
                self.var_slot(name)[1] = value
            else:
                self.vars.append([name, value])
        return value

    def command(self, cmd: tuple[Term, ...], dot: Any, piped: Any) -> Any:
        head = cmd[0]
        if head.kind == "func":
            args = [self.term(t, dot) for t in cmd[1:]]
            if piped is not _NOARG:
                args.append(piped)
            try:
                return FUNCS[head.value](*args)
            except TemplateError:
                raise
            except (TypeError, ValueError, IndexError, KeyError, AttributeError) as err:
                raise TemplateError(f"error calling {head.value}: {err}") from None
        if len(cmd) > 1 or piped is not _NOARG:
            raise TemplateError(f"can't give argument to non-function {_show(head)}")
        return self.term(head, dot)

    def term(self, term: Term, dot: Any) -> Any:
        if term.kind == "dot":
            return dot
        if term.kind == "literal":
            return term.value
        if term.kind == "func":
            return FUNCS[term.value]()
        base = {"field": lambda: dot, "var": lambda: self.var_slot(term.value)[1],
                "pipe": lambda: self.pipe(term.value, dot)}[term.kind]()
        for name in term.fields:
            base = _field(base, name)
        return base

    def var_slot(self, name: str) -> list[Any]:
        for slot in reversed(self.vars):
            if slot[0] == name:
                return slot
        raise TemplateError(f'undefined variable "{name}"')


_NOARG = object()


def _show(term: Term) -> str:
    if term.kind == "field":
        return "." + ".".join(term.fields)
    return str(term.value) if term.kind != "dot" else "."


def _field(obj: Any, name: str) -> Any:
    if obj is MISSING:
        return MISSING
    if obj is None:
        raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(obj, Mapping):
        return obj.get(name, MISSING)
    if dataclasses.is_dataclass(obj) or hasattr(obj, "__dict__"):
        if hasattr(obj, name) and not name.startswith("_"):
            value = getattr(obj, name)
            return value() if callable(value) else value
    raise TemplateError(f"can't evaluate field {name} in type {_go_type(obj)}")


def _go_type(obj: Any) -> str:
    for typ, name in ((bool, "bool"), (int, "int"), (float, "float64"), (str, "string"),
                      (list, "[]interface {}"), (tuple, "[]interface {}")):
        if isinstance(obj, typ):
            return name
    return type(obj).__name__


def _range_items(value: Any) -> list[tuple[Any, Any]]:
    if value is MISSING or value is None:
        return []
    if isinstance(value, Mapping):
        return [(k, value[k]) for k in sorted(value)]
    if isinstance(value, list | tuple):
        return list(enumerate(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return [(i, i) for i in range(value)]
    raise TemplateError(f"range can't iterate over {go_str(value)}")


def render(template: str, data: Any) -> str:
    """Execute a Go template against data; raises TemplateError (a UsageError)."""
    nodes = compile_template(template)
    out: list[str] = []
    try:
        _Exec(data).walk(nodes, data, out)
    except (_Break, _Continue):
        raise TemplateError("{{break}} or {{continue}} outside {{range}}") from None
    except RecursionError:
        raise TemplateError("template nests too deeply") from None
    return "".join(out)


def render_rows(fmt: str, rows: Iterable[Any], headers: Mapping[str, str] | None = None) -> str:
    """Docker's list formatting: one rendered line per row; ``table`` adds aligned headers."""
    table = fmt.startswith("table")
    body = fmt[len("table"):] if table else fmt
    body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    nodes = compile_template(body)
    lines: list[str] = []
    if table:
        lines.append(_run(nodes, _Headers(headers or {})))
    lines += [_run(nodes, row) for row in rows]
    text = "".join(line + "\n" for line in lines)
    return _tabwrite(text) if table else text


def _run(nodes: tuple[Node, ...], data: Any) -> str:
    out: list[str] = []
    _Exec(data).walk(nodes, data, out)
    return "".join(out)


class _Headers(dict):
    """Column titles: the given ones, else the field name in capitals (``CreatedAt`` ->
    ``CREATED AT``), as docker's header contexts name their columns."""

    def get(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(key)).upper()


def _tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter with docker's settings: a column's width is fixed per block of
    consecutive lines that have a cell in it."""
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[list[int]] = [[0] * (len(cells) - 1) for cells in lines]

    def block(first: int, last: int, col: int) -> None:
        i = first
        while i < last:
            if len(lines[i]) - 1 <= col:
                i += 1
                continue
            j, width = i, minwidth
            while j < last and len(lines[j]) - 1 > col:
                width = max(width, len(lines[j][col]) + padding)
                j += 1
            for k in range(i, j):
                widths[k][col] = width
            block(i, j, col + 1)
            i = j

    block(0, len(lines), 0)
    return "\n".join(
        "".join(c.ljust(w) for c, w in zip(cells, ws)) + cells[-1]
        for cells, ws in zip(lines, widths)
    )

