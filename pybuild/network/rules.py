"""pybuild's firewall: the chains of its own nftables table and the rules a network or a
container adds, each rule tagged (its comment) with who added it, so that all of them go at once
when the network is removed or the container stops.

The table (``inet pybuild`` unless told otherwise)::

    set bridges            every pybuild bridge, for isolation between them
    chain prerouting       nat, dstnat: traffic to a local address -> jump publish
    chain output           nat, dstnat: the same for the host's own connections (127.0.0.1:PORT
                           needs route_localnet on the bridge, see links.route_localnet)
    chain publish          DNAT per published port          (tag: the container's)
    chain postrouting      nat, srcnat: MASQUERADE out of a bridge subnet, of loopback sources
                           into a bridge, and of a container reaching itself through its
                           published port (hairpin)      (tags: the network's, the container's)
    chain forward          filter: isolation between bridges, --internal (tag: the network's)

Only ``accept``-policy base chains: pybuild drops what it must and leaves the rest to whatever
other tables the host has.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pybuild.errors import NetworkError
from pybuild.network.nft import Command, Nft, Table, add_rules, delete_tagged

BRIDGES = "bridges"
PUBLISH = "publish"
_BASE_CHAINS = [  # name, type, hook, priority (dstnat -100, filter 0, srcnat 100)
    ("prerouting", "nat", "prerouting", -100),
    ("output", "nat", "output", -100),
    ("postrouting", "nat", "postrouting", 100),
    ("forward", "filter", "forward", 0),
]
_JUMP_TAG = "pybuild"  # the jumps into ``publish``, made with the table


def _match(left: dict[str, Any], right: Any, op: str = "==") -> Command:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _ip(field: str, version: int = 4) -> dict[str, Any]:
    return {"payload": {"protocol": "ip" if version == 4 else "ip6", "field": field}}


def _prefix(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> dict[str, Any]:
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _local_daddr() -> Command:
    return _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")


def ensure_table(nft: Nft, table: Table) -> None:
    """Create the table, its set and chains where missing (``add`` leaves existing ones be),
    and the jumps into ``publish`` once."""
    commands: list[Command] = [
        {"add": {"table": table.spec()}},
        {"add": {"set": {**table.ref(), "name": BRIDGES, "type": "ifname"}}},
        {"add": {"chain": {**table.ref(), "name": PUBLISH}}},
    ]
    commands += [{"add": {"chain": {**table.ref(), "name": name, "type": kind, "hook": hook,
                                    "prio": prio, "policy": "accept"}}}
                 for name, kind, hook, prio in _BASE_CHAINS]
    nft.run(commands)
    # dropped and made again in one transaction, so two processes never leave two jumps
    jumps = [{"add": {"rule": {**table.ref(), "chain": chain, "comment": _JUMP_TAG,
                               "expr": [_local_daddr(), {"jump": {"target": PUBLISH}}]}}}
             for chain in ("prerouting", "output")]
    delete_tagged(nft, table, _JUMP_TAG, then=jumps)


def add_bridge(nft: Nft, table: Table, *, tag: str, bridge: str, subnet: str,
               masquerade: bool = True, internal: bool = False) -> None:
    """A network's rules: its bridge in the isolation set; no forwarding to or from another
    pybuild bridge (with ``internal``: to or from anywhere else); MASQUERADE of its subnet
    leaving it (not for ``internal``), and of loopback sources DNAT-ed into it. Replaces the
    rules ``tag`` had, so calling it again is harmless."""
    net = ipaddress.ip_network(subnet, strict=False)
    iif, oif = _meta("iifname"), _meta("oifname")
    forward = [[_match(iif, bridge), _match(oif, bridge, "!="), _match(oif, "@" + BRIDGES),
                {"drop": None}]]
    if internal:
        forward = [[_match(iif, bridge), _match(oif, bridge, "!="), {"drop": None}],
                   [_match(oif, bridge), _match(iif, bridge, "!="), {"drop": None}]]
    post: list[list[Command]] = []
    if masquerade and not internal:
        post.append([_match(_ip("saddr", net.version), _prefix(net)),
                     _match(oif, bridge, "!="), {"masquerade": None}])
    if net.version == 4:
        post.append([_match(_ip("saddr"), _prefix(ipaddress.ip_network("127.0.0.0/8"))),
                     _match(oif, bridge), {"masquerade": None}])
    element = {"add": {"element": {**table.ref(), "name": BRIDGES, "elem": [bridge]}}}
    delete_tagged(nft, table, tag, then=[element, *_rules(table, "forward", forward, tag),
                                         *_rules(table, "postrouting", post, tag)])


def remove_bridge(nft: Nft, table: Table, *, tag: str, bridge: str) -> int:
    """Undo ``add_bridge``: its rules and its place in the set; how many rules went."""
    elements = [o["set"] for o in nft.run([{"list": {"set": {**table.ref(), "name": BRIDGES}}}])
                if "set" in o]
    present = bridge in (elements[0].get("elem", []) if elements else [])
    then = [{"delete": {"element": {**table.ref(), "name": BRIDGES, "elem": [bridge]}}}]
    return delete_tagged(nft, table, tag, then=then if present else [])


@dataclass(frozen=True)
class PortMapping:
    """One published port: ``host_ip:host_port/proto`` to ``container_ip:container_port``.
    ``host_ip`` None means every address of the host (docker's 0.0.0.0)."""

    host_port: int
    container_ip: str
    container_port: int
    proto: str = "tcp"
    host_ip: str | None = None

    def __post_init__(self) -> None:
        if self.proto not in ("tcp", "udp", "sctp"):
            raise NetworkError(f"invalid protocol {self.proto!r}: tcp, udp or sctp")
        for port in (self.host_port, self.container_port):
            if not 1 <= port <= 65535:
                raise NetworkError(f"invalid port {port}: from 1 to 65535")
        try:
            ipaddress.IPv4Address(self.container_ip)
            if self.host_ip is not None:
                ipaddress.IPv4Address(self.host_ip)
        except ValueError as err:
            raise NetworkError(f"invalid published port: {err}") from None


def publish(nft: Nft, table: Table, *, tag: str, mappings: Sequence[PortMapping]) -> None:
    """DNAT for each mapping, with the hairpin MASQUERADE that lets the container reach itself
    through its own published port; replaces what ``tag`` had published before."""
    dnat, hairpin = [], []
    for m in mappings:
        proto = [_match(_meta("l4proto"), m.proto),
                 _match({"payload": {"protocol": "th", "field": "dport"}}, m.host_port)]
        where = [_match(_ip("daddr"), m.host_ip)] if m.host_ip else []
        dnat.append([*where, *proto,
                     {"dnat": {"family": "ip", "addr": m.container_ip,
                               "port": m.container_port}}])
        hairpin.append([_match(_ip("saddr"), m.container_ip),
                        _match(_ip("daddr"), m.container_ip),
                        _match(_meta("l4proto"), m.proto),
                        _match({"payload": {"protocol": "th", "field": "dport"}},
                               m.container_port),
                        {"masquerade": None}])
    delete_tagged(nft, table, tag, then=[*_rules(table, PUBLISH, dnat, tag),
                                         *_rules(table, "postrouting", hairpin, tag)])


def unpublish(nft: Nft, table: Table, tag: str) -> int:
    """Every rule ``tag`` added (its published ports); how many went."""
    return delete_tagged(nft, table, tag)


def _rules(table: Table, chain: str, exprs: list[list[Command]], tag: str) -> list[Command]:
    return [{"add": {"rule": {**table.ref(), "chain": chain, "comment": tag, "expr": e}}}
            for e in exprs]


__all__ = ["PortMapping", "Table", "add_bridge", "add_rules", "ensure_table", "publish",
           "remove_bridge", "unpublish"]
