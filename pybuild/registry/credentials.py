"""Registry credentials in docker's config.json shape.

Two files are read, in this order, the first that knows a host winning:

1. pybuild's own: ``$PYBUILD_AUTH_CONFIG``, else ``$XDG_CONFIG_HOME/pybuild/config.json``
   (``~/.config/pybuild/config.json``). Per user, as docker's is: a password is one person's
   secret, so root's lives in root's home, not in a shared /etc file; and separate from
   docker's so that ``pybuild login``/``logout`` never rewrite a file docker owns.
2. docker's: ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``: read only, so a
   ``docker login`` already done works for pybuild too.

In each: ``credHelpers[HOST]`` names a helper for one host, ``credsStore`` one for every host,
``auths[HOST]`` holds ``auth`` (base64 ``user:password``) or ``identitytoken`` (an OAuth2
refresh token). Keys are matched by host name, so ``https://HOST/v1/`` finds ``HOST``; docker.io
is kept under ``https://index.docker.io/v1/`` as docker keeps it. A helper is the executable
``docker-credential-NAME`` speaking docker-credential-helpers' protocol: ``get`` and ``erase``
read the server URL on stdin, ``store`` reads ``{"ServerURL", "Username", "Secret"}``; ``get``
prints that object, with Username ``<token>`` when Secret is an identity token. A helper named
in docker's file but not installed is passed over (docker's file may be from another machine);
one named in pybuild's own file must work.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybuild.errors import RegistryError

AUTH_CONFIG_ENV = "PYBUILD_AUTH_CONFIG"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
TOKEN_USERNAME = "<token>"  # the helpers' Username for an identity token
NOT_FOUND = "credentials not found in native keychain"
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # a refresh token (config.json's identitytoken), instead of a password


def own_config() -> Path:
    """pybuild's config.json: where ``store`` writes."""
    if os.environ.get(AUTH_CONFIG_ENV):
        return Path(os.environ[AUTH_CONFIG_ENV])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "pybuild" / "config.json"


def docker_config() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker"
    return Path(base) / "config.json"


def hostname(key: str) -> str:
    """A config.json key or a login argument as a host: scheme and path dropped, docker.io's
    names as ``docker.io``."""
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if host.lower() in DOCKER_HUB_NAMES else host


def config_key(host: str) -> str:
    """The key ``host``'s entry has in config.json."""
    host = hostname(host)
    return DOCKER_HUB_KEY if host == "docker.io" else host


def lookup(host: str) -> Credentials | None:
    """The credentials stored for ``host`` (docker.io's under https://index.docker.io/v1/)."""
    for path, own in ((own_config(), True), (docker_config(), False)):
        found = _lookup_in(read_config(path), host, path, required_helper=own)
        if found is not None:
            return found
    return None


def store(host: str, credentials: Credentials) -> Path | str:
    """Keep ``credentials`` for ``host`` in pybuild's config.json, or in the helper it names;
    where they went (the file, or the helper's name)."""
    path = own_config()
    doc = read_config(path)
    helper = helper_for(doc, host)
    if helper:
        secret = credentials.identity_token or credentials.password
        user = TOKEN_USERNAME if credentials.identity_token else credentials.username
        _run_helper(helper, "store", json.dumps({"ServerURL": config_key(host), "Username": user,
                                                 "Secret": secret}), path)
        _remove_entry(doc, host)
        doc.setdefault("auths", {})[config_key(host)] = {}  # docker marks the host so
        write_config(path, doc)
        return helper
    entry: dict[str, str] = {}
    if credentials.identity_token:
        entry["identitytoken"] = credentials.identity_token
        if credentials.username:  # docker keeps the user name beside the token
            entry["auth"] = _encode(credentials.username, "")
    else:
        entry["auth"] = _encode(credentials.username, credentials.password)
    _remove_entry(doc, host)
    doc.setdefault("auths", {})[config_key(host)] = entry
    write_config(path, doc)
    return path


