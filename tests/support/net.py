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
