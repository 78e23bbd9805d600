"""bacula-catalog on Bacula 13.0.3: catalogs made by 13's own scripts (schema 1024, no Filename).

The agent is given the 13.0.3 director (`binary=PREFIX/bin/bacula-dir`): the tables and the
schema version it expects, and the bdirjson it reads the director's configuration with, come
from there. On PostgreSQL and MariaDB: health at depths 0/10/20, the schema check, and beside
a PostgreSQL standby. Marked `bacula13`: skipped when 13.0.3 is not built.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bacula_ha.bacula.layout import Layout
from bacula_ha.install import provider_dir
from testkit.sandbox.postgres import CatalogInfo, PostgresServer
from testkit.sandbox.server import SandboxServer
from tests.catalog_helpers import (
    MARIADB,
    POSTGRES,
    Backend,
    assert_clean,
    director_params,
    run_agent,
    scratch_catalog_on,
    started,
)
from tests.test_catalog_replica import WANTED, Pair, _streaming, _wait, primary_and_replica

pytestmark = pytest.mark.bacula13

DRIVERS = {POSTGRES.name: "postgresql", MARIADB.name: "mysql"}


@pytest.fixture(params=[POSTGRES, MARIADB], ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    assert isinstance(request.param, Backend)
    return request.param


@pytest.fixture
def catalog13(request: pytest.FixtureRequest, backend: Backend) -> CatalogInfo:
    """The backend's shared 13.0.3 catalog (pg_catalog13, mariadb_catalog13): do not break."""
    info = backend.fixture(request, "catalog13")
    assert isinstance(info, CatalogInfo)
    return info


@pytest.fixture
def scratch13(
    request: pytest.FixtureRequest, backend: Backend, bacula13_install: Layout
) -> Iterator[tuple[SandboxServer, CatalogInfo]]:
    """A 13.0.3 catalog of its own on the backend's shared server, for a test that breaks it."""
    server = backend.fixture(request, "server")
    assert isinstance(server, SandboxServer)
    with scratch_catalog_on(server, backend, bacula13_install) as info:
        yield server, info


def params13(
    install: Layout, backend: Backend, directory: Path, info: CatalogInfo, **extra: str
) -> dict[str, str]:
    """Parameters reaching `info` through a 13.0.3 director's configuration (its Catalog
    resource naming its driver, as a build with both backends needs) on 13's director."""
    params = director_params(directory, info, **backend.params, **extra)
    conf = Path(params["config"])
    driver = DRIVERS[backend.name]
    conf.write_text(
        conf.read_text().replace("Catalog {\n", f'Catalog {{\n  dbdriver = "{driver}"\n')
    )
    return {**params, "binary": install.tool("bacula-dir")}


def test_health_at_every_depth(
    tmp_path: Path,
    rsctmp: Path,
    backend: Backend,
    catalog13: CatalogInfo,
    bacula13_install: Layout,
) -> None:
    params = params13(bacula13_install, backend, tmp_path, catalog13)
    validate = run_agent("validate-all", params, rsctmp, interval_ms=None)
    assert validate.code == 0, validate.stderr
    assert "not tested" not in validate.stderr  # 13.0 is a tested line
    assert run_agent("monitor", params, rsctmp, interval_ms=None).code == 7  # probe, stopped
    started(params, rsctmp)
    for depth in (0, 10, 20):
        out = run_agent("monitor", params, rsctmp, depth=depth)
        assert out.code == 0, (depth, out.stderr)
    assert run_agent("monitor", params, rsctmp, interval_ms=None).code == 0  # probe, running
    assert run_agent("stop", params, rsctmp, interval_ms=None).code == 0
    assert run_agent("monitor", params, rsctmp, interval_ms=None).code == 7


