"""A host bridge pybuild did not make: ``-o com.docker.network.bridge.name=BR`` of a bridge
that exists when the network is created, or the settings' ``"bridge": "BR"`` (docker's ``-b``).

As docker's bridge driver records who made a bridge (``BridgeIfaceCreator``), a network record
says whether its bridge was there before it (``Network.external_bridge``). Such a bridge is
used as it is: containers are veth-attached to it, its addresses are read, never added or
removed, and it outlives every network and container that used it.
"""

from __future__ import annotations

import ipaddress
import os

from pybuild.errors import NetworkError

Interface = ipaddress.IPv4Interface


def probe(name: str) -> list[Interface] | None:
    """The IPv4 addresses of the existing bridge ``name``; None when there is no interface of
    that name; an error when it is not a bridge."""
    from pybuild.network import links

    if not links.exists(name):
        return None
    # sysfs has a bridge/ dir for a bridge only: no netlink dump (nor pyroute2's package
    # import) for a check every start on such a bridge makes
    if not os.path.isdir(f"/sys/class/net/{name}/bridge"):
        raise NetworkError(f"bridge {name}: {name} exists and is not a bridge")
    return [a for a in links.addresses(name) if isinstance(a, Interface)]


def pool(network: str, bridge: str, addresses: list[Interface], subnet: str | None,
         gateway: str | None) -> tuple[str, str]:
    """(subnet, gateway) of a network on the existing ``bridge`` with ``addresses``: without
    ``subnet`` its first address's; the gateway is one of the bridge's own addresses, since
    pybuild does not give the bridge another."""
    have = ", ".join(str(a) for a in addresses) or "none"
    if subnet is None:
        if gateway is not None:
            raise NetworkError(f"network {network}: --gateway needs --subnet")
        if not addresses:
            raise NetworkError(f"network {network}: bridge {bridge} exists and has no IPv4 "
                               "address; give it one, or give --subnet and --gateway of one "
                               "it has")
        return str(addresses[0].network), str(addresses[0].ip)
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as err:
        raise NetworkError(f"network {network}: invalid --subnet {subnet}: {err}") from None
    inside = [a for a in addresses if a.ip in net]
    if gateway is None and inside:
        return str(net), str(inside[0].ip)
    wanted = gateway or str(next(net.hosts(), net.network_address))
    if not any(str(a.ip) == wanted for a in addresses):
        raise NetworkError(f"network {network}: bridge {bridge} exists without the gateway "
                           f"address {wanted} (it has {have}); pybuild does not re-address a "
                           "bridge it did not make")
    return str(net), wanted


def ensure(name: str, network: str) -> None:
    """The existing bridge ``name`` up, as it is; an error when it has gone."""
    from pybuild.network import links

    if not links.exists(name):
        raise NetworkError(f"network {network}: its bridge {name} (not made by pybuild) does "
                           "not exist any more")
    links.ensure_bridge(name)
