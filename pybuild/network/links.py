"""Bridges, veth pairs and a container's interface, through netlink (pyroute2).

A container joins a bridge as docker's bridge driver joins it: a veth pair, one end on the
bridge in the host, the other moved into the container's network namespace (given by a pid or
a netns path), renamed ``eth0`` there, with its address, MTU and default route. The peer is
made under a temporary name, since the host may have an ``eth0`` of its own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import NetworkError

IFNAMSIZ = 15


def _pyroute2():
    try:
        import pyroute2
    except ImportError:
        raise NetworkError("networking needs pyroute2 (pip install 'pyroute2>=0.7')") from None
    return pyroute2


@contextlib.contextmanager
def _netlink(what: str) -> Iterator[None]:
    """Netlink errors as one NetworkError line saying what was being done."""
    from pyroute2 import NetlinkError

    try:
        yield
    except NetlinkError as err:
        raise NetworkError(f"{what}: {err.args[-1] if err.args else err}") from None
    except OSError as err:
        raise NetworkError(f"{what}: {err.strerror or err}") from None


def netns_path(netns: int | str | os.PathLike[str]) -> str:
    """A network namespace given as a pid (its ``/proc/PID/ns/net``) or a path."""
    if isinstance(netns, int):
        return f"/proc/{netns}/ns/net"
    return os.fspath(netns)


def _check_name(name: str) -> None:
    if not name or len(name) > IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise NetworkError(f"invalid interface name {name!r} (at most {IFNAMSIZ} characters)")


def _index(ip, name: str) -> int | None:
    found = ip.link_lookup(ifname=name)
    return found[0] if found else None


def exists(name: str) -> bool:
    with _pyroute2().IPRoute() as ip:
        return _index(ip, name) is not None


def ensure_bridge(name: str, address: str | None = None, mtu: int | None = None) -> int:
    """The bridge ``name``, made if missing, with ``address`` (``ADDR/PREFIX``) among its
    addresses and ``mtu``, up; its interface index. An existing non-bridge is refused."""
    _check_name(name)
    with _pyroute2().IPRoute() as ip, _netlink(f"bridge {name}"):
        index = _index(ip, name)
        if index is None:
            with contextlib.suppress(_pyroute2().NetlinkError):  # another process was first
                ip.link("add", ifname=name, kind="bridge")
            index = _index(ip, name)
        [link] = ip.get_links(index)
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        if kind != "bridge":
            raise NetworkError(f"bridge {name}: {name} exists and is not a bridge ({kind})")
        if address is not None:
            iface = ipaddress.ip_interface(address)
            have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ip.get_addr(index=index)}
            if (str(iface.ip), iface.network.prefixlen) not in have:
                ip.addr("add", index=index, address=str(iface.ip),
                        prefixlen=iface.network.prefixlen)
        if mtu is not None:
            ip.link("set", index=index, mtu=mtu)
        ip.link("set", index=index, state="up")
        return index


def delete(name: str) -> bool:
    """Remove the interface ``name`` (a veth takes its peer along); False if absent."""
    with _pyroute2().IPRoute() as ip, _netlink(f"delete {name}"):
        index = _index(ip, name)
        if index is None:
            return False
        ip.link("del", index=index)
        return True


def addresses(name: str) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    with _pyroute2().IPRoute() as ip, _netlink(f"addresses of {name}"):
        index = _index(ip, name)
        if index is None:
            raise NetworkError(f"no interface {name!r}")
        return [ipaddress.ip_interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
                for a in ip.get_addr(index=index)]


def host_routes() -> list[ipaddress.IPv4Network]:
    """The IPv4 destinations the host's main table routes (not the default route): what a new
    network's subnet should not overlap, as docker checks before picking a pool."""
    with _pyroute2().IPRoute() as ip, _netlink("routes"):
        out = []
        for route in ip.get_routes(family=2, table=254):
            dst = route.get_attr("RTA_DST")
            if dst is not None and route["dst_len"] > 0:
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
    end ``ifname`` inside with ``address``, ``mac`` (else the kernel's random one), ``mtu``,
    loopback up and a default route via ``gateway``. Anything that fails removes the pair
    again."""
    _check_name(host_ifname)
    _check_name(ifname)
    iface = ipaddress.ip_interface(address)
    peer = "pbp" + secrets.token_hex(6)  # renamed to ifname once inside the netns
    path = netns_path(netns)
    try:
        os.stat(path)
    except FileNotFoundError:
        raise NetworkError(f"connect {host_ifname}: no network namespace at {path}") from None
    except OSError as err:
        raise NetworkError(f"connect {host_ifname}: {path}: {err.strerror}") from None
    pr = _pyroute2()
    with pr.IPRoute() as ip, _netlink(f"connect {host_ifname} to {bridge}"):
        master = _index(ip, bridge)
        if master is None:
            raise NetworkError(f"connect {host_ifname}: no bridge {bridge!r}")
        inside = {"ifname": peer, "mtu": mtu, **({"address": mac} if mac else {})}
        ip.link("add", ifname=host_ifname, kind="veth", peer=inside, mtu=mtu)
        try:
            host = _index(ip, host_ifname)
            ip.link("set", index=host, master=master)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ip.link("set", index=_index(ip, peer), net_ns_fd=fd)
            finally:
                os.close(fd)
            _configure_inside(path, peer, ifname, iface, gateway, mtu)
            ip.link("set", index=host, state="up")
        except BaseException:
            with contextlib.suppress(pr.NetlinkError):
                ip.link("del", ifname=host_ifname)
            raise
    return Endpoint(host_ifname, ifname, str(iface), gateway, mtu)


def _configure_inside(path: str, peer: str, ifname: str, iface, gateway: str | None,
                      mtu: int) -> None:
    with _pyroute2().NetNS(path) as ns, _netlink(f"configure {ifname} in {path}"):
        index = _index(ns, peer)
        ns.link("set", index=index, ifname=ifname, mtu=mtu)
        ns.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        ns.link("set", index=index, state="up")
        lo = _index(ns, "lo")
        if lo is not None:
            ns.link("set", index=lo, state="up")
        if gateway:
            ns.route("add", dst="default", gateway=gateway, oif=index)


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
