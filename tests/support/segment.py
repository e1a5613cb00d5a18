"""A host segment a test makes for containers with addresses of their own (macvlan, an
existing host bridge): a network namespace standing for "another machine" on it, and the
pybuild CLI run with the test's own settings file and nft table.

Everything is made under ``unique()`` names and removed by the context managers' ``finally``,
also when the test fails; nothing touches an interface the test did not make.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support.build import BASE, pybuild_cmd, sandbox_store
from support.net import unique


def ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Peer:
    """A netns on the segment: ``netns`` holds ``inside`` with ``address``; ``host_end`` is
    the other end of its veth, in the host."""

    netns: str
    host_end: str
    inside: str
    address: str  # ADDR/PREFIX

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.netns, *cmd], capture_output=True,
                              text=True, timeout=timeout)

    def ping(self, address: str, wait: int = 3) -> bool:
        """One ping from the netns (the host's busybox: iputils may be missing)."""
        res = self.run("busybox", "ping", "-c", "1", "-W", str(wait), address)
        return res.returncode == 0

    def fetch(self, url: str, within: float = 10) -> str:
        """``url`` fetched from inside the netns, retried until it answers or ``within``."""
        deadline = time.monotonic() + within
        # no proxy: the suite's conftest sends non-loopback HTTP to a dead one on purpose
        code = ("import sys, urllib.request as u\n"
                "opener = u.build_opener(u.ProxyHandler({}))\n"
                "print(opener.open(sys.argv[1], timeout=2).read().decode(), end='')")
        while True:
            res = self.run("python3", "-c", code, url)
            if res.returncode == 0 or time.monotonic() > deadline:
                return res.stdout
            time.sleep(0.2)


@contextlib.contextmanager
def peer(address: str, bridge: str | None = None) -> Iterator[Peer]:
    """A netns with a veth whose other end stays in the host (on ``bridge`` if given); the
    netns end gets ``address``. Both go at the end."""
    netns, host_end = unique("pbs"), unique("pbh")
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        ip("link", "add", host_end, "type", "veth", "peer", "name", "seg0", "netns", netns)
        try:
            if bridge:
                ip("link", "set", host_end, "master", bridge)
            ip("link", "set", host_end, "up")
            ip("addr", "add", address, "dev", "seg0", netns=netns)
            ip("link", "set", "seg0", "up", netns=netns)
            ip("link", "set", "lo", "up", netns=netns)
            yield Peer(netns, host_end, "seg0", address)
        finally:
            subprocess.run(["ip", "link", "del", host_end], capture_output=True)
    finally:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


@contextlib.contextmanager
def bridge(address: str) -> Iterator[str]:
    """A host bridge with ``address``, up, made as a user would (``ip``, not pybuild)."""
    name = unique("pbbr")
    ip("link", "add", name, "type", "bridge")
    try:
        ip("addr", "add", address, "dev", name)
        ip("link", "set", name, "up")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


@contextlib.contextmanager
def nft_table() -> Iterator[str]:
    """A test nft table name, deleted at the end if pybuild made it."""
    name = unique("pbtab")
    try:
        yield name
    finally:
        subprocess.run(["nft", "delete", "table", "inet", name], capture_output=True)


class Cli:
    """``pybuild`` on the test's store with its settings file and nft table; every container
    it runs with ``--name`` and every network it creates is removed by ``cleanup``."""

    def __init__(self, root: Path, config: Path, table: str):
        self.root, self.config, self.table = root, config, table
        self.names: list[str] = []
        self.networks: list[str] = []

    def settings(self, **keys) -> None:
        self.config.write_text(json.dumps(keys))

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        import os

        env = {**os.environ, "PYBUILD_CONFIG": str(self.config),
               "PYBUILD_NFT_TABLE": self.table}
        if "--name" in args:
            self.names.append(args[args.index("--name") + 1])
        if args[:2] == ("network", "create"):
            self.networks.append(args[-1])
        res = subprocess.run([*pybuild_cmd(self.root), *args], capture_output=True,
                             text=True, timeout=60, env=env)
        if check and res.returncode:
            raise AssertionError(f"pybuild {' '.join(args)}: {res.returncode} {res.stderr}")
        return res

    def inspect(self, name: str) -> dict:
        return json.loads(self("inspect", name).stdout)[0]

    def netns_ip(self, name: str, *args: str) -> str:
        """The host's ``ip ARGS`` in the netns of the running container ``name`` (busybox's
        ip has no ``-d``)."""
        pid = str(self.inspect(name)["State"]["Pid"])
        return subprocess.run(["nsenter", "-t", pid, "-n", "ip", *args], capture_output=True,
                              text=True, check=True).stdout

    def cleanup(self) -> None:
        if self.names:
            self("rm", "-f", *self.names, check=False)
        if self.networks:
            self("network", "rm", *self.networks, check=False)


@contextlib.contextmanager
def cli(root: Path, scratch: Path, **settings) -> Iterator[Cli]:
    """A ``Cli`` with ``settings`` as its daemon.json; its containers, networks and nft table
    go at the end."""
    with nft_table() as table:
        run = Cli(root, scratch / "daemon.json", table)
        run.settings(**settings)
        try:
            yield run
        finally:
            run.cleanup()


def subnet(second: int) -> str:
    """A random 10.SECOND.x.0/24 (each test module its own SECOND)."""
    import secrets

    return f"10.{second}.{secrets.randbelow(256)}.0/24"


def root_store(tmp_path_factory, busybox_tar: Path, name: str):
    """A scratch store with the busybox base; skips without root."""
    import os

    import pytest

    if os.geteuid() != 0:
        pytest.skip("needs root")
    return sandbox_store(tmp_path_factory, busybox_tar, name)


def httpd(cli: Cli, name: str, page: str, *args: str) -> str:
    """busybox httpd serving ``page`` at /, detached; its address on its first network."""
    cli("run", "-d", "--name", name, *args, BASE, "sh", "-c",
        f"mkdir -p /www && echo '{page}' > /www/index.html && exec httpd -f -p 80 -h /www")
    networks = cli.inspect(name)["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]
