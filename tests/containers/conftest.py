"""A store with the busybox base for container tests, and the CLI against it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.build import BASE, sandbox_store


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    store = sandbox_store(tmp_path_factory, busybox_tar, "containers")
    yield store
    # whatever a failed test left running goes, with its monitor
    subprocess.run([sys.executable, "-m", "pybuild", "--root", str(store.root), "rm", "-f",
                    *_all_ids(store)], capture_output=True)


def _all_ids(store) -> list[str]:
    root = store.root / "containers"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


@pytest.fixture
def cli(store):
    def run(*args: str, check: bool = False, timeout: float = 60,
            **kw) -> subprocess.CompletedProcess:
        res = subprocess.run([sys.executable, "-m", "pybuild", "--root", str(store.root),
                              *args], capture_output=True, text=True, timeout=timeout, **kw)
        if check and res.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)}: {res.returncode} {res.stderr}")
        return res

    return run


@pytest.fixture
def image() -> str:
    return BASE
