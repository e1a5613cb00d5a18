"""Plain-data (JSON-ready) forms of instructions, for ``pybuild parse --format json``.

Shape of one instruction: ``{"instruction": "COPY", "span": [start, end], <fields>}``. The
fields are the dataclass fields; those named after a flag are spelled as the flag (``from_``
-> ``from``, ``keep_git_dir`` -> ``keep-git-dir``). Mounts, heredocs and ARG definitions are
objects; ONBUILD's typed trigger is under ``"trigger"``. ``raw`` and ``node`` are left out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pybuild.instructions.base import Instruction, Span

# Fields named after a flag keep the flag's spelling; the rest keep their Python names.
_FLAG_NAMES = {"from_": "from", "keep_git_dir": "keep-git-dir", "start_period": "start-period",
               "start_interval": "start-interval"}


def _key(name: str) -> str:
    return _FLAG_NAMES.get(name, name)


def _value(value: Any) -> Any:
    if isinstance(value, Instruction):
        return to_data(value)
    if dataclasses.is_dataclass(value):
        return {_key(f.name): _value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_value(v) for v in value]
    return value


def to_data(inst: Instruction) -> dict[str, Any]:
    """The JSON-ready dict for one instruction (keys are sorted by the JSON writer)."""
    out: dict[str, Any] = {"instruction": inst.keyword,
                           "span": [inst.span.start, inst.span.end]}
    for field in dataclasses.fields(inst):
        if field.name == "node":
            continue
        key = "trigger" if field.name == "instruction" else _key(field.name)
        out[key] = _value(getattr(inst, field.name))
    return out


__all__ = ["Span", "to_data"]
