"""Published ports: docker's ``-p`` forms parsed into bindings, ``-P`` from an image's
EXPOSEd ports, and the host-side checks (a free port picked, a taken one refused).

Forms, as ``docker run -p`` reads them (``/PROTO`` optional on each, tcp by default)::

    CPORT                 80            every host address, a free host port
    HPORT:CPORT           8080:80
    IP:HPORT:CPORT        127.0.0.1:8080:80
    IP::CPORT             127.0.0.1::80  a free host port on that address
    ranges                8000-8010:80-90, 127.0.0.1:8000-8001:80-81, 80-90 (free ports)
    a host range          8000-8010:80   the first free host port of the range

Only IPv4 host addresses for now: an IPv6 one is refused naming the limit. Parsing is pure;
``pick_free_port``, ``check_free`` and ``resolve`` bind sockets on the host to ask the kernel.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pybuild.errors import NetworkError, UsageError

PROTOS = ("tcp", "udp", "sctp")
ANY = "0.0.0.0"  # docker's HostIp for "every address of the host"
_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
_SOCKET = {"tcp": (socket.SOCK_STREAM, 0), "udp": (socket.SOCK_DGRAM, 0),
           "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP)}


@dataclass(frozen=True)
class PortBinding:
    """One published port. ``host_port`` 0 means a free one is picked at start; with
    ``host_port_end`` the host port is the first free one of ``host_port..host_port_end``
    (docker's host range for a single container port)."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str = "tcp"
    host_port_end: int = 0

    @property
    def key(self) -> str:
        """docker's name of the container side: ``80/tcp``."""
        return f"{self.container_port}/{self.proto}"

    @property
    def host_ports(self) -> range:
        """The host ports this binding may take (empty for "any free one")."""
        if not self.host_port:
            return range(0)
        return range(self.host_port, max(self.host_port, self.host_port_end) + 1)

    def spec(self) -> str:
        """The ``-p`` text that parses back to this binding."""
        host = str(self.host_port or "")
        if self.host_port_end:
            host += f"-{self.host_port_end}"
        return f"{self.host_ip}:{host}:{self.container_port}/{self.proto}"


def parse(spec: str) -> tuple[PortBinding, ...]:
    """The bindings one ``-p`` value publishes, in container-port order."""
    text = spec.strip()
    rest, slash, proto = text.rpartition("/") if "/" in text else (text, "", "tcp")
    proto = proto.lower()
    if slash and proto not in PROTOS:
        raise UsageError(f"invalid proto: {proto!r} in port spec {spec!r} "
                         f"(known: {', '.join(PROTOS)})")
    ip, host, container = _split(rest, spec)
    if not container:
        raise UsageError(f"no port specified in port spec {spec!r}")
    c_lo, c_hi = _range(container, "containerPort", spec, allow_zero=False)
    h_lo, h_hi = _range(host, "hostPort", spec, allow_zero=True) if host else (0, 0)
    if h_lo == 0 and h_hi != 0:
        raise UsageError(f"invalid hostPort: {host!r} in port spec {spec!r}")
    if not host or h_lo == 0:
        return tuple(PortBinding(ip, 0, p, proto) for p in range(c_lo, c_hi + 1))
    if c_lo == c_hi and h_hi > h_lo:
        return (PortBinding(ip, h_lo, c_lo, proto, h_hi),)
    if h_hi - h_lo != c_hi - c_lo:
        raise UsageError(f"invalid ranges specified for container and host ports: "
                         f"{container} and {host} in port spec {spec!r}")
    return tuple(PortBinding(ip, h_lo + i, c_lo + i, proto) for i in range(c_hi - c_lo + 1))


def parse_all(specs: Iterable[str]) -> tuple[PortBinding, ...]:
    """Every ``-p`` value's bindings; one host address, port and protocol given twice is
    refused as docker refuses it at start."""
    out: list[PortBinding] = []
    for spec in specs:
        for binding in parse(spec):
            if binding.host_port and any(b.host_port and _clash(b, binding) for b in out):
                raise UsageError(f"invalid port spec {spec!r}: host port "
                                 f"{binding.host_ip}:{binding.host_port}/{binding.proto} is "
                                 f"published twice")
            out.append(binding)
    return tuple(out)


def _split(rest: str, spec: str) -> tuple[str, str, str]:
    """(host ip, host part, container part) of a spec without its protocol."""
    if rest.startswith("["):  # docker's bracketed IPv6 form, [::1]:8080:80
        ip, bracket, _ = rest[1:].partition("]")
        if bracket:
            _refuse_ipv6(ip, spec)
        raise UsageError(f"invalid port format: {spec!r}")
    parts = rest.split(":")
    if len(parts) == 1:
        return ANY, "", parts[0]
    if len(parts) == 2:
        return ANY, parts[0], parts[1]
    ip = ":".join(parts[:-2])
    if len(parts) > 3:
        _refuse_ipv6(ip, spec)
        raise UsageError(f"invalid port format: {spec!r} (expected [IP:][HOSTPORT:]PORT"
                         "[/PROTO])")
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        raise UsageError(f"invalid IP address: {ip!r} in port spec {spec!r}") from None
    if parsed.version == 6:
        _refuse_ipv6(ip, spec)
    return str(parsed), parts[1], parts[2]


def _refuse_ipv6(ip: str, spec: str) -> None:
    try:
        if ipaddress.ip_address(ip).version == 6:
            raise UsageError(f"invalid port spec {spec!r}: IPv6 host address {ip} is not "
                             "supported yet (IPv4 only)")
    except ValueError:
        pass


def _range(text: str, what: str, spec: str, *, allow_zero: bool) -> tuple[int, int]:
    match = _RANGE.fullmatch(text)
    if match is None:
        raise UsageError(f"invalid {what}: {text!r} in port spec {spec!r}")
    lo = int(match[1])
    hi = int(match[2]) if match[2] is not None else lo
    least = 0 if allow_zero else 1
    if not least <= lo <= 65535 or not least <= hi <= 65535:
        raise UsageError(f"invalid {what}: {text!r} in port spec {spec!r} "
                         f"(ports are {least} to 65535)")
    if hi < lo:
        raise UsageError(f"invalid {what}: {text!r} in port spec {spec!r} (the range's end "
                         "is below its start)")
    return lo, hi


def exposed(exposed_ports: Mapping[str, Any] | Iterable[str] | None) -> tuple[PortBinding, ...]:
    """``-P``: every EXPOSEd port (an image config's ``ExposedPorts`` keys, ``80/tcp``) to a
    free host port on every address."""
    out: list[PortBinding] = []
    for key in sorted(exposed_ports or (), key=_sort_key):
        port, _, proto = str(key).partition("/")
        proto = (proto or "tcp").lower()
        if proto not in PROTOS:
            raise UsageError(f"invalid proto: {proto!r} in exposed port {key!r}")
        lo, hi = _range(port, "exposed port", str(key), allow_zero=False)
        out += [PortBinding(ANY, 0, p, proto) for p in range(lo, hi + 1)]
    return tuple(out)


def _sort_key(key: Any) -> tuple[int, str]:
    port, _, proto = str(key).partition("/")
    head = port.partition("-")[0]
    return (int(head) if head.isdigit() else 0, proto)


def _clash(a: PortBinding, b: PortBinding) -> bool:
    """Whether two bindings' host sides can take one port: one protocol, one port (or
    overlapping ranges), one address or either on every address."""
    same_ip = a.host_ip == b.host_ip or ANY in (a.host_ip, b.host_ip)
    a_ports, b_ports = a.host_ports, b.host_ports
    overlap = bool(a_ports and b_ports) and a_ports.start <= b_ports[-1] \
        and b_ports.start <= a_ports[-1]
    return a.proto == b.proto and same_ip and overlap


def _bind(host_ip: str, port: int, proto: str) -> int:
    """Bind a socket as a published port would be; the port the kernel gave."""
    kind, number = _SOCKET[proto]
    try:
        sock = socket.socket(socket.AF_INET, kind, number)
    except OSError as err:
        if err.errno in (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
            raise NetworkError(f"cannot publish {proto} ports: this host's kernel has no "
                               f"{proto.upper()} support") from None
        raise NetworkError(f"cannot open a {proto} socket: {err.strerror}") from None
    with sock:
        if proto != "udp":  # a port left in TIME_WAIT is free; a listening one is not
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host_ip, port))
        return int(sock.getsockname()[1])


