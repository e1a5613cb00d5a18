"""What each network driver makes on the host for a network, and takes away with it.

* ``bridge``: the bridge (made, addressed and deleted by pybuild unless it existed before the
  network, see hostbridge, or is the settings' ``bridge``), its firewall rules in pybuild's
  table (``inet pybuild``, or ``$PYBUILD_NFT_TABLE``'s), route_localnet and ip_forward.
* ``macvlan``: nothing but its parent, a VLAN sub-interface pybuild makes when the network
  asked for a missing ``BASE.VID`` (and deletes with the network); no rules, no NAT.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

from pybuild.errors import NetworkError
from pybuild.network import links, macvlan, model, predefined, rules
from pybuild.network.nft import Nft, Table
from pybuild.network.settings import Settings

TABLE_ENV = "PYBUILD_NFT_TABLE"


def table() -> Table:
    return Table(name=os.environ.get(TABLE_ENV) or "pybuild")


def network_tag(network: model.Network) -> str:
    return "net-" + network.id[:12]


@contextlib.contextmanager
def nft_for(settings: Settings) -> Iterator[Nft | None]:
    if not settings.iptables:
        yield None
        return
    with Nft() as nft:
        yield nft


def _own_bridge(network: model.Network, settings: Settings) -> bool:
    """Whether pybuild made (and so addresses and deletes) the network's bridge."""
    if network.external_bridge:
        return False
    return network.name != predefined.DEFAULT or not settings.bridge  # else the settings'


def ensure(network: model.Network, settings: Settings, nft: Nft | None) -> None:
    """The network's bridge, addressed and up, and its firewall rules; harmless when there.
    A bridge pybuild did not make is only brought up; a macvlan network's parent must be
    there."""
    from pybuild.network import hostbridge

    if network.driver == "macvlan":
        if network.made_parent:
            macvlan.ensure_vlan(network.name, network.options[macvlan.PARENT_OPTION])
        macvlan.parent_mtu(network.name, network.options[macvlan.PARENT_OPTION])
        return
    prefix = ipaddress.ip_network(network.subnet).prefixlen
    if _own_bridge(network, settings):
        links.ensure_bridge(network.bridge, f"{network.gateway}/{prefix}", mtu=settings.mtu)
    else:
        hostbridge.ensure(network.bridge, network.name)
    if nft is not None:
        rules.ensure_table(nft, table())
        rules.add_bridge(nft, table(), tag=network_tag(network), bridge=network.bridge,
                         subnet=network.subnet, masquerade=settings.masquerade,
                         internal=network.internal)
    links.route_localnet(network.bridge)
    if settings.ip_forward and not network.internal:
        with contextlib.suppress(NetworkError, OSError):
            if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "1":
                links.enable_ip_forward()


def teardown(network: model.Network, settings: Settings, nft: Nft | None) -> None:
    """After ``network``'s record is gone: its bridge (if pybuild's) and firewall rules, or
    the macvlan parent pybuild made."""
    if network.driver == "macvlan":  # no bridge, no rules; its links went with the netns
        if network.made_parent:
            links.delete(network.options[macvlan.PARENT_OPTION])
        return
    if nft is not None:
        from pybuild.network import nft as nftlib

        if nftlib.exists(nft, table()):
            rules.remove_bridge(nft, table(), tag=network_tag(network), bridge=network.bridge)
    if _own_bridge(network, settings):
        links.delete(network.bridge)

