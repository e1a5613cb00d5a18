"""The ``-o`` driver options ``network create`` takes, checked when the network is made so a
typo fails there rather than when the first container joins."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pybuild.errors import NetworkError


def _bool(value: str) -> str | None:
    return None if value.lower() in ("true", "false", "1", "0") else "true or false"


def _mtu(value: str) -> str | None:
    ok = value.isascii() and value.isdigit() and 68 <= int(value) <= 65535
    return None if ok else "an MTU from 68 to 65535"


def _name(value: str) -> str | None:
    return None if 0 < len(value) <= 15 and "/" not in value and " " not in value else \
        "an interface name of at most 15 characters"


def _ipv4(value: str) -> str | None:
    import ipaddress

    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return "an IPv4 address"
    return None


def _mode(value: str) -> str | None:
    from pybuild.network.macvlan import MODES

    return None if value in MODES else f"{', '.join(MODES[:-1])} or {MODES[-1]}"


Check = Callable[[str], str | None]  # why the value is wrong (what it should be), or None
_COMMON: dict[str, Check] = {"com.docker.network.driver.mtu": _mtu}
KNOWN: dict[str, dict[str, Check]] = {
    "bridge": {**_COMMON, "com.docker.network.bridge.name": _name,
               "com.docker.network.bridge.enable_ip_masquerade": _bool,
               "com.docker.network.bridge.enable_icc": _bool,
               "com.docker.network.bridge.host_binding_ipv4": _ipv4,
               "com.docker.network.container_iface_prefix": _name},
    "macvlan": {**_COMMON, "parent": _name, "macvlan_mode": _mode},
}


def check_options(network: str, driver: str, options: Mapping[str, str]) -> dict[str, str]:
    """``options`` as a dict, each key one ``driver`` knows with a value of its shape."""
    known = KNOWN.get(driver)
    if known is None:
        raise NetworkError(f"network {network}: unknown driver {driver!r} "
                           f"(known: {', '.join(KNOWN)})")
    out = {}
    for key, value in options.items():
        if key not in known:
            raise NetworkError(f"network {network}: unknown option {key!r} for driver "
                               f"{driver} (known: {', '.join(known)})")
        why = known[key](str(value))
        if why:
            raise NetworkError(f"network {network}: invalid value {value!r} for option "
                               f"{key}: {why}")
        out[key] = str(value)
    return out