def erase(host: str) -> bool:
    """Forget ``host``'s credentials in pybuild's config.json (and its helper); whether there
    were any. docker's own file is never changed."""
    path = own_config()
    doc = read_config(path)
    helper = helper_for(doc, host)
    found = _remove_entry(doc, host)
    if helper:
        try:
            _run_helper(helper, "erase", config_key(host), path)
            found = True
        except RegistryError as err:
            if NOT_FOUND not in str(err):
                raise
    if found:
        write_config(path, doc)
    return found


def read_config(path: Path) -> dict[str, Any]:
    """A config.json as a dict; {} when it does not exist."""
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise RegistryError(f"{path}: cannot read the credentials file: {err}") from None
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as err:
        raise RegistryError(f"{path}: invalid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{path}: not a JSON object")
    return doc


def write_config(path: Path, doc: dict[str, Any]) -> None:
    """Replace ``path`` atomically, readable by its owner only (it holds passwords)."""
    from pybuild.store.fsutil import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, (json.dumps(doc, indent="\t") + "\n").encode(), mode=0o600)
    except OSError as err:
        raise RegistryError(f"{path}: cannot write the credentials file: {err}") from None


def _lookup_in(doc: dict[str, Any], host: str, path: Path, *,
               required_helper: bool) -> Credentials | None:
    helper = helper_for(doc, host)
    if helper and (required_helper or shutil.which(f"docker-credential-{helper}")):
        return _helper_get(helper, host, path)
    entry = _find_entry(doc, host)
    if not isinstance(entry, dict):
        return None
    token = str(entry.get("identitytoken") or "")
    user, password = _decode(entry, path, host)
    if not (user or password or token):
        return None
    return Credentials(user, "" if token else password, token)


def _find_entry(doc: dict[str, Any], host: str) -> Any:
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return None
    want = hostname(host)
    if config_key(want) in auths:
        return auths[config_key(want)]
    for key, entry in auths.items():
        if hostname(key) == want:
            return entry
    return None


def _remove_entry(doc: dict[str, Any], host: str) -> bool:
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return False
    keys = [k for k in auths if hostname(k) == hostname(host)]
    for key in keys:
        del auths[key]
    return any(keys)


def helper_for(doc: dict[str, Any], host: str) -> str:
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if hostname(key) == hostname(host) and name:
                return str(name)
    store_name = doc.get("credsStore")
    return str(store_name) if store_name else ""


def _helper_get(helper: str, host: str, path: Path) -> Credentials | None:
    try:
        out = _run_helper(helper, "get", config_key(host), path)
    except RegistryError as err:
        if NOT_FOUND in str(err):
            return None
        raise
    try:
        answer = json.loads(out)
        user, secret = str(answer.get("Username") or ""), str(answer.get("Secret") or "")
    except (ValueError, AttributeError):
        raise RegistryError(f"docker-credential-{helper}: get: not a credentials object "
                            f"(named in {path})") from None
    if not secret:
        return None
    if user == TOKEN_USERNAME:
        return Credentials(identity_token=secret)
    return Credentials(user, secret)


def _run_helper(helper: str, action: str, stdin: str, path: Path) -> str:
    program = f"docker-credential-{helper}"
    if shutil.which(program) is None:
        raise RegistryError(f"{program}: credential helper not found in $PATH (named in {path})")
    try:
        done = subprocess.run([program, action], input=stdin, capture_output=True, text=True,
                              timeout=HELPER_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RegistryError(f"{program} {action}: {err}") from None
    if done.returncode != 0:
        said = (done.stdout.strip() or done.stderr.strip() or f"exit {done.returncode}")
        raise RegistryError(f"{program} {action}: {said.splitlines()[0]}")
    return done.stdout


def _encode(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _decode(entry: dict[str, Any], path: Path, host: str) -> tuple[str, str]:
    auth = entry.get("auth")
    if auth:
        try:
            user, _, password = base64.b64decode(str(auth), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise RegistryError(f"{path}: auths[{host!r}].auth is not base64 of "
                                "user:password") from None
        return user, password
    # older files (and some tools) keep the two apart
    return str(entry.get("username") or ""), str(entry.get("password") or "")
