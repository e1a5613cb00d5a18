"""``client.networks``: records under a real store root, docker's inspect shape, the
predefined networks, filters, prune, and the endpoints interface connect goes through."""

from __future__ import annotations

import sys
import types

import pytest
from support.build import BASE, new_store
from support.net import unique

from pybuild.client import Client
from pybuild.errors import ContainerNotFound, NetworkError, NetworkNotFound, UsageError
from pybuild.network import model, netfilters, predefined
from pybuild.network.api import endpoint_id
from pybuild.network.model import mac_address


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("PYBUILD_CONFIG", str(tmp_path / "daemon.json"))  # every default
    monkeypatch.setenv("PYBUILD_NFT_TABLE", unique())  # a removal's teardown finds no table
    return Client(tmp_path / "root")


def pool(subnet, **more):
    return {"Driver": "default", "Config": [{"Subnet": subnet, **more}]}


def test_create_get_and_docker_inspect_shape(client):
    net = client.networks.create("front", ipam=pool("10.77.0.0/24", IPRange="10.77.0.128/25"),
                                 labels={"tier": "web"}, internal=True)
    attrs = client.networks.get("front").attrs
    assert attrs == net.attrs and net.short_id == net.id[:12] and len(net.id) == 64
    assert attrs["IPAM"] == {"Driver": "default", "Options": {}, "Config": [
        {"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1", "IPRange": "10.77.0.128/25"}]}
    assert {k: attrs[k] for k in ("Name", "Scope", "Driver", "EnableIPv6", "Internal",
                                  "Attachable", "Ingress", "ConfigFrom", "ConfigOnly",
                                  "Containers", "Options", "Labels")} == {
        "Name": "front", "Scope": "local", "Driver": "bridge", "EnableIPv6": False,
        "Internal": True, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {}, "Options": {},
        "Labels": {"tier": "web"}}
    assert attrs["Created"].endswith("Z") and attrs["Created"][:2] == "20"
    assert client.networks.get(net.id[:8]) == net


def test_predefined_networks(client):
    names = [n.name for n in client.networks.list()]
    assert names == ["bridge", "host", "none"]
    bridge = client.networks.get("bridge").attrs
    assert bridge["IPAM"]["Config"] == [{"Subnet": "172.29.0.0/16", "Gateway": "172.29.0.1"}]
    assert bridge["Options"]["com.docker.network.bridge.name"] == "pybuild0"
    assert bridge["Driver"] == "bridge" and bridge["Created"].startswith("20")
    assert client.networks.get("none").attrs["Driver"] == "null"
    host = client.networks.get("host")
    assert host.attrs["IPAM"]["Config"] == [] and client.networks.get(host.id[:10]) == host
    # the record the runtime finds is the one the API shows
    assert predefined.default_bridge(client.store.root).id == bridge["Id"]
    for name in ("bridge", "host", "none"):
        with pytest.raises(NetworkError, match=f"^{name} is a pre-defined network and cannot "
                                               "be removed$"):
            client.networks.get(name).remove()
        with pytest.raises(NetworkError, match="predefined"):
            client.networks.create(name)
    assert [n.name for n in client.networks.list()] == names


def test_default_bridge_follows_the_settings(client, tmp_path):
    first = predefined.default_bridge(client.store.root)
    (tmp_path / "daemon.json").write_text('{"bip": "10.99.0.1/24", "fixed-cidr": '
                                          '"10.99.0.128/25"}')
    again = client.networks.get("bridge").attrs  # unused, so made again to match
    assert again["Id"] != first.id
    assert again["IPAM"]["Config"] == [{"Subnet": "10.99.0.0/24", "Gateway": "10.99.0.1",
                                        "IPRange": "10.99.0.128/25"}]
    made = predefined.default_bridge(client.store.root)
    model.ipam(client.store.root, made).allocate("c" * 64)
    (tmp_path / "daemon.json").write_text('{"bip": "10.98.0.1/24"}')
    assert client.networks.get("bridge").id == made.id  # in use: kept as it is
    (tmp_path / "daemon.json").write_text('{"bridge": "none"}')
    assert [n.name for n in client.networks.list()] == ["bridge", "host", "none"]  # in use
    model.ipam(client.store.root, made).release_owner("c" * 64)
    assert [n.name for n in client.networks.list()] == ["host", "none"]
    with pytest.raises(NetworkNotFound):
        client.networks.get("bridge")