def pick_free_port(host_ip: str = ANY, proto: str = "tcp",
                   taken: Collection[int] = ()) -> int:
    """A host port nothing listens on now (the kernel's choice of an ephemeral one), not in
    ``taken`` (ports other containers publish by DNAT, which no socket shows)."""
    for _ in range(64):
        try:
            port = _bind(host_ip, 0, proto)
        except OSError as err:
            raise NetworkError(f"cannot pick a free port on {host_ip}: {err.strerror}") from None
        if port not in taken:
            return port
    raise NetworkError(f"no free {proto} port found on {host_ip}")


def check_free(host_ip: str, port: int, proto: str = "tcp",
               taken: Iterable[PortBinding] = ()) -> None:
    """Refuse, in docker's words, a host port another container publishes (``taken``) or a
    host socket holds."""
    wanted = PortBinding(host_ip, port, 0, proto)
    if any(_clash(wanted, t) for t in taken) or not _bindable(host_ip, port, proto):
        raise NetworkError(f"Bind for {host_ip}:{port} failed: port is already allocated")


def _bindable(host_ip: str, port: int, proto: str) -> bool:
    try:
        _bind(host_ip, port, proto)
    except OSError as err:
        if err.errno == errno.EADDRNOTAVAIL:
            raise NetworkError(f"cannot publish on {host_ip}: not an address of this host") \
                from None
        return False
    return True


