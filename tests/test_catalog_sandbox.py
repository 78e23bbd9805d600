"""The throwaway database servers themselves: start, catalog, replica, stop leave nothing behind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from testkit.sandbox.mariadb import MariaDBServer
from testkit.sandbox.postgres import BACULA_CATALOG_VERSION, CatalogInfo, PostgresServer
from testkit.sandbox.server import SandboxServer


def assert_paused_server_stops(server: SandboxServer) -> None:
    """A paused server still stops (SIGCONT before the signal), and its process is gone."""
    pid = server.pid
    assert pid is not None
    server.pause()
    server.stop(timeout=2)
    assert server.pid is None
    assert (
        not os.path.exists(f"/proc/{pid}")
        or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    )


def test_pg_catalog_has_bacula_schema(pg_server: PostgresServer, pg_catalog: CatalogInfo) -> None:
    version = pg_server.psql("SELECT versionid FROM version", db=pg_catalog.db_name)
    assert version == str(BACULA_CATALOG_VERSION)
    owner = pg_server.psql(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'bacula'"
    )
    assert owner == pg_catalog.db_user
    assert Path(pg_catalog.host, f".s.PGSQL.{pg_catalog.port}").exists()
    assert pg_catalog.port not in (5432, 3306)


def test_pg_stop_kills_server_and_replica_is_in_recovery(
    pg_factory: Callable[[], PostgresServer],
) -> None:
    primary = pg_factory()
    primary.create_bacula_catalog("cat1", "bacula", "x")
    replica = primary.make_replica(primary.basedir.parent / (primary.basedir.name + "-replica"))
    try:
        assert replica.is_in_recovery()
        assert not primary.is_in_recovery()
        assert replica.psql("SELECT versionid FROM version", db="cat1") == "16"
        replica.promote()
        assert not replica.is_in_recovery()
    finally:
        replica.cleanup()
    assert_paused_server_stops(primary)


def test_mariadb_catalog_and_stop(
    mariadb_factory: Callable[[], MariaDBServer],
) -> None:
    server = mariadb_factory()
    info = server.create_bacula_catalog("cat1", "bacula", "it's \\ tricky")
    assert server.sql("SELECT VersionId FROM Version", db="cat1") == "16"
    tables = server.sql("SHOW TABLES", db="cat1").split()
    assert "Counters" in tables  # the table Debian's make_mysql_tables loses under /bin/sh
    assert info.port not in (3306, 5432)
    assert Path(info.socket).is_socket()
    assert_paused_server_stops(server)
