"""How to reach a registry host: scheme, certificate checks, client certificates.

Docker's rules, with one deliberate difference for loopback:

- Every registry is https, verified against the system's CAs, unless said otherwise.
- ``certs.d/HOST[:PORT]/`` (``/etc/pybuild/certs.d``, or the directory ``$PYBUILD_CERTS_D``
  names, laid out as ``/etc/docker/certs.d``): every ``*.crt`` is a CA, added to the system's
  (docker merges them on Linux); every ``*.cert`` is a client certificate whose key is the
  ``*.key`` of the same name. Docker tries several pairs in turn; requests takes one, so the
  first in alphabetical order is used.
- daemon.json's ``insecure-registries``: entries are ``HOST[:PORT]`` (matched exactly, as
  docker's index configs are) or CIDRs (matched against the host's address, a name resolved
  first, as docker does). Such a registry is tried over https without verification, then
  over plain http, as docker does.
- Loopback (``localhost``, ``127.0.0.0/8``, ``::1``): docker counts 127.0.0.0/8 among the
  insecure registries, so it skips certificate checks there. pybuild only allows plain http
  there: it asks the port whether it speaks TLS (one handshake, nothing sent), and a port that
  does is https verified like any other registry (certs.d applies). So a TLS registry on this
  machine is as safe as a remote one, and a certificate it cannot verify is said, not ignored;
  ``insecure-registries`` still turns the checks off for it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import RegistryError

DEFAULT_CERTS_D = "/etc/pybuild/certs.d"
CERTS_D_ENV = "PYBUILD_CERTS_D"
PROBE_TIMEOUT = 2.0
LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True)
class Endpoint:
    host: str  # as in a reference: name[:port]
    schemes: tuple[str, ...]  # tried in order, "https" and/or "http"
    verify: bool | str = True  # requests' verify: False, True, or a CA bundle path
    cert: tuple[str, str] | None = None  # (client cert, key) for mutual TLS

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://{self.host}{path}"


def endpoint_for(host: str, *, insecure_registries: tuple[str, ...] | None = None,
                 certs_d: str | os.PathLike[str] | None = None) -> Endpoint:
    """How to connect to ``host`` (daemon.json's insecure-registries, certs.d); the keyword
    arguments replace what the settings file and ``$PYBUILD_CERTS_D`` say."""
    if insecure_registries is None:
        from pybuild.network import settings

        insecure_registries = settings.load().insecure_registries
    if is_insecure(host, insecure_registries):
        return Endpoint(host, ("https", "http"), verify=False)
    verify, cert = certs_for(host, certs_d)
    name, port = split_host(host)
    if is_loopback(name):
        tls = speaks_tls(name, port or 443)
        if tls is None:  # nothing answers yet: let the connection try both, as docker does
            return Endpoint(host, ("https", "http"), verify=verify, cert=cert)
        if not tls:
            return Endpoint(host, ("http",), verify=verify, cert=cert)
    return Endpoint(host, ("https",), verify=verify, cert=cert)


def split_host(host: str) -> tuple[str, int | None]:
    """``name[:port]`` (``[v6]:port`` for IPv6) -> (name without brackets, port or None)."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
    else:
        name, port = host, ""
    if port and not port.isdigit():
        raise RegistryError(f"{host}: invalid port {port!r}")
    return name, int(port) if port else None


def is_loopback(name: str) -> bool:
    if name.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_insecure(host: str, entries: tuple[str, ...]) -> bool:
    """Whether daemon.json's ``insecure-registries`` names ``host``: exactly, or by a CIDR
    holding one of its addresses."""
    networks = []
    for entry in entries:
        entry = entry.removeprefix("http://").removeprefix("https://").rstrip("/")
        if "/" in entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue
        elif entry.lower() == host.lower():
            return True
    if not networks:
        return False
    return any(a in n for a in _addresses(split_host(host)[0]) for n in networks)


def _addresses(name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(name)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []  # a name that does not resolve is in no network; connecting will say so
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def speaks_tls(name: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool | None:
    """Whether ``name:port`` answers a TLS handshake (certificate not checked: only the
    protocol matters here); None when nothing can be reached there."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((name, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=name if not _is_ip(name) else None):
                return True
    except ssl.SSLError:
        return False
    except OSError:
        return None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def certs_dir(host: str, base: str | os.PathLike[str] | None = None) -> Path:
    return Path(base or os.environ.get(CERTS_D_ENV) or DEFAULT_CERTS_D) / host


def certs_for(host: str, base: str | os.PathLike[str] | None = None
              ) -> tuple[bool | str, tuple[str, str] | None]:
    """requests' ``verify`` and ``cert`` from ``certs.d/HOST``: a bundle of the system's CAs
    plus the directory's ``*.crt``, and the first ``*.cert``/``*.key`` pair."""
    directory = certs_dir(host, base)
    try:
        names = sorted(p.name for p in directory.iterdir() if p.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return True, None
    except OSError as err:
        raise RegistryError(f"{directory}: cannot read the certificates: {err}") from None
    cas = [directory / n for n in names if n.endswith(".crt")]
    pairs = []
    for n in names:
        stem = n[:-5] if n.endswith(".cert") else n[:-4] if n.endswith(".key") else None
        if stem is None:
            continue
        other = stem + (".key" if n.endswith(".cert") else ".cert")
        if other not in names:
            # docker's words for a half pair
            what = "key" if n.endswith(".cert") else "client certificate"
            raise RegistryError(f"{directory}: missing {what} {other} for {n}; CA certificates"
                                " must use the extension .crt")
        if n.endswith(".cert"):
            pairs.append((str(directory / n), str(directory / other)))
    verify: bool | str = merged_bundle(cas) if cas else True
    return verify, pairs[0] if pairs else None


def merged_bundle(cas: list[Path]) -> str:
    """One PEM file holding the system's CAs and ``cas`` (requests takes a single bundle path
    and would otherwise trust only the given CAs); content-addressed in the user's cache."""
    parts = []
    system = ssl.get_default_verify_paths().cafile
    if system and os.path.isfile(system):
        parts.append(Path(system).read_bytes())
    for ca in cas:
        try:
            parts.append(ca.read_bytes())
        except OSError as err:
            raise RegistryError(f"{ca}: cannot read the CA certificate: {err}") from None
    data = b"\n".join(p.rstrip(b"\n") for p in parts) + b"\n"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pybuild" / "ca"
    path = cache / f"{hashlib.sha256(data).hexdigest()}.pem"
    if not path.is_file():
        from pybuild.store.fsutil import atomic_write

        try:
            cache.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(path, data, durable=False)
        except OSError as err:
            raise RegistryError(f"{cache}: cannot write the CA bundle: {err}") from None
    return str(path)


def describe_tls_error(text: str, host: str) -> str:
    """One line saying what a failed handshake with ``host`` means and where the fix goes;
    ``text`` is the error as requests/ssl wrote it."""
    where = certs_dir(host)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        reason = text.split("certificate verify failed: ", 1)[-1].split(" (_ssl", 1)[0]
        reason = reason if reason != text else "unknown issuer"
        return (f"TLS certificate not trusted ({reason}): give its CA as {where}/ca.crt, "
                f"or list {host} in insecure-registries")
    if any(s in text for s in ("ALERT_BAD_CERTIFICATE", "CERTIFICATE_REQUIRED",
                               "ALERT_CERTIFICATE_UNKNOWN", "ALERT_UNKNOWN_CA")):
        return (f"the registry refused the client certificate (or wants one): put a "
                f"NAME.cert and NAME.key pair in {where}")
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return f"the server speaks plain http, not TLS: list {host} in insecure-registries"
    return "TLS handshake failed"
