"""libnftables through ctypes, and pybuild's table, checked with the nft tool."""

import subprocess

import pytest
from support.net import nft_list, unique

from pybuild.errors import NetworkError
from pybuild.network import nft as nf
from pybuild.network import rules

pytestmark = pytest.mark.root


def rules_of(table, chain=None):
    return [o["rule"] for o in nft_list(table) if "rule" in o
            and (chain is None or o["rule"]["chain"] == chain)]


def test_json_round_trip(nft_table):
    nft, table = nft_table
    assert not nf.exists(nft, table)
    nft.run([{"add": {"table": table.spec()}},
             {"add": {"chain": {**table.ref(), "name": "c"}}}])
    assert nf.exists(nft, table)
    handles = nf.add_rules(nft, table, "c", [[{"counter": None}], [{"accept": None}]], "t1")
    assert len(handles) == 2 and handles[0] != handles[1]
    listed = rules_of(table, "c")
    assert [r["handle"] for r in listed] == handles and {r["comment"] for r in listed} == {"t1"}
    nf.delete_rule(nft, table, "c", handles[0])
    assert [r["handle"] for r in rules_of(table, "c")] == handles[1:]
    assert nf.delete_table(nft, table) is True and nf.delete_table(nft, table) is False
    gone = subprocess.run(["nft", "list", "table", table.family, table.name],
                          capture_output=True)
    assert gone.returncode != 0


def test_errors_are_one_line(nft_table):
    nft, table = nft_table
    with pytest.raises(NetworkError) as err:
        nft.run([{"add": {"chain": {**table.ref(), "name": "c"}}}])  # no such table
    assert str(err.value).startswith("nftables: ") and "\n" not in str(err.value)
    with pytest.raises(NetworkError):
        nft.run([{"no-such-verb": {}}])


def test_a_failed_batch_changes_nothing(nft_table):
    nft, table = nft_table
    rules.ensure_table(nft, table)
    before = nft_list(table)
    with pytest.raises(NetworkError):
        nft.run([{"add": {"rule": {**table.ref(), "chain": "forward", "comment": "x",
                                   "expr": [{"drop": None}]}}},
                 {"add": {"rule": {**table.ref(), "chain": "nochain", "expr": []}}}])
    assert nft_list(table) == before


def test_ensure_table_is_idempotent(nft_table):
    nft, table = nft_table
    rules.ensure_table(nft, table)
    rules.ensure_table(nft, table)
    objects = nft_list(table)
    chains = {o["chain"]["name"]: o["chain"] for o in objects if "chain" in o}
    assert set(chains) == {"prerouting", "output", "postrouting", "forward", "publish"}
    assert chains["postrouting"]["hook"] == "postrouting" and chains["postrouting"]["type"] == "nat"
    assert chains["forward"]["policy"] == "accept"
    jumps = [r for r in rules_of(table) if r["chain"] in ("prerouting", "output")]
    assert len(jumps) == 2  # one each, not one per ensure
    assert [s["set"]["name"] for s in objects if "set" in s] == ["bridges"]


def test_bridge_rules_and_their_removal(nft_table):
    nft, table = nft_table
    rules.ensure_table(nft, table)
    br = unique("pbb")
    rules.add_bridge(nft, table, tag="net:a", bridge=br, subnet="10.77.0.0/24")
    rules.add_bridge(nft, table, tag="net:a", bridge=br, subnet="10.77.0.0/24")  # again: same
    mine = [r for r in rules_of(table) if r.get("comment") == "net:a"]
    assert sorted(r["chain"] for r in mine) == ["forward", "postrouting", "postrouting"]
    masq = [r for r in mine if r["chain"] == "postrouting"
            and {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": br}}
            in r["expr"]]
    assert len(masq) == 1 and {"masquerade": None} in masq[0]["expr"]
    assert {"prefix": {"addr": "10.77.0.0", "len": 24}} in [
        e["match"]["right"] for e in masq[0]["expr"] if "match" in e]
    [bridges] = [o["set"] for o in nft_list(table) if "set" in o]
    assert bridges["elem"] == [br]
    assert rules.remove_bridge(nft, table, tag="net:a", bridge=br) == 3
    assert not [r for r in rules_of(table) if r.get("comment") == "net:a"]
    [bridges] = [o["set"] for o in nft_list(table) if "set" in o]
    assert "elem" not in bridges


def test_internal_network_has_no_masquerade_and_two_drops(nft_table):
    nft, table = nft_table
    rules.ensure_table(nft, table)
    br = unique("pbb")
    rules.add_bridge(nft, table, tag="net:i", bridge=br, subnet="10.77.1.0/24", internal=True)
    mine = [r for r in rules_of(table) if r.get("comment") == "net:i"]
    forward = [r for r in mine if r["chain"] == "forward"]
    assert len(forward) == 2 and all({"drop": None} in r["expr"] for r in forward)
    # only the loopback one: nothing leaves an internal network
    post = [r for r in mine if r["chain"] == "postrouting"]
    assert len(post) == 1 and {"prefix": {"addr": "127.0.0.0", "len": 8}} in [
        e["match"]["right"] for e in post[0]["expr"] if "match" in e]


def test_published_ports_go_when_the_container_stops(nft_table):
    nft, table = nft_table
    rules.ensure_table(nft, table)
    maps = [rules.PortMapping(8080, "10.77.0.2", 80),
            rules.PortMapping(5353, "10.77.0.2", 53, "udp", host_ip="127.0.0.1")]
    rules.publish(nft, table, tag="c1", mappings=maps)
    rules.publish(nft, table, tag="c2", mappings=[rules.PortMapping(8081, "10.77.0.3", 80)])
    dnat = rules_of(table, "publish")
    assert len(dnat) == 3
    [udp] = [r for r in dnat if {"dnat": {"family": "ip", "addr": "10.77.0.2", "port": 53}}
             in r["expr"]]
    assert {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                      "right": "127.0.0.1"}} in udp["expr"]
    # the kernel keeps l4proto + th dport as "udp dport"
    assert {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}},
                      "right": 5353}} in udp["expr"]
    assert rules.unpublish(nft, table, "c1") == 4  # two DNAT, two hairpin MASQUERADE
    assert {r["comment"] for r in rules_of(table) if r["chain"] in ("publish", "postrouting")} \
        == {"c2"}
    assert rules.unpublish(nft, table, "c1") == 0


def test_other_tables_untouched(nft_table):
    nft, table = nft_table
    other = nf.Table(name=unique())
    try:
        nft.run([{"add": {"table": other.spec()}},
                 {"add": {"chain": {**other.ref(), "name": "keep"}}}])
        before = nft_list(other)
        rules.ensure_table(nft, table)
        rules.add_bridge(nft, table, tag="n", bridge="pbbx", subnet="10.77.2.0/24")
        nf.delete_tagged(nft, table, "n")
        nf.delete_table(nft, table)
        assert nft_list(other) == before
    finally:
        nf.delete_table(nft, other)


@pytest.mark.parametrize("args", [(0, "10.0.0.2", 80), (80, "10.0.0.2", 70000),
                                  (80, "nonsense", 80), (80, "10.0.0.2", 80, "icmp")])
def test_bad_port_mappings(args):
    with pytest.raises(NetworkError):
        rules.PortMapping(*args)