def test_concurrent_first_use_makes_one_default_bridge(client):
    import subprocess

    code = ("import sys; from pybuild.network import predefined; "
            "print(predefined.default_bridge(sys.argv[1]).id)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(client.store.root)],
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert ids == {client.networks.get("bridge").id}
    assert [n.name for n in model.list_networks(client.store.root)] == ["bridge"]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"ipam": pool("172.29.5.0/24")}, NetworkError, "overlaps 172.29.0.0/16 of bridge"),
    ({"ipam": pool("10.77.0.0/25")}, NetworkError, "overlaps 10.77.0.0/24 of front"),
    ({"ipam": pool("10.78.0.0/24", Gateway="10.79.0.1")}, NetworkError, "not inside subnet"),
    ({"ipam": pool("fd00::/64")}, NetworkError, "IPv6 subnets are not supported yet"),
    ({"ipam": {"Config": [{"Subnet": "10.1.0.0/24"}, {"Subnet": "10.2.0.0/24"}]}},
     UsageError, "one subnet per network"),
    ({"ipam": {"Driver": "dhcp"}}, NetworkError, "unknown IPAM driver"),
    ({"enable_ipv6": True}, NetworkError, "IPv6 networks"),
    ({"driver": "overlay"}, NetworkError, "unknown driver 'overlay'"),
    ({"options": {"color": "blue"}}, NetworkError, "unknown option 'color' for driver bridge"),
    ({"options": {"com.docker.network.driver.mtu": "9x"}}, NetworkError, "invalid value '9x'"),
    ({"driver": "macvlan", "options": {"macvlan_mode": "wild", "parent": "lo"}},
     NetworkError, "bridge, private, vepa or passthru"),
])
def test_refusals_are_one_line_and_change_nothing(client, kwargs, error, message):
    client.networks.create("front", ipam=pool("10.77.0.0/24"))
    before = [n.attrs for n in client.networks.list()]
    with pytest.raises(error, match=message) as err:
        client.networks.create("back", **kwargs)
    assert "\n" not in str(err.value)
    assert [n.attrs for n in client.networks.list()] == before


def test_list_filters(client):
    client.networks.create("front", labels={"tier": "web", "env": "prod"})
    client.networks.create("back", labels={"tier": "db"})
    mac = client.networks.create("lan", driver="macvlan", options={"parent": "lo"})
    model.ipam(client.store.root, model.get(client.store.root, "back")).allocate("c" * 64)

    def names(**kw):
        return [n.name for n in client.networks.list(**kw)]

    assert names(filters={"type": "custom"}) == ["back", "front", "lan"]
    assert names(filters={"type": "builtin"}) == ["bridge", "host", "none"]
    assert names(filters={"driver": ["macvlan", "null"]}) == ["lan", "none"]
    assert names(filters={"label": ["tier=web", "env"]}) == ["front"]
    assert names(filters={"label": "tier"}) == ["back", "front"]
    assert names(filters={"name": "ro"}) == ["front"]
    assert names(filters={"id": mac.id[:6]}) == ["lan"]
    assert names(filters={"dangling": True}) == ["front", "lan"]
    assert names(filters={"dangling": "false"}) == ["back", "bridge", "host", "none"]
    assert names(filters={"scope": "swarm"}) == []
    assert names(names=["back", "nope"], ids=None) == ["back"]
    assert names(ids=[mac.id]) == ["lan"]
    with pytest.raises(UsageError, match="invalid filter 'color'"):
        client.networks.list(filters={"color": "x"})
    with pytest.raises(UsageError, match="custom or builtin"):
        client.networks.list(filters={"type": "user"})


