"""A container's network mode, as create records it, a start applies it and inspect shows it.

Modes, as docker's ``--network``: ``none`` (only lo), ``host`` (the host's), ``bridge`` (the
default bridge), a user network's name, and ``container:NAME`` (that container's netns, its
/etc/hosts, resolv.conf and hostname; recorded by id, as docker does). Joining a bridge or a
user network is ``pybuild.network.endpoints``'; this module is the container side of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pybuild.containers.model import ContainerConfig
from pybuild.errors import ContainerError, NetworkError, UsageError

PLAIN = ("none", "host")
CONTAINER = "container:"


def is_bridged(mode: str) -> bool:
    """Whether ``mode`` joins a network of its own (the default bridge or a user network)."""
    return mode not in PLAIN and not mode.startswith(CONTAINER)


def runner_mode(mode: str) -> str:
    """The sandbox's network mode (runner.spec.NETWORK_MODES) for a container's."""
    if mode in PLAIN:
        return mode
    return "container" if mode.startswith(CONTAINER) else "bridge"


def create_fields(store, mode: str, *, aliases: Sequence[str] = (), ip: str | None = None,
                  ports: Sequence[Any] = (), hostname: str = ""
                  ) -> tuple[str, tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    """(network_mode, networks, ports) for the container config, checked as docker checks
    them at create."""
    if not mode:  # the default network: its module loads only for a container that joins one
        from pybuild.network import predefined

        mode = predefined.DEFAULT
    if not is_bridged(mode):
        if aliases or ip:
            raise UsageError("network-scoped aliases and --ip are supported only for "
                             "containers in user defined networks")
        if mode.startswith(CONTAINER):
            if ports:
                raise UsageError("conflicting options: port publishing and the container "
                                 "type network mode")
            if hostname:
                raise UsageError("conflicting options: hostname and the network mode")
            from pybuild.containers.records import ContainerDirs

            target = mode[len(CONTAINER):]
            if not target:
                raise UsageError("--network container: needs a container name or id")
            found = ContainerDirs(store.root / "containers", store.tmp).resolve(target)
            return CONTAINER + found.id, (), ()
        return mode, (), ()  # ports are ignored with host and none, as docker does
    from pybuild.network import model, predefined

    if mode == predefined.DEFAULT:
        if aliases or ip:
            raise UsageError("network-scoped aliases and --ip are supported only for "
                             "containers in user defined networks")
    else:
        network = model.get(store.root, mode)
        mode = network.name
        if ip is not None:
            why = network.pool().usable(_address(ip))
            if why:
                raise UsageError(f"invalid --ip: {why}")
    entry = {"name": mode, "aliases": list(aliases), "ip": ip}
    return mode, (entry,), tuple(dataclasses.asdict(b) for b in ports)


def connect(store, network, container_id: str, *, aliases: Sequence[str] = (),
            ip: str | None = None) -> None:
    """Add ``network`` to the container's networks; a running one joins it now."""
    from pybuild.containers.lifecycle import current_state, dirs_of
    from pybuild.network import endpoints, predefined

    dirs = dirs_of(store)
    user = network.name != predefined.DEFAULT
    if not user and (aliases or ip):
        raise NetworkError("network-scoped aliases and --ip are supported only for "
                           "containers in user defined networks")
    if ip is not None:
        why = network.pool().usable(_address(ip))
        if why:
            raise NetworkError(f"invalid IPv4 address {ip}: {why}")
    with store.lock():
        config = dirs.config(container_id)
        if not is_bridged(config.network_mode):
            raise NetworkError(f"container cannot be connected to network {network.name}: "
                               f"its network mode is {config.network_mode}")
        if any(n["name"] == network.name for n in config.networks):
            raise NetworkError(f"endpoint with name {config.name} already exists in network "
                               f"{network.name}")
        entry = {"name": network.name, "aliases": list(aliases), "ip": ip}
        dirs.write_config(dataclasses.replace(config, networks=(*config.networks, entry)))
    state = current_state(store, container_id)
    if state.status == "running" and state.pid:
        try:
            endpoints.join_running(store.root, dirs.path(container_id), container_id,
                                   endpoints.Request(network.name, tuple(aliases), ip),
                                   state.pid)
        except BaseException:
            with store.lock():
                dirs.write_config(config)
            raise


def disconnect(store, network, container_id: str, *, force: bool = False) -> None:
    """Take ``network`` out of the container's networks; a running one leaves it now."""
    from pybuild.containers.lifecycle import current_state, dirs_of
    from pybuild.network import endpoints

    dirs = dirs_of(store)
    with store.lock():
        config = dirs.config(container_id)
        kept = tuple(n for n in config.networks if n["name"] != network.name)
        if len(kept) == len(config.networks):
            if force:
                return
            raise NetworkError(f"container {config.id[:12]} is not connected to network "
                               f"{network.name}")
        dirs.write_config(dataclasses.replace(config, networks=kept))
    state = current_state(store, container_id)  # a macvlan link is removed inside its netns
    endpoints.leave_running(store.root, dirs.path(container_id), container_id, network.id,
                            pid=state.pid if state.status == "running" else 0)


