"""A container's interface on a macvlan network: its own MAC and address on the parent's
segment, as docker's macvlan driver gives it (no bridge, no NAT, no published ports).

The link is made straight inside the container's network namespace: the kernel takes the
target netns with the new link (``IFLA_NET_NS_FD``, as ``ip link add ... netns``) and looks the
parent up in the namespace of the caller, so a half-made link is never left in the host's
namespace and the name ``eth0`` cannot collide with the host's own. A macvlan link dies with its
namespace, so a stopped container takes its interface along; a failure after the link exists
deletes it again.

As with docker, the host itself does not reach its macvlan containers through the parent: the
kernel passes frames between macvlan siblings (mode bridge) and the wire, not to the parent's
own stack. Something else on the segment (the tests use a netns behind a veth) does.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os

from pybuild.errors import NetworkError

PARENT_OPTION = "parent"
MODE_OPTION = "macvlan_mode"
MODES = ("bridge", "private", "vepa", "passthru")
DEFAULT_MODE = "bridge"  # docker's default: macvlan siblings on one parent see each other


def _errors(what: str):
    """Netlink and OS errors as one NetworkError line saying what was being done (links')."""
    from pybuild.network.links import _netlink

    return _netlink(what)


def parent_mtu(network: str, parent: str) -> int:
    """The MTU of the parent interface ``parent`` in the host's namespace; docker's one line
    when there is no such interface."""
    from pyroute2 import IPRoute

    with IPRoute() as ip, _errors(f"network {network}: parent {parent}"):
        found = ip.link_lookup(ifname=parent)
        if not found:
            raise NetworkError(f"network {network}: -o parent interface was not found on the "
                               f"host: {parent}")
        [link] = ip.get_links(found[0])
        return int(link.get_attr("IFLA_MTU") or 1500)


def vlan_of(parent: str) -> tuple[str, int] | None:
    """(base, VLAN id) of a sub-interface name in docker's dot form (``eth0.10``)."""
    base, dot, vid = parent.rpartition(".")
    if not dot or not base or not (vid.isascii() and vid.isdigit()):
        return None
    return (base, int(vid)) if 1 <= int(vid) <= 4094 else None


def parent_to_make(network: str, parent: str) -> bool:
    """Whether pybuild makes the parent (and so deletes it with the network), as docker
    does: a missing ``BASE.VID`` becomes VLAN VID of the existing BASE. Any other missing
    parent is docker's one line."""
    from pybuild.network import links

    if links.exists(parent):
        return False
    vlan = vlan_of(parent)
    if vlan is None:
        if "." in parent:
            raise NetworkError(f"network {network}: invalid subinterface vlan name {parent}, "
                               "example formatting is eth0.10")
        parent_mtu(network, parent)  # its error
    elif not links.exists(vlan[0]):
        raise NetworkError(f"network {network}: -o parent interface was not found on the "
                           f"host: {vlan[0]}")
    return True


def ensure_vlan(network: str, parent: str) -> None:
    """The VLAN sub-interface ``parent`` (``BASE.VID``) made where missing, and up."""
    from pyroute2 import IPRoute, NetlinkError

    vlan = vlan_of(parent)
    if vlan is None:
        raise NetworkError(f"network {network}: invalid subinterface vlan name {parent}, "
                           "example formatting is eth0.10")
    with IPRoute() as ip, _errors(f"network {network}: vlan {parent}"):
        if not ip.link_lookup(ifname=parent):
            base = ip.link_lookup(ifname=vlan[0])
            if not base:
                raise NetworkError(f"network {network}: -o parent interface was not found "
                                   f"on the host: {vlan[0]}")
            try:
                ip.link("add", ifname=parent, kind="vlan", link=base[0], vlan_id=vlan[1])
            except NetlinkError as err:
                if not ip.link_lookup(ifname=parent):  # else another start made it at once
                    raise NetworkError(f"network {network}: cannot make VLAN {vlan[1]} of "
                                       f"{vlan[0]}: {err.args[-1] if err.args else err}"
                                       ) from None
        [index] = ip.link_lookup(ifname=parent)
        ip.link("set", index=index, state="up")


def connect(parent: str, netns: str, *, ifname: str, address: str, mac: str, mtu: int,
            gateway: str | None = None, mode: str = DEFAULT_MODE) -> None:
    """A macvlan link of ``parent`` (host side) as ``ifname`` inside the netns at the path
    ``netns``, with ``address`` (ADDR/PREFIX), ``mac``, ``mtu``, up, loopback up and a default
    route via ``gateway`` when given."""
    from pyroute2 import IPRoute

    if mode not in MODES:
        raise NetworkError(f"macvlan mode {mode!r}: not one of {', '.join(MODES)}")
    iface = ipaddress.ip_interface(address)
    with _errors(f"macvlan {ifname} on {parent}"):
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with IPRoute() as ip:
                found = ip.link_lookup(ifname=parent)
                if not found:
                    raise NetworkError(f"macvlan {ifname}: -o parent interface was not found "
                                       f"on the host: {parent}")
                ip.link("add", ifname=ifname, kind="macvlan", link=found[0], macvlan_mode=mode,
                        address=mac, mtu=mtu, net_ns_fd=fd)
        finally:
            os.close(fd)
    try:
        _configure(netns, ifname, iface, gateway)
    except BaseException:
        with contextlib.suppress(NetworkError):
            disconnect(netns, mac)
        raise


def _configure(netns: str, ifname: str, iface, gateway: str | None) -> None:
    from pyroute2 import NetNS

    with NetNS(netns) as ns, _errors(f"configure {ifname} in {netns}"):
        [index] = ns.link_lookup(ifname=ifname)
        ns.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        ns.link("set", index=index, state="up")
        for lo in ns.link_lookup(ifname="lo"):
            ns.link("set", index=lo, state="up")
        if gateway:
            ns.route("add", dst="default", gateway=gateway, oif=index)


def disconnect(netns: str, mac: str) -> bool:
    """Delete the macvlan link with ``mac`` inside the netns at ``netns`` (found by its MAC,
    which stays when other interfaces come and go); False when it or the netns is gone."""
    from pyroute2 import NetNS

    if not os.path.exists(netns):
        return False
    with NetNS(netns) as ns, _errors(f"remove macvlan {mac} in {netns}"):
        for link in ns.get_links():
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            if kind == "macvlan" and str(link.get_attr("IFLA_ADDRESS")).lower() == mac.lower():
                ns.link("del", index=link["index"])
                return True
    return False
