"""A container's endpoints: its attachment to each network it runs on, made and undone.

One start goes in three steps, so that whatever can fail fails before anything runs:

* ``attach`` (the monitor, before the sandbox): what each network's driver needs on the host
  made where missing (``drivers``: a bridge and its firewall rules), an address from its IPAM
  (a requested ``--ip`` checked), the published ports decided (a free one picked for port 0,
  a taken one refused in docker's words) and DNAT-ed. What it did is recorded in the
  container's state dir (``endpoints.json``), for inspect, for name resolution
  (``hostsfile``) and for undoing it after a monitor that was killed.
* ``Endpoints.plug`` (the sandbox's ``prepare`` step, while PID 1 waits before its setup): a
  veth pair from each bridge into PID 1's netns, or a macvlan link of a macvlan network's
  parent made in it (``macvlan``), ``eth0``, ``eth1``, ...
* ``detach`` (after the run, and again at removal: it is idempotent): the rules go, the veths,
  the addresses back to their IPAMs, the record. A macvlan link has no host end: it goes
  with the container's netns.

A macvlan network has no bridge, no NAT and no published ports: its containers are on the
parent's segment with addresses of their own, and ``-p`` is ignored there, as docker's macvlan
driver ignores it (ports go to the first bridge network the container is on, if any). A bridge
that existed before its network (``hostbridge``) is used as it is and outlives it.

The firewall table is ``inet pybuild``, or the one ``$PYBUILD_NFT_TABLE`` names (tests keep
theirs apart with it); with the settings' ``iptables`` false nothing touches nftables.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pybuild.errors import NetworkError
from pybuild.network import drivers, links, macvlan, model, predefined, rules
from pybuild.network.drivers import table
from pybuild.network.nft import Nft
from pybuild.network.ports import PortBinding
from pybuild.network.publish import publish
from pybuild.network.settings import Settings
from pybuild.network.settings import load as load_settings

RECORD = "endpoints.json"
_HELD: dict[str, int] = {}  # container id -> its netns, open in the monitor while it runs


def container_tag(container_id: str) -> str:
    return "ctr-" + container_id[:16]


@dataclass(frozen=True)
class Request:
    """One network a container asks for (its config's ``networks`` entries)."""

    network: str
    aliases: tuple[str, ...] = ()
    ip: str | None = None


@dataclass(frozen=True)
class Attached:
    """A container on one network while it runs."""

    network: str
    network_id: str
    bridge: str  # a macvlan network's: its parent interface
    host_ifname: str  # "" for a macvlan link (no host end)
    address: str  # ADDR/PREFIX
    gateway: str | None  # its default route; None on an --internal network
    mac: str
    mtu: int
    aliases: tuple[str, ...] = ()
    user: bool = True  # a user network (names resolve), not the default bridge
    driver: str = "bridge"
    mode: str = ""  # a macvlan link's macvlan_mode

    def plug(self, netns: int | str, ifname: str, *, route: bool = True) -> None:
        """This network's interface ``ifname`` into ``netns`` (a pid or a path); its default
        route only with ``route`` (the first network's)."""
        gateway = self.gateway if route else None
        if self.driver == "macvlan":
            macvlan.connect(self.bridge, links.netns_path(netns), ifname=ifname,
                            address=self.address, mac=self.mac, mtu=self.mtu,
                            gateway=gateway, mode=self.mode)
            return
        links.connect(self.bridge, netns, host_ifname=self.host_ifname, address=self.address,
                      gateway=gateway, mtu=self.mtu, ifname=ifname, mac=self.mac)

    def unplug(self, netns: int | str | None = None) -> None:
        """Remove this network's interface: a veth by its host end; a macvlan link inside
        ``netns`` if given (else it goes with the netns)."""
        if self.driver != "macvlan":
            links.disconnect(self.host_ifname)
        elif netns:
            macvlan.disconnect(links.netns_path(netns), self.mac)

    @property
    def ip(self) -> str:
        return self.address.partition("/")[0]


@dataclass(frozen=True)
class Endpoints:
    """What ``attach`` made for one container: its ``endpoints.json``."""

    container_id: str
    name: str
    hostname: str
    attached: tuple[Attached, ...] = ()
    ports: tuple[PortBinding, ...] = ()
    monitor_pid: int = 0
    hosts_base: str = ""  # its /etc/hosts without the names of its networks' other members

    def plug(self, pid: int) -> None:
        """Each network's interface into the netns of ``pid`` (the sandbox's waiting PID 1);
        a failure here ends PID 1, and its netns takes along what was made in it. With a
        macvlan link the caller (the monitor) holds the netns until ``detach``: another
        container may share it (``container:NAME``) and outlive PID 1, and the link has no
        host end to delete it by."""
        if any(a.driver == "macvlan" for a in self.attached):
            _HELD[self.container_id] = os.open(links.netns_path(pid), os.O_RDONLY | os.O_CLOEXEC)
        for index, a in enumerate(self.attached):
            a.plug(pid, f"eth{index}", route=index == 0)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Endpoints:
        raw = json.loads(data)
        attached = tuple(Attached(**{**a, "aliases": tuple(a.get("aliases", ()))})
                         for a in raw.pop("attached", ()))
        ports = tuple(PortBinding(**p) for p in raw.pop("ports", ()))
        return cls(attached=attached, ports=ports, **raw)


def read(state_dir: str | Path) -> Endpoints | None:
    try:
        return Endpoints.from_json((Path(state_dir) / RECORD).read_bytes())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as err:
        raise NetworkError(f"{Path(state_dir) / RECORD}: unreadable ({err})") from None


def _write(state_dir: str | Path, record: Endpoints) -> None:
    from pybuild.store.fsutil import atomic_write

    atomic_write(Path(state_dir) / RECORD, record.to_json())


def resolve(store_root: str | Path, name: str, settings: Settings) -> model.Network:
    """The record of the network ``name`` (``bridge``: the default bridge's)."""
    if name == predefined.DEFAULT:
        found = predefined.default_bridge(store_root, settings)
        if found is None:
            raise NetworkError("no default bridge: the settings say \"bridge\": \"none\"")
        return found
    network = model.get(store_root, name)
    if network.driver not in ("bridge", "macvlan"):
        raise NetworkError(f"network {network.name}: driver {network.driver} cannot be joined")
    return network


def join(store_root: str | Path, settings: Settings, nft: Nft | None, container_id: str,
         req: Request) -> Attached:
    """One network's bridge and rules ensured and an address taken for ``container_id``."""

    network = resolve(store_root, req.network, settings)
    user = network.name != predefined.DEFAULT
    if not user and (req.aliases or req.ip):
        what = "network-scoped aliases" if req.aliases else "a user specified IP"
        raise NetworkError(f"{what} are supported only for containers in user defined "
                           "networks")
    drivers.ensure(network, settings, nft)
    address = model.ipam(store_root, network).allocate(container_id, req.ip)
    prefix = ipaddress.ip_network(network.subnet).prefixlen
    gateway = None if network.internal else (
        settings.default_gateway or network.gateway if not user else network.gateway)
    attached = Attached(network.name, network.id, network.bridge,
                        links.host_veth_name(container_id, network.id), f"{address}/{prefix}",
                        gateway, model.mac_address(str(address)), settings.mtu, tuple(req.aliases),
                        user)
    if network.driver != "macvlan":
        return attached
    try:
        mtu = int(network.options.get(predefined.MTU_OPTION) or macvlan.parent_mtu(
            network.name, network.options[macvlan.PARENT_OPTION]))
    except BaseException:
        _release(store_root, attached, container_id)
        raise
    return replace(attached, bridge=network.options[macvlan.PARENT_OPTION], host_ifname="",
                   mtu=mtu, driver="macvlan",
                   mode=network.options.get(macvlan.MODE_OPTION, macvlan.DEFAULT_MODE))


def attach(store_root: str | Path, state_dir: str | Path, *, container_id: str, name: str,
           hostname: str, requests: Sequence[Request],
           ports: Sequence[PortBinding] = ()) -> Endpoints:
    """Everything but the veths for a container about to start (see the module docstring);
    undone again if any of it fails. Its ``etc/hosts`` (as the start wrote it) gets its own
    address and, on user networks, its peers' names."""
    from pybuild.network import hostsfile

    settings = load_settings()
    record = Endpoints(container_id, name, hostname, monitor_pid=os.getpid())
    try:
        with drivers.nft_for(settings) as nft:
            for req in requests:
                joined = join(store_root, settings, nft, container_id, req)
                record = replace(record, attached=(*record.attached, joined))
                _write(state_dir, record)  # from here on, detach finds what to undo
            bridged = [a for a in record.attached if a.driver == "bridge"]
            if ports and bridged:
                record = replace(record, ports=publish(nft, table(), container_tag(
                    container_id), bridged[0].ip, ports))
        own = record.attached[0].ip if record.attached else ""
        hosts = Path(state_dir) / "etc" / "hosts"
        base = hostsfile.base(own, hostname, hosts.read_text() if hosts.is_file() else "")
        record = replace(record, hosts_base=base)
        _write(state_dir, record)
        hostsfile.write_in_place(hosts, base)
        hostsfile.refresh(store_root, {a.network_id for a in record.attached if a.user})
    except BaseException:
        with contextlib.suppress(Exception):
            detach(store_root, state_dir, container_id)
        raise
    return record


def join_running(store_root: str | Path, state_dir: str | Path, container_id: str,
                 req: Request, pid: int) -> Attached:
    """``network connect`` of a running container: one more network, its veth straight into
    PID ``pid``'s netns (no default route: eth0 keeps it, as docker's first network does)."""
    from pybuild.network import hostsfile

    record = read(state_dir)
    if record is None:
        raise NetworkError(f"container {container_id[:12]} has no network endpoints to add to")
    settings = load_settings()
    with drivers.nft_for(settings) as nft:
        joined = join(store_root, settings, nft, container_id, req)
    try:
        joined.plug(pid, f"eth{len(record.attached)}", route=False)
    except BaseException:
        _release(store_root, joined, container_id)
        raise
    _write(state_dir, replace(record, attached=(*record.attached, joined)))
    hostsfile.refresh(store_root, {a.network_id for a in (*record.attached, joined) if a.user})
    return joined


def leave_running(store_root: str | Path, state_dir: str | Path, container_id: str,
                  network_id: str, pid: int = 0) -> None:
    """``network disconnect`` of a running container (PID 1 ``pid``): that network's
    interface and address go, and its name leaves the other members' hosts files (and theirs
    its own)."""
    from pybuild.network import hostsfile

    record = read(state_dir)
    gone = [a for a in (record.attached if record else ()) if a.network_id == network_id]
    if record is None or not gone:
        return
    gone[0].unplug(pid or None)
    _release(store_root, gone[0], container_id)
    kept = tuple(a for a in record.attached if a.network_id != network_id)
    _write(state_dir, replace(record, attached=kept))
    hosts = Path(state_dir) / "etc" / "hosts"
    if record.hosts_base and hosts.exists():
        hostsfile.write_in_place(hosts, record.hosts_base)
    hostsfile.refresh(store_root, {network_id, *(a.network_id for a in kept if a.user)})


def connect(store, network: model.Network, container_id: str, *,
            aliases: tuple[str, ...] = (), ipv4_address: str | None = None) -> None:
    """``client.networks.connect`` (see network.api): the container side's."""
    from pybuild.containers.networking import connect as container_connect

    container_connect(store, network, container_id, aliases=aliases, ip=ipv4_address)


def disconnect(store, network: model.Network, container_id: str, *,
               force: bool = False) -> None:
    from pybuild.containers.networking import disconnect as container_disconnect

    container_disconnect(store, network, container_id, force=force)


def detach(store_root: str | Path, state_dir: str | Path, container_id: str) -> None:
    """Undo ``attach`` (and ``plug``): rules, veths, addresses, the record; the names the
    networks' other members resolve are rewritten. Harmless when nothing is attached. Every
    step is tried; the first failure is raised after the rest."""
    from pybuild.network import hostsfile

    record = read(state_dir)
    if record is None:
        return
    errors: list[BaseException] = []
    settings = load_settings()
    try:
        with drivers.nft_for(settings) as nft:
            if nft is not None and record.ports:
                from pybuild.network import nft as nftlib

                if nftlib.exists(nft, table()):
                    rules.unpublish(nft, table(), container_tag(container_id))
    except NetworkError as err:
        errors.append(err)
    held = _HELD.pop(container_id, None)
    netns = f"/proc/{os.getpid()}/fd/{held}" if held is not None else None
    for a in record.attached:
        for step in (lambda a=a: a.unplug(netns),
                     lambda a=a: _release(store_root, a, container_id)):
            try:
                step()
            except NetworkError as err:
                errors.append(err)
    if held is not None:
        os.close(held)
    with contextlib.suppress(FileNotFoundError):
        (Path(state_dir) / RECORD).unlink()
    try:
        hostsfile.refresh(store_root, {a.network_id for a in record.attached if a.user})
    except (NetworkError, OSError) as err:
        errors.append(err)
    if errors:
        raise errors[0]


def _release(store_root: str | Path, a: Attached, container_id: str) -> None:
    try:
        network = model.get(store_root, a.network_id)
    except NetworkError:  # the record went (removed by force): so did its addresses
        return
    model.ipam(store_root, network).release_owner(container_id)


def remove_network(store, network: model.Network) -> None:
    """After ``network``'s record is gone: what its driver made on the host."""
    settings = load_settings()
    with drivers.nft_for(settings) as nft:
        drivers.teardown(network, settings, nft)
