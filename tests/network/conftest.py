"""Fixtures for networking tests: everything a test makes has a unique name and is removed at
the end, also when the test fails."""

from __future__ import annotations

import os

import pytest
from support.net import unique


@pytest.fixture
def nft_table():
    """A test-unique ``inet`` table, deleted afterwards whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("needs root for nftables")
    from pybuild.network.nft import Nft, Table, delete_table

    table = Table(name=unique())
    nft = Nft()
    try:
        yield nft, table
    finally:
        delete_table(nft, table)
        nft.close()


@pytest.fixture
def made_links():
    """Names of interfaces a test makes; each is deleted afterwards if still there."""
    if os.geteuid() != 0:
        pytest.skip("needs root for netlink")
    from pybuild.network import links

    names: list[str] = []
    yield names
    for name in names:
        links.delete(name)


@pytest.fixture
def netns_pid():
    """A process alone in a new network namespace; killed (taking the netns) afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces")
    import subprocess
    import time

    proc = subprocess.Popen(["unshare", "--net", "sleep", "300"])
    try:
        own = os.readlink("/proc/self/ns/net")
        for _ in range(200):  # until unshare has exec'd sleep in the new namespace
            if os.readlink(f"/proc/{proc.pid}/ns/net") != own:
                break
            time.sleep(0.01)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def named_netns():
    """A named netns (``/run/netns/NAME``), deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces")
    import subprocess

    name = unique("pbn")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
