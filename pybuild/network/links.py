"""Bridges, veth pairs and a container's interface, through netlink (``rtnl``: pyroute2's
messages on a socket of our own).

A container joins a bridge as docker's bridge driver joins it: a veth pair, one end on the
bridge in the host, the other made straight inside the container's network namespace (given
by a pid or a netns path) as ``eth0``, with its address, MTU and default route.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import NetworkError
from pybuild.network.rtnl import Rtnl

IFNAMSIZ = 15
IFF_UP = 0x1


@contextlib.contextmanager
def _netlink(what: str) -> Iterator[Rtnl]:
    """A netlink socket of the host's netns, its errors as one NetworkError line saying what
    was being done."""
    try:
        with _rtnl() as ip:
            yield ip
    except OSError as err:
        raise NetworkError(f"{what}: {err.strerror or err}") from None


def _rtnl(netns: str | None = None) -> Rtnl:
    try:
        return Rtnl(netns)
    except ImportError:
        raise NetworkError("networking needs pyroute2 (pip install 'pyroute2>=0.7')") from None


def netns_path(netns: int | str | os.PathLike[str]) -> str:
    """A network namespace given as a pid (its ``/proc/PID/ns/net``) or a path."""
    if isinstance(netns, int):
        return f"/proc/{netns}/ns/net"
    return os.fspath(netns)


def _check_name(name: str) -> None:
    if not name or len(name) > IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise NetworkError(f"invalid interface name {name!r} (at most {IFNAMSIZ} characters)")


def _index(ip: Rtnl, name: str) -> int | None:
    found = ip.link(name)
    return found["index"] if found is not None else None


def exists(name: str) -> bool:
    with _netlink(f"look up {name}") as ip:
        return _index(ip, name) is not None


def ensure_bridge(name: str, address: str | None = None, mtu: int | None = None) -> int:
    """The bridge ``name``, made if missing, with ``address`` (``ADDR/PREFIX``) among its
    addresses and ``mtu``, up; its interface index. An existing non-bridge is refused. A
    bridge that is already so is only looked at (one request, two with an address)."""
    _check_name(name)
    with _netlink(f"bridge {name}") as ip:
        link = ip.link(name)
        if link is None:
            with contextlib.suppress(FileExistsError):  # another process was first
                ip.add_link(name, "bridge")
            link = ip.link(name)
            if link is None:
                raise NetworkError(f"bridge {name}: removed while being made")
        index = link["index"]
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        if kind != "bridge":
            raise NetworkError(f"bridge {name}: {name} exists and is not a bridge ({kind})")
        if address is not None:
            iface = ipaddress.ip_interface(address)
            if (str(iface.ip), iface.network.prefixlen) not in ip.addresses(index):
                with contextlib.suppress(FileExistsError):  # added meanwhile by another
                    ip.add_address(index, str(iface.ip), iface.network.prefixlen)
        change = [("IFLA_MTU", mtu)] if mtu is not None and link.get_attr("IFLA_MTU") != mtu \
            else []
        if change or not link["flags"] & IFF_UP:
            ip.set_link(index, up=True, attrs=change)
        return index


def delete(name: str) -> bool:
    """Remove the interface ``name`` (a veth takes its peer along); False if absent."""
    with _netlink(f"delete {name}") as ip:
        index = _index(ip, name)
        if index is None:
            return False
        try:
            ip.del_link(index)
        except OSError as err:  # gone meanwhile (its netns died, taking the pair along)
            if err.errno == errno.ENODEV:
                return False
            raise
        return True


def addresses(name: str) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    with _netlink(f"addresses of {name}") as ip:
        index = _index(ip, name)
        if index is None:
            raise NetworkError(f"no interface {name!r}")
        return [ipaddress.ip_interface(f"{a}/{p}") for a, p in ip.addresses(index)]


def host_routes() -> list[ipaddress.IPv4Network]:
    """The IPv4 destinations the host's main table routes (not the default route): what a new
    network's subnet should not overlap, as docker checks before picking a pool."""
    with _netlink("routes") as ip:
        out = []
        for route in ip.routes():
            table = route.get_attr("RTA_TABLE") or route["table"]
            dst = route.get_attr("RTA_DST")
            if table == 254 and dst is not None and route["dst_len"] > 0:
                out.append(ipaddress.IPv4Network(f"{dst}/{route['dst_len']}", strict=False))
        return out


