"""Shared fixtures: where the external corpora are, and probes for root-only tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTDATA = REPO / "testdata"


def conformance_root() -> Path | None:
    """The external corpora: $PYBUILD_CONFORMANCE, else ../shared/conformance."""
    env = os.environ.get("PYBUILD_CONFORMANCE")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "conformance")
    for path in candidates:
        if path.is_dir():
            return path
    return None


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
    import subprocess

    script = REPO.parent / "shared" / "bench" / "busybox-rootfs.sh"
    if not script.is_file() or not Path("/bin/busybox").exists():
        pytest.skip("needs ../shared/bench/busybox-rootfs.sh and busybox-static")
    out = tmp_path_factory.mktemp("busybox") / "busybox.tar"
    subprocess.run(["bash", str(script), str(out)], check=True, capture_output=True)
    return out
