"""Bridges and veths through netlink (rtnl: pyroute2's messages), checked with ``ip -j``; all names
are the test's own."""

import ipaddress
import secrets
import subprocess

import pytest
from support.net import fetch, ip_json, serve_once, unique

from pybuild.errors import NetworkError
from pybuild.network import links

pytestmark = pytest.mark.root


def subnet() -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}.0/24")


def test_bridge_made_addressed_and_up(made_links):
    name = unique()
    made_links.append(name)
    net = subnet()
    index = links.ensure_bridge(name, f"{net[1]}/24", mtu=1400)
    assert links.ensure_bridge(name, f"{net[1]}/24", mtu=1400) == index  # ensure: no change
    [link] = ip_json("-d", "link", "show", name)
    assert link["linkinfo"]["info_kind"] == "bridge" and link["mtu"] == 1400
    assert "UP" in link["flags"]
    [info] = ip_json("addr", "show", name)
    assert [(a["local"], a["prefixlen"]) for a in info["addr_info"] if a["family"] == "inet"] \
        == [(str(net[1]), 24)]
    assert [a for a in links.addresses(name) if a.version == 4] == [
        ipaddress.ip_interface(f"{net[1]}/24")]
    assert links.delete(name) is True and links.delete(name) is False
    assert not links.exists(name)


def test_a_non_bridge_is_refused(made_links):
    name = unique()
    made_links.append(name)
    made_links.append(name + "p")
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                   check=True)
    with pytest.raises(NetworkError, match="not a bridge"):
        links.ensure_bridge(name)


def test_bad_names():
    with pytest.raises(NetworkError, match="invalid interface name"):
        links.ensure_bridge("a-name-far-too-long")
    with pytest.raises(NetworkError, match="no interface"):
        links.addresses(unique())


def test_connect_into_a_pid_netns(made_links, netns_pid):
    bridge, host_if = unique(), unique("pbv")
    made_links += [bridge, host_if]
    net = subnet()
    links.ensure_bridge(bridge, f"{net[1]}/24")
    ep = links.connect(bridge, netns_pid, host_ifname=host_if, address=f"{net[2]}/24",
                       gateway=str(net[1]), mtu=1400)
    assert ep.ifname == "eth0" and ep.address == f"{net[2]}/24"
    [host] = ip_json("-d", "link", "show", host_if)
    assert host["master"] == bridge and host["mtu"] == 1400 and "UP" in host["flags"]
    inside = {link["ifname"]: link for link in ip_json("addr", netns_pid=netns_pid)}
    assert set(inside) == {"lo", "eth0"} and inside["eth0"]["mtu"] == 1400
    assert [(a["local"], a["prefixlen"]) for a in inside["eth0"]["addr_info"]
            if a["family"] == "inet"] == [(str(net[2]), 24)]
    assert "UP" in inside["lo"]["flags"]
    [default] = ip_json("route", "show", "default", netns_pid=netns_pid)
    assert default["gateway"] == str(net[1]) and default["dev"] == "eth0"
    # the pair works: the host reaches a server on the container's address over the bridge
    server = serve_once(netns_pid, 8080, "inside")
    try:
        assert fetch(str(net[2]), 8080) == b"hello from inside"
    finally:
        server.kill()
        server.wait()
    assert links.disconnect(host_if) is True
    assert not links.exists(host_if)
    assert {link["ifname"] for link in ip_json("link", netns_pid=netns_pid)} == {"lo"}


def test_connect_into_a_named_netns_without_gateway(made_links, named_netns):
    bridge, host_if = unique(), unique("pbv")
    made_links += [bridge, host_if]
    net = subnet()
    links.ensure_bridge(bridge, f"{net[1]}/24")
    links.connect(bridge, f"/run/netns/{named_netns}", host_ifname=host_if,
                  address=f"{net[5]}/24")
    out = subprocess.run(["ip", "-n", named_netns, "-j", "route", "show", "default"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() in ("", "[]")  # --internal: no way out


def test_a_failed_connect_leaves_no_veth(made_links, netns_pid):
    bridge, host_if = unique(), unique("pbv")
    made_links += [bridge, host_if]
    links.ensure_bridge(bridge)
    with pytest.raises(NetworkError, match="no network namespace"):
        links.connect(bridge, "/run/netns/" + unique("none"), host_ifname=host_if,
                      address="10.201.0.2/24")
    assert not links.exists(host_if)
    with pytest.raises(NetworkError, match="no bridge"):
        links.connect(unique(), netns_pid, host_ifname=host_if, address="10.201.0.2/24")
    # the netns move works but the address inside is refused: the pair goes again
    with pytest.raises(NetworkError):
        links.connect(bridge, netns_pid, host_ifname=host_if, address="10.201.0.2/24",
                      gateway="10.99.0.1")
    assert not links.exists(host_if)
    assert {link["ifname"] for link in ip_json("link", netns_pid=netns_pid)} == {"lo"}


def test_route_localnet_on_a_test_bridge(made_links):
    bridge = unique()
    made_links.append(bridge)
    links.ensure_bridge(bridge)
    links.route_localnet(bridge)
    path = f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet"
    assert open(path).read().strip() == "1"
    links.route_localnet(bridge, False)
    assert open(path).read().strip() == "0"


def test_host_veth_names_fit_and_differ():
    a, b = links.host_veth_name("c1", "n1"), links.host_veth_name("c1", "n2")
    assert a != b and len(a) == 15 and a.startswith("veth")


def test_host_routes_include_a_test_bridge(made_links):
    bridge = unique()
    made_links.append(bridge)
    net = subnet()
    links.ensure_bridge(bridge, f"{net[1]}/24")
    assert net in links.host_routes()


def test_ensure_bridge_mends_a_bridge_set_down_or_to_another_mtu(made_links):
    name = unique()
    made_links.append(name)
    links.ensure_bridge(name, mtu=1400)
    subprocess.run(["ip", "link", "set", name, "down", "mtu", "1300"], check=True)
    links.ensure_bridge(name, mtu=1400)
    [link] = ip_json("link", "show", name)
    assert "UP" in link["flags"] and link["mtu"] == 1400


def test_the_peer_is_made_inside_whatever_the_host_calls_its_own(made_links, netns_pid):
    bridge, host_if, clash = unique(), unique("pbv"), unique("pbc")
    made_links += [bridge, host_if, clash]
    subprocess.run(["ip", "link", "add", clash, "type", "bridge"], check=True)
    net = subnet()
    links.ensure_bridge(bridge, f"{net[1]}/24")
    links.connect(bridge, netns_pid, host_ifname=host_if, address=f"{net[3]}/24",
                  ifname=clash, mac="02:42:0a:0b:0c:0d")
    inside = {link["ifname"]: link for link in ip_json("link", netns_pid=netns_pid)}
    assert inside[clash]["address"] == "02:42:0a:0b:0c:0d"
    assert links.exists(clash)  # the host's own is untouched


def test_netlink_needs_no_asyncio_and_pyroute2_still_imports_whole():
    """The links load only pyroute2's message classes; code that wants all of pyroute2 in the
    same process still gets it."""
    code = ("import sys; from pybuild.network import links; assert links.exists('lo'); "
            "assert 'asyncio' not in sys.modules, 'asyncio'; "
            "from pyroute2 import IPRoute, NetlinkError; "
            "ip = IPRoute(); assert ip.link_lookup(ifname='lo'); ip.close(); print('ok')")
    import sys

    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
