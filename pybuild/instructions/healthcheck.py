"""HEALTHCHECK and the Go duration syntax its options use."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pybuild.dockerfile.syntax import Node
from pybuild.instructions.base import Instruction, fail
from pybuild.instructions.flags import FlagSpec, parse_flags

# Nanoseconds per Go duration unit (time.ParseDuration); "µs" and "μs" are both accepted.
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
MINIMUM_NS = 1_000_000  # Docker refuses non-zero durations under 1ms
_OPTIONS = ("interval", "timeout", "start-period", "start-interval")
_FLAGS = FlagSpec({**dict.fromkeys(_OPTIONS, "string"), "retries": "string"})


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """``HEALTHCHECK NONE`` (test == ("NONE",)) or ``HEALTHCHECK [opts] CMD ...``.

    ``test`` is Docker's form: ("CMD", arg, ...) for JSON, ("CMD-SHELL", text) for shell form.
    Durations are nanoseconds, 0 meaning "not set" (the runtime default applies).
    """

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    keyword = "HEALTHCHECK"


def parse_duration(text: str) -> int:
    """A Go duration (``1m30s``, ``-2s``, ``0``) in nanoseconds; ValueError when malformed."""
    sign, body = (-1, text[1:]) if text[:1] == "-" else (1, text.removeprefix("+"))
    if body == "0":
        return 0
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body) or pos == 0:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * round(total)


def _interval(node: Node, name: str, value: str | None) -> int:
    if not value:
        return 0
    try:
        ns = parse_duration(value)
    except ValueError as err:
        raise fail(str(err), node) from None
    if ns != 0 and ns < MINIMUM_NS:
        raise fail(f'Interval "{name}" cannot be less than 1ms', node)
    return ns


def _retries(node: Node, value: str | None) -> int:
    if not value:
        return 0
    if not re.fullmatch(r"[+-]?\d+", value) or abs(int(value)) >= 2**31:
        raise fail(f'strconv.ParseInt: parsing "{value}": invalid syntax', node)
    if int(value) < 0:
        raise fail(f"--retries cannot be negative ({int(value)})", node)
    return int(value)


def parse_healthcheck(node: Node) -> Healthcheck:
    if not node.args:
        raise fail("HEALTHCHECK requires at least one argument", node)
    kind, rest = node.args[0].upper(), node.args[1:]
    if kind == "NONE":
        if rest:
            raise fail("HEALTHCHECK NONE takes no arguments", node)
        # BuildKit never reads the flags of HEALTHCHECK NONE, so neither do we.
        return Healthcheck(test=("NONE",), node=node)
    flags = parse_flags(node, _FLAGS)
    if kind != "CMD":
        raise fail(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)', node)
    if not rest:
        raise fail("Missing command after HEALTHCHECK CMD", node)
    test = ("CMD", *rest) if node.json else ("CMD-SHELL", *rest)
    times = {o.replace("-", "_"): _interval(node, o, flags.get(o)) for o in _OPTIONS}
    return Healthcheck(test=test, retries=_retries(node, flags.get("retries")),
                       **times, node=node)
