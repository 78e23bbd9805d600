"""bacula-catalog against PostgreSQL only: what MariaDB has no counterpart of.

The checks both backends share are in test_catalog_backends.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.sandbox.postgres import CatalogInfo, PostgresServer, make_basedir
from tests.catalog_helpers import (
    POSTGRES,
    assert_clean,
    director_params,
    run_agent,
    scratch_catalog_on,
    started,
)

PASSWORD = POSTGRES.password  # pg_catalog's


@pytest.fixture
def scratch_catalog(pg_server: PostgresServer) -> Iterator[CatalogInfo]:
    """A catalog of its own on the shared server, for tests that break it."""
    with scratch_catalog_on(pg_server, POSTGRES) as info:
        yield info


def test_explicit_parameters_without_director_config(
    tmp_path: Path, rsctmp: Path, pg_catalog: CatalogInfo
) -> None:
    """The socket directory as db_address (MariaDB's socket is a file, not an address)."""
    secret = tmp_path / "pw"
    secret.write_text(pg_catalog.db_password + "\n")
    secret.chmod(0o600)
    params = {
        "config": "/nonexistent/bacula-dir.conf",  # not read: everything else is given
        "db_name": pg_catalog.db_name,
        "db_user": pg_catalog.db_user,
        "db_address": pg_catalog.host,
        "db_port": str(pg_catalog.port),
        "password_file": str(secret),
    }
    started(params, rsctmp)
    assert run_agent("monitor", params, rsctmp, depth=20).code == 0


def test_connect_timeout_bounds_a_hung_server(
    tmp_path: Path, rsctmp: Path, pg_spare: tuple[PostgresServer, CatalogInfo]
) -> None:
    server, info = pg_spare
    params = started(director_params(tmp_path, info, connect_timeout="2"), rsctmp)
    server.pause()
    try:
        out = run_agent("monitor", params, rsctmp, timeout_ms=20_000)
    finally:
        server.resume()
    assert out.code == 1
    assert out.seconds < 6, out.seconds
    assert_clean(out)


def test_replica_in_recovery(
    tmp_path: Path, rsctmp: Path, pg_server: PostgresServer, pg_catalog: CatalogInfo
) -> None:
    replica = pg_server.make_replica(make_basedir("postgres", prefix="bacula-ha-pgrep-"))
    try:
        assert replica.is_in_recovery()
        info = CatalogInfo(pg_catalog.db_name, pg_catalog.db_user, PASSWORD, "", replica.port)
        out = run_agent("start", director_params(tmp_path, info), rsctmp, interval_ms=None)
    finally:
        replica.cleanup()
    assert out.code == 1
    assert "in recovery" in out.reason


def test_read_only_database(
    tmp_path: Path, rsctmp: Path, pg_server: PostgresServer, scratch_catalog: CatalogInfo
) -> None:
    params = started(director_params(tmp_path, scratch_catalog), rsctmp)
    pg_server.set_config("default_transaction_read_only", "on", db=scratch_catalog.db_name)
    out = run_agent("monitor", params, rsctmp)
    assert out.code == 1
    assert "read-only" in out.reason


def test_write_refused_at_depth_20(
    tmp_path: Path, rsctmp: Path, pg_server: PostgresServer, scratch_catalog: CatalogInfo
) -> None:
    """A table-level REVOKE (MariaDB's grants are on the whole database)."""
    params = started(director_params(tmp_path, scratch_catalog), rsctmp)
    pg_server.psql("REVOKE INSERT ON counters FROM bacula", db=scratch_catalog.db_name)
    assert run_agent("monitor", params, rsctmp, depth=10).code == 0
    out = run_agent("monitor", params, rsctmp, depth=20)
    assert out.code == 1
    assert "write check failed" in out.reason and "permission denied" in out.reason
