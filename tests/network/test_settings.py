"""The daemon settings file: docker's keys and defaults, one clear line for a bad file."""

import ipaddress
import json

import pytest

from pybuild.errors import NetworkError
from pybuild.network import settings as st


def write(tmp_path, doc) -> str:
    path = tmp_path / "daemon.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def test_missing_file_gives_docker_defaults(tmp_path):
    s = st.load(tmp_path / "absent.json")
    assert s == st.Settings()
    assert s.bridge_name == "pybuild0" and s.mtu == 1500
    assert s.bridge_interface == ipaddress.IPv4Interface("172.29.0.1/16")
    assert s.gateway == ipaddress.IPv4Address("172.29.0.1")
    assert s.ip_forward and s.ip_masq and s.iptables and s.userland_proxy and s.masquerade


def test_default_bip_does_not_collide_with_docker0():
    docker0 = ipaddress.IPv4Network("172.17.0.0/16")
    assert not st.Settings().bridge_interface.network.overlaps(docker0)


def test_every_key_read(tmp_path):
    doc = {"bip": "10.77.0.1/24", "fixed-cidr": "10.77.0.128/25", "mtu": 1400,
           "default-gateway": "10.77.0.254", "dns": ["10.77.0.1"], "dns-search": ["example.test"],
           "ip-forward": False, "ip-masq": False, "iptables": False, "userland-proxy": False,
           "insecure-registries": ["localhost:5000"], "registry-mirrors": ["http://localhost:5001"],
           "default-runtime": "runc"}
    s = st.load(write(tmp_path, doc))
    assert (s.bip, s.fixed_cidr, s.mtu, s.default_gateway) == (
        "10.77.0.1/24", "10.77.0.128/25", 1400, "10.77.0.254")
    assert s.dns == ("10.77.0.1",) and s.dns_search == ("example.test",)
    assert not (s.ip_forward or s.ip_masq or s.iptables or s.userland_proxy)
    assert s.insecure_registries == ("localhost:5000",)
    assert s.registry_mirrors == ("http://localhost:5001",)
    assert s.default_runtime == "runc" and s.source.endswith("daemon.json")
    assert s.gateway == ipaddress.IPv4Address("10.77.0.254")


def test_iptables_false_means_no_masquerade(tmp_path):
    s = st.load(write(tmp_path, {"iptables": False}))
    assert s.ip_masq and not s.masquerade


def test_config_env_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, {"mtu": 9000})
    monkeypatch.setenv("PYBUILD_CONFIG", path)
    assert st.settings_path() == tmp_path / "daemon.json"
    assert st.load().mtu == 9000
    assert st.settings_path({}) == st.Path("/etc/pybuild/daemon.json")


def test_existing_bridge(tmp_path):
    s = st.load(write(tmp_path, {"bridge": "br-lan"}))
    assert s.bridge_name == "br-lan"


@pytest.mark.parametrize("doc, key", [
    ({"bridg": "x"}, "'bridg'"),
    ({"mtu": "1500"}, "'mtu'"),
    ({"mtu": True}, "'mtu'"),
    ({"mtu": 20}, "'mtu'"),
    ({"bip": "172.29.0.1"}, "'bip'"),
    ({"bip": "172.29.0.0/16"}, "'bip'"),
    ({"bip": "300.1.1.1/8"}, "'bip'"),
    ({"fixed-cidr": "10.0.0.0/33"}, "'fixed-cidr'"),
    ({"dns": "10.0.0.1"}, "'dns'"),
    ({"dns": ["not-an-ip"]}, "'dns'"),
    ({"ip-masq": "yes"}, "'ip-masq'"),
    ({"bridge": "a-name-far-too-long"}, "'bridge'"),
    ({"bridge": "br0", "bip": "10.1.0.1/24"}, "'bip'"),
    ({"bip": "10.1.0.1/24", "fixed-cidr": "10.2.0.0/24"}, "'fixed-cidr'"),
    ({"default-gateway": "10.9.9.9"}, "'default-gateway'"),
    ({"registry-mirrors": [1]}, "'registry-mirrors'"),
])
def test_bad_values_name_file_and_key(tmp_path, doc, key):
    path = write(tmp_path, doc)
    with pytest.raises(NetworkError) as err:
        st.load(path)
    message = str(err.value)
    assert message.startswith(path + ":") and key in message and "\n" not in message


@pytest.mark.parametrize("text", ["{", "[1, 2]", '{"mtu": 1500,}'])
def test_bad_json_is_one_line(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(NetworkError) as err:
        st.load(path)
    assert str(err.value).startswith(path + ":") and "\n" not in str(err.value)


def test_empty_file_is_defaults(tmp_path):
    assert st.load(write(tmp_path, "")).mtu == 1500