def test_prune_removes_unused_user_networks(client):
    client.networks.create("old", labels={"keep": "no"})
    client.networks.create("kept", labels={"keep": "yes"})
    used = client.networks.create("used")
    model.ipam(client.store.root, model.get(client.store.root, "used")).allocate("c" * 64)
    assert client.networks.prune({"label!": "keep=yes"}) == {"NetworksDeleted": ["old"]}
    assert client.networks.prune({"until": "1h"}) == {"NetworksDeleted": []}  # all too new
    assert client.networks.prune() == {"NetworksDeleted": ["kept"]}
    assert [n.name for n in client.networks.list()] == ["bridge", "host", "none", "used"]
    with pytest.raises(NetworkError, match="active endpoints"):
        used.remove()


def test_until():
    assert netfilters.until("1h30m", now=10000.0) == 10000.0 - 5400
    assert netfilters.until("1700000000") == 1700000000.0
    assert netfilters.until("2024-01-02T03:04:05Z") == 1704164645.0
    with pytest.raises(UsageError, match="invalid filter 'until=soon'"):
        netfilters.until("soon")


def test_endpoint_values_are_docker_shaped():
    assert mac_address("172.29.0.2") == "02:42:ac:1d:00:02"
    assert endpoint_id("n", "c") == endpoint_id("n", "c") != endpoint_id("n", "d")
    assert len(endpoint_id("n", "c")) == 64


@pytest.fixture(scope="module")
def container_client(tmp_path_factory, busybox_tar):
    store = new_store(tmp_path_factory.mktemp("netapi") / "root", busybox_tar)
    return Client(store.root)


@pytest.fixture
def recorded_endpoints(monkeypatch):
    """A stand-in for the runtime's ``pybuild.network.endpoints``, recording its calls: the
    interface api documents, not the runtime's work (the runtime's own tests do that)."""
    calls: list[tuple] = []
    module = types.ModuleType("pybuild.network.endpoints")
    module.connect = lambda store, network, cid, **kw: calls.append(("connect", network.name,
                                                                     cid, kw))
    module.disconnect = lambda store, network, cid, **kw: calls.append(("disconnect",
                                                                        network.name, cid, kw))
    monkeypatch.setitem(sys.modules, "pybuild.network.endpoints", module)
    return calls


def test_connect_goes_through_the_endpoints_interface(container_client, tmp_path,
                                                      monkeypatch, recorded_endpoints):
    monkeypatch.setenv("PYBUILD_CONFIG", str(tmp_path / "daemon.json"))
    monkeypatch.setenv("PYBUILD_NFT_TABLE", unique())
    client = container_client
    ctr = client.containers.create(BASE, ["true"], name="netapi-web")
    net = client.networks.create("netapi", ipam=pool("10.66.0.0/24"))
    net.connect(ctr, aliases=["web"], ipv4_address="10.66.0.9")
    client.networks.get("netapi").disconnect(ctr.id[:12], force=True)
    assert recorded_endpoints == [
        ("connect", "netapi", ctr.id, {"aliases": ("web",), "ipv4_address": "10.66.0.9"}),
        ("disconnect", "netapi", ctr.id, {"force": True})]
    with pytest.raises(NetworkError, match="cannot be connected to the host network"):
        client.networks.get("host").connect(ctr)
    with pytest.raises(ContainerNotFound):
        net.connect("no-such-container")
    # what the runtime's IPAM holds shows as the network's containers
    model.ipam(client.store.root, model.get(client.store.root, "netapi")).allocate(ctr.id)
    net.reload()
    assert net.attrs["Containers"] == {ctr.id: {
        "Name": "netapi-web", "EndpointID": endpoint_id(net.id, ctr.id),
        "MacAddress": "02:42:0a:42:00:02", "IPv4Address": "10.66.0.2/24", "IPv6Address": ""}}
    assert [c.id for c in net.containers] == [ctr.id]


def test_connect_without_the_runtime_module(client, monkeypatch):
    bare = types.ModuleType("pybuild.network.endpoints")  # a runtime without connect yet
    monkeypatch.setitem(sys.modules, "pybuild.network.endpoints", bare)
    net = client.networks.create("front")
    with pytest.raises(NetworkError, match="^connecting a running container is not available "
                                           "yet$"):
        client.networks.connect(net.id, "whatever")
    net.remove()  # without the runtime's remove_network: the record alone goes
    assert [n.name for n in client.networks.list()] == ["bridge", "host", "none"]
