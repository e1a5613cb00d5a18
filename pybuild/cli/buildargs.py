"""``--build-arg`` as ``pybuild build`` and ``pybuild parse`` read it."""

from __future__ import annotations

import os
from collections.abc import Iterable


def build_args_from(values: Iterable[str]) -> dict[str, str | None]:
    """``--build-arg NAME=VALUE``; a bare ``NAME`` takes its value from the environment, as
    docker does (None when unset)."""
    out: dict[str, str | None] = {}
    for item in values:
        key, sep, value = item.partition("=")
        out[key] = value if sep else os.environ.get(key)
    return out