def resolve(bindings: Iterable[PortBinding],
            taken: Iterable[PortBinding] = ()) -> tuple[PortBinding, ...]:
    """Each binding with its host port decided: a given one checked, 0 picked free, a host
    range its first free port. ``taken`` are other containers' resolved bindings; each one
    resolved here is taken for the next."""
    held = list(taken)
    out = []
    for b in bindings:
        if b.host_port_end:
            port = next((p for p in b.host_ports if _is_free(b.host_ip, p, b.proto, held)), 0)
            if not port:
                raise NetworkError(f"Bind for {b.host_ip}:{b.host_port}-{b.host_port_end} "
                                   "failed: port is already allocated")
            b = replace(b, host_port=port, host_port_end=0)
        elif b.host_port:
            check_free(b.host_ip, b.host_port, b.proto, held)
        else:
            used = {h.host_port for h in held if h.proto == b.proto}
            b = replace(b, host_port=pick_free_port(b.host_ip, b.proto, used))
        held.append(b)
        out.append(b)
    return tuple(out)


def _is_free(host_ip: str, port: int, proto: str, held: list[PortBinding]) -> bool:
    try:
        check_free(host_ip, port, proto, held)
    except NetworkError as err:
        if "already allocated" in str(err):
            return False
        raise
    return True


def inspect_ports(bindings: Iterable[PortBinding],
                  exposed_ports: Iterable[str] = ()) -> dict[str, list[dict[str, str]] | None]:
    """docker's ``NetworkSettings.Ports``: ``{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort":
    "8080"}]}``, an exposed port nothing publishes as ``None``."""
    out: dict[str, list[dict[str, str]] | None] = {key: None for key in exposed_ports}
    for b in bindings:
        entry = {"HostIp": b.host_ip, "HostPort": str(b.host_port) if b.host_port else ""}
        out[b.key] = [*(out.get(b.key) or []), entry]
    return out
