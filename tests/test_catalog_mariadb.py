"""bacula-catalog against a real MariaDB holding Debian's Bacula MySQL schema."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bacula_ha.install import provider_dir
from bacula_ha.sandbox.mariadb import MariaDBServer
from bacula_ha.sandbox.postgres import CatalogInfo
from tests.catalog_helpers import (
    assert_clean,
    director_params,
    processes_mentioning,
    run_agent,
    started,
)

PASSWORD = "my-Secret-4711"  # mariadb_catalog's


@pytest.fixture
def rsctmp(tmp_path: Path) -> Path:
    path = tmp_path / "rsctmp"
    path.mkdir()
    return path


def mysql_params(
    directory: Path, info: CatalogInfo, *, tcp: bool = True, **extra: str
) -> dict[str, str]:
    return director_params(directory, info, tcp=tcp, backend="mysql", **extra)


@pytest.mark.parametrize("tcp", [True, False], ids=["tcp", "socket"])
def test_healthy_catalog_passes_every_depth(
    tmp_path: Path, rsctmp: Path, mariadb_catalog: CatalogInfo, tcp: bool
) -> None:
    params = mysql_params(tmp_path, mariadb_catalog, tcp=tcp)
    assert run_agent("validate-all", params, rsctmp, interval_ms=None).code == 0
    assert run_agent("monitor", params, rsctmp, interval_ms=None).code == 7
    started(params, rsctmp)
    for depth in (0, 10, 20):
        out = run_agent("monitor", params, rsctmp, depth=depth)
        assert out.code == 0, (depth, out.stderr)
    assert run_agent("stop", params, rsctmp, interval_ms=None).code == 0
    assert run_agent("monitor", params, rsctmp).code == 7


def test_ocf_tester_passes(tmp_path: Path, ocf_root: Path, mariadb_catalog: CatalogInfo) -> None:
    params = mysql_params(tmp_path, mariadb_catalog)
    agent = provider_dir(ocf_root) / "bacula-catalog"
    argv = ["/usr/sbin/ocf-tester", "-n", "cattest"]
    for key, value in params.items():
        argv += ["-o", f"{key}={value}"]
    proc = subprocess.run([*argv, str(agent)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed all tests" in proc.stdout


def test_server_stopped(
    tmp_path: Path, rsctmp: Path, mariadb_factory: Callable[[], MariaDBServer]
) -> None:
    server = mariadb_factory()
    info = server.create_bacula_catalog("bacula", "bacula", PASSWORD)
    params = started(mysql_params(tmp_path, info), rsctmp)
    server.stop()
    out = run_agent("monitor", params, rsctmp)
    assert out.code == 1
    assert "catalog unreachable" in out.reason and "Can't connect" in out.reason
    assert_clean(out)
    assert run_agent("monitor", params, rsctmp, interval_ms=None).code == 0  # probe: state only


def test_hung_server_returns_within_deadline_and_hides_password(
    tmp_path: Path, rsctmp: Path, mariadb_factory: Callable[[], MariaDBServer]
) -> None:
    server = mariadb_factory()
    info = server.create_bacula_catalog("bacula", "bacula", PASSWORD)
    params = started(mysql_params(tmp_path, info, connect_timeout="60"), rsctmp)
    logfile = tmp_path / "agent.log"
    seen: dict[str, list[str]] = {}

    def look() -> None:
        time.sleep(1.5)
        seen["hits"] = processes_mentioning(PASSWORD)
        seen["clients"] = [
            line for line in processes_mentioning("--defaults-extra-file") if "cmdline" in line
        ]

    server.pause()
    try:
        watcher = threading.Thread(target=look)
        watcher.start()
        out = run_agent(
            "monitor",
            params,
            rsctmp,
            depth=20,
            timeout_ms=5000,
            extra_env={"HA_LOGFILE": str(logfile), "HA_debug": "1"},
        )
        watcher.join()
    finally:
        server.resume()
    assert out.code == 1
    assert out.seconds < 5.0
    assert "did not answer" in out.reason
    assert seen["clients"], "the client was not running while we looked"
    assert seen["hits"] == []
    assert PASSWORD not in logfile.read_text() + out.stderr
    assert not [p for p in rsctmp.iterdir() if p.name.startswith(".bacula-catalog-")]


def test_wrong_password(tmp_path: Path, rsctmp: Path, mariadb_catalog: CatalogInfo) -> None:
    info = CatalogInfo("bacula", "bacula", "wrong-pw", "127.0.0.1", mariadb_catalog.port)
    out = run_agent("start", mysql_params(tmp_path, info), rsctmp, interval_ms=None)
    assert out.code == 1
    assert "Access denied" in out.reason
    assert "wrong-pw" not in out.stderr


def test_missing_database(tmp_path: Path, rsctmp: Path, mariadb_catalog: CatalogInfo) -> None:
    info = CatalogInfo("nosuchdb", "bacula", PASSWORD, "127.0.0.1", mariadb_catalog.port)
    out = run_agent("start", mysql_params(tmp_path, info), rsctmp, interval_ms=None)
    assert out.code == 1
    assert "nosuchdb" in out.reason


@pytest.fixture
def scratch_catalog(mariadb_server: MariaDBServer) -> Iterator[CatalogInfo]:
    """A catalog of its own on the shared server, for tests that break it."""
    name = f"scratch_{time.monotonic_ns() % 10**9}"
    info = mariadb_server.create_bacula_catalog(name, "bacula", PASSWORD)
    try:
        yield info
    finally:
        mariadb_server.sql(f"DROP DATABASE IF EXISTS {name}")


@pytest.mark.parametrize("variable", ["read_only", "tx_read_only"])
def test_read_only_server(
    tmp_path: Path, rsctmp: Path, mariadb_factory: Callable[[], MariaDBServer], variable: str
) -> None:
    server = mariadb_factory()
    info = server.create_bacula_catalog("bacula", "bacula", PASSWORD)
    params = started(mysql_params(tmp_path, info), rsctmp)
    server.set_global(variable, "1")
    out = run_agent("monitor", params, rsctmp)
    assert out.code == 1
    assert "read-only" in out.reason
    server.set_global(variable, "0")
    assert run_agent("monitor", params, rsctmp, depth=20).code == 0


def test_version_changed(
    tmp_path: Path, rsctmp: Path, mariadb_server: MariaDBServer, scratch_catalog: CatalogInfo
) -> None:
    params = started(mysql_params(tmp_path, scratch_catalog), rsctmp)
    mariadb_server.sql("UPDATE Version SET VersionId = 1022", db=scratch_catalog.db_name)
    out = run_agent("monitor", params, rsctmp, depth=10)
    assert out.code == 6
    assert "1022" in out.reason and "16" in out.reason


def test_table_dropped(
    tmp_path: Path, rsctmp: Path, mariadb_server: MariaDBServer, scratch_catalog: CatalogInfo
) -> None:
    params = started(mysql_params(tmp_path, scratch_catalog), rsctmp)
    mariadb_server.sql("DROP TABLE Media", db=scratch_catalog.db_name)
    out = run_agent("monitor", params, rsctmp, depth=10)
    assert out.code == 1
    assert "Media" in out.reason
    assert_clean(out)


def test_latency_is_degraded(
    tmp_path: Path, rsctmp: Path, mariadb_server: MariaDBServer, scratch_catalog: CatalogInfo
) -> None:
    params = started(mysql_params(tmp_path, scratch_catalog, latency_threshold="300"), rsctmp)
    mariadb_server.sql(
        "CREATE TRIGGER slow BEFORE INSERT ON Counters FOR EACH ROW SET @slept = SLEEP(0.5)",
        db=scratch_catalog.db_name,
    )
    assert run_agent("monitor", params, rsctmp, depth=10).code == 0
    out = run_agent("monitor", params, rsctmp, depth=20)
    assert out.code == 190, out.stderr
    count = mariadb_server.sql("SELECT COUNT(*) FROM Counters", db=scratch_catalog.db_name)
    assert count == "0"  # the write was rolled back
