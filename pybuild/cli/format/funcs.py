"""Values and functions for ``pybuild.cli.format.template``: Go's printing rules, truth, and the
function table (Go's builtins plus docker's json/join/split/title/lower/upper/pad/truncate)."""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from pybuild.errors import UsageError


class TemplateError(UsageError):
    """A ``--format`` template that does not parse or cannot run; one line ``template: ...``."""

    def __init__(self, message: str):
        super().__init__(f"template: {message}")


class _Missing:
    """Go's invalid reflect.Value: what a missing map key evaluates to."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def truth(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    if isinstance(value, bool | int | float | str | list | tuple | dict | Mapping):
        return bool(value)
    return True


def go_str(value: Any, top: bool = False) -> str:
    """``fmt.Sprint`` of one value, as Go prints the JSON-decoded equivalent."""
    if value is MISSING:
        return "<no value>" if top else "<nil>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    fields = getattr(value, "__go_fields__", None)
    if fields is not None:  # a mapping that stands for a Go struct: its fields in order
        return "{" + " ".join(go_str(value.get(f, "")) for f in fields) + "}"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(value[k])}"
                                 for k in sorted(value, key=_sort_key)) + "]"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if dataclasses.is_dataclass(value):
        return "{" + " ".join(go_str(getattr(value, f.name))
                              for f in dataclasses.fields(value)) + "}"
    return str(value)


def _sort_key(key: Any) -> tuple[int, Any]:
    return (0, key) if isinstance(key, int | float) else (1, str(key))


def go_float(value: float) -> str:
    """fmt's %v of a float64: shortest digits, %e when the exponent is < -4 or >= 6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    exp = len(text) + int(exponent) - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{prefix}0.{'0' * (-exp - 1)}{text}"
    text = text.ljust(exp + 1, "0")
    return prefix + text[:exp + 1] + ("." + text[exp + 1:] if len(text) > exp + 1 else "")


def _plain(value: Any) -> Any:
    """Data json.Marshal can take: dataclasses as objects, MISSING as null."""
    if value is MISSING:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """docker's ``json``: json.Marshal without HTML escaping, map keys sorted."""
    text = json.dumps(_plain(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if item is MISSING or item is None:
            raise TemplateError("error calling index: index of untyped nil")
        if isinstance(item, Mapping):
            item = item[key] if key in item else _zero(item)
        elif isinstance(item, list | tuple | str):
            if not isinstance(key, int) or not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key]
        else:
            raise TemplateError(f"error calling index: can't index item of type {type(item)}")
    return item


def _zero(mapping: Mapping) -> Any:
    # Go returns the map's zero element. Docker's string maps (Labels, Env...) give "", and
    # a map of anything gives nil: a map whose values are all strings is taken as the former.
    return "" if all(isinstance(v, str) for v in mapping.values()) else None


def _len(value: Any) -> int:
    if value is MISSING or value is None:
        raise TemplateError("error calling len: len of nil pointer")
    try:
        return len(value)
    except TypeError:
        raise TemplateError(f"error calling len: len of type {type(value).__name__}") from None


def _title(text: str) -> str:
    # strings.Title: upper-case the first letter after anything not a letter, digit or "_"
    return re.sub(r"(?:^|(?<=[^\w]))(\w)", lambda m: m.group(1).upper(), _s(text))


def _s(value: Any) -> str:
    return value if isinstance(value, str) else go_str(value)


def _split(text: Any, sep: Any) -> list[str]:
    text, sep = _s(text), _s(sep)
    return list(text) if sep == "" else text.split(sep)


def _join(items: Any, sep: Any) -> str:
    if items is MISSING or items is None:
        return ""
    return _s(sep).join(_s(v) for v in items)


def _print(*args: Any) -> str:
    # fmt.Sprint: a space between operands when neither side is a string
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_str(arg)
    return out


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs scripts use: v s d q x X f e g t c and %%."""
    values = list(args)

    def one(m: re.Match) -> str:
        flags, width, prec, verb = m.groups()
        if verb == "%":
            return "%"
        if not values:
            return f"%!{verb}(MISSING)"
        arg = values.pop(0)
        if verb in "vst":
            text = go_str(arg)
            text = text[:int(prec)] if prec and verb == "s" else text
        elif verb == "q":
            text = json.dumps(_s(arg), ensure_ascii=False)
        elif verb in "dxXcfeEgG" and isinstance(arg, int | float) and not isinstance(arg, bool):
            spec = {"d": "d", "c": "c"}.get(verb, verb)
            arg = int(arg) if verb in "dxXc" else arg
            text = format(arg, ("." + prec if prec and verb in "feEgG" else "") + spec)
        else:
            return f"%!{verb}({type(arg).__name__}={go_str(arg)})"
        pad = int(width or 0)
        if "-" in flags:
            return text.ljust(pad)
        return text.rjust(pad, "0" if "0" in flags and verb in "dfxX" else " ")

    return _VERB.sub(one, fmt)


def _cmp(name: str, op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(a: Any, b: Any) -> bool:
        a, b = (None if v is MISSING else v for v in (a, b))
        if isinstance(a, str) != isinstance(b, str) or a is None or b is None:
            raise TemplateError(f"error calling {name}: incompatible types for comparison")
        return op(a, b)
    return compare


def _eq(a: Any, *others: Any) -> bool:
    a = None if a is MISSING else a
    return any(a == (None if b is MISSING else b) for b in others)


def _and(*args: Any) -> Any:
    for arg in args:
        if not truth(arg):
            return arg
    return args[-1]


def _or(*args: Any) -> Any:
    for arg in args:
        if truth(arg):
            return arg
    return args[-1]


def _slice(item: Any, *idx: int) -> Any:
    if len(idx) > 2:
        raise TemplateError("error calling slice: too many slice indexes")
    return item[slice(*idx)] if idx else item


FUNCS: dict[str, Callable[..., Any]] = {
    "json": to_json,
    "index": _index,
    "len": _len,
    "join": _join,
    "split": _split,
    "upper": lambda s: _s(s).upper(),
    "lower": lambda s: _s(s).lower(),
    "title": _title,
    "pad": lambda s, before, after: _s(s) and " " * before + _s(s) + " " * after,
    "truncate": lambda s, n: _s(s)[:n],
    "print": _print,
    "println": lambda *a: " ".join(go_str(v) for v in a) + "\n",
    "printf": _printf,
    "not": lambda v: not truth(v),
    "and": _and,
    "or": _or,
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _cmp("lt", lambda a, b: a < b),
    "le": _cmp("le", lambda a, b: a <= b),
    "gt": _cmp("gt", lambda a, b: a > b),
    "ge": _cmp("ge", lambda a, b: a >= b),
    "slice": _slice,
    "html": lambda *a: html.escape(_print(*a)).replace("&#x27;", "&#39;")
                                               .replace("&quot;", "&#34;"),
    "urlquery": lambda *a: urllib.parse.quote_plus(_print(*a)),
}
