"""Fixtures for networking tests: everything a test makes has a unique name and is removed at
the end, also when the test fails."""

from __future__ import annotations

import os

import pytest
from support.net import unique


@pytest.fixture
def nft_table():
    """A test-unique ``inet`` table, deleted afterwards whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("needs root for nftables")
    from pybuild.network.nft import Nft, Table, delete_table

    table = Table(name=unique())
    nft = Nft()
    try:
        yield nft, table
    finally:
        delete_table(nft, table)
        nft.close()
