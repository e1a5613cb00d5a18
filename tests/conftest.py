"""Shared fixtures: where the external corpora are, and probes for root-only tests."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from support.paths import busybox_missing, conformance_root, write_busybox_tar

# No test may reach a registry outside this machine (an image name that is not local makes
# pybuild pull it, and "busybox" means docker.io). Every HTTP(S) request to a host other than
# loopback goes to a proxy address where nothing listens, so it fails at once, on loopback,
# without even a DNS lookup; the tests' own registries on 127.0.0.1 are reached directly.
_NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens there
for _name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
    os.environ[_name] = _NOWHERE
for _name in ("no_proxy", "NO_PROXY"):
    os.environ[_name] = "127.0.0.1,localhost,::1"


@pytest.fixture(scope="session")
def conformance() -> Path:
    root = conformance_root()
    if root is None:
        pytest.skip(
            "no conformance corpus: set PYBUILD_CONFORMANCE or provide ../shared/conformance"
        )
    return root


@pytest.fixture(scope="session")
def buildkit_corpus(conformance: Path) -> Path:
    path = conformance / "buildkit"
    if not path.is_dir():
        pytest.skip(f"no BuildKit corpus under {conformance}")
    return path


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny busybox rootfs tarball (same bytes every run), for ``pybuild import``."""
    why = busybox_missing()
    if why:
        pytest.skip(why)
    return write_busybox_tar(tmp_path_factory.mktemp("busybox") / "busybox.tar")


@pytest.fixture(scope="session", autouse=True)
def default_bridge(tmp_path_factory):
    """pybuild's default bridge, for every test that does not pick its own: a bridge and an
    nft table of the session's (support.net.bridge_settings), so no test makes the host's
    pybuild0 or touches pybuild's own table. Without root there is nothing to make."""
    if os.geteuid() != 0:
        yield None
        return
    from support.net import (
        bridge_settings,
        ipam_leftovers_removed,
        session_names,
        sweep_dead_sessions,
    )

    sweep_dead_sessions()  # what a session killed before its teardown left
    bridge, table = session_names(os.getpid())
    with ipam_leftovers_removed(), bridge_settings(
            tmp_path_factory.mktemp("default-bridge"), bridge=bridge, table=table) as made:
        yield made


def _terminated(signum, frame):
    # SIGTERM (a timeout, CI cancelling) ends the session as ^C does, teardowns included
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _terminated)
