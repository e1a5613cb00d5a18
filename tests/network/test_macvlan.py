"""Containers on macvlan networks, end to end with busybox: a container gets an address of its
own on its parent's segment and is reached from another netns there, as from another machine.

The segment is the test's own: a veth pair, one end in the host as the macvlan parent, the
other in a netns the test makes (the "other machine", holding the gateway's address). Nothing
touches a real NIC; everything goes at the end, also after a failure.
"""

from __future__ import annotations

import ipaddress
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import segment
from support.build import BASE
from support.net import ip_json, unique

pytestmark = pytest.mark.root

PAGE = "hello over macvlan"


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    return segment.root_store(tmp_path_factory, busybox_tar, "macvlan")


@pytest.fixture
def cli(store, tmp_path):
    with segment.cli(store.root, tmp_path, bridge="none") as run:
        yield run


@pytest.fixture
def lan():
    """(peer, subnet): the segment, its netns holding the subnet's first address."""
    subnet = ipaddress.ip_network(segment.subnet(231))
    with segment.peer(f"{subnet[1]}/{subnet.prefixlen}") as peer:
        yield peer, subnet


def macvlan_network(cli, peer, subnet, *opts: str) -> str:
    name, subnet = unique("mvl"), ipaddress.ip_network(subnet)
    cli("network", "create", "-d", "macvlan", "-o", f"parent={peer.host_end}", "--subnet",
        str(subnet), "--gateway", str(subnet[1]), *opts, name)
    return name


def test_a_macvlan_container_is_reached_from_the_segment(cli, lan, store):
    peer, subnet = lan
    net = macvlan_network(cli, peer, subnet)
    web = unique("web")
    ip = segment.httpd(cli, web, PAGE, "--network", net, "-p", "8080:80")
    assert ipaddress.ip_address(ip) in subnet and ip != str(subnet[1])
    assert peer.fetch(f"http://{ip}/") == PAGE + "\n"
    assert cli.inspect(web)["NetworkSettings"]["Ports"] == {}  # -p is ignored, as docker's
    link = cli.netns_ip(web, "-d", "link", "show", "eth0")
    assert "macvlan mode bridge" in link
    mac = "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))
    assert mac in link
    route = cli("exec", web, "ip", "route").stdout
    assert f"default via {subnet[1]} dev eth0" in route
    assert cli("exec", web, "ping", "-c", "1", "-W", "3", str(subnet[1])).returncode == 0
    cli("rm", "-f", web)
    from pybuild.network import model

    assert model.ipam(store.root, model.get(store.root, net)).allocations() == {}
    assert not peer.ping(ip, wait=1)  # gone with its netns


def test_macvlan_siblings_reach_each_other_by_name_and_the_mode_is_kept(cli, lan):
    peer, subnet = lan
    net = macvlan_network(cli, peer, subnet)
    server = unique("web")
    ip = segment.httpd(cli, server, PAGE, "--network", net, "--network-alias", "site")
    for host in (ip, server, "site"):  # names resolve on a macvlan network as on a bridge
        name = unique("wget")
        res = cli("run", "--rm", "--name", name, "--dns", "127.0.0.1", "--network", net, BASE,
                  "sh", "-c", f"timeout 5 wget -q -O - http://{host}/; exit $?")
        assert res.stdout == PAGE + "\n", (host, res.stderr)
    other = ipaddress.ip_network(segment.subnet(232))
    with segment.peer(f"{other[1]}/24") as second:  # one macvlan network per parent
        private = macvlan_network(cli, second, other, "-o", "macvlan_mode=private")
        name = unique("mode")
        cli("run", "-d", "--name", name, "--network", private, BASE, "sleep", "60")
        assert "macvlan mode private" in cli.netns_ip(name, "-d", "link", "show", "eth0")
        cli("rm", "-f", name)


