"""Shared fixtures: where the external corpora are, and probes for root-only tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.paths import busybox_missing, conformance_root, write_busybox_tar


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
