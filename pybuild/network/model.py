"""Network records: ``<store root>/networks/<id>/network.json`` beside that network's IPAM.

Creation and removal hold ``networks/lock``, so two ``network create`` at once cannot both take
one name or overlapping subnets. Only the record lives here; the bridge and firewall rules are
made when a container first joins (links, rules), as docker's bridge driver does lazily too.
What the record depends on in the host is looked at once, when it is made: a macvlan network's
parent must exist, and a bridge named by ``-o com.docker.network.bridge.name`` that exists
already is the user's (``external_bridge``, see hostbridge): its subnet and gateway are its own.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pybuild.errors import NetworkError, NetworkNotFound
from pybuild.network.ipam import Ipam, Pool
from pybuild.randomid import hex_id
from pybuild.store.fsutil import atomic_write
from pybuild.store.lock import FileLock

DRIVERS = ("bridge", "macvlan")
RECORD = "network.json"
# Addresses are handed out host-wide, per bridge interface: every store root whose containers
# join a bridge (pybuild0 above all) shares its address space, so they share one IPAM. /run,
# as an allocation lives only while its container runs.
IPAM_ROOT = Path("/run/pybuild/ipam")
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
DEFAULT_BRIDGE_OPTION = "com.docker.network.bridge.default_bridge"
# user networks without --subnet get the first free /24 of this (clear of pybuild0's
# 172.29.0.0/16, docker0's 172.17.0.0/16 and cloud VPCs' 172.31.0.0/16)
DEFAULT_POOL = ipaddress.IPv4Network("172.30.0.0/16")
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # docker's network name rule


def mac_address(ip: str) -> str:
    """docker's MAC for an address: 02:42 and the IPv4 address's four bytes (what a
    container's interface gets, and what inspect shows)."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


@dataclass(frozen=True)
class Network:
    name: str
    id: str
    driver: str
    subnet: str
    gateway: str
    ip_range: str | None = None
    internal: bool = False
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    created: str = ""
    external_bridge: bool = False  # there before the network: never re-addressed or deleted
    made_parent: bool = False  # a macvlan parent (BASE.VID) pybuild makes and deletes

    @property
    def bridge(self) -> str:
        """The bridge interface: ``-o com.docker.network.bridge.name``, else ``pb-`` and 12
        digits of the id (docker's ``br-`` + 12, so the two are told apart on one host)."""
        return self.options.get(BRIDGE_NAME_OPTION) or "pb-" + self.id[:12]

    def pool(self) -> Pool:
        return Pool.parse(self.subnet, self.gateway, self.ip_range)


def _root(store_root: str | Path) -> Path:
    return Path(store_root) / "networks"


def ipam(store_root: str | Path, network: Network) -> Ipam:
    """The allocations of ``network`` (of the store at ``store_root``): those of its bridge,
    whichever store's containers hold them."""
    return Ipam(IPAM_ROOT / network.bridge, network.pool())


def list_networks(store_root: str | Path) -> list[Network]:
    root = _root(store_root)
    if not root.is_dir():
        return []
    out = [_read(d / RECORD) for d in sorted(root.iterdir()) if (d / RECORD).is_file()]
    return sorted(out, key=lambda n: n.name)


def get(store_root: str | Path, name_or_id: str) -> Network:
    """By exact name, else by full id, else by a unique id prefix (as docker)."""
    networks = list_networks(store_root)
    by_name = {n.name: n for n in networks}
    if name_or_id in by_name:
        return by_name[name_or_id]
    prefixed = [n for n in networks if name_or_id and n.id.startswith(name_or_id)]
    whole = [n for n in prefixed if n.id == name_or_id]
    if whole or len(prefixed) == 1:
        return (whole or prefixed)[0]
    if prefixed:
        raise NetworkError(f"network {name_or_id} is ambiguous ({len(prefixed)} matches)")
    raise NetworkNotFound(f"network {name_or_id} not found")


def create(store_root: str | Path, name: str, *, driver: str = "bridge",
           subnet: str | None = None, gateway: str | None = None,
           ip_range: str | None = None, internal: bool = False,
           options: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
           reserved: Sequence[str] = (), created: str = "",
           external_bridge: bool | None = None) -> Network:
    """A new network record. ``reserved`` are subnets taken outside pybuild's records (the
    default bridge's bip, the host's routes): an overlap with one is refused like one with
    another network. ``external_bridge`` None: whether the named bridge exists now decides."""
    if not _NAME.fullmatch(name or ""):
        raise NetworkError(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                           "are allowed")
    if driver not in DRIVERS:
        raise NetworkError(f"network {name}: unknown driver {driver!r} "
                           f"(known: {', '.join(DRIVERS)})")
    opts = dict(options or {})
    if driver == "macvlan" and "parent" not in opts:
        raise NetworkError(f"network {name}: macvlan needs -o parent=INTERFACE")
    if BRIDGE_NAME_OPTION in opts and len(opts[BRIDGE_NAME_OPTION]) > 15:
        raise NetworkError(f"network {name}: bridge name {opts[BRIDGE_NAME_OPTION]!r} is "
                           "longer than 15 characters")
    made_parent = False
    if driver == "macvlan" and internal:  # docker's sits on a dummy parent, off the segment
        raise NetworkError(f"network {name}: --internal macvlan networks are not supported "
                           "yet")
    if driver == "macvlan":
        from pybuild.network.macvlan import parent_to_make

        made_parent = parent_to_make(name, opts["parent"])
    if driver == "bridge" and external_bridge is None and BRIDGE_NAME_OPTION in opts:
        subnet, gateway, reserved, external_bridge = _existing_bridge(
            name, opts[BRIDGE_NAME_OPTION], subnet, gateway, reserved)
    if (gateway or ip_range) and not subnet:
        raise NetworkError(f"network {name}: --gateway and --ip-range need --subnet")
    root = _root(store_root)
    with FileLock(root / "lock", timeout=30):
        existing = list_networks(store_root)
        if any(n.name == name for n in existing):
            raise NetworkError(f"network with name {name} already exists")
        _parent_free(name, driver, opts, existing)
        taken = [(n.name, ipaddress.ip_network(n.subnet)) for n in existing]
        taken += [(f"reserved {r}", ipaddress.ip_network(r, strict=False)) for r in reserved]
        net = _subnet(name, subnet, taken)
        gw = gateway or str(next(net.hosts()))
        try:
            Pool.parse(str(net), gw, ip_range)
        except NetworkError as err:
            raise NetworkError(f"network {name}: {err}") from None
        if ipaddress.ip_address(gw) in (net.network_address, net.broadcast_address):
            raise NetworkError(f"network {name}: gateway {gw} is the subnet's own address")
        record = Network(name, hex_id(), driver, str(net), gw, ip_range or None,
                         internal, opts, dict(labels or {}), created, bool(external_bridge),
                         made_parent)
        directory = root / record.id
        directory.mkdir(parents=True)
        atomic_write(directory / RECORD, json.dumps(asdict(record), indent=1).encode())
    return record


def _parent_free(name: str, driver: str, opts: Mapping[str, str],
                 existing: Sequence[Network]) -> None:
    """One macvlan network per parent interface, as docker's driver keeps it."""
    parent = opts.get("parent")
    users = [n.name for n in existing if driver == "macvlan" and n.driver == "macvlan"
             and n.options.get("parent") == parent]
    if users:
        raise NetworkError(f"network {name}: network {users[0]} is already using parent "
                           f"interface {parent}")


def _existing_bridge(name: str, bridge: str, subnet: str | None, gateway: str | None,
                     reserved: Sequence[str]) -> tuple[str | None, str | None, Sequence[str], bool]:
    """(subnet, gateway, reserved, external) for a network naming ``bridge``: unchanged when
    there is no such interface (pybuild will make it), else the bridge's own pool, and its own
    route no longer counted as taken."""
    from pybuild.network import hostbridge

    found = hostbridge.probe(bridge)
    if found is None:
        return subnet, gateway, reserved, False
    subnet, gateway = hostbridge.pool(name, bridge, found, subnet, gateway)
    own = ipaddress.ip_network(subnet)
    kept = [r for r in reserved if ipaddress.ip_network(r, strict=False) != own]
    return subnet, gateway, kept, True


def _subnet(name: str, subnet: str | None, taken: list[tuple[str, Any]]):
    if subnet:
        try:
            net = ipaddress.ip_network(subnet, strict=True)
        except ValueError as err:
            raise NetworkError(f"network {name}: invalid --subnet {subnet}: {err}") from None
        for other, existing in taken:
            if net.version == existing.version and net.overlaps(existing):
                raise NetworkError(f"network {name}: subnet {net} overlaps {existing} of "
                                   f"{other}")
        return net
    for candidate in DEFAULT_POOL.subnets(new_prefix=24):
        if not any(candidate.overlaps(t) for _, t in taken if t.version == 4):
            return candidate
    raise NetworkError(f"network {name}: no free subnet left in {DEFAULT_POOL}; "
                       "give --subnet")


def remove(store_root: str | Path, name_or_id: str) -> Network:
    """Remove a network that no container uses (its IPAM holds no address)."""
    root = _root(store_root)
    with FileLock(root / "lock", timeout=30):
        network = get(store_root, name_or_id)
        users = ipam(store_root, network).allocations()
        if users:
            who = ", ".join(sorted(o[:12] for o in users.values()))
            raise NetworkError(f"error while removing network {network.name}: it has active "
                               f"endpoints ({who})")
        shutil.rmtree(root / network.id)
        if not network.options.get(DEFAULT_BRIDGE_OPTION):  # pybuild0's is every store's
            shutil.rmtree(IPAM_ROOT / network.bridge, ignore_errors=True)
    return network


def _read(path: Path) -> Network:
    try:
        doc = json.loads(path.read_bytes())
        return Network(**{k: doc[k] for k in Network.__dataclass_fields__ if k in doc})
    except (OSError, ValueError, TypeError) as err:
        raise NetworkError(f"{path}: unreadable network record ({err})") from None