@dataclass(frozen=True)
class Endpoint:
    """A container's end of a bridge network: its interface inside the container's netns."""

    host_ifname: str  # the veth end on the bridge, in the host
    ifname: str  # inside the container (eth0)
    address: str  # ADDR/PREFIX
    gateway: str | None  # the default route's gateway; None: no default route (--internal)
    mtu: int


def host_veth_name(container_id: str, network_id: str = "") -> str:
    """A veth name for the host end: ``veth`` and 11 hex digits of the pair, as docker's
    ``veth`` + 7, unique per container and network."""
    import hashlib

    digest = hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()
    return "veth" + digest[:IFNAMSIZ - 4]


def connect(bridge: str, netns: int | str | os.PathLike[str], *, host_ifname: str,
            address: str, gateway: str | None = None, mtu: int = 1500,
            ifname: str = "eth0", mac: str | None = None) -> Endpoint:
    """A veth pair from ``bridge`` into ``netns``: ``host_ifname`` on the bridge, up; the other
    end made inside as ``ifname`` (so a host interface of that name is no matter) with
    ``address``, ``mac`` (else the kernel's random one), ``mtu``, loopback up and a default
    route via ``gateway``. Anything that fails removes the pair again."""
    _check_name(host_ifname)
    _check_name(ifname)
    iface = ipaddress.ip_interface(address)
    path = netns_path(netns)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetworkError(f"connect {host_ifname}: no network namespace at {path}") from None
    except OSError as err:
        raise NetworkError(f"connect {host_ifname}: {path}: {err.strerror}") from None
    try:
        with _netlink(f"connect {host_ifname} to {bridge}") as ip:
            master = _index(ip, bridge)
            if master is None:
                raise NetworkError(f"connect {host_ifname}: no bridge {bridge!r}")
            peer = [("IFLA_IFNAME", ifname), ("IFLA_MTU", mtu), ("IFLA_NET_NS_FD", fd),
                    *([("IFLA_ADDRESS", mac)] if mac else [])]
            ip.add_link(host_ifname, "veth", attrs=[("IFLA_MTU", mtu)],
                        data={"attrs": [("VETH_INFO_PEER", {"attrs": peer})]})
            try:
                _configure_inside(path, ifname, iface, gateway)
                ip.set_link(_index(ip, host_ifname), up=True, attrs=[("IFLA_MASTER", master)])
            except BaseException:
                with contextlib.suppress(OSError, TypeError):
                    ip.del_link(_index(ip, host_ifname))
                raise
    finally:
        os.close(fd)
    return Endpoint(host_ifname, ifname, str(iface), gateway, mtu)


def _configure_inside(path: str, ifname: str, iface, gateway: str | None) -> None:
    try:
        with _rtnl(path) as ns:
            index = _index(ns, ifname)
            ns.add_address(index, str(iface.ip), iface.network.prefixlen)
            ns.set_link(index, up=True)
            lo = _index(ns, "lo")
            if lo is not None:
                ns.set_link(lo, up=True)
            if gateway:
                ns.add_default_route(gateway, index)
    except OSError as err:
        raise NetworkError(f"configure {ifname} in {path}: {err.strerror or err}") from None


def disconnect(host_ifname: str) -> bool:
    """Remove a container's veth pair by its host end; False if it is already gone (a netns
    that died takes its end, and so the pair, along)."""
    return delete(host_ifname)


def _sysctl(path: str, value: str) -> None:
    try:
        Path(path).write_text(value)
    except OSError as err:
        raise NetworkError(f"cannot set {path}: {err.strerror or err}") from None


def route_localnet(bridge: str, enable: bool = True) -> None:
    """Let 127.0.0.1:PORT on the host be DNAT-ed out through ``bridge`` (the kernel otherwise
    drops loopback sources routed off the host), as docker does without its userland proxy."""
    _check_name(bridge)
    _sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1" if enable else "0")


def enable_ip_forward() -> None:
    """dockerd's ip-forward: the host routes between its bridges and the outside."""
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
