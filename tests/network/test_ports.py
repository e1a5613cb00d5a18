"""``-p`` parsing (every docker form, with generated specs), ``-P``, and the host-side checks
against real sockets on loopback."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybuild.errors import NetworkError, UsageError
from pybuild.network import ports
from pybuild.network.ports import ANY, PortBinding

port = st.integers(1, 65535)
ip = st.sampled_from(["127.0.0.1", "0.0.0.0", "10.1.2.3", "192.168.0.250"])
proto = st.sampled_from(["tcp", "udp", "sctp"])


@st.composite
def spans(draw):
    lo = draw(port)
    return lo, draw(st.integers(lo, min(65535, lo + 20)))


def _text(span):
    lo, hi = span
    return str(lo) if lo == hi else f"{lo}-{hi}"


@given(ip=st.none() | ip, host=st.none() | spans(), container=spans(),
       proto=st.none() | proto, shape=st.sampled_from(["same", "single-container"]))
def test_generated_specs(ip, host, container, proto, shape):
    if host is not None and shape == "same":  # a host range as long as the container's
        length = container[1] - container[0]
        host = (min(host[0], 65535 - length), min(host[0], 65535 - length) + length)
    if host is not None and shape == "single-container":
        container = (container[0], container[0])
    spec = _text(container)
    if host is not None or ip is not None:
        spec = f"{_text(host) if host else ''}:{spec}"
    if ip is not None:
        spec = f"{ip}:{spec}"
    if proto is not None:
        spec += f"/{proto}"
    got = ports.parse(spec)
    want_ip, want_proto = ip or ANY, proto or "tcp"
    assert all(b.host_ip == want_ip and b.proto == want_proto for b in got)
    assert [b.container_port for b in got] == list(range(container[0], container[1] + 1))
    if host is None:
        assert all(b.host_port == 0 and b.host_port_end == 0 for b in got)
    elif container[0] == container[1] and host[1] > host[0]:
        assert [(b.host_port, b.host_port_end) for b in got] == [host]
    else:
        assert [b.host_port for b in got] == list(range(host[0], host[1] + 1))
    for binding in got:  # each binding's own spec reads back as itself
        assert ports.parse(binding.spec()) == (binding,)


def test_the_documented_forms():
    assert ports.parse("80") == (PortBinding(ANY, 0, 80),)
    assert ports.parse("8080:80") == (PortBinding(ANY, 8080, 80),)
    assert ports.parse("127.0.0.1:8080:80/udp") == (PortBinding("127.0.0.1", 8080, 80, "udp"),)
    assert ports.parse("127.0.0.1::80") == (PortBinding("127.0.0.1", 0, 80),)
    assert ports.parse("8000-8001:80-81") == (PortBinding(ANY, 8000, 80),
                                              PortBinding(ANY, 8001, 81))
    assert ports.parse("8000-8010:80/TCP") == (PortBinding(ANY, 8000, 80, "tcp", 8010),)
    assert ports.parse("53/udp")[0].key == "53/udp"


@pytest.mark.parametrize("spec, message", [
    ("", "no port specified"),
    ("80/icmp", "invalid proto: 'icmp'"),
    ("80/", "invalid proto"),
    ("8080:0", "invalid containerPort: '0'"),
    ("8080:65536", "invalid containerPort"),
    ("x:80", "invalid hostPort: 'x'"),
    ("0-5:80", "invalid hostPort"),
    ("80-70", "end is below its start"),
    ("8000-8001:80-83", "invalid ranges specified for container and host ports"),
    ("999.1.1.1:80:80", "invalid IP address"),
    ("a:b:c:d", "invalid port format"),
    ("::1:8080:80", "IPv6 host address ::1 is not supported yet"),
    ("[::1]:8080:80", "IPv6 host address ::1 is not supported yet"),
    ("[oops:80:80", "invalid port format"),
    ("8o:80", "invalid hostPort"),
    ("\u0668\u0660", "invalid containerPort"),  # digits, but not ASCII ones
])
def test_bad_specs_are_one_line(spec, message):
    with pytest.raises(UsageError, match=message) as err:
        ports.parse(spec)
    assert "\n" not in str(err.value)


def test_parse_all_refuses_a_host_port_twice():
    both = ports.parse_all(["8080:80", "127.0.0.1:8081:80", "8080:80/udp"])
    assert [b.host_port for b in both] == [8080, 8081, 8080]
    with pytest.raises(UsageError, match="published twice"):
        ports.parse_all(["8080:80", "127.0.0.1:8080:81"])
    with pytest.raises(UsageError, match="published twice"):
        ports.parse_all(["8000-8010:80", "8005:81"])
    assert len(ports.parse_all(["80", "80"])) == 2  # free ports: two different ones later


def test_exposed_ports_publish_to_free_host_ports():
    got = ports.exposed({"80/tcp": {}, "53/udp": {}, "443": {}, "7000-7001/tcp": {}})
    assert [(b.container_port, b.proto, b.host_port) for b in got] == [
        (53, "udp", 0), (80, "tcp", 0), (443, "tcp", 0), (7000, "tcp", 0), (7001, "tcp", 0)]
    assert ports.exposed(None) == ()
    with pytest.raises(UsageError, match="invalid proto"):
        ports.exposed(["80/gre"])


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    with sock:
        yield sock.getsockname()[1]


def test_a_listening_port_is_taken(listener):
    with pytest.raises(NetworkError, match=rf"^Bind for 127.0.0.1:{listener} failed: port is "
                                           "already allocated$"):
        ports.check_free("127.0.0.1", listener)
    with pytest.raises(NetworkError, match="already allocated"):
        ports.check_free(ANY, listener)  # every address includes loopback
    ports.check_free("127.0.0.1", listener, "udp")  # another protocol's port is another port


def test_a_port_another_container_publishes_is_taken():
    free = ports.pick_free_port("127.0.0.1")
    ports.check_free("127.0.0.1", free)
    other = [PortBinding(ANY, free, 80)]
    with pytest.raises(NetworkError, match=f"Bind for 127.0.0.1:{free} failed"):
        ports.check_free("127.0.0.1", free, taken=other)
    assert ports.pick_free_port("127.0.0.1", taken={free}) != free


def test_resolve(listener):
    got = ports.resolve(ports.parse_all(["127.0.0.1::80", "127.0.0.1::81/udp",
                                         f"127.0.0.1:{listener}-{listener + 1}:82"]))
    assert [b.container_port for b in got] == [80, 81, 82]
    assert all(b.host_port > 0 and b.host_port_end == 0 for b in got)
    assert got[2].host_port == listener + 1  # the range's first free port
    with pytest.raises(NetworkError, match="already allocated"):
        ports.resolve(ports.parse(f"127.0.0.1:{listener}:80"))
    with pytest.raises(NetworkError, match="already allocated"):
        ports.resolve(ports.parse(f"127.0.0.1:{listener}-{listener}:80"))
    # what resolve hands out is taken for the bindings after it
    first = ports.resolve(ports.parse("127.0.0.1::90"))
    with pytest.raises(NetworkError, match="already allocated"):
        ports.resolve(ports.parse(f"127.0.0.1:{first[0].host_port}:91"), taken=first)


def test_a_foreign_address_is_refused():
    with pytest.raises(NetworkError, match="not an address of this host"):
        ports.check_free("192.0.2.1", 8080)  # TEST-NET-1: bind only, nothing is sent


def test_sctp_needs_the_kernel():
    try:
        free = ports.pick_free_port("127.0.0.1", "sctp")
    except NetworkError as err:
        assert "no SCTP support" in str(err)
    else:
        assert 0 < free < 65536


def test_inspect_ports_shape():
    bindings = [PortBinding(ANY, 8080, 80), PortBinding("127.0.0.1", 8081, 80)]
    assert ports.inspect_ports(bindings, ["80/tcp", "53/udp"]) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                   {"HostIp": "127.0.0.1", "HostPort": "8081"}],
        "53/udp": None}
