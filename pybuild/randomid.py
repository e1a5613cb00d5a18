"""Random ids and names: container, network and volume ids (64 hex digits, as docker's),
short suffixes, and a pick from a word list.

``os.urandom`` is the kernel's source that ``secrets`` wraps; importing ``secrets`` also
loads hmac, hashlib, random and base64, about 3 ms on every ``pybuild run``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def hex_id(nbytes: int = 32) -> str:
    """``2 * nbytes`` random hex digits."""
    return os.urandom(nbytes).hex()


def pick(words: Sequence[str]) -> str:
    """One of ``words`` at random (the modulo's bias over 2**32 is far below notice)."""
    return words[int.from_bytes(os.urandom(4), "big") % len(words)]
