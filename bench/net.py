"""Network benchmark: TCP from the host to a container, directly to its address and through a
published port, and container start with bridge networking against ``--network none``, in
one run.

    python3 bench/net.py [--rounds 10] [--mb 200] [--connects 400] [--work DIR]
                         [--baseline DIR] [--skip-tcp]

Everything is the bench's own: a scratch store, a daemon.json (``$PYBUILD_CONFIG``, no default
bridge) and an nft table (``$PYBUILD_NFT_TABLE``) of its own, a user network with a 10.2xx
subnet and a bridge named ``pbbench*``; all of it is removed at the end, also after a failure.
Traffic stays on this machine: the host, the network's bridge and the container.

TCP: one container (``sleep``) publishes the server's port as ``-p HPORT:PORT``; the server is
a small Python program in the container's network namespace (``nsenter -n``: the path through
the veth, bridge and DNAT is the container's, the program is not busybox's one-connection nc).
The client on the host sends ``--mb`` MB per connection and waits for the server's count of
what arrived (throughput), and makes ``--connects`` connections one after another, each
closed and answered (connection rate). The paths take turns within each round: the
container's address, ``127.0.0.1:HPORT`` (DNAT with route_localnet) and the bridge's address
``GATEWAY:HPORT``. Target: published-port throughput at least 0.8x of direct.

Start: ``pybuild run --rm --network NET IMG true`` against ``--network none``, alternating.
Target: at most 1.5x. Medians of ``--rounds`` rounds, and ratios. With ``--baseline DIR`` (a
checkout of an earlier pybuild, e.g. ``git worktree add /tmp/basewt COMMIT``) that tree's
starts take turns too, as ``pybuild-before`` with a store and network of its own.

pybuild runs from compiled bytecode (compileall) with PYTHONDONTWRITEBYTECODE unset.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from build import _ENTRY, BASE, REPO, compile_tree, sh, timed

PORT = 5001  # the server's, inside the container
CHUNK = 1 << 20

# Reads each connection to its end and answers with the byte count, so the client's clock
# stops only when everything arrived.
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(128)
print("ready", flush=True)
buf = bytearray(1 << 20)
while True:
    c, _ = s.accept()
    n = 0
    while k := c.recv_into(buf):
        n += k
    c.sendall(str(n).encode())
    c.close()
"""


