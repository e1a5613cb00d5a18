"""Bounded memos for the small vocabularies Dockerfiles repeat (flag sets, mount specs).

Every memo made here is registered, so that ``forget()`` can empty them all: the parse
benchmark starts each round without what the last one remembered.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])
_MEMOS: list[Any] = []


def memo(maxsize: int = 1024) -> Callable[[_F], _F]:
    """``functools.lru_cache(maxsize)``, registered with ``forget``. Exceptions are not kept:
    a call that raised raises again."""
    def wrap(fn: _F) -> _F:
        cached = lru_cache(maxsize=maxsize)(fn)
        _MEMOS.append(cached)
        return cached  # type: ignore[return-value]
    return wrap


def forget() -> None:
    """Empty every memo."""
    for cached in _MEMOS:
        cached.cache_clear()
