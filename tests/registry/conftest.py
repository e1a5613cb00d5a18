"""Fixtures for registry tests: an open registry on 127.0.0.1 per module, and a scratch store
with the busybox base."""

from __future__ import annotations

import pytest
from support.registry import serve


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """An open registry (no auth, plain http) shared by a module's tests."""
    with serve(tmp_path_factory.mktemp("registry")) as reg:
        yield reg
