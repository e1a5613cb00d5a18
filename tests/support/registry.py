"""A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1.

``serve(tmp_path, auth=..., tls=...)`` is a context manager yielding a ``Registry``: its own
storage dir, its own port, a config the test can extend (``auth`` and ``tls`` sections in
distribution's config shape), and ``kill``/``restart`` for tests of a registry that dies in the
middle of something. The process is killed at the end whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BINARY = "/usr/bin/docker-registry"


def registry_missing() -> str | None:
    """Why a registry cannot be started here, or None."""
    if not Path(BINARY).exists():
        return f"{BINARY} is missing (apt-get install docker-registry)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Registry:
    """One running registry. ``host`` is what a reference names: ``127.0.0.1:PORT``."""

    directory: Path
    port: int
    config: dict[str, Any]
    process: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / "registry.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        """The registry's filesystem root (``docker/registry/v2/...`` below it)."""
        return Path(self.config["storage"]["filesystem"]["rootdirectory"])

    def blob_path(self, digest: str) -> Path:
        """Where the registry keeps a blob's bytes (for tests that corrupt one)."""
        hex_ = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def start(self, timeout: float = 15) -> None:
        path = self.directory / "config.yml"
        path.write_text(json.dumps(self.config, indent=1))  # JSON is YAML
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([BINARY, "serve", str(path)], stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"registry exited {self.process.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"registry not listening after {timeout} s: {self.log.read_text()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


def config_for(directory: Path, port: int, *, auth: Mapping[str, Any] | None = None,
               tls: Mapping[str, str] | None = None) -> dict[str, Any]:
    """distribution's config: storage under ``directory``, listening on 127.0.0.1 only."""
    http: dict[str, Any] = {"addr": f"127.0.0.1:{port}", "secret": "pybuild-tests"}
    if tls:
        http["tls"] = dict(tls)  # {"certificate": PATH, "key": PATH}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "storage")},
                    "delete": {"enabled": True}},
        "http": http,
    }
    if auth:
        config["auth"] = dict(auth)
    return config


@contextlib.contextmanager
def serve(tmp_path: Path, *, auth: Mapping[str, Any] | None = None,
          tls: Mapping[str, str] | None = None) -> Iterator[Registry]:
    """A registry with its own dir under ``tmp_path``, removed (killed) at the end.

    ``auth`` is distribution's auth section, e.g. ``{"htpasswd": {"realm": "r", "path": P}}``
    or ``{"token": {"realm": URL, "service": S, "issuer": I, "rootcertbundle": PEM}}``;
    ``tls`` is ``{"certificate": PEM, "key": PEM}``.
    """
    why = registry_missing()
    if why:
        pytest.skip(why)
    directory = tmp_path / f"registry-{free_port()}"
    directory.mkdir(parents=True)
    port = free_port()
    registry = Registry(directory, port, config_for(directory, port, auth=auth, tls=tls))
    try:
        registry.start()
        yield registry
    finally:
        registry.kill()
        shutil.rmtree(directory, ignore_errors=True)
