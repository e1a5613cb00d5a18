"""docker's volume filters: ``ls`` (name, label, dangling, driver) and ``prune`` (label,
label!, all).

Filters arrive as docker-py gives them (``{"label": ["a=b"], "dangling": True}``, a value or a
list per key) or as the CLI's ``--filter k=v`` items; both become ``{key: [values]}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pybuild.errors import UsageError
from pybuild.volumes.record import ANONYMOUS_LABEL, VolumeRecord

LIST_KEYS = ("dangling", "driver", "label", "name")
PRUNE_KEYS = ("all", "label", "label!")
Filters = dict[str, list[str]]


def parse_filter_items(items: Sequence[str], known: Sequence[str]) -> Filters:
    """``["label=a=b", "dangling=true"]`` -> ``{"label": ["a=b"], "dangling": ["true"]}``;
    ``label!=a`` is the key ``label!``, as docker reads it."""
    out: Filters = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise UsageError(f"bad format of filter {item!r} (expected name=value)")
        out.setdefault(key, []).append(value)
    return normalise(out, known)


def normalise(filters: Mapping[str, Any] | None, known: Sequence[str]) -> Filters:
    """docker-py's filter dict as ``{key: [str, ...]}``; an unknown key is refused, naming it."""
    out: Filters = {}
    for key, value in (filters or {}).items():
        if key not in known:
            raise UsageError(f"invalid filter {key!r} (known: {', '.join(known)})")
        values = value if isinstance(value, list | tuple | set) else [value]
        out[key] = [_text(v) for v in values]
    return out


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0"):
        raise UsageError(f"invalid filter '{key}={value}' (true or false)")
    return lowered in ("true", "1")


def _label_matches(labels: Mapping[str, str], wanted: str) -> bool:
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _name_matches(name: str, pattern: str) -> bool:
    """docker's filters.Match: the exact value, else the value as a regular expression
    searched in the name (so a part of a name matches)."""
    if name == pattern:
        return True
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


def select(records: list[VolumeRecord], filters: Filters,
           users: Callable[[str], list[str]]) -> list[VolumeRecord]:
    """The records ``volume ls --filter`` keeps: every key must accept a record; values of
    one key are alternatives, except labels, which must all match (as docker)."""
    kept = []
    dangling = [_bool("dangling", v) for v in filters.get("dangling", ())]
    for record in records:
        if "name" in filters and not any(_name_matches(record.name, p)
                                         for p in filters["name"]):
            continue
        if "driver" in filters and record.driver not in filters["driver"]:
            continue
        if not all(_label_matches(record.labels, w) for w in filters.get("label", ())):
            continue
        if dangling and (not users(record.name)) not in dangling:
            continue
        kept.append(record)
    return kept


def prunable(records: list[VolumeRecord], filters: Filters,
             users: Callable[[str], list[str]]) -> list[VolumeRecord]:
    """What ``volume prune`` removes: unused volumes, only anonymous ones (docker 23+) unless
    ``all=true``, with label / label! filters applied."""
    everything = any(_bool("all", v) for v in filters.get("all", ()))
    kept = []
    for record in records:
        if not everything and not (record.anonymous or ANONYMOUS_LABEL in record.labels):
            continue
        if not all(_label_matches(record.labels, w) for w in filters.get("label", ())):
            continue
        if any(_label_matches(record.labels, w) for w in filters.get("label!", ())):
            continue
        if users(record.name):
            continue
        kept.append(record)
    return kept
