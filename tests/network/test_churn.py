"""Churn and concurrency on one user network: 50 containers (each publishing a port) started
and removed leave no veth, no nft rule of theirs, no address in the IPAM, no netns, mount or
process; two processes starting 10 containers each at the same moment get 20 distinct
addresses and host ports.

The store, the network (a 10.23x subnet, a bridge of the test's own name), the settings
(support.net.bridge_settings: a default bridge and an nft table of the module's) are the
module's, and are removed at the end, also after a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from support.build import BASE, pybuild_cmd, sandbox_store
from support.net import bridge_settings, ip_json, nft_list, unique

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The module's nft table (its default bridge, one of its own, is not used)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    from pybuild.network.nft import Table

    with bridge_settings(tmp_path_factory.mktemp("churncfg"), "10.239") as made:
        yield Table(made["table"])


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar, env):
    store = sandbox_store(tmp_path_factory, busybox_tar, "churn")
    try:
        yield store
    finally:
        _remove_all(store)


@pytest.fixture
def network(store, env):
    from pybuild.network import endpoints, links, model

    subnet = f"10.{230 + secrets.randbelow(8)}.{secrets.randbelow(256)}.0/24"
    record = model.create(store.root, unique("churn"), subnet=subnet,
                          options={model.BRIDGE_NAME_OPTION: unique("pbch")})
    try:
        yield record
    finally:
        _remove_all(store)
        try:
            model.remove(store.root, record.id)
        finally:
            endpoints.remove_network(store, record)
            links.delete(record.bridge)


def _remove_all(store) -> None:
    root = store.root / "containers"
    ids = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    if ids:
        subprocess.run([*pybuild_cmd(store.root), "rm", "-f", *ids], capture_output=True,
                       timeout=120)


def _veths(bridge: str) -> list[str]:
    return [link["ifname"] for link in ip_json("link", "show", "master", bridge)]


def _host_links() -> set[str]:
    return {link["ifname"] for link in ip_json("link", "show")}


def _tagged(table, ids: list[str]) -> list[dict]:
    """The table's rules that belong to one of the containers ``ids``."""
    tags = {f"ctr-{cid[:16]}" for cid in ids}
    return [r["rule"] for r in nft_list(table) if r.get("rule", {}).get("comment") in tags]


def _started(pid: int) -> str:
    """The process's start time (``stat`` field 22), "" once it is gone: ended, or a zombie
    (a monitor's parent is init, which here may be slow to reap it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return ""
    return "" if fields[0] == "Z" else fields[19]


def _ours(ids: list[str], root: Path) -> list[str]:
    """Processes in one of the containers' cgroups (``ctr-ID16``) or naming the store (its
    monitors): what would hold a container's netns. (A netns's inode is no mark of it: the
    kernel gives a freed one to the next netns made, and other tests make them.)"""
    cgroups = tuple(f"ctr-{cid[:16]}" for cid in ids)
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cgroup = Path(f"/proc/{pid}/cgroup").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if any(c in cgroup for c in cgroups) or os.fsencode(root) in cmdline:
            out.append(f"{pid} {cmdline[:80]!r}")
    return out


class Seen:
    """What the test's containers had while they ran, to look for after they are gone."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.addresses: list[str] = []
        self.processes: set[tuple[int, str]] = set()  # (pid, start time): pids are reused
        self.host_ports: list[str] = []

    def add(self, store, attrs: dict, network: str) -> None:
        self.ids.append(attrs["Id"])
        assert attrs["State"]["Pid"] > 0, attrs["State"]
        state = json.loads((store.root / "containers" / attrs["Id"] / "state.json").read_text())
        for pid in (attrs["State"]["Pid"], state["monitor_pid"]):
            self.processes.add((pid, _started(pid)))
        self.addresses.append(attrs["NetworkSettings"]["Networks"][network]["IPAddress"])
        self.host_ports += [b["HostPort"] for b in
                            (attrs["NetworkSettings"]["Ports"].get("80/tcp") or ())]

    def assert_gone(self, store, network, table) -> None:
        from pybuild.network import links, model

        assert _veths(network.bridge) == []
        ours = {links.host_veth_name(cid, network.id) for cid in self.ids}
        assert not ours & _host_links()
        assert _tagged(table, self.ids) == []
        assert model.ipam(store.root, network).allocations() == {}
        assert _ours(self.ids, store.root) == []
        assert [p for p in self.processes if _started(p[0]) == p[1]] == []
        mounts = Path("/proc/self/mountinfo").read_text()  # overlays, and any nsfs bind mount
        assert not [cid for cid in self.ids if cid[:12] in mounts]
        assert not [line for line in mounts.splitlines()
                    if " nsfs " in line and str(store.root) in line]


