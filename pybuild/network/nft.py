"""A thin ctypes binding to libnftables (``libnftables.so.1``) speaking its JSON interface.

Commands go in and come out as libnftables' JSON schema (``{"nftables": [...]}``, see
libnftables-json(5)); a batch runs as one kernel transaction, so it applies whole or not at all.
Nothing here knows pybuild's rules (``rules.py`` does); every helper names one table, so nothing
ever reads or changes another table.

ctypes rather than Debian's python3-nftables: that package lives outside pyenv's python and is
the same few calls; rather than ``nft -j``: no process per rule change.
"""

from __future__ import annotations

import ctypes
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pybuild.errors import NetworkError

LIBRARY = "libnftables.so.1"
# output flags, from <nftables/libnftables.h>
OUTPUT_HANDLE = 1 << 3
OUTPUT_JSON = 1 << 4
OUTPUT_ECHO = 1 << 5
NFT_CTX_DEFAULT = 0

Command = dict[str, Any]

_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def _library() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            try:
                lib = ctypes.CDLL(LIBRARY, use_errno=True)
            except OSError as err:
                raise NetworkError(f"cannot load {LIBRARY} (apt-get install libnftables1): "
                                   f"{err}") from None
            ptr, c_str = ctypes.c_void_p, ctypes.c_char_p
            for name, restype, argtypes in [
                ("nft_ctx_new", ptr, [ctypes.c_uint32]),
                ("nft_ctx_free", None, [ptr]),
                ("nft_ctx_output_set_flags", None, [ptr, ctypes.c_uint]),
                ("nft_ctx_buffer_output", ctypes.c_int, [ptr]),
                ("nft_ctx_buffer_error", ctypes.c_int, [ptr]),
                ("nft_run_cmd_from_buffer", ctypes.c_int, [ptr, c_str]),
                ("nft_ctx_get_output_buffer", c_str, [ptr]),
                ("nft_ctx_get_error_buffer", c_str, [ptr]),
            ]:
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
            _lib = lib
    return _lib


class Nft:
    """One libnftables context. ``run`` takes JSON commands and returns the JSON objects the
    library printed (with ``echo``, the added objects with their handles). A context is not
    thread-safe: a lock serialises ``run``. Use as a context manager, or ``close``."""

    def __init__(self) -> None:
        self._lib = _library()
        self._ctx = self._lib.nft_ctx_new(NFT_CTX_DEFAULT)
        if not self._ctx:
            raise NetworkError("libnftables: nft_ctx_new failed")
        self._lib.nft_ctx_buffer_output(self._ctx)
        self._lib.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()

    def run(self, commands: Sequence[Command], *, echo: bool = False) -> list[Command]:
        if not commands:
            return []
        text = json.dumps({"nftables": list(commands)}).encode()
        with self._lock:
            if self._ctx is None:
                raise NetworkError("libnftables: the context is closed")
            flags = OUTPUT_JSON | OUTPUT_HANDLE | (OUTPUT_ECHO if echo else 0)
            self._lib.nft_ctx_output_set_flags(self._ctx, flags)
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, text)
            out = self._lib.nft_ctx_get_output_buffer(self._ctx) or b""
            err = self._lib.nft_ctx_get_error_buffer(self._ctx) or b""
        if rc != 0:
            raise NetworkError(f"nftables: {_one_line(err.decode(errors='replace'))}")
        return _objects(out.decode(errors="replace"))

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None

    def __enter__(self) -> Nft:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _one_line(message: str) -> str:
    """libnftables' errors span lines (the message, then the input and carets): the first
    line that says something."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    words = [line for line in lines if "Error" in line] or lines or ["failed"]
    return words[0].removeprefix("internal:0:0-0: ")


def _objects(text: str) -> list[Command]:
    """Every object of every ``{"nftables": [...]}`` document in ``text`` (the library may
    print more than one, one per command), without the metainfo entries."""
    decoder = json.JSONDecoder()
    out: list[Command] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        doc, pos = decoder.raw_decode(text, pos)
        out.extend(o for o in doc.get("nftables", ()) if "metainfo" not in o)


@dataclass(frozen=True)
class Table:
    """One nftables table: pybuild's own is ``inet pybuild``; tests use one of their own."""

    name: str = "pybuild"
    family: str = "inet"

    def ref(self) -> dict[str, str]:
        return {"family": self.family, "table": self.name}

    def spec(self) -> dict[str, str]:
        return {"family": self.family, "name": self.name}


def exists(nft: Nft, table: Table) -> bool:
    listed = nft.run([{"list": {"tables": {"family": table.family}}}])
    return any(o.get("table", {}).get("name") == table.name for o in listed)


def listing(nft: Nft, table: Table) -> list[Command]:
    """The table's objects (chains, sets, rules with their handles); [] when it is absent."""
    if not exists(nft, table):
        return []
    return nft.run([{"list": {"table": table.spec()}}])


def table_rules(nft: Nft, table: Table) -> list[dict[str, Any]]:
    return [o["rule"] for o in listing(nft, table) if "rule" in o]


def delete_table(nft: Nft, table: Table) -> bool:
    """Remove the table with everything in it; False if it was not there."""
    if not exists(nft, table):
        return False
    nft.run([{"delete": {"table": table.spec()}}])
    return True


def add_rules(nft: Nft, table: Table, chain: str, exprs: Iterable[list[Command]],
              comment: str) -> list[int]:
    """Append rules to ``chain`` in one transaction; their handles."""
    commands = [{"add": {"rule": {**table.ref(), "chain": chain, "expr": expr,
                                  "comment": comment}}} for expr in exprs]
    echoed = nft.run(commands, echo=True)
    return [o["add"]["rule"]["handle"] for o in echoed if "rule" in o.get("add", {})]


def delete_rule(nft: Nft, table: Table, chain: str, handle: int) -> None:
    nft.run([{"delete": {"rule": {**table.ref(), "chain": chain, "handle": handle}}}])


def delete_tagged(nft: Nft, table: Table, tag: str, *, then: Sequence[Command] = (),
                  attempts: int = 3) -> int:
    """Delete every rule of the table whose comment is ``tag`` (and run ``then`` in the same
    transaction); how many went. Another process may delete one of them between the listing
    and the deletion, failing the whole batch: then list again."""
    for attempt in range(attempts):
        doomed = [r for r in table_rules(nft, table) if r.get("comment") == tag]
        commands = [{"delete": {"rule": {**table.ref(), "chain": r["chain"],
                                         "handle": r["handle"]}}} for r in doomed]
        try:
            nft.run([*commands, *then])
            return len(doomed)
        except NetworkError:
            if attempt == attempts - 1:
                raise
    return 0
