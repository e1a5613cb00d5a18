"""``client.networks`` in docker-py's shape: ``NetworkCollection`` and ``Network``.

Records and their checks are ``model``'s; the predefined ``bridge``, ``host`` and ``none`` are
``predefined``'s. Connecting and disconnecting a container is the runtime's, behind the small
interface ``Endpoints`` below, looked up lazily as the module ``pybuild.network.endpoints``::

    connect(store, network, container_id, *, aliases=(), ipv4_address=None) -> None
        join the container (any state) to ``network`` (a model.Network record), with its
        aliases and, if given, that address; a NetworkError line when it cannot.
    disconnect(store, network, container_id, *, force=False) -> None
        leave it: its address back to the IPAM, its veth and rules gone if running.
    remove_network(store, network) -> None        (optional)
        after the record is gone: the bridge and nft rules the network had, if any.

Until that module exists, ``connect``/``disconnect`` raise one NetworkError line.

An endpoint's ``MacAddress`` and ``EndpointID`` are derived (``model.mac_address``, ``endpoint_id``)
so inspect shows the same values the runtime gives the interface, with nothing stored.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pybuild.errors import ContainerNotFound, NetworkError, NetworkNotFound, UsageError
from pybuild.network import model, predefined
from pybuild.network.netfilters import LIST_KEYS, PRUNE_KEYS, list_matches, prune_matches
from pybuild.volumes.filters import normalise

if TYPE_CHECKING:
    from pybuild.client import Client
    from pybuild.store import Store

_ZERO = "0001-01-01T00:00:00Z"


class Endpoints(Protocol):
    """What ``pybuild.network.endpoints`` provides (see the module docstring)."""

    def connect(self, store: Store, network: model.Network, container_id: str, *,
                aliases: tuple[str, ...] = (), ipv4_address: str | None = None) -> None: ...

    def disconnect(self, store: Store, network: model.Network, container_id: str, *,
                   force: bool = False) -> None: ...


def _endpoints(needed: str = "connect") -> Endpoints:
    """The runtime's module, once it has ``needed``; else one NetworkError line."""
    import importlib

    try:
        module = importlib.import_module("pybuild.network.endpoints")
    except ModuleNotFoundError as err:
        if err.name != "pybuild.network.endpoints":  # a module it needs: its own error
            raise
        module = None
    if not callable(getattr(module, needed, None)):
        raise NetworkError("connecting a running container is not available yet")
    return module  # type: ignore[return-value]


def endpoint_id(network_id: str, container_id: str) -> str:
    return hashlib.sha256(f"{network_id}/{container_id}".encode()).hexdigest()


