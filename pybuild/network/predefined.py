"""docker's predefined networks: ``bridge`` (the default bridge), ``host`` and ``none``.

``bridge`` is a real network record (``model``), named ``bridge``, made on first use from the
settings: pybuild0 with ``bip`` (or an existing bridge the settings name, with that bridge's
own address), ``fixed-cidr`` as its ip-range. So the default bridge's addresses come from one
IPAM like every other network's, and ``default_bridge`` is what the runtime and the API both
call to find it. When the settings change, a record nothing uses is made again to match.

``host`` and ``none`` have no record and no addresses: ``builtin`` gives a ``model.Network``
for each with a fixed id (so ``network inspect host`` is the same every time), driver ``host``
or ``null`` and empty subnet and gateway.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from pathlib import Path

from pybuild.errors import NetworkError, NetworkNotFound
from pybuild.network import model
from pybuild.network.settings import NO_BRIDGE, Settings
from pybuild.network.settings import load as load_settings

DEFAULT = "bridge"
BUILTIN_DRIVERS = {"host": "host", "none": "null"}
PREDEFINED = (DEFAULT, *BUILTIN_DRIVERS)
MTU_OPTION = "com.docker.network.driver.mtu"


def is_predefined(name: str) -> bool:
    return name in PREDEFINED


def builtin(name: str) -> model.Network:
    """``host`` or ``none`` as a network without a record."""
    if name not in BUILTIN_DRIVERS:
        raise NetworkNotFound(f"network {name} not found")
    digest = hashlib.sha256(f"pybuild predefined network {name}".encode()).hexdigest()
    return model.Network(name, digest, BUILTIN_DRIVERS[name], "", "")


def builtins() -> list[model.Network]:
    return [builtin(name) for name in BUILTIN_DRIVERS]


def _wanted(settings: Settings) -> tuple[str, str, str | None, dict[str, str]]:
    """(subnet, gateway, ip-range, options) the default bridge's record should have."""
    name = settings.bridge_name
    if settings.bridge:  # an existing bridge: its own address says which subnet it serves
        from pybuild.network import hostbridge

        ours = hostbridge.probe(name)
        if ours is None:
            raise NetworkError(f"bridge {name} (the settings' 'bridge') does not exist; "
                               "pybuild uses it as it is and does not make it")
        if not ours:
            raise NetworkError(f"bridge {name} (the settings' 'bridge') has no IPv4 address")
        iface = ours[0]
    else:
        iface = settings.bridge_interface
    options = {model.BRIDGE_NAME_OPTION: name, model.DEFAULT_BRIDGE_OPTION: "true",
               MTU_OPTION: str(settings.mtu)}
    return str(iface.network), str(iface.ip), settings.fixed_cidr or None, options


def default_bridge(store_root: str | Path, settings: Settings | None = None
                   ) -> model.Network | None:
    """The ``bridge`` network's record, made (or made again to match changed settings, when
    no container uses it) on first use; None with the settings' ``"bridge": "none"``.
    Settings default to ``settings.load()`` (``$PYBUILD_CONFIG`` or /etc/pybuild)."""
    settings = settings if settings is not None else load_settings()
    current = _find(store_root)
    if settings.bridge == NO_BRIDGE:  # a record nothing uses goes; one in use stays listed
        if current is not None and not model.ipam(store_root, current).allocations():
            model.remove(store_root, current.id)
        return None
    subnet, gateway, ip_range, options = _wanted(settings)
    if current is not None:
        same = (current.subnet, current.gateway, current.ip_range, current.options) == \
            (subnet, gateway, ip_range, options)
        if same or model.ipam(store_root, current).allocations():
            return current  # in use: its containers keep the addresses they were given
        try:
            model.remove(store_root, current.id)
        except NetworkError:  # another process removed it, or a container just joined it
            joined = _find(store_root)
            if joined is not None and joined.id == current.id:
                return joined
    network = ipaddress.ip_network(subnet)
    if network.prefixlen >= 31:
        raise NetworkError(f"the default bridge's subnet {network} has no room for containers")
    try:
        return model.create(store_root, DEFAULT, subnet=subnet, gateway=gateway,
                            ip_range=ip_range, options=options,
                            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            external_bridge=bool(settings.bridge))
    except NetworkError:
        found = _find(store_root)  # another process made it at the same moment
        if found is None:
            raise
        return found


def _find(store_root: str | Path) -> model.Network | None:
    return next((n for n in model.list_networks(store_root) if n.name == DEFAULT), None)
