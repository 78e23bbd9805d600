"""bacula-catalog against MariaDB only: what PostgreSQL has no counterpart of.

The checks both backends share are in test_catalog_backends.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.sandbox.mariadb import MariaDBServer
from testkit.sandbox.postgres import CatalogInfo
from tests.catalog_helpers import MARIADB, director_params, run_agent, started


@pytest.mark.parametrize("variable", ["read_only", "tx_read_only"])
def test_read_only_server(
    tmp_path: Path,
    rsctmp: Path,
    mariadb_spare: tuple[MariaDBServer, CatalogInfo],
    variable: str,
) -> None:
    server, info = mariadb_spare
    params = started(director_params(tmp_path, info, **MARIADB.params), rsctmp)
    server.set_global(variable, "1")
    try:
        out = run_agent("monitor", params, rsctmp)
    finally:
        server.set_global(variable, "0")  # the spare server is the next test's too
    assert out.code == 1
    assert "read-only" in out.reason
    assert run_agent("monitor", params, rsctmp, depth=20).code == 0