def test_connect_and_disconnect_a_running_container(cli, lan):
    peer, subnet = lan
    net = macvlan_network(cli, peer, subnet)
    cli("network", "create", unique("ubr"))  # a container on a bridge, then on the macvlan
    web = unique("web")
    cli("run", "-d", "--name", web, "--network", cli.networks[-1], BASE, "sleep", "60")
    cli("network", "connect", net, web)
    ip = cli.inspect(web)["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert "macvlan" in cli.netns_ip(web, "-d", "link", "show", "eth1")
    assert peer.ping(ip)
    cli("network", "disconnect", net, web)
    assert cli("exec", web, "ip", "link", "show", "eth1", check=False).returncode != 0
    assert not peer.ping(ip, wait=1)


def test_a_missing_parent_is_one_line_and_makes_nothing(cli):
    name, parent = unique("mvl"), unique("nic")
    res = cli("network", "create", "-d", "macvlan", "-o", f"parent={parent}", name, check=False)
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == [
        f"error: network {name}: -o parent interface was not found on the host: {parent}"]
    assert name not in cli("network", "ls", "--format", "{{.Name}}").stdout.split()


def test_a_failed_plug_gives_the_address_back(cli, lan, store):
    """An MTU the parent cannot carry: the kernel refuses the link, the start fails in one
    line and the address goes back to the IPAM."""
    peer, subnet = lan
    net = macvlan_network(cli, peer, subnet, "-o", "com.docker.network.driver.mtu=9000")
    name = unique("big")
    res = cli("run", "--name", name, "--network", net, BASE, "true", check=False)
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    from pybuild.network import model

    assert model.ipam(store.root, model.get(store.root, net)).allocations() == {}
    assert peer.run("ip", "-o", "link").stdout.count("macvlan") == 0


def test_one_network_per_parent(cli, lan):
    peer, subnet = lan
    first = macvlan_network(cli, peer, subnet)
    name = unique("mvl")
    res = cli("network", "create", "-d", "macvlan", "-o", f"parent={peer.host_end}", name,
              check=False)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [
        f"error: network {name}: network {first} is already using parent interface "
        f"{peer.host_end}"]


def test_a_vlan_parent_is_made_and_goes_with_the_network(cli, lan):
    """``-o parent=BASE.VID`` of a missing sub-interface: pybuild makes VLAN VID on BASE at the
    first start, the container is reached over that VLAN, and the network's removal deletes
    it (docker's macvlan driver does the same)."""
    peer, _ = lan
    subnet = ipaddress.ip_network(segment.subnet(236))
    made = peer.run("ip", "link", "add", "link", peer.inside, "name", "seg0.7", "type", "vlan",
                    "id", "7")
    if made.returncode and "Unknown device type" in made.stderr:
        pytest.skip("this kernel has no 802.1Q VLAN links (8021q)")
    assert made.returncode == 0, made.stderr
    segment.ip("addr", "add", f"{subnet[1]}/24", "dev", "seg0.7", netns=peer.netns)
    segment.ip("link", "set", "seg0.7", "up", netns=peer.netns)
    parent = f"{peer.host_end}.7"
    try:
        net = unique("mvl")
        cli("network", "create", "-d", "macvlan", "-o", f"parent={parent}", "--subnet",
            str(subnet), net)
        assert not ip_json("link", "show", "type", "vlan").count(parent)  # made lazily
        ip = segment.httpd(cli, unique("web"), PAGE, "--network", net)
        [link] = ip_json("-d", "link", "show", parent)
        assert link["linkinfo"]["info_data"]["id"] == 7
        assert peer.fetch(f"http://{ip}/") == PAGE + "\n"
        cli.cleanup()
        cli.names.clear()
        cli.networks.clear()
        assert parent not in {link["ifname"] for link in ip_json("link", "show")}
    finally:
        subprocess.run(["ip", "link", "del", parent], capture_output=True)


def test_internal_macvlan_is_refused_in_one_line(cli, lan):
    peer, _ = lan
    name = unique("mvl")
    res = cli("network", "create", "-d", "macvlan", "--internal", "-o",
              f"parent={peer.host_end}", name, check=False)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [
        f"error: network {name}: --internal macvlan networks are not supported yet"]


def test_a_bad_vlan_parent_is_one_line(cli):
    name = unique("mvl")
    res = cli("network", "create", "-d", "macvlan", "-o", "parent=pbnone.x", name,
              check=False)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [
        f"error: network {name}: invalid subinterface vlan name pbnone.x, example formatting "
        "is eth0.10"]


def test_a_vlan_the_kernel_cannot_make_is_one_line(cli, lan, store):
    peer, _ = lan
    probe = peer.run("ip", "link", "add", "link", peer.inside, "name", "seg0.8", "type", "vlan",
                     "id", "8")
    if probe.returncode == 0:
        pytest.skip("this kernel makes VLAN links (the test above covers them)")
    net = unique("mvl")
    cli("network", "create", "-d", "macvlan", "-o", f"parent={peer.host_end}.8", "--subnet",
        segment.subnet(237), net)
    name = unique("vl")
    res = cli("run", "--rm", "--name", name, "--network", net, BASE, "true", check=False)
    assert res.returncode != 0 and res.stderr.strip().splitlines() == [
        f"error: cannot start container {name}: network {net}: cannot make VLAN 8 of "
        f"{peer.host_end}: Operation not supported"]
    from pybuild.network import model

    assert model.ipam(store.root, model.get(store.root, net)).allocations() == {}


@given(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), st.integers(-5, 5000))
def test_vlan_names_are_docker_dot_form(base, vid):
    from pybuild.network.macvlan import vlan_of

    expected = (base, vid) if 1 <= vid <= 4094 else None
    assert vlan_of(f"{base}.{vid}") == expected
    assert vlan_of(base) is None and vlan_of(f"{base}.") is None and vlan_of(f".{vid}") is None


