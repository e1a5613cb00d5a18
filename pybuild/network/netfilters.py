"""docker's network filters: ``network ls`` (dangling, driver, id, label, name, scope, type)
and ``network prune`` (until, label, label!).

Filters arrive normalised as ``{key: [values]}`` (``volumes.filters.normalise``, which also
refuses an unknown key); label and name matching are the volume filters' own, as docker uses
one matcher for both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from pybuild.errors import UsageError
from pybuild.network.model import Network
from pybuild.volumes.filters import _bool, _label_matches, _name_matches

LIST_KEYS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_KEYS = ("label", "label!", "until")
Filters = Mapping[str, list[str]]
_DURATION = re.compile(r"(?:([0-9.]+)(h|ms|m|s))+?")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def list_matches(network: Network, attrs: Mapping[str, Any], filters: Filters, *,
                 builtin: bool) -> bool:
    """Whether ``network ls --filter`` keeps ``network``: every key must accept it; values
    of one key are alternatives, except labels, which must all match."""
    for kind in filters.get("type", ()):
        if kind not in ("custom", "builtin"):
            raise UsageError(f"invalid filter 'type={kind}' (custom or builtin)")
    checks = {
        "driver": lambda v: network.driver == v,
        "id": lambda v: bool(v) and network.id.startswith(v),
        "name": lambda v: _name_matches(network.name, v),
        "scope": lambda v: v == "local",
        "type": lambda v: (v == "builtin") == builtin,
        "dangling": lambda v: _bool("dangling", v) == (not builtin and not attrs["Containers"]),
    }
    for key, check in checks.items():
        if key in filters and not any(check(v) for v in filters[key]):
            return False
    return all(_label_matches(network.labels, w) for w in filters.get("label", ()))


def prune_matches(network: Network, filters: Filters) -> bool:
    """Whether ``network prune --filter`` may remove ``network`` (it must be unused too)."""
    if not all(_label_matches(network.labels, w) for w in filters.get("label", ())):
        return False
    if any(_label_matches(network.labels, w) for w in filters.get("label!", ())):
        return False
    if filters.get("until"):
        from pybuild.image.config import parse_rfc3339

        created = parse_rfc3339(network.created) or 0.0
        return all(created < until(v) for v in filters["until"])
    return True


def until(value: str, now: float | None = None) -> float:
    """docker's ``until``: a Unix timestamp, an RFC 3339 date or a Go duration before now
    (``10m``, ``1h30m``)."""
    from pybuild.image.config import parse_rfc3339

    now = time.time() if now is None else now
    text = value.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    if text and _DURATION.fullmatch(text):
        return now - sum(float(n) * _UNITS[u] for n, u in re.findall(r"([0-9.]+)(h|ms|m|s)",
                                                                      text))
    stamp = parse_rfc3339(text) if len(text) >= 10 else None
    if stamp is None:
        raise UsageError(f"invalid filter 'until={value}' (a timestamp, a date or a duration "
                         "as 24h)")
    return stamp
