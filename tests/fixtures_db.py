"""Shared pytest fixtures: throwaway PostgreSQL and MariaDB servers holding a Bacula catalog.

Imported by tests/conftest.py (`from tests.fixtures_db import *`).
Session-scoped servers are shared and must not be broken by a test; a test that stops,
pauses or reconfigures a server uses the function-scoped factories.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from bacula_ha.bacula.layout import Layout
from testkit.sandbox.mariadb import MARIADBD, MariaDBServer
from testkit.sandbox.postgres import CatalogInfo, PostgresServer, make_basedir
from testkit.sandbox.server import SandboxServer

from .tiers import slow_fixture

__all__ = [
    "mariadb_catalog",
    "mariadb_catalog13",
    "mariadb_factory",
    "mariadb_server",
    "mariadb_spare",
    "mariadb_spare_server",
    "pg_catalog",
    "pg_catalog13",
    "pg_factory",
    "pg_server",
    "pg_spare",
    "pg_spare_server",
]

# The shared catalogs' passwords: strings the tests look for in ps and logs.
PG_PASSWORD = "pg-Secret-4711"
MARIADB_PASSWORD = "my-Secret-4711"

S = TypeVar("S", bound=SandboxServer)


@contextlib.contextmanager
def _servers(kind: Callable[[str], S], os_user: str, prefix: str) -> Iterator[Callable[[], S]]:
    """A maker of started servers, each in a fresh basedir, all removed on the way out."""
    servers: list[S] = []

    def make() -> S:
        server = kind(str(make_basedir(os_user, prefix=prefix)))
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.cleanup()


def _spare(server: S, info: CatalogInfo) -> tuple[S, CatalogInfo]:
    """The spare `server` running and not paused (whatever the last test did), its catalog."""
    server.resume()
    return server.start(), info


def _postgres() -> contextlib.AbstractContextManager[Callable[[], PostgresServer]]:
    return _servers(PostgresServer, "postgres", "bacula-ha-pg-")


def _mariadb() -> contextlib.AbstractContextManager[Callable[[], MariaDBServer]]:
    if not os.access(MARIADBD, os.X_OK):
        pytest.skip("mariadb-server is not installed")
    return _servers(MariaDBServer, "mysql", "bacula-ha-my-")


@pytest.fixture(scope="session")
@slow_fixture
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the whole session (do not stop or reconfigure it)."""
    with _postgres() as make:
        yield make()


@pytest.fixture(scope="session")
def pg_catalog(pg_server: PostgresServer) -> CatalogInfo:
    """A Bacula catalog `bacula` (user bacula) on the shared PostgreSQL: read, do not break."""
    return pg_server.create_bacula_catalog("bacula", "bacula", PG_PASSWORD)


@pytest.fixture(scope="session")
def pg_catalog13(pg_server: PostgresServer, bacula13_install: Layout) -> CatalogInfo:
    """A 13.0.3 catalog `bacula13` (schema 1024, made by 13's own scripts, user bacula) on the
    shared PostgreSQL, beside pg_catalog: read, do not break."""
    return pg_server.create_bacula_catalog(
        "bacula13", "bacula", PG_PASSWORD, install=bacula13_install
    )


@pytest.fixture
@slow_fixture
def pg_factory() -> Iterator[Callable[[], PostgresServer]]:
    """Make private PostgreSQL servers (started) that the test may stop, pause or break."""
    with _postgres() as make:
        yield make


@pytest.fixture(scope="session")
@slow_fixture
def pg_spare_server() -> Iterator[tuple[PostgresServer, CatalogInfo]]:
    """A second session PostgreSQL with a catalog `bacula`, for pg_spare."""
    with _postgres() as make:
        server = make()
        yield server, server.create_bacula_catalog("bacula", "bacula", PG_PASSWORD)


@pytest.fixture
def pg_spare(
    pg_spare_server: tuple[PostgresServer, CatalogInfo],
) -> tuple[PostgresServer, CatalogInfo]:
    """A PostgreSQL the test may stop or pause (running again for the next test), and its
    catalog (password as pg_catalog's)."""
    return _spare(*pg_spare_server)


@pytest.fixture(scope="session")
@slow_fixture
def mariadb_server() -> Iterator[MariaDBServer]:
    """One MariaDB for the whole session (do not stop or reconfigure it)."""
    with _mariadb() as make:
        yield make()


@pytest.fixture(scope="session")
def mariadb_catalog(mariadb_server: MariaDBServer) -> CatalogInfo:
    """A Bacula catalog `bacula` (user bacula) on the shared MariaDB: read, do not break."""
    return mariadb_server.create_bacula_catalog("bacula", "bacula", MARIADB_PASSWORD)


@pytest.fixture(scope="session")
def mariadb_catalog13(mariadb_server: MariaDBServer, bacula13_install: Layout) -> CatalogInfo:
    """A 13.0.3 catalog `bacula13` (made by 13's own scripts) on the shared MariaDB."""
    return mariadb_server.create_bacula_catalog(
        "bacula13", "bacula", MARIADB_PASSWORD, install=bacula13_install
    )


@pytest.fixture
@slow_fixture
def mariadb_factory() -> Iterator[Callable[[], MariaDBServer]]:
    """Make private MariaDB servers (started) that the test may stop, pause or break."""
    with _mariadb() as make:
        yield make


@pytest.fixture(scope="session")
@slow_fixture
def mariadb_spare_server() -> Iterator[tuple[MariaDBServer, CatalogInfo]]:
    """A second session MariaDB with a catalog `bacula`, for mariadb_spare."""
    with _mariadb() as make:
        server = make()
        yield server, server.create_bacula_catalog("bacula", "bacula", MARIADB_PASSWORD)


@pytest.fixture
def mariadb_spare(
    mariadb_spare_server: tuple[MariaDBServer, CatalogInfo],
) -> tuple[MariaDBServer, CatalogInfo]:
    """A MariaDB the test may stop or pause (running again for the next test), and its
    catalog (password as mariadb_catalog's)."""
    return _spare(*mariadb_spare_server)
