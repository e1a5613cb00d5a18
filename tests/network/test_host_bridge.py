"""Containers on a host bridge pybuild did not make, end to end with busybox: a user network
naming it (``-o com.docker.network.bridge.name``) and the settings' ``"bridge"`` for the
default network. The container is reached from a netns the test veths to the bridge, and
after the container and the network are gone the bridge is still there with its address.

The bridge, the netns and the nft table are the test's own and go at the end, also after a
failure.
"""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import segment
from support.build import BASE
from support.net import ip_json, nft_list, unique

pytestmark = pytest.mark.root

PAGE = "hello over a host bridge"
BRIDGE_NAME = "com.docker.network.bridge.name"


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    return segment.root_store(tmp_path_factory, busybox_tar, "hostbridge")


@pytest.fixture
def lan():
    """(bridge, peer, subnet): a host bridge with the subnet's first address and a netns
    veth'd to it holding the last."""
    subnet = ipaddress.ip_network(segment.subnet(233))
    with segment.bridge(f"{subnet[1]}/{subnet.prefixlen}") as bridge, \
            segment.peer(f"{subnet[-2]}/{subnet.prefixlen}", bridge=bridge) as peer:
        yield bridge, peer, subnet


def comments(table: str) -> set[str]:
    from pybuild.network.nft import Table

    return {r["rule"].get("comment") for r in nft_list(Table(table)) if "rule" in r}


def addresses(name: str) -> list[str]:
    [link] = ip_json("addr", "show", "dev", name)
    return [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]


def test_a_user_network_on_an_existing_bridge(store, tmp_path, lan):
    bridge, peer, subnet = lan
    with segment.cli(store.root, tmp_path, bridge="none") as cli:
        net = unique("hbr")
        cli("network", "create", "-o", f"{BRIDGE_NAME}={bridge}", net)  # its pool: the bridge's
        [record] = json.loads(cli("network", "inspect", net).stdout)
        assert record["IPAM"]["Config"] == [{"Subnet": str(subnet), "Gateway": str(subnet[1])}]
        web = unique("web")
        ip = segment.httpd(cli, web, PAGE, "--network", net)
        assert ipaddress.ip_address(ip) in subnet
        assert peer.fetch(f"http://{ip}/") == PAGE + "\n"
        assert [link["ifname"] for link in ip_json("link", "show", "master", bridge)
                if link["ifname"] != peer.host_end]  # its veth is on the user's bridge
        route = cli("exec", web, "ip", "route").stdout
        assert f"default via {subnet[1]} dev eth0" in route
        tag = "net-" + record["Id"][:12]
        assert tag in comments(cli.table)  # its rules, as any bridge network's
        cli("rm", "-f", web)
        cli("network", "rm", net)
        cli.networks.remove(net)
        assert tag not in comments(cli.table)
    assert addresses(bridge) == [f"{subnet[1]}/{subnet.prefixlen}"]  # kept, not re-addressed
    assert [link["ifname"] for link in ip_json("link", "show", "master", bridge)] == \
        [peer.host_end]


def test_the_default_network_on_the_settings_bridge(store, tmp_path, lan):
    bridge, peer, subnet = lan
    with segment.cli(store.root, tmp_path, bridge=bridge) as cli:
        web = unique("web")
        ip = segment.httpd(cli, web, PAGE, "--network", "bridge")
        assert cli.inspect(web)["NetworkSettings"]["Gateway"] == str(subnet[1])
        assert peer.fetch(f"http://{ip}/") == PAGE + "\n"
        cli("rm", "-f", web)
    assert addresses(bridge) == [f"{subnet[1]}/{subnet.prefixlen}"]


def test_a_gateway_the_bridge_does_not_have_is_refused(store, tmp_path, lan):
    bridge, _, subnet = lan
    other = segment.subnet(234)
    with segment.cli(store.root, tmp_path, bridge="none") as cli:
        net = unique("hbr")
        res = cli("network", "create", "-o", f"{BRIDGE_NAME}={bridge}", "--subnet", other, net,
                  check=False)
        assert res.returncode != 0
        [line] = res.stderr.strip().splitlines()
        assert f"bridge {bridge} exists without the gateway address" in line
        assert net not in cli("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert addresses(bridge) == [f"{subnet[1]}/{subnet.prefixlen}"]


def test_a_bridge_pybuild_makes_goes_with_its_network(store, tmp_path):
    name = unique("pbmk")
    with segment.cli(store.root, tmp_path, bridge="none") as cli:
        net = unique("hbr")
        cli("network", "create", "-o", f"{BRIDGE_NAME}={name}", "--subnet",
            segment.subnet(235), net)
        try:
            cli("run", "--rm", "--name", unique("one"), "--network", net, BASE, "true")
            assert ip_json("link", "show", name)  # made at the first start
            cli("network", "rm", net)
            cli.networks.remove(net)
            assert name not in {link["ifname"] for link in ip_json("link", "show")}
        finally:
            import subprocess

            subprocess.run(["ip", "link", "del", name], capture_output=True)


@given(st.ip_addresses(v=4), st.integers(8, 30))
def test_an_existing_bridges_pool_is_its_own_address(address, prefix):
    from pybuild.errors import NetworkError
    from pybuild.network import hostbridge

    iface = ipaddress.IPv4Interface(f"{address}/{prefix}")
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        return
    assert hostbridge.pool("n", "br0", [iface], None, None) == (str(iface.network),
                                                                 str(iface.ip))
    assert hostbridge.pool("n", "br0", [iface], str(iface.network), None) == \
        (str(iface.network), str(iface.ip))
    other = next(h for h in iface.network.hosts() if h != iface.ip)
    with pytest.raises(NetworkError, match="does not re-address a bridge it did not make"):
        hostbridge.pool("n", "br0", [iface], str(iface.network), str(other))
    with pytest.raises(NetworkError, match="has no IPv4 address"):
        hostbridge.pool("n", "br0", [], None, None)


def test_a_settings_bridge_that_is_missing_or_no_bridge_is_one_line(store, tmp_path, lan):
    _, peer, _ = lan
    missing = unique("pbno")
    for name, why in ((missing, f"bridge {missing} (the settings' 'bridge') does not exist"),
                      (peer.host_end, f"{peer.host_end} exists and is not a bridge")):
        with segment.cli(store.root, tmp_path, bridge=name) as cli:
            res = cli("run", "--rm", "--name", unique("x"), "--network", "bridge", BASE, "true",
                      check=False)
            assert res.returncode != 0
            [line] = res.stderr.strip().splitlines()
            assert why in line
    assert missing not in {link["ifname"] for link in ip_json("link", "show")}
