"""The daemon settings file: ``/etc/pybuild/daemon.json``, or the file ``$PYBUILD_CONFIG`` names.

The keys and their meanings are dockerd's ``daemon.json`` ones, so a docker user's file reads
the same here. A missing file means every default; a file that is not a JSON object, a key
pybuild does not know or a value of the wrong shape is one ``NetworkError`` line naming the
file and the key, as dockerd refuses to start on them.

The default bridge address is 172.29.0.1/16 rather than docker's 172.17.0.1/16, so that
pybuild0 and docker0 can live on one host. docker hands out user networks from 172.17-172.31
one /16 at a time in order, so 172.29 is reached only after a dozen docker networks; it also
stays clear of podman's 10.88.0.0/16 and of the 172.31.0.0/16 that cloud default VPCs use.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pybuild.errors import NetworkError

DEFAULT_PATH = "/etc/pybuild/daemon.json"
CONFIG_ENV = "PYBUILD_CONFIG"
DEFAULT_BRIDGE = "pybuild0"
DEFAULT_BIP = "172.29.0.1/16"
NO_BRIDGE = "none"  # as dockerd's "bridge": "none": no default bridge at all
IFNAMSIZ = 15  # the kernel's limit on an interface name, without the NUL


@dataclass(frozen=True)
class Settings:
    """What daemon.json says, with docker's defaults where it says nothing.

    ``bridge`` "" means pybuild's own ``pybuild0``, made from ``bip``; another name means an
    existing bridge to attach containers to (dockerd's ``-b``), ``"none"`` no default bridge.
    """

    bridge: str = ""
    bip: str = ""  # "" means DEFAULT_BIP for pybuild0; with a user's bridge, its own address
    fixed_cidr: str = ""  # a part of the bridge subnet that containers' addresses come from
    mtu: int = 1500
    default_gateway: str = ""  # containers' default route, "" meaning the bridge's address
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    ip_forward: bool = True
    ip_masq: bool = True
    iptables: bool = True  # false: pybuild writes no firewall rule at all
    userland_proxy: bool = True
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    default_runtime: str = ""  # "" means pybuild's own sandbox
    source: str = ""  # the file these came from, "" when there was none

    @property
    def bridge_name(self) -> str:
        return self.bridge or DEFAULT_BRIDGE

    @property
    def bridge_interface(self) -> ipaddress.IPv4Interface:
        """The default bridge's address with its prefix: ``bip``, else pybuild's default."""
        return ipaddress.IPv4Interface(self.bip or DEFAULT_BIP)

    @property
    def masquerade(self) -> bool:
        """Whether to write MASQUERADE rules: dockerd's iptables=false wins over ip-masq."""
        return self.ip_masq and self.iptables

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        if self.default_gateway:
            return ipaddress.IPv4Address(self.default_gateway)
        return self.bridge_interface.ip


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("not a list of strings")
    return tuple(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not true or false")
    return value


def _mtu(value: Any) -> int:
    # 68 is the least an IPv4 link may carry (RFC 791), 65535 the most an interface takes
    if isinstance(value, bool) or not isinstance(value, int) or not 68 <= value <= 65535:
        raise ValueError("not an MTU (an integer from 68 to 65535)")
    return value


def _bridge(value: Any) -> str:
    name = _string(value)
    if len(name) > IFNAMSIZ or "/" in name or any(c.isspace() for c in name) or name in (".", ".."):
        raise ValueError("not an interface name")
    return name


def _cidr_address(value: Any) -> str:
    text = _string(value)
    if "/" not in text:
        raise ValueError("not an address with a prefix length, as 172.29.0.1/16")
    iface = ipaddress.IPv4Interface(text)
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address) \
            and iface.network.prefixlen < 31:
        raise ValueError("the network's own or broadcast address, not a host's")
    return text


def _subnet(value: Any) -> str:
    ipaddress.IPv4Network(_string(value), strict=False)
    return _string(value)


def _address(value: Any) -> str:
    ipaddress.IPv4Address(_string(value))
    return _string(value)


def _addresses(value: Any) -> tuple[str, ...]:
    out = _strings(value)
    for item in out:
        ipaddress.ip_address(item)
    return out


# daemon.json key -> (dataclass field, parser that raises ValueError on a bad value)
_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "bridge": ("bridge", _bridge),
    "bip": ("bip", _cidr_address),
    "fixed-cidr": ("fixed_cidr", _subnet),
    "mtu": ("mtu", _mtu),
    "default-gateway": ("default_gateway", _address),
    "dns": ("dns", _addresses),
    "dns-search": ("dns_search", _strings),
    "ip-forward": ("ip_forward", _bool),
    "ip-masq": ("ip_masq", _bool),
    "iptables": ("iptables", _bool),
    "userland-proxy": ("userland_proxy", _bool),
    "insecure-registries": ("insecure_registries", _strings),
    "registry-mirrors": ("registry_mirrors", _strings),
    "default-runtime": ("default_runtime", _string),
}
assert {f for f, _ in _KEYS.values()} == {f.name for f in fields(Settings)} - {"source"}


def settings_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(CONFIG_ENV) or DEFAULT_PATH)


def load(path: str | os.PathLike[str] | None = None) -> Settings:
    """The settings in ``path`` (default: ``$PYBUILD_CONFIG``, else /etc/pybuild/daemon.json);
    every default when the file does not exist."""
    where = Path(path) if path is not None else settings_path()
    try:
        text = where.read_text()
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError) as err:
        raise NetworkError(f"{where}: cannot read the settings file: {err}") from None
    return parse(text, str(where))


def parse(text: str, where: str = "daemon.json") -> Settings:
    """``text`` as a daemon.json; errors name ``where`` and the key."""
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as err:
        raise NetworkError(f"{where}: invalid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise NetworkError(f"{where}: the settings are a JSON object, not {type(doc).__name__}")
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in _KEYS:
            raise NetworkError(f"{where}: unknown key {key!r} (known: {', '.join(_KEYS)})")
        name, convert = _KEYS[key]
        try:
            values[name] = convert(value)
        except ValueError as err:
            raise NetworkError(f"{where}: key {key!r}: invalid value {value!r}: {err}") from None
    settings = Settings(source=where, **values)
    _check_together(settings, where)
    return settings


def _check_together(s: Settings, where: str) -> None:
    """What dockerd refuses about keys in combination."""
    if s.bridge and s.bip:
        raise NetworkError(f"{where}: key 'bip': 'bridge' and 'bip' cannot both be set "
                           "(bip configures pybuild's own bridge)")
    if s.bridge == NO_BRIDGE and s.fixed_cidr:
        raise NetworkError(f"{where}: key 'fixed-cidr': no default bridge with bridge 'none'")
    if s.fixed_cidr and not s.bridge:
        cidr = ipaddress.IPv4Network(s.fixed_cidr, strict=False)
        if not cidr.subnet_of(s.bridge_interface.network):
            raise NetworkError(f"{where}: key 'fixed-cidr': {s.fixed_cidr} is not inside the "
                               f"bridge subnet {s.bridge_interface.network}")
    if s.default_gateway and not s.bridge:
        if s.gateway not in s.bridge_interface.network:
            raise NetworkError(f"{where}: key 'default-gateway': {s.default_gateway} is not "
                               f"inside the bridge subnet {s.bridge_interface.network}")