def test_fifty_containers_leave_nothing(store, network, env):
    from pybuild.client import Client

    client = Client(store.root)
    seen = Seen()
    for _ in range(5):  # ten at a time, so that they overlap
        batch = []
        for _ in range(10):
            ctr = client.containers.run(BASE, ["sleep", "60"], detach=True,
                                        network=network.name,
                                        ports={"80/tcp": ("127.0.0.1", None)})
            batch.append(ctr)
            seen.add(store, ctr.attrs, network.name)
        assert len(_veths(network.bridge)) == 10
        # each one's DNAT (and hairpin masquerade)
        assert {r["comment"] for r in _tagged(env, seen.ids[-10:])} == {
            f"ctr-{cid[:16]}" for cid in seen.ids[-10:]}
        from pybuild.network import model

        assert len(model.ipam(store.root, network).allocations()) == 10
        for ctr in batch:
            ctr.remove(force=True)
    assert len(seen.ids) == 50
    seen.assert_gone(store, network, env)


_STARTER = """
import sys
from pybuild.client import Client
client = Client(sys.argv[1])
for _ in range(int(sys.argv[4])):
    ctr = client.containers.run(sys.argv[2], ["sleep", "60"], detach=True, network=sys.argv[3],
                                ports={"80/tcp": ("127.0.0.1", None)})
    print(ctr.id, flush=True)
"""


def test_two_processes_get_distinct_addresses(store, network, env):
    from pybuild.client import Client

    starters = [subprocess.Popen([sys.executable, "-c", _STARTER, str(store.root), BASE,
                                  network.name, "10"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for proc in starters:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.split())
    assert [len(o) for o in outputs] == [10, 10]
    client = Client(store.root)
    seen = Seen()
    for cid in outputs[0] + outputs[1]:
        seen.add(store, client.containers.get(cid).attrs, network.name)
    assert len(set(seen.addresses)) == 20 and "" not in seen.addresses
    assert len(set(seen.host_ports)) == 20  # the host's ports lock holds across processes
    from pybuild.network import model

    held = model.ipam(store.root, network).allocations()
    assert sorted(str(a) for a in held) == sorted(seen.addresses)
    assert set(held.values()) == set(seen.ids)
    assert len(_veths(network.bridge)) == 20
    # both made the network's bridge and rules at once: each rule is there once
    mine = [json.dumps([r["rule"]["chain"], r["rule"]["expr"]], sort_keys=True)
            for r in nft_list(env) if r.get("rule", {}).get("comment") == f"net-{network.id[:12]}"]
    assert mine and len(mine) == len(set(mine)), mine
    subprocess.run([*pybuild_cmd(store.root), "rm", "-f", *seen.ids], check=True,
                   capture_output=True, timeout=120)
    seen.assert_gone(store, network, env)


def test_a_killed_monitor_leaves_nothing_after_rm(store, network, env):
    """The monitor SIGKILLed while its container runs: ``rm -f`` undoes what it attached."""
    import signal
    import time

    from pybuild.client import Client

    client = Client(store.root)
    seen = Seen()
    for _ in range(3):
        ctr = client.containers.run(BASE, ["sleep", "60"], detach=True, network=network.name,
                                    ports={"80/tcp": ("127.0.0.1", None)})
        seen.add(store, ctr.attrs, network.name)
    monitors = [json.loads((store.root / "containers" / cid / "state.json").read_text())
                ["monitor_pid"] for cid in seen.ids]
    for pid in monitors:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_started(pid) for pid in monitors) and time.monotonic() < deadline:
        time.sleep(0.05)
    subprocess.run([*pybuild_cmd(store.root), "rm", "-f", *seen.ids], check=True,
                   capture_output=True, timeout=60)
    seen.assert_gone(store, network, env)
