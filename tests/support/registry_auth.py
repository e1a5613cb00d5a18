"""What a registry with auth needs in tests: a CA and a server certificate, an htpasswd file,
and a token server.

``make_tls(dir)`` writes a CA and a certificate for 127.0.0.1/localhost signed by it (the
``cryptography`` package). ``htpasswd(path, users)`` uses apache2-utils' ``htpasswd -Bbn``
(bcrypt, the only kind distribution accepts). ``TokenServer`` is distribution's token auth
(docs/spec/auth/token.md, registry/auth/token): an http.server on 127.0.0.1 in a thread
issuing RS256 JWTs with the claims the registry checks (``iss`` = its ``issuer``, ``aud`` =
its ``service``, ``exp``/``nbf`` with its 60 s leeway, a signature from a key whose
certificate is in ``x5c`` and chains to ``rootcertbundle``), granting each user (None for
anonymous) the actions ``grants`` lists per repository; every request is counted.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "pybuild-test-registry"
ISSUER = "pybuild-test-token-server"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA's certificate: what a client trusts (certs.d/HOST/ca.crt)
    cert: Path  # the server's certificate, for 127.0.0.1 and localhost
    key: Path
    client_cert: Path  # a client certificate the same CA signed (for http.tls.clientcas)
    client_key: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool,
                 sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_tls(directory: Path, name: str = "pybuild test CA") -> TlsFiles:
    """A fresh CA, a server certificate it signed for 127.0.0.1, ::1 and localhost, and a
    client certificate it signed."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, server_key = _key(), _key()
    ca = _certificate(name, ca_key, name, ca_key, ca=True)
    sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1"))]
    server = _certificate("127.0.0.1", server_key, name, ca_key, ca=False, sans=sans)
    client_key = _key()
    client = _certificate("pybuild test client", client_key, name, ca_key, ca=False)
    files = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key",
                     directory / "client.cert", directory / "client.key")
    files.ca.write_bytes(_pem(ca))
    files.cert.write_bytes(_pem(server))
    files.key.write_bytes(_key_pem(server_key))
    files.client_cert.write_bytes(_pem(client))
    files.client_key.write_bytes(_key_pem(client_key))
    return files


def htpasswd(path: Path, users: dict[str, str]) -> Path:
    lines = [subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True,
                            text=True, check=True).stdout.strip() for user, password in
             users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Hit:
    method: str
    user: str | None
    scopes: list[str]


