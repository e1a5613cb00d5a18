"""Reading what a program prints on a pty (named so as not to be taken for the stdlib's
``pty``)."""

from __future__ import annotations

import os
import select
import time


def read_until(fd: int, needle: bytes, timeout: float = 20) -> bytes:
    """What comes out of the pty at ``fd`` until ``needle`` does, the pty ends (EOF, or EIO
    once the program's side is closed) or ``timeout`` seconds pass: all of it, needle or not."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen


def expect(fd: int, needle: bytes, timeout: float = 20) -> bytes:
    """:func:`read_until`, asserting that ``needle`` came."""
    seen = read_until(fd, needle, timeout)
    assert needle in seen, f"no {needle!r} in {seen!r}"
    return seen