class Pybuild:
    """One pybuild tree with a scratch store and a user network of its own."""

    def __init__(self, name: str, tree: Path, work: Path, base_tar: Path, env: dict[str, str]):
        self.name = name
        self.root = work / f"{name}-root"
        shutil.rmtree(self.root, ignore_errors=True)
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {**clean, **env, "PYTHONPATH": str(tree)}
        self.prefix = [sys.executable, "-P", "-c", _ENTRY, "--root", str(self.root)]
        self.network = ""
        self.bridge = f"pbbench{secrets.token_hex(3)}"
        self.cli("import", str(base_tar), BASE)

    def cli(self, *args: str, check: bool = True) -> str:
        res = subprocess.run([*self.prefix, *args], capture_output=True, text=True,
                             env=self.env)
        if check and res.returncode:
            raise RuntimeError(f"{self.name} {' '.join(args)}: exit {res.returncode}: "
                               f"{res.stderr.strip()}")
        return res.stdout

    def make_network(self) -> str:
        """A user network on a 10.239.x.0/24 with the bridge ``self.bridge``; its gateway."""
        third = secrets.randbelow(250)
        self.network = f"bench{self.bridge[7:]}"
        self.cli("network", "create", "--subnet", f"10.239.{third}.0/24", "--gateway",
                 f"10.239.{third}.1", "-o", f"com.docker.network.bridge.name={self.bridge}",
                 self.network)
        return f"10.239.{third}.1"

    def remove(self) -> None:
        if self.network:
            self.cli("network", "rm", self.network, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def exchange(address: str, port: int, payload: int) -> int:
    """One connection: ``payload`` bytes sent, the server's count of them read back."""
    with socket.create_connection((address, port), timeout=10) as conn:
        block = b"\0" * CHUNK
        left = payload
        while left > 0:
            left -= conn.send(block[:min(left, CHUNK)])
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(64):
            answer += chunk
    if int(answer or 0) != payload:
        raise RuntimeError(f"{address}:{port}: the server got {answer!r} of {payload} bytes")
    return payload


def ready(address: str, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            exchange(address, port, 1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def alternate(cases: dict[Any, Callable[[], float]], rounds: int) -> dict[Any, float]:
    """Each case once per round, in turn; the median of what each returned."""
    got: dict[Any, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            got[name].append(fn())
    return {name: statistics.median(v) for name, v in got.items()}


def print_table(title: str, unit: str, med: dict[str, float]) -> None:
    first = next(iter(med))
    print(f"{title}: median ({unit}), and the ratio to {first}")
    for name, value in med.items():
        print(f"  {name:<30}{value:10.1f}   {value / med[first]:.2f}x")


def tcp(pybuild: Pybuild, network: str, gateway: str, rounds: int, mb: int,
        connects: int) -> None:
    hport = 20000 + secrets.randbelow(20000)
    cid = pybuild.cli("run", "-d", "--network", network, "-p", f"{hport}:{PORT}", BASE,
                      "sleep", "3600").strip()
    server = None
    try:
        info = json.loads(pybuild.cli("inspect", cid))[0]
        ip = info["NetworkSettings"]["Networks"][network]["IPAddress"]
        pid = str(info["State"]["Pid"])
        server = subprocess.Popen(["nsenter", "-t", pid, "-n", sys.executable, "-c", SERVER,
                                   str(PORT)], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        paths = {f"direct {ip}:{PORT}": (ip, PORT), f"published 127.0.0.1:{hport}":
                 ("127.0.0.1", hport), f"published {gateway}:{hport}": (gateway, hport)}
        for address, port in paths.values():
            ready(address, port)
        payload = mb * 1_000_000

        def throughput(address: str, port: int) -> float:
            return payload / 1e6 / timed(lambda: exchange(address, port, payload))

        def rate(address: str, port: int) -> float:
            return connects / timed(lambda: [exchange(address, port, 1)
                                             for _ in range(connects)])
        print_table(f"TCP throughput, {mb} MB a connection", "MB/s", alternate(
            {name: lambda a=a: throughput(*a) for name, a in paths.items()}, rounds))
        print_table(f"TCP connection rate, {connects} connections", "connections/s",
                    alternate({name: lambda a=a: rate(*a) for name, a in paths.items()},
                              rounds))
    finally:
        if server is not None:
            server.kill()
            server.wait()
        pybuild.cli("rm", "-f", cid)


def starts(trees: list[Pybuild], rounds: int) -> None:
    def run(tree: Pybuild, mode: str) -> float:
        return timed(lambda: tree.cli("run", "--rm", "--network", mode, BASE, "true")) * 1000
    cases = {(t, mode): (lambda t=t, mode=mode: run(t, mode))
             for t in trees for mode in ("none", t.network)}
    for fn in cases.values():  # warm each once
        fn()
    med = alternate(cases, rounds)
    print("run --rm IMG true: median (ms), and bridge networking's ratio to --network none")
    for tree in trees:
        none, net = med[(tree, "none")], med[(tree, tree.network)]
        print(f"  {tree.name:<16}--network none {none:7.1f}   --network {tree.network} "
              f"{net:7.1f}   {net / none:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--connects", type=int, default=400)
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/pybuild-bench-net"))
    ap.add_argument("--baseline", type=Path, help="an earlier checkout: its start figures too")
    ap.add_argument("--skip-tcp", action="store_true", help="only the start figures")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/net.py: needs root (bridges, namespaces, nftables)")
    if args.baseline and not (args.baseline / "pybuild" / "__init__.py").is_file():
        sys.exit(f"bench/net.py: --baseline {args.baseline}: no pybuild tree there")
    args.work.mkdir(parents=True, exist_ok=True)
    base_tar = args.work / "busybox.tar"
    sh([str(REPO / "scripts" / "busybox-rootfs.sh"), str(base_tar)])
    trees = [("pybuild", REPO)] + ([("pybuild-before", args.baseline)] if args.baseline else [])
    for _, tree in trees:
        compile_tree(tree)
    print(f"bytecode: compiled (compileall) for {', '.join(str(t) for _, t in trees)}; "
          "pybuild runs with PYTHONDONTWRITEBYTECODE unset")
    table = f"pbbench{secrets.token_hex(3)}"
    config = args.work / "daemon.json"
    config.write_text(json.dumps({"bridge": "none"}))
    env = {"PYBUILD_CONFIG": str(config), "PYBUILD_NFT_TABLE": table}
    made: list[Pybuild] = []
    try:
        for name, tree in trees:
            made.append(Pybuild(name, tree, args.work, base_tar, env))
            gateway = made[-1].make_network()
            if name == "pybuild" and not args.skip_tcp:
                tcp(made[-1], made[-1].network, gateway, args.rounds, args.mb, args.connects)
        starts(made, args.rounds)
    finally:
        for pybuild in made:
            pybuild.remove()
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)


if __name__ == "__main__":
    main()
