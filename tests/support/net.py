"""Helpers for networking tests: unique names, and the kernel's view read by its own tools."""

from __future__ import annotations

import json
import secrets
import subprocess


def unique(prefix: str = "pbt") -> str:
    """A name no other test (or run) uses; short enough for an interface (15 characters)."""
    return prefix + secrets.token_hex(4)


def nft_list(table) -> list[dict]:
    """``nft -j list table``: what the kernel holds, read by the nft tool, not by pybuild."""
    out = subprocess.run(["nft", "-j", "list", "table", table.family, table.name],
                         capture_output=True, text=True, check=True).stdout
    return [o for o in json.loads(out)["nftables"] if "metainfo" not in o]


def ip_json(*args: str, netns_pid: int | None = None) -> list[dict]:
    """``ip -j ARGS``, in the network namespace of ``netns_pid`` if given."""
    prefix = ["nsenter", "-t", str(netns_pid), "-n"] if netns_pid else []
    out = subprocess.run([*prefix, "ip", "-j", *args], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out or "[]")


_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
c, peer = s.accept()
c.sendall(b"hello from " + sys.argv[2].encode())
c.close()
"""


def serve_once(netns_pid: int, port: int, word: str) -> subprocess.Popen:
    """A TCP server in the netns of ``netns_pid`` that answers one connection with
    ``hello from WORD``; returns once it listens."""
    import sys

    proc = subprocess.Popen(["nsenter", "-t", str(netns_pid), "-n", sys.executable, "-c",
                             _SERVER, str(port), word], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def fetch(address: str, port: int, timeout: float = 5) -> bytes:
    """What a TCP server at ``address:port`` (one the test made) says before closing."""
    import socket

    with socket.create_connection((address, port), timeout=timeout) as conn:
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)