class Network:
    """One network as docker-py models it; ``attrs`` is ``docker network inspect``'s object.
    Not frozen, as docker-py's is not: ``reload()`` refreshes ``attrs`` in place."""

    def __init__(self, collection: NetworkCollection, attrs: dict[str, Any]):
        self.collection = collection
        self.attrs = attrs

    @property
    def id(self) -> str:
        return str(self.attrs["Id"])

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def name(self) -> str:
        return str(self.attrs["Name"])

    @property
    def containers(self) -> list[Any]:
        """The containers on this network, as client.containers.get gives them."""
        get = self.collection.client.containers.get
        out = []
        for cid in self.attrs.get("Containers") or {}:
            try:
                out.append(get(cid))
            except ContainerNotFound:  # gone since attrs were read
                continue
        return out

    def reload(self) -> None:
        self.attrs = self.collection.get(self.id).attrs

    def remove(self) -> None:
        self.collection.remove(self.id)

    def connect(self, container: Any, aliases: Sequence[str] | None = None,
                ipv4_address: str | None = None, **_: Any) -> None:
        self.collection.connect(self.id, container, aliases=aliases, ipv4_address=ipv4_address)

    def disconnect(self, container: Any, force: bool = False) -> None:
        self.collection.disconnect(self.id, container, force=force)

    def __repr__(self) -> str:
        return f"<Network: {self.short_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Network) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class NetworkCollection:
    """``client.networks``: create, get, list, prune, remove, connect, disconnect."""

    def __init__(self, client: Client):
        self.client = client

    @property
    def _root(self) -> Path:
        return self.client.store.root

    def create(self, name: str, driver: str | None = None,
               options: Mapping[str, str] | None = None, ipam: Mapping[str, Any] | None = None,
               check_duplicate: bool | None = None, internal: bool = False,
               labels: Mapping[str, str] | None = None, enable_ipv6: bool = False,
               **_: Any) -> Network:
        """A new network; ``ipam`` as docker-py's IPAMConfig (``{"Driver": "default",
        "Config": [{"Subnet", "Gateway", "IPRange"}]}``). Names are always unique, whatever
        ``check_duplicate`` says (docker 23+ ignores it too)."""
        from pybuild.image.config import rfc3339
        from pybuild.network.netoptions import check_options

        if predefined.is_predefined(name):
            raise NetworkError(f"operation is not permitted on predefined {name} network")
        if enable_ipv6:
            raise NetworkError(f"network {name}: IPv6 networks are not supported yet")
        driver = driver or "bridge"
        opts = check_options(name, driver, options or {})
        subnet, gateway, ip_range = _ipam_pool(name, ipam)
        self._default()  # the default bridge's subnet is taken before any user network's
        reserved: list[str] = []
        if subnet is None and driver == "bridge":  # as docker: a picked pool avoids routes
            reserved = [str(r) for r in _host_routes()]
        record = model.create(self._root, name, driver=driver, subnet=subnet,
                              gateway=gateway, ip_range=ip_range, internal=internal,
                              options=opts, labels=labels, reserved=reserved,
                              created=rfc3339(time.time()))
        return Network(self, self._attrs(record))

    def get(self, network_id: str, **_: Any) -> Network:
        return Network(self, self._attrs(self._record(network_id)))

    def list(self, names: Sequence[str] | None = None, ids: Sequence[str] | None = None,
             filters: Mapping[str, Any] | None = None, **_: Any) -> list[Network]:
        """Every network, by name, the predefined ones included; ``names`` and ``ids`` keep
        those exact names or ids; ``filters`` as ``network ls --filter`` (driver, id, label,
        name, scope, type, dangling)."""
        wanted = normalise(filters, LIST_KEYS)
        out = []
        for record in self._records():
            if names is not None and record.name not in names:
                continue
            if ids is not None and record.id not in ids:
                continue
            attrs = self._attrs(record)
            if list_matches(record, attrs, wanted, builtin=predefined.is_predefined(record.name)):
                out.append(Network(self, attrs))
        return out

    def remove(self, network_id: str) -> None:
        record = self._record(network_id)
        if predefined.is_predefined(record.name):
            raise NetworkError(f"{record.name} is a pre-defined network and cannot be removed")
        model.remove(self._root, record.id)
        self._teardown(record)

    def prune(self, filters: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
        """Remove every user network no container uses: ``{"NetworksDeleted": [names]}``;
        ``filters`` as ``network prune --filter`` (until, label, label!)."""
        wanted = normalise(filters, PRUNE_KEYS)
        deleted, failed = [], None
        for record in model.list_networks(self._root):
            if predefined.is_predefined(record.name) or not prune_matches(record, wanted):
                continue
            try:
                model.remove(self._root, record.id)
            except NetworkError:  # in use (joined since it was looked at, maybe)
                continue
            deleted.append(record.name)
            try:
                self._teardown(record)
            except NetworkError as err:  # the others are still pruned; this one is told
                failed = failed or err
        if failed is not None:
            raise failed
        return {"NetworksDeleted": deleted}

    def _teardown(self, record: model.Network) -> None:
        """The runtime's bridge and rules for a removed record, once there is a runtime."""
        try:
            teardown = _endpoints("remove_network").remove_network  # type: ignore[attr-defined]
        except NetworkError:  # no runtime yet: then it made no bridge either
            return
        teardown(self.client.store, record)

    def connect(self, network: str, container: Any, *, aliases: Sequence[str] | None = None,
                ipv4_address: str | None = None) -> None:
        runtime = _endpoints()
        record, container_id = self._endpoint(network, container, "connected to")
        runtime.connect(self.client.store, record, container_id,
                        aliases=tuple(aliases or ()), ipv4_address=ipv4_address or None)

    def disconnect(self, network: str, container: Any, *, force: bool = False) -> None:
        runtime = _endpoints("disconnect")
        record, container_id = self._endpoint(network, container, "disconnected from")
        runtime.disconnect(self.client.store, record, container_id, force=force)

    def _endpoint(self, network: str, container: Any, verb: str) -> tuple[model.Network, str]:
        record = self._record(network)
        if record.name in predefined.BUILTIN_DRIVERS:
            raise NetworkError(f"container cannot be {verb} the {record.name} network")
        ref = getattr(container, "id", container)
        return record, self.client.containers.get(str(ref)).id

    def _default(self) -> model.Network | None:
        return predefined.default_bridge(self._root)

    def _records(self) -> list[model.Network]:
        self._default()
        networks = model.list_networks(self._root) + predefined.builtins()
        return sorted(networks, key=lambda n: n.name)

    def _record(self, name_or_id: str) -> model.Network:
        if name_or_id in predefined.BUILTIN_DRIVERS:
            return predefined.builtin(name_or_id)
        if name_or_id == predefined.DEFAULT and self._default() is None:
            raise NetworkNotFound(f"network {name_or_id} not found")
        builtin = [n for n in predefined.builtins() if name_or_id and n.id.startswith(name_or_id)]
        try:
            record = model.get(self._root, name_or_id)
        except NetworkNotFound:
            if len(builtin) == 1:
                return builtin[0]
            raise
        if builtin:
            raise NetworkError(f"network {name_or_id} is ambiguous (several matches)")
        return record

    def _attrs(self, record: model.Network) -> dict[str, Any]:
        config = []
        if record.subnet:
            pool = {"Subnet": record.subnet, "Gateway": record.gateway}
            config = [{**pool, "IPRange": record.ip_range} if record.ip_range else pool]
        return {"Name": record.name, "Id": record.id, "Created": record.created or _ZERO,
                "Scope": "local", "Driver": record.driver, "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": {}, "Config": config},
                "Internal": record.internal, "Attachable": False, "Ingress": False,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
                "Containers": self._containers(record), "Options": dict(record.options),
                "Labels": dict(record.labels)}

    def _containers(self, record: model.Network) -> dict[str, dict[str, str]]:
        if not record.subnet:  # host, none: the running containers in that mode
            running = self.client.containers.list()
            return {c.id: self._entry(record, c.id, c.name, None) for c in running
                    if c.config.network_mode == record.name}
        prefix = ipaddress.ip_network(record.subnet).prefixlen
        out = {}
        for address, owner in model.ipam(self._root, record).allocations().items():
            out[owner] = self._entry(record, owner, self._name(owner), f"{address}/{prefix}")
        return out

    def _entry(self, record: model.Network, cid: str, name: str,
               address: str | None) -> dict[str, str]:
        ip = address.partition("/")[0] if address else ""
        return {"Name": name, "EndpointID": endpoint_id(record.id, cid),
                "MacAddress": model.mac_address(ip) if ip else "", "IPv4Address": address or "",
                "IPv6Address": ""}

    def _name(self, container_id: str) -> str:
        try:
            return self.client.containers.get(container_id).name
        except ContainerNotFound:  # an address whose container went without releasing it
            return ""


