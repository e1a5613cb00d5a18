"""Network records in the store root: create, list, get, remove and their refusals."""

import secrets

import pytest

from pybuild.errors import NetworkError, NetworkNotFound
from pybuild.network import model


def test_create_list_get_remove(tmp_path):
    net = model.create(tmp_path, "front", subnet="10.77.0.0/24", labels={"a": "b"})
    assert net.gateway == "10.77.0.1" and net.driver == "bridge" and len(net.id) == 64
    assert net.bridge == "pb-" + net.id[:12] and len(net.bridge) == 15
    assert (tmp_path / "networks" / net.id / "network.json").is_file()
    assert model.list_networks(tmp_path) == [net]
    assert model.get(tmp_path, "front") == net == model.get(tmp_path, net.id[:6])
    assert model.remove(tmp_path, "front") == net
    assert model.list_networks(tmp_path) == []
    with pytest.raises(NetworkNotFound):
        model.get(tmp_path, "front")


def test_default_subnets_do_not_overlap(tmp_path):
    a = model.create(tmp_path, "a")
    b = model.create(tmp_path, "b", reserved=["172.30.1.0/24"])
    assert (a.subnet, b.subnet) == ("172.30.0.0/24", "172.30.2.0/24")


@pytest.mark.parametrize("kwargs, message", [
    ({"subnet": "10.77.0.128/25"}, "overlaps 10.77.0.0/24 of front"),
    ({"subnet": "10.0.0.0/8"}, "overlaps"),
    ({"subnet": "10.88.0.0/24", "gateway": "10.89.0.1"}, "not inside subnet"),
    ({"subnet": "10.88.0.0/24", "ip_range": "10.88.0.0/16"}, "not inside subnet"),
    ({"subnet": "10.88.0.5/24"}, "invalid --subnet"),
    ({"gateway": "10.88.0.1"}, "need --subnet"),
    ({"driver": "overlay"}, "unknown driver"),
    ({"driver": "macvlan"}, "parent"),
    ({"subnet": "172.29.1.0/24", "reserved": ["172.29.0.0/16"]}, "reserved"),
])
def test_refusals_change_nothing(tmp_path, kwargs, message):
    front = model.create(tmp_path, "front", subnet="10.77.0.0/24")
    with pytest.raises(NetworkError, match=message) as err:
        model.create(tmp_path, "back", **kwargs)
    assert "\n" not in str(err.value)
    assert model.list_networks(tmp_path) == [front]


def test_names(tmp_path):
    model.create(tmp_path, "front", subnet="10.77.0.0/24")
    with pytest.raises(NetworkError, match="already exists"):
        model.create(tmp_path, "front", subnet="10.78.0.0/24")
    with pytest.raises(NetworkError, match="invalid network name"):
        model.create(tmp_path, "bad/name")


def test_remove_refuses_a_network_in_use(tmp_path):
    net = model.create(tmp_path, "front", subnet="10.77.0.0/24", ip_range="10.77.0.128/25")
    pool = model.ipam(tmp_path, net)
    assert str(pool.allocate("c" * 64)) == "10.77.0.128"
    with pytest.raises(NetworkError, match="active endpoints"):
        model.remove(tmp_path, "front")
    pool.release_owner("c" * 64)
    model.remove(tmp_path, net.id)
    assert not (tmp_path / "networks" / net.id).exists()


def test_bridge_name_option(tmp_path):
    net = model.create(tmp_path, "lan", subnet="10.79.0.0/24",
                       options={model.BRIDGE_NAME_OPTION: "pbtlan0"})
    assert net.bridge == "pbtlan0"
    with pytest.raises(NetworkError, match="15 characters"):
        model.create(tmp_path, "x", options={model.BRIDGE_NAME_OPTION: "b" * 16})


def test_two_stores_on_one_bridge_share_its_addresses(tmp_path):
    # docker has one daemon; pybuild's store roots are many, the bridge one
    bridge = "pbt" + secrets.token_hex(4)
    nets = {root: model.create(tmp_path / root, "shared", subnet="10.77.5.0/24",
                               options={model.BRIDGE_NAME_OPTION: bridge})
            for root in ("a", "b")}
    given = {root: str(model.ipam(tmp_path / root, net).allocate(root * 64))
             for root, net in nets.items()}
    assert given == {"a": "10.77.5.2", "b": "10.77.5.3"}
    with pytest.raises(NetworkError, match="active endpoints"):
        model.remove(tmp_path / "a", "shared")  # b's container holds an address of its bridge
    for root, net in nets.items():
        model.ipam(tmp_path / root, net).release_owner(root * 64)
    for root in nets:
        model.remove(tmp_path / root, "shared")
    assert not (model.IPAM_ROOT / bridge).exists()
