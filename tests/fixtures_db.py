"""Shared pytest fixtures: throwaway PostgreSQL and MariaDB servers holding a Bacula catalog.

Imported by tests/conftest.py (`from tests.fixtures_db import *`).
Session-scoped servers are shared and must not be broken by a test; a test that stops,
pauses or reconfigures a server uses the function-scoped factories.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from bacula_ha.sandbox.mariadb import MARIADBD, MariaDBServer
from bacula_ha.sandbox.postgres import CatalogInfo, PostgresServer, make_basedir

__all__ = [
    "mariadb_catalog",
    "mariadb_factory",
    "mariadb_server",
    "pg_catalog",
    "pg_factory",
    "pg_server",
]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the whole session (do not stop or reconfigure it)."""
    server = PostgresServer(make_basedir("postgres", prefix="bacula-ha-pg-"))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pg_catalog(pg_server: PostgresServer) -> CatalogInfo:
    """A Bacula catalog `bacula` (user bacula) on the shared PostgreSQL: read, do not break."""
    return pg_server.create_bacula_catalog("bacula", "bacula", "pg-Secret-4711")


@pytest.fixture
def pg_factory() -> Iterator[Callable[[], PostgresServer]]:
    """Make private PostgreSQL servers (started) that the test may stop, pause or break."""
    servers: list[PostgresServer] = []

    def make() -> PostgresServer:
        server = PostgresServer(make_basedir("postgres", prefix="bacula-ha-pg-"))
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.cleanup()


def _mariadb_available() -> bool:
    return os.access(MARIADBD, os.X_OK)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """One MariaDB for the whole session (do not stop or reconfigure it)."""
    if not _mariadb_available():
        pytest.skip("mariadb-server is not installed")
    server = MariaDBServer(make_basedir("mysql", prefix="bacula-ha-my-"))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def mariadb_catalog(mariadb_server: MariaDBServer) -> CatalogInfo:
    """A Bacula catalog `bacula` (user bacula) on the shared MariaDB: read, do not break."""
    return mariadb_server.create_bacula_catalog("bacula", "bacula", "my-Secret-4711")


@pytest.fixture
def mariadb_factory() -> Iterator[Callable[[], MariaDBServer]]:
    """Make private MariaDB servers (started) that the test may stop, pause or break."""
    if not _mariadb_available():
        pytest.skip("mariadb-server is not installed")
    servers: list[MariaDBServer] = []

    def make() -> MariaDBServer:
        server = MariaDBServer(make_basedir("mysql", prefix="bacula-ha-my-"))
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.cleanup()
