"""Word expansion as planning and the checks use it: thin wrappers over ``pybuild.shell.words``."""

from __future__ import annotations

from collections.abc import Mapping

from pybuild.shell import words as shell


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``word`` with quotes removed and variables substituted (one word, no splitting)."""
    return shell.expand(word, env, escape=escape)


def expand_matches(word: str, env: Mapping[str, str],
                   escape: str = "\\") -> tuple[str, frozenset[str], frozenset[str]]:
    """The expansion plus the names it found in ``env`` and the names it did not."""
    result = shell.expand_with_matches(word, env, escape=escape)
    return result.value, frozenset(result.matched), frozenset(result.unmatched)


def unmatched(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Names ``word`` refers to that ``env`` does not define, sorted."""
    return sorted(expand_matches(word, env, escape)[2])
