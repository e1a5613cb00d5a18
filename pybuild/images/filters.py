"""``images --filter``: docker's dangling, label, reference, before and since filters."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pybuild.errors import UsageError

KNOWN = ("dangling", "label", "reference", "before", "since")


def parse_filters(items: Sequence[str]) -> dict[str, list[str]]:
    """``["dangling=true", "label=a=b"]`` -> ``{"dangling": ["true"], "label": ["a=b"]}``."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in KNOWN:
            raise UsageError(f"invalid filter {item!r} (known: {', '.join(KNOWN)})")
        out.setdefault(key, []).append(value)
    return out


def apply_filters(images: list[Any], filters: Mapping[str, Sequence[str]],
                  created_of: Callable[[str], str]) -> list[Any]:
    """Keep the images every filter accepts; a reference filter also trims the tags shown.

    ``created_of(name)`` gives the created time of the image a before/since filter names."""
    for value in filters.get("dangling", ()):
        if value.lower() not in ("true", "false", "1", "0"):
            raise UsageError(f"invalid filter 'dangling={value}'")
        want = value.lower() in ("true", "1")
        images = [i for i in images if (not i.tags) == want]
    for value in filters.get("label", ()):
        key, eq, expected = value.partition("=")
        images = [i for i in images if key in i.labels and (not eq or i.labels[key] == expected)]
    for name in filters.get("before", ()):
        limit = created_of(name)
        images = [i for i in images if i.created < limit]
    for name in filters.get("since", ()):
        limit = created_of(name)
        images = [i for i in images if i.created > limit]
    patterns = filters.get("reference", ())
    if patterns:
        images = [replace(i, tags=tuple(t for t in i.tags if _matches(t, patterns)))
                  for i in images]
        images = [i for i in images if i.tags]
    return images


def _matches(tag: str, patterns: Sequence[str]) -> bool:
    repo = tag.rsplit(":", 1)[0]
    return any(fnmatch.fnmatchcase(repo, p) or fnmatch.fnmatchcase(tag, p) for p in patterns)
