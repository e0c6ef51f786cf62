"""Lineage tests run on both back ends: SQLite and a real PostgreSQL server."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.servers import PostgresServer

_numbers = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty lineage store URL on each back end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lineage.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"lineage_{next(_numbers)}")