def _host_routes() -> list[ipaddress.IPv4Network]:
    from pybuild.network import links

    try:
        return links.host_routes()
    except NetworkError:  # no netlink here (not root, no pyroute2): the records still guard
        return []


def _ipam_pool(name: str, ipam: Mapping[str, Any] | None) -> tuple[str | None, ...]:
    """(subnet, gateway, ip-range) of docker-py's IPAMConfig, one pool at most."""
    if not ipam:
        return None, None, None
    if (ipam.get("Driver") or "default") != "default":
        raise NetworkError(f"network {name}: unknown IPAM driver {ipam.get('Driver')!r} "
                           "(only 'default')")
    pools = list(ipam.get("Config") or [])
    if len(pools) > 1:
        raise UsageError(f"network {name}: one subnet per network (IPv4 only for now), "
                         f"not {len(pools)}")
    if not pools:
        return None, None, None
    pool = pools[0]
    unknown = set(pool) - {"Subnet", "Gateway", "IPRange", "AuxiliaryAddresses"}
    if unknown or pool.get("AuxiliaryAddresses"):
        raise UsageError(f"network {name}: unsupported IPAM pool keys "
                         f"{', '.join(sorted(unknown) or ['AuxiliaryAddresses'])}")
    if ":" in str(pool.get("Subnet") or ""):  # the IPv4-only limit, before model's checks
        raise NetworkError(f"network {name}: IPv6 subnets are not supported yet")
    return pool.get("Subnet") or None, pool.get("Gateway") or None, pool.get("IPRange") or None