def _address(text: str):
    import ipaddress

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise UsageError(f"invalid --ip {text!r}: not an IP address") from None


def prepare(store, config: ContainerConfig, state_dir: Path, spec):
    """The run spec a start needs for the container's network, and the endpoints to plug in
    from the sandbox's prepare step (None when there are none); what attach made is undone
    by ``finish``."""
    if config.network_mode.startswith(CONTAINER):
        return _joined(store, config, spec), None
    if not is_bridged(config.network_mode):
        return spec, None
    from pybuild.network import endpoints
    from pybuild.network.ports import PortBinding

    requests = tuple(endpoints.Request(n["name"], tuple(n.get("aliases") or ()), n.get("ip"))
                     for n in config.networks)
    made = endpoints.attach(store.root, state_dir, container_id=config.id, name=config.name,
                            hostname=config.hostname, requests=requests,
                            ports=tuple(PortBinding(**p) for p in config.ports))
    return spec, made


def finish(store, config: ContainerConfig, state_dir: Path) -> None:
    """Undo what ``prepare`` attached (harmless when nothing is)."""
    if is_bridged(config.network_mode):
        from pybuild.network import endpoints

        endpoints.detach(store.root, state_dir, config.id)


def release(store, config: ContainerConfig, state_dir: Path) -> None:
    """At removal: whatever a killed monitor left attached."""
    with contextlib.suppress(NetworkError, OSError):
        finish(store, config, state_dir)


def _joined(store, config: ContainerConfig, spec):
    """``container:ID``: that running container's netns, hosts, resolv.conf and hostname."""
    from pybuild.containers.lifecycle import current_state
    from pybuild.containers.records import ContainerDirs

    target_id = config.network_mode[len(CONTAINER):]
    dirs = ContainerDirs(store.root / "containers", store.tmp)
    try:
        target = dirs.config(target_id)
    except ContainerError:
        raise ContainerError(f"joining network of container {target_id[:12]}: No such "
                             "container") from None
    state = current_state(store, target_id)
    if state.status != "running" or not state.pid:
        raise ContainerError(f"cannot join network of a non running container: "
                             f"{target_id}")
    etc = dirs.path(target_id) / "etc"
    shared = {f"/etc/{n}": etc / n for n in ("hosts", "hostname", "resolv.conf")}
    files = tuple((t, shared.get(t, s)) for t, s in spec.etc_files)
    return dataclasses.replace(spec, network="container", netns=f"/proc/{state.pid}/ns/net",
                               etc_files=files, hostname=target.hostname)


def settings(config: ContainerConfig, state_dir: Path, running: bool) -> dict[str, Any]:
    """docker inspect's ``NetworkSettings``: the top-level address fields for the default
    bridge only (as docker), ``Ports`` and one ``Networks`` entry per network."""
    from pybuild.network import endpoints
    from pybuild.network.api import endpoint_id
    from pybuild.network.ports import inspect_ports

    record = None
    if running:
        with contextlib.suppress(NetworkError):
            record = endpoints.read(state_dir)
    empty = {"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "",
             "EndpointID": ""}
    out: dict[str, Any] = {"Bridge": "", "SandboxID": "", "SandboxKey": "",
                           "HairpinMode": False, "Ports": {}, **empty, "Networks": {}}
    attached = {a.network: a for a in (record.attached if record else ())}
    names = [n["name"] for n in config.networks] or (
        [config.network_mode] if config.network_mode in PLAIN else [])
    for n in config.networks or [{"name": name} for name in names]:
        a = attached.get(n["name"])
        entry: dict[str, Any] = {
            "IPAMConfig": {"IPv4Address": n["ip"]} if n.get("ip") else None, "Links": None,
            "Aliases": list(n.get("aliases") or ()) or None,
            "NetworkID": a.network_id if a else "",
            "EndpointID": endpoint_id(a.network_id, config.id) if a else "",
            "Gateway": (a.gateway or "") if a else "", "IPAddress": a.ip if a else "",
            "IPPrefixLen": int(a.address.partition("/")[2]) if a else 0,
            "MacAddress": a.mac if a else "",
            "DNSNames": [config.name, *(n.get("aliases") or ()), config.id[:12]]
            if a and a.user else None}
        out["Networks"][n["name"]] = entry
        if a is not None and not a.user:
            out.update({k: entry[k] for k in empty})
    if record is not None:
        out["Ports"] = inspect_ports(record.ports)
    return out
