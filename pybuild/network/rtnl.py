"""rtnetlink requests on a plain socket, with pyroute2's message classes for the wire format.

A bridge start makes a handful of requests (a veth pair, an address, a route, a few link
changes), and pyroute2's ``IPRoute`` costs more than all of them: importing ``pyroute2`` runs
its package ``__init__``, which imports every part of the library, asyncio included (~250 ms
here), and its ``NetNS`` forks a helper process to open a socket in another netns. So this
module imports only the message classes (``pyroute2.netlink.rtnl.*msg``, ~50 ms: ``lazy``
below keeps the package ``__init__`` from running) and opens a socket in another netns from a
short-lived thread that has joined it (setns is per thread for network namespaces).

One ``Rtnl`` is one socket; ``request`` sends one message and waits for its acknowledgement
(or, for a dump, every reply up to NLMSG_DONE). A kernel error is an ``OSError`` with the
kernel's errno, for the caller to word.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import os
import socket
import struct
import sys
import threading
import types
from typing import Any

NETLINK_ROUTE = 0
CLONE_NEWNET = 0x40000000

# <linux/netlink.h>, <linux/rtnetlink.h>
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
IFF_UP = 0x1
_GETS = (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE)
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id


def lazy_pyroute2() -> None:
    """Make ``pyroute2`` importable without running its ``__init__`` until something asks the
    package itself for a name (``from pyroute2 import IPRoute`` still works, then at the full
    price): its submodules load as usual."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError("No module named 'pyroute2'", name="pyroute2")
    package = importlib.util.module_from_spec(spec)
    whole = threading.Lock()

    def __getattr__(name: str) -> Any:
        if importlib.util.find_spec(f"pyroute2.{name}") is not None:  # a submodule
            return importlib.import_module(f"pyroute2.{name}")
        with whole:
            if package.__dict__.pop("__getattr__", None) is not None:
                spec.loader.exec_module(package)  # the real __init__, once
        return getattr(package, name)

    package.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules["pyroute2"] = package


def messages() -> types.SimpleNamespace:
    """pyroute2's ifinfmsg, ifaddrmsg and rtmsg classes."""
    lazy_pyroute2()
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    return types.SimpleNamespace(ifinfmsg=ifinfmsg, ifaddrmsg=ifaddrmsg, rtmsg=rtmsg)


def _socket_in(path: str) -> socket.socket:
    """A NETLINK_ROUTE socket of the network namespace at ``path``, made by a thread that
    joined it (the thread ends there; this process stays where it is)."""
    from pybuild.runner.libc import setns

    made: list[socket.socket | BaseException] = []

    def enter() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            made.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
        except BaseException as err:  # handed to the caller's thread
            made.append(err)

    thread = threading.Thread(target=enter, name="rtnl-netns")
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


class Rtnl:
    """One rtnetlink socket, in this process's netns or the one at ``netns`` (a path)."""

    def __init__(self, netns: str | None = None):
        self.msg = messages()
        self.sock = (_socket_in(netns) if netns else
                     socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE))
        try:
            self.sock.bind((0, 0))
        except OSError:
            self.sock.close()
            raise
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, kind: str, msg_type: int, nl_flags: int = 0, *,
                attrs: list | tuple = (), **fields: Any) -> list:
        """Send one ``kind`` message (``ifinfmsg``, ...) with the header flags ``nl_flags``
        and the message's ``fields`` and ``attrs``; the decoded replies. An OSError with the
        kernel's errno if it refused."""
        cls = getattr(self.msg, kind)
        msg = cls()
        for key, value in fields.items():
            msg[key] = value
        msg["attrs"] = [list(a) for a in attrs]
        self.seq += 1
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | nl_flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(msg.data)
        # NLM_F_DUMP's bits are NLM_F_EXCL's too: only a GET request dumps
        return self._replies(cls, dump=msg_type in _GETS and nl_flags & NLM_F_DUMP == NLM_F_DUMP)

    def _replies(self, cls, dump: bool) -> list:
        out = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, msg_type, _flags, seq, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise OSError(errno.EPROTO, "malformed netlink reply")
                if seq == self.seq:
                    if msg_type == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                        if code:
                            raise OSError(-code, os.strerror(-code))
                        if not dump:
                            return out
                    elif msg_type == NLMSG_DONE:
                        return out
                    else:
                        reply = cls(data[offset:offset + length])
                        reply.decode()
                        out.append(reply)
                offset += (length + 3) & ~3

    # the few requests links.py makes

    def link(self, name: str):
        """The link ``name`` (its ifinfmsg), or None."""
        try:
            [found] = self.request("ifinfmsg", RTM_GETLINK, attrs=[("IFLA_IFNAME", name)])
        except OSError as err:
            if err.errno == errno.ENODEV:
                return None
            raise
        return found

    def set_link(self, index: int, *, up: bool = False, attrs: list | tuple = ()) -> None:
        self.request("ifinfmsg", RTM_NEWLINK, index=index, attrs=attrs,
                     flags=IFF_UP if up else 0, change=IFF_UP if up else 0)

    def add_link(self, name: str, kind: str, *, attrs: list | tuple = (), data=None) -> None:
        info = [("IFLA_INFO_KIND", kind)] + ([("IFLA_INFO_DATA", data)] if data else [])
        self.request("ifinfmsg", RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                     attrs=[("IFLA_IFNAME", name), *attrs, ("IFLA_LINKINFO", {"attrs": info})])

    def del_link(self, index: int) -> None:
        self.request("ifinfmsg", RTM_DELLINK, index=index)

    def addresses(self, index: int) -> list[tuple[str, int]]:
        """(address, prefix length) of the link ``index``."""
        found = self.request("ifaddrmsg", RTM_GETADDR, NLM_F_DUMP, family=socket.AF_UNSPEC)
        return [(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in found
                if a["index"] == index]

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.request("ifaddrmsg", RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, family=family,
                     prefixlen=prefixlen, index=index,
                     attrs=[("IFA_LOCAL", address), ("IFA_ADDRESS", address)])

    def add_default_route(self, gateway: str, index: int) -> None:
        # main table, boot protocol, universe scope, unicast: what `ip route add` makes
        self.request("rtmsg", RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, family=socket.AF_INET,
                     dst_len=0, table=254, proto=3, scope=0, type=1,
                     attrs=[("RTA_GATEWAY", gateway), ("RTA_OIF", index)])

    def routes(self, family: int = socket.AF_INET) -> list:
        return self.request("rtmsg", RTM_GETROUTE, NLM_F_DUMP, family=family)
