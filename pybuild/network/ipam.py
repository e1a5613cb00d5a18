"""Address allocation for one network, persisted and locked so that concurrent pybuild processes
never hand out one address twice.

A network's directory holds ``ipam.json`` (``{"allocated": {ADDRESS: OWNER}, "last": ADDRESS}``)
and ``ipam.lock``; every read-modify-write holds an exclusive flock on the lock file, and the
JSON is replaced atomically, so a process killed mid-way leaves the old state or the new one.

Automatic addresses come from the ip-range (else the subnet), going on from the last one handed
out, as docker's serial allocation does, so that an address just released (a container just
removed, whose peers may still cache it) is not the next one given. A requested address (``--ip``)
needs only to be in the subnet, as in docker: the ip-range bounds automatic allocation only.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import NetworkError
from pybuild.store.fsutil import atomic_write
from pybuild.store.lock import FileLock

STATE = "ipam.json"
LOCK = "ipam.lock"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Pool:
    """What a network's addresses come from. The gateway is never handed out."""

    subnet: Subnet
    gateway: Address | None = None
    ip_range: Subnet | None = None

    @classmethod
    def parse(cls, subnet: str, gateway: str | None = None,
              ip_range: str | None = None) -> Pool:
        try:
            net = ipaddress.ip_network(subnet, strict=False)
            gw = ipaddress.ip_address(gateway) if gateway else None
            rng = ipaddress.ip_network(ip_range, strict=False) if ip_range else None
        except ValueError as err:
            raise NetworkError(f"invalid address pool: {err}") from None
        return cls(net, gw, rng)

    def __post_init__(self) -> None:
        if self.gateway is not None and self.gateway not in self.subnet:
            raise NetworkError(f"gateway {self.gateway} is not inside subnet {self.subnet}")
        if self.ip_range is not None and (self.ip_range.version != self.subnet.version
                                          or not self.ip_range.subnet_of(self.subnet)):
            raise NetworkError(f"ip-range {self.ip_range} is not inside subnet {self.subnet}")

    def bounds(self) -> tuple[int, int]:
        """The first and last automatic address, as integers: the range's (else the subnet's)
        hosts, without the subnet's own address and broadcast where it has them."""
        net = self.ip_range or self.subnet
        lo, hi = int(net.network_address), int(net.broadcast_address)
        if self.subnet.num_addresses > 2:  # /31 and /32 (RFC 3021) have no such addresses
            lo = max(lo, int(self.subnet.network_address) + 1)
            hi = min(hi, int(self.subnet.broadcast_address) - 1)
        return lo, hi

    def usable(self, address: Address) -> str | None:
        """Why ``address`` cannot be given to a container, or None."""
        if address not in self.subnet:
            return f"{address} is not inside subnet {self.subnet}"
        if address == self.gateway:
            return f"{address} is the network's gateway"
        if self.subnet.num_addresses > 2 and address in (
                self.subnet.network_address, self.subnet.broadcast_address):
            return f"{address} is the subnet's own or broadcast address"
        return None


class Ipam:
    """The allocations of one network, kept in ``directory``."""

    def __init__(self, directory: str | Path, pool: Pool, *, lock_timeout: float | None = 30):
        self.directory = Path(directory)
        self.pool = pool
        self._lock_timeout = lock_timeout

    def allocate(self, owner: str, requested: str | Address | None = None) -> Address:
        """An address for ``owner`` (a container id): ``requested`` if given and free, else the
        next free one. An owner that already holds an address gets that one back."""
        want = self._parse(requested) if requested is not None else None
        if want is not None:
            why = self.pool.usable(want)
            if why:
                raise NetworkError(f"invalid --ip: {why}")
        with self._state() as state:
            allocated: dict[str, str] = state["allocated"]
            for text, holder in allocated.items():
                if holder == owner and (want is None or ipaddress.ip_address(text) == want):
                    return ipaddress.ip_address(text)
            if want is not None:
                if str(want) in allocated:
                    raise NetworkError(f"address {want} is already in use "
                                       f"(by {allocated[str(want)][:12]})")
                address = want
            else:
                address = self._next_free(allocated, state.get("last"))
                state["last"] = str(address)
            allocated[str(address)] = owner
            return address

    def release(self, address: str | Address) -> bool:
        """Free ``address``; False if it was not allocated."""
        key = str(self._parse(address))
        with self._state() as state:
            return state["allocated"].pop(key, None) is not None

    def release_owner(self, owner: str) -> tuple[Address, ...]:
        """Free every address ``owner`` holds; the ones it held."""
        with self._state() as state:
            allocated: dict[str, str] = state["allocated"]
            gone = [text for text, holder in allocated.items() if holder == owner]
            for text in gone:
                del allocated[text]
        return tuple(ipaddress.ip_address(t) for t in gone)

    def allocations(self) -> dict[Address, str]:
        """Address -> owner, in address order."""
        with self._state(write=False) as state:
            items = state["allocated"].items()
        return dict(sorted((ipaddress.ip_address(a), o) for a, o in items))

    def _parse(self, text: str | Address) -> Address:
        try:
            return ipaddress.ip_address(str(text))
        except ValueError:
            raise NetworkError(f"invalid IP address {str(text)!r}") from None

    def _next_free(self, allocated: dict[str, str], last: str | None) -> Address:
        lo, hi = self.pool.bounds()
        taken = {int(ipaddress.ip_address(a)) for a in allocated}
        if self.pool.gateway is not None:
            taken.add(int(self.pool.gateway))
        free = (hi - lo + 1) - sum(1 for t in taken if lo <= t <= hi)
        if free <= 0:
            where = self.pool.ip_range or self.pool.subnet
            raise NetworkError(f"no free address left in {where} "
                               f"({len(allocated)} allocated)")
        start = int(ipaddress.ip_address(last)) + 1 if last else lo
        if not lo <= start <= hi:
            start = lo
        # at most len(taken) + 1 steps: some address is free
        candidate = start
        while candidate in taken:
            candidate = candidate + 1 if candidate < hi else lo
        return ipaddress.ip_address(candidate)

    @contextmanager
    def _state(self, *, write: bool = True) -> Iterator[dict]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(self.directory / LOCK, timeout=self._lock_timeout):
            path = self.directory / STATE
            try:
                state = json.loads(path.read_bytes())
                if not isinstance(state.get("allocated"), dict):
                    raise ValueError("no 'allocated' object")
            except FileNotFoundError:
                state = {"allocated": {}}
            except ValueError as err:
                raise NetworkError(f"{path}: unreadable IPAM state ({err})") from None
            before = json.dumps(state, sort_keys=True)
            yield state
            after = json.dumps(state, sort_keys=True, indent=1)
            if write and json.dumps(state, sort_keys=True) != before:
                atomic_write(path, after.encode())