def test_a_96_director_would_miss_filename(
    tmp_path: Path,
    rsctmp: Path,
    backend: Backend,
    catalog13: CatalogInfo,
    bacula13_install: Layout,
) -> None:
    """What decides: the director named by `binary`. Debian's 9.6 expects schema 16: on a
    13 catalog this node is ruled out (5, as on a node not yet upgraded); told to accept
    1024, it still needs table Filename (1)."""
    params = params13(bacula13_install, backend, tmp_path, catalog13)
    params["binary"] = "/usr/sbin/bacula-dir"
    out = run_agent("start", params, rsctmp, interval_ms=None)
    assert out.code == 5 and "expects 16" in out.reason, out.stderr
    assert_clean(out)
    params["schema_version"] = "1024"
    out = run_agent("start", params, rsctmp, interval_ms=None)
    assert out.code == 1 and "Filename" in out.reason, out.stderr
    assert_clean(out)


def test_another_schema_version_is_5(
    tmp_path: Path,
    rsctmp: Path,
    backend: Backend,
    scratch13: tuple[SandboxServer, CatalogInfo],
    bacula13_install: Layout,
) -> None:
    server, info = scratch13
    params = started(params13(bacula13_install, backend, tmp_path, info), rsctmp)
    server.sql("UPDATE Version SET VersionId = 1022", db=info.db_name)  # 11.0's
    assert run_agent("monitor", params, rsctmp, depth=0).code == 0  # depth 0 does not look
    out = run_agent("monitor", params, rsctmp, depth=10)
    # 5 (this node only), not 6: another node's Bacula may expect 1022 during an upgrade.
    assert out.code == 5, out.stderr
    assert "1022" in out.reason and "1024" in out.reason
    assert_clean(out)
    # schema_version still overrides what the director's version says.
    pinned = {**params, "schema_version": "1022"}
    assert run_agent("monitor", pinned, rsctmp, depth=10).code == 0


def test_ocf_tester_passes(
    tmp_path: Path,
    ocf_root: Path,
    backend: Backend,
    catalog13: CatalogInfo,
    bacula13_install: Layout,
) -> None:
    params = params13(bacula13_install, backend, tmp_path, catalog13)
    argv = ["/usr/sbin/ocf-tester", "-n", "cattest13"]
    for key, value in params.items():
        argv += ["-o", f"{key}={value}"]
    agent = provider_dir(ocf_root) / "bacula-catalog"
    proc = subprocess.run(
        [*argv, str(agent)], capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed all tests" in proc.stdout


# -- beside a PostgreSQL standby (test_catalog_replica.py on 9.6) -------------------------------


@pytest.fixture
def pair13(pg_factory: Callable[[], PostgresServer], bacula13_install: Layout) -> Iterator[Pair]:
    """A private primary holding a 13.0.3 catalog, and a streaming replica of it."""
    with primary_and_replica(pg_factory, bacula13_install) as made:
        yield made


def test_replica_side_is_not_running_and_cannot_start(
    tmp_path: Path, rsctmp: Path, pair13: Pair, bacula13_install: Layout
) -> None:
    _, _, replica, on_replica = pair13
    assert replica.is_in_recovery()
    params = params13(bacula13_install, POSTGRES, tmp_path, on_replica, sync_standby_names=WANTED)
    assert run_agent("monitor", params, rsctmp, interval_ms=0).code == 7  # the probe
    assert run_agent("monitor", params, rsctmp, depth=10).code == 7
    out = run_agent("start", params, rsctmp, interval_ms=None)
    assert out.code == 1 and "in recovery" in out.reason, out.stderr
    assert run_agent("monitor", params, rsctmp, interval_ms=0).code == 7


def test_primary_with_a_streaming_standby(
    tmp_path: Path, rsctmp: Path, pair13: Pair, bacula13_install: Layout
) -> None:
    primary, info, _, _ = pair13
    _wait(lambda: _streaming(primary))
    params = params13(bacula13_install, POSTGRES, tmp_path, info, sync_standby_names=WANTED)
    out = run_agent("start", params, rsctmp, interval_ms=None)
    assert out.code == 0, out.stderr
    assert primary.psql("SHOW synchronous_standby_names") == WANTED
    _wait(lambda: primary.psql("SELECT sync_state FROM pg_stat_replication") == "quorum")
    for depth in (0, 10, 20):
        monitor = run_agent("monitor", params, rsctmp, depth=depth)
        assert monitor.code == 0, (depth, monitor.stderr)
    assert run_agent("stop", params, rsctmp, interval_ms=None).code == 0
