"""Published ports: each ``-p`` decided against what the host's table already DNATs, and
DNAT-ed to a container's address, under one host-wide lock so two starts never take one port.

The kernel's rules are the record of what is taken (``published_ports`` reads them back), so
containers in other stores count too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pybuild.network import rules
from pybuild.network.nft import Nft, Table
from pybuild.network.ports import PortBinding

PORTS_LOCK = Path("/run/pybuild/ports.lock")  # host-wide: the ports are the host's


def publish(nft: Nft | None, table: Table, tag: str, container_ip: str,
            bindings: Sequence[PortBinding]) -> tuple[PortBinding, ...]:
    """The host ports decided and DNAT-ed in ``table`` (rules tagged ``tag``, the
    container's), under the host's ports lock so that two starts never take one port."""
    from pybuild.network import ports as portspec
    from pybuild.store.lock import FileLock

    PORTS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(PORTS_LOCK, timeout=30):
        taken = published_ports(nft, table) if nft is not None else []
        resolved = portspec.resolve(bindings, taken)
        if nft is not None:
            mappings = [rules.PortMapping(b.host_port, container_ip, b.container_port, b.proto,
                                          None if b.host_ip == portspec.ANY else b.host_ip)
                        for b in resolved]
            rules.publish(nft, table, tag=tag, mappings=mappings)
    return resolved


def published_ports(nft: Nft, table: Table) -> list[PortBinding]:
    """Every host port the table DNATs, read back from the kernel's rules (the host-wide
    record of what other containers publish, whichever store they are in)."""
    from pybuild.network import nft as nftlib
    from pybuild.network.ports import ANY

    out = []
    for rule in nftlib.table_rules(nft, table):
        if rule.get("chain") != rules.PUBLISH:
            continue
        found: dict[str, object] = {}
        for e in rule.get("expr", ()):
            match = e.get("match", {})
            left = match.get("left", {})
            if left.get("payload", {}).get("field") == "dport":
                found["port"] = match.get("right")
            elif left.get("payload", {}).get("field") == "daddr":
                found["ip"] = match.get("right")
            elif left.get("meta", {}).get("key") == "l4proto":
                found["proto"] = match.get("right")
            elif "dnat" in e:
                found["cport"] = e["dnat"].get("port")
        if isinstance(found.get("port"), int):
            out.append(PortBinding(str(found.get("ip") or ANY), int(found["port"]),
                                   int(found.get("cport") or 1), str(found.get("proto", "tcp"))))
    return out
