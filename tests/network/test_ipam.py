"""IPAM: addresses inside the pool, never twice, persisted, and safe across processes."""

import ipaddress
import multiprocessing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from pybuild.errors import NetworkError
from pybuild.network.ipam import Ipam, Pool


def ipam(tmp_path, subnet="10.77.0.0/24", gateway="10.77.0.1", ip_range=None) -> Ipam:
    return Ipam(tmp_path / "net", Pool.parse(subnet, gateway, ip_range))


def test_first_addresses_skip_gateway(tmp_path):
    pool = ipam(tmp_path)
    assert [str(pool.allocate(f"c{i}")) for i in range(3)] == [
        "10.77.0.2", "10.77.0.3", "10.77.0.4"]


def test_persisted_across_instances(tmp_path):
    ipam(tmp_path).allocate("a")
    again = ipam(tmp_path)
    assert again.allocations() == {ipaddress.ip_address("10.77.0.2"): "a"}
    assert str(again.allocate("b")) == "10.77.0.3"


def test_owner_gets_its_address_back(tmp_path):
    pool = ipam(tmp_path)
    first = pool.allocate("a")
    assert pool.allocate("a") == first and len(pool.allocations()) == 1


def test_released_address_is_not_the_next_one(tmp_path):
    pool = ipam(tmp_path)
    a = pool.allocate("a")
    assert pool.release(a) is True and pool.release(a) is False
    assert pool.allocate("b") != a


def test_release_owner(tmp_path):
    pool = ipam(tmp_path)
    addr = pool.allocate("a")
    pool.allocate("b")
    assert pool.release_owner("a") == (addr,)
    assert list(pool.allocations().values()) == ["b"]


def test_requested_address(tmp_path):
    pool = ipam(tmp_path, ip_range="10.77.0.128/25")
    # --ip needs only the subnet, as in docker; automatic ones come from the range
    assert str(pool.allocate("a", "10.77.0.9")) == "10.77.0.9"
    assert str(pool.allocate("b")) == "10.77.0.128"
    with pytest.raises(NetworkError, match="already in use"):
        pool.allocate("c", "10.77.0.9")
    for bad, why in [("10.78.0.5", "not inside subnet"), ("10.77.0.1", "gateway"),
                     ("10.77.0.255", "broadcast"), ("10.77.0.0", "own"),
                     ("nonsense", "invalid IP")]:
        with pytest.raises(NetworkError, match=why):
            pool.allocate("d", bad)
    assert set(pool.allocations().values()) == {"a", "b"}


def test_exhaustion_is_one_error(tmp_path):
    pool = ipam(tmp_path, subnet="10.77.0.0/29")  # .1 gateway, .2-.6 for containers
    got = {pool.allocate(f"c{i}") for i in range(5)}
    assert len(got) == 5
    with pytest.raises(NetworkError, match="no free address"):
        pool.allocate("one-more")
    pool.release(min(got))
    assert pool.allocate("again") == min(got)


def test_bad_pools():
    with pytest.raises(NetworkError, match="gateway"):
        Pool.parse("10.77.0.0/24", "10.78.0.1")
    with pytest.raises(NetworkError, match="ip-range"):
        Pool.parse("10.77.0.0/24", None, "10.77.0.0/16")
    with pytest.raises(NetworkError, match="invalid address pool"):
        Pool.parse("10.77.0.0/33")


def test_corrupt_state_is_one_line(tmp_path):
    pool = ipam(tmp_path)
    pool.allocate("a")
    (tmp_path / "net" / "ipam.json").write_text("{")
    with pytest.raises(NetworkError, match="unreadable IPAM state"):
        pool.allocate("b")


@settings(max_examples=60, deadline=None)
@given(prefix=hs.integers(min_value=24, max_value=30),
       ops=hs.lists(hs.tuples(hs.booleans(), hs.integers(0, 20)), max_size=60))
def test_allocations_stay_distinct_and_inside(tmp_path_factory, prefix, ops):
    """Any sequence of allocations and releases: every address distinct, inside the subnet,
    never the gateway, and the state on disk equals what the calls said."""
    subnet = ipaddress.ip_network(f"10.66.0.0/{prefix}")
    gateway = next(subnet.hosts())
    pool = Ipam(tmp_path_factory.mktemp("ipam"), Pool(subnet, gateway))
    held: dict[str, ipaddress.IPv4Address] = {}
    capacity = subnet.num_addresses - 3
    for allocate, n in ops:
        owner = f"c{n}"
        if allocate:
            if owner not in held and len(held) == capacity:
                with pytest.raises(NetworkError):
                    pool.allocate(owner)
                continue
            held[owner] = pool.allocate(owner)
        elif owner in held:
            assert pool.release_owner(owner) == (held.pop(owner),)
    addresses = list(held.values())
    assert len(set(addresses)) == len(addresses)
    assert all(a in subnet and a != gateway and a != subnet.network_address
               and a != subnet.broadcast_address for a in addresses)
    assert pool.allocations() == {a: o for o, a in held.items()}


def _allocate_ten(directory: str, tag: str, start, out) -> None:
    pool = Ipam(directory, Pool.parse("10.77.0.0/24", "10.77.0.1"))
    start.wait()
    out.put([str(pool.allocate(f"{tag}{i}")) for i in range(10)])


def test_two_processes_get_twenty_distinct(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_allocate_ten, args=(str(tmp_path / "net"), t, start, out))
             for t in "ab"]
    for p in procs:
        p.start()
    got = out.get(timeout=60) + out.get(timeout=60)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(set(got)) == 20
    assert len(ipam(tmp_path).allocations()) == 20