@dataclass
class TokenServer:
    """distribution's token server for one registry; ``grants[user][repository]`` is the set
    of actions (None for anonymous), ``users`` the passwords."""

    directory: Path
    users: dict[str, str]
    grants: dict[str | None, dict[str, set[str]]]
    expires_in: int | None = 300
    token_field: str = "token"  # "token", "access_token" or "both"
    hits: list[Hit] = field(default_factory=list)
    refresh_tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.key = _key()
        cert = _certificate("token signer", self.key, "token signer", self.key, ca=True)
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.bundle = self.directory / "token-signer.crt"  # the registry's rootcertbundle
        self.directory.mkdir(parents=True, exist_ok=True)
        self.bundle.write_bytes(_pem(cert))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def auth_section(self) -> dict:
        """The registry config's ``auth`` for this server."""
        return {"token": {"realm": self.realm, "service": SERVICE, "issuer": ISSUER,
                          "rootcertbundle": str(self.bundle)}}

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def token_hits(self, scope: str | None = None) -> int:
        return sum(1 for h in self.hits if scope is None or scope in h.scopes)

    # issuing

    def answer(self, user: str | None, scopes: list[str], offline: bool) -> dict:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = self.grants.get(user, {}).get(name, set())
            granted = sorted(set(actions.split(",")) & allowed)
            if kind == "repository" and granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        lifetime = self.expires_in or 60
        claims = {"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + lifetime,
                  "nbf": now - 1, "iat": now, "jti": secrets.token_hex(8), "access": access}
        token = self.sign(claims)
        doc: dict = {}
        if self.token_field in ("token", "both"):
            doc["token"] = token
        if self.token_field in ("access_token", "both"):
            doc["access_token"] = token
        if self.expires_in is not None:
            doc["expires_in"] = self.expires_in
            doc["issued_at"] = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
        if offline and user:
            refresh = secrets.token_hex(16)
            self.refresh_tokens[refresh] = user
            doc["refresh_token"] = refresh
        return doc

    def sign(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args) -> None:  # quiet
            pass

        def _send(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _deny(self) -> None:
            self._send(401, {"errors": [{"code": "UNAUTHORIZED",
                                         "message": "incorrect username or password"}]})

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            query = parse_qs(urlsplit(self.path).query)
            scopes = [s for value in query.get("scope", []) for s in value.split()]
            user = None
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                if server.users.get(name) != password:
                    server.hits.append(Hit("GET", name, scopes))
                    return self._deny()
                user = name
            server.hits.append(Hit("GET", user, scopes))
            offline = query.get("offline_token", [""])[0] == "true"
            self._send(200, server.answer(user, scopes, offline))

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            scopes = [s for value in form.get("scope", []) for s in value.split()]
            grant = form.get("grant_type", [""])[0]
            user = None
            if grant == "refresh_token":
                user = server.refresh_tokens.get(form.get("refresh_token", [""])[0])
            elif grant == "password":
                name = form.get("username", [""])[0]
                if server.users.get(name) == form.get("password", [""])[0]:
                    user = name
            server.hits.append(Hit("POST", user, scopes))
            if user is None:
                return self._deny()
            doc = server.answer(user, scopes, False)
            doc.setdefault("access_token", doc.get("token"))
            self._send(200, doc)

    return Handler


def isolate(monkeypatch, tmp_path: Path) -> Path:
    """Point every file pybuild's registry code reads at ``tmp_path`` (its config.json,
    docker's, certs.d, daemon.json, the CA cache) and return that directory. requests' CA
    variable is set to the system's bundle, as many machines set it: it overrides a session's
    ``verify`` (psf/requests#3829) unless each request passes its own, so certs.d is seen to
    win over it."""
    home = tmp_path / "auth-env"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("PYBUILD_AUTH_CONFIG", str(home / "pybuild-config.json"))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / "docker"))
    monkeypatch.setenv("PYBUILD_CERTS_D", str(home / "certs.d"))
    settings = home / "daemon.json"  # the session's (its test bridge), for a test to extend
    current = os.environ.get("PYBUILD_CONFIG")
    if current and os.path.isfile(current) and not settings.exists():
        shutil.copyfile(current, settings)
    monkeypatch.setenv("PYBUILD_CONFIG", str(settings))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return home


def trust(home: Path, host: str, ca: Path) -> Path:
    """``ca`` as certs.d/HOST/ca.crt under an ``isolate``d home."""
    directory = home / "certs.d" / host
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca.read_bytes())
    return directory


# docker-credential-testhelper: the helpers' protocol, keeping what it is given in the JSON file
# $TEST_HELPER_STORE names (and every call in that file + ".log")
HELPER = """#!{python}
import json, os, sys
path = os.environ["TEST_HELPER_STORE"]
data = json.load(open(path)) if os.path.exists(path) else {{}}
action, text = sys.argv[1], sys.stdin.read()
open(path + ".log", "a").write(action + " " + text.replace(chr(10), " ") + chr(10))
if action == "get":
    if text.strip() not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    user, secret = data[text.strip()]
    print(json.dumps({{"ServerURL": text.strip(), "Username": user, "Secret": secret}}))
elif action == "store":
    doc = json.loads(text); data[doc["ServerURL"]] = [doc["Username"], doc["Secret"]]
    json.dump(data, open(path, "w"))
elif action == "erase":
    if text.strip() not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    del data[text.strip()]; json.dump(data, open(path, "w"))
"""


def install_helper(monkeypatch, home: Path) -> Path:
    """``docker-credential-testhelper`` on $PATH, storing in ``home``/helper.json."""
    bin_dir = home / "bin"
    bin_dir.mkdir(exist_ok=True)
    helper = bin_dir / "docker-credential-testhelper"
    helper.write_text(HELPER.format(python=sys.executable))
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TEST_HELPER_STORE", str(home / "helper.json"))
    return home / "helper.json"