def test_churn_leaves_no_address_and_no_link(cli, lan, store):
    from concurrent.futures import ThreadPoolExecutor

    from pybuild.network import model

    peer, subnet = lan
    net = macvlan_network(cli, peer, subnet)
    names = [unique("churn") for _ in range(8)]
    with ThreadPoolExecutor(4) as pool:  # four starts at once: four processes, one IPAM
        list(pool.map(lambda n: cli("run", "-d", "--name", n, "--network", net, BASE, "sleep",
                                    "60"), names))
    ips = {cli.inspect(n)["NetworkSettings"]["Networks"][net]["IPAddress"] for n in names}
    assert len(ips) == 8 and all(peer.ping(ip) for ip in sorted(ips)[:2])
    cli("rm", "-f", *names)
    assert model.ipam(store.root, model.get(store.root, net)).allocations() == {}
    assert not [link for link in ip_json("-d", "link", "show", "type", "macvlan")
                if link.get("link") == peer.host_end]


def test_a_stopped_container_takes_its_link_from_a_netns_others_share(cli, lan):
    """``--network container:A``: B lives on in A's netns after A stops; A's macvlan link
    (and so its address, back in the IPAM) must not, as A's veth would not."""
    peer, subnet = lan
    net = macvlan_network(cli, peer, subnet)
    a, b = unique("a"), unique("b")
    cli("run", "-d", "--name", a, "--network", net, BASE, "sleep", "60")
    ip = cli.inspect(a)["NetworkSettings"]["Networks"][net]["IPAddress"]
    cli("run", "-d", "--name", b, "--network", f"container:{a}", BASE, "sleep", "60")
    assert "eth0" in cli.netns_ip(b, "-o", "link")
    cli("stop", "-t", "1", a)
    assert "eth0" not in cli.netns_ip(b, "-o", "link")
    assert not peer.ping(ip, wait=1)


def test_the_library_in_docker_pys_shape(cli, lan, store, monkeypatch):
    from pybuild.client import Client

    peer, subnet = lan
    monkeypatch.setenv("PYBUILD_CONFIG", str(cli.config))
    monkeypatch.setenv("PYBUILD_NFT_TABLE", cli.table)
    client = Client(store.root)
    net = client.networks.create(unique("mvl"), driver="macvlan",
                                 options={"parent": peer.host_end, "macvlan_mode": "bridge"},
                                 ipam={"Driver": "default", "Config": [
                                     {"Subnet": str(subnet), "Gateway": str(subnet[1])}]})
    cli.networks.append(net.name)
    name = unique("lib")
    cli.names.append(name)
    container = client.containers.run(BASE, ["sleep", "60"], name=name, network=net.name,
                                      detach=True)
    net.reload()
    [(cid, entry)] = net.attrs["Containers"].items()
    assert cid == container.id and entry["Name"] == name
    ip = entry["IPv4Address"].partition("/")[0]
    assert ipaddress.ip_address(ip) in subnet and peer.ping(ip)
    assert net.attrs["Driver"] == "macvlan" and net.attrs["Options"]["parent"] == peer.host_end
