"""Helpers for networking tests: unique names, and the kernel's view read by its own tools."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path


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


@contextlib.contextmanager
def bridge_settings(directory: Path, subnet_prefix: str = "10.248", *, bridge: str = "",
                    table: str = "") -> Iterator[dict[str, str]]:
    """A bridge of the test's own as pybuild's default one (daemon.json's ``bridge``, docker's
    ``-b``; ``ip-forward`` false, so the host's sysctl stays as it was; ``dns`` the container's
    loopback) and an nft table of its own, through ``PYBUILD_CONFIG`` and ``PYBUILD_NFT_TABLE``
    in this process's environment (which the pybuild processes tests start inherit).
    Everything goes at the end, and the environment is put back, also after a failure."""
    from pybuild.network import links
    from pybuild.network.model import IPAM_ROOT
    from pybuild.network.nft import Nft, Table, delete_table

    bridge, table = bridge or unique(), table or unique("pbtab")
    subnet = f"{subnet_prefix}.{secrets.randbelow(250)}"
    config = directory / "daemon.json"
    # dns: the container's own loopback, where nothing answers, so no name a container or a
    # RUN looks up goes to the host's (outside) resolver
    config.write_text(json.dumps({"bridge": bridge, "ip-forward": False, "dns": ["127.0.0.1"]}))
    saved = {k: os.environ.get(k) for k in ("PYBUILD_CONFIG", "PYBUILD_NFT_TABLE")}
    try:
        links.ensure_bridge(bridge, f"{subnet}.1/24")
        os.environ.update(PYBUILD_CONFIG=str(config), PYBUILD_NFT_TABLE=table)
        yield {"bridge": bridge, "table": table, "subnet": f"{subnet}.0/24",
               "config": str(config)}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with Nft() as nft:
            delete_table(nft, Table(table))
        links.delete(bridge)
        shutil.rmtree(IPAM_ROOT / bridge, ignore_errors=True)  # the bridge's host-wide IPAM


# A command prefix: the command runs in a network namespace of its own with only a loopback,
# so a name lookup or a connection it tries fails there and never leaves the machine.
OFFLINE = ("unshare", "--net")


SESSION_PREFIX = "pbs"  # + the pytest process's pid in hex: a session's bridge and nft table


def session_names(pid: int) -> tuple[str, str]:
    """The bridge and nft table names of the test session in process ``pid``."""
    return f"{SESSION_PREFIX}{pid:x}", f"{SESSION_PREFIX}tab{pid:x}"


def sweep_dead_sessions() -> list[str]:
    """Remove the bridges and nft tables of test sessions whose process is gone (killed before
    its teardown); the names removed."""
    import re

    from pybuild.network import links
    from pybuild.network.nft import Nft, Table, delete_table

    pattern = re.compile(rf"{SESSION_PREFIX}(?:tab)?([0-9a-f]+)")
    gone: list[str] = []
    tables = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
    names = [o["table"]["name"] for o in json.loads(tables.stdout or '{"nftables": []}')
             ["nftables"] if "table" in o and o["table"]["family"] == "inet"]
    names += os.listdir("/sys/class/net")
    for name in names:
        found = pattern.fullmatch(name)
        if not found or os.path.exists(f"/proc/{int(found.group(1), 16)}"):
            continue
        if name.startswith(f"{SESSION_PREFIX}tab"):
            with Nft() as nft:
                delete_table(nft, Table(name))
        else:
            links.delete(name)
        gone.append(name)
    return gone


@contextlib.contextmanager
def ipam_leftovers_removed() -> Iterator[None]:
    """The host-wide IPAM dirs (pybuild.network.model.IPAM_ROOT) made during the block,
    removed at its end: a test's store goes with its tmp dir, but the IPAM of its networks'
    bridges is in /run (with what a test allocated and never gave back)."""
    from pybuild.network.model import IPAM_ROOT

    before = set(os.listdir(IPAM_ROOT)) if IPAM_ROOT.is_dir() else set()
    try:
        yield
    finally:
        for name in set(os.listdir(IPAM_ROOT)) - before if IPAM_ROOT.is_dir() else ():
            shutil.rmtree(IPAM_ROOT / name, ignore_errors=True)
