"""bacula-catalog against each real database server (PostgreSQL, MariaDB), same checks for both.

What only one backend has stays in test_catalog_pg.py (replica in recovery, a read-only
default transaction, revoked grants) and test_catalog_mariadb.py (read_only variables).
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacula_ha.install import provider_dir
from testkit.sandbox.postgres import CatalogInfo
from testkit.sandbox.server import SandboxServer
from tests.catalog_helpers import (
    MARIADB,
    POSTGRES,
    Backend,
    CatalogEntry,
    assert_clean,
    director_params,
    processes_mentioning,
    run_agent,
    scratch_catalog_on,
    started,
    write_director_conf,
)
from tests.tiers import slow_fixture


@pytest.fixture(params=[POSTGRES, MARIADB], ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    assert isinstance(request.param, Backend)
    return request.param


@pytest.fixture
@slow_fixture
def catalog(request: pytest.FixtureRequest, backend: Backend) -> CatalogInfo:
    """The backend's shared catalog: read, do not break."""
    info = backend.fixture(request, "catalog")
    assert isinstance(info, CatalogInfo)
    return info


@pytest.fixture
@slow_fixture
def server(request: pytest.FixtureRequest, backend: Backend) -> SandboxServer:
    """The backend's shared server: do not stop or reconfigure it."""
    shared = backend.fixture(request, "server")
    assert isinstance(shared, SandboxServer)
    return shared


@pytest.fixture
@slow_fixture
def private_catalog(
    request: pytest.FixtureRequest, backend: Backend
) -> tuple[SandboxServer, CatalogInfo]:
    """The backend's spare server (the test may stop or pause it) and its catalog."""
    spare = backend.fixture(request, "spare")
    assert isinstance(spare, tuple)
    return spare


@pytest.fixture
def scratch_catalog(server: SandboxServer, backend: Backend) -> Iterator[CatalogInfo]:
    """A catalog of its own on the shared server, for tests that break it."""
    with scratch_catalog_on(server, backend) as info:
        yield info


def params_for(
    backend: Backend, directory: Path, info: CatalogInfo, *, tcp: bool = True, **extra: str
) -> dict[str, str]:
    """Agent parameters reaching `info` through a director configuration."""
    return director_params(directory, info, tcp=tcp, **backend.params, **extra)


# -- healthy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [True, False], ids=["tcp", "socket"])
def test_healthy_catalog_passes_every_depth(
    tmp_path: Path, rsctmp: Path, backend: Backend, catalog: CatalogInfo, tcp: bool
) -> None:
    params = params_for(backend, tmp_path, catalog, tcp=tcp)
    assert run_agent("validate-all", params, rsctmp, interval_ms=None).code == 0
    assert run_agent("monitor", params, rsctmp, interval_ms=None).code == 7  # probe, stopped
    started(params, rsctmp)
    for depth in (0, 10, 20):
        out = run_agent("monitor", params, rsctmp, depth=depth)
        assert out.code == 0, (depth, out.stderr)
    # A new threshold takes effect without a restart.
    reloaded = {**params, "latency_threshold": "1"}
    assert run_agent("reload-agent", reloaded, rsctmp, interval_ms=None).code == 0
    assert run_agent("monitor", reloaded, rsctmp, depth=20).code == 190
    assert run_agent("stop", params, rsctmp, interval_ms=None).code == 0
    assert run_agent("monitor", params, rsctmp).code == 7
    assert run_agent("stop", params, rsctmp, interval_ms=None).code == 0


def test_catalog_picked_by_name(
    tmp_path: Path, rsctmp: Path, backend: Backend, catalog: CatalogInfo
) -> None:
    conf = tmp_path / "two.conf"
    password = backend.password
    good = CatalogEntry("Good", catalog.db_name, "bacula", password, "127.0.0.1", catalog.port)
    bad = CatalogEntry("Bad", "nosuchdb", "bacula", password, "127.0.0.1", catalog.port)
    write_director_conf(conf, [bad, good])
    params = {"config": str(conf), **backend.params}
    assert run_agent("start", params, rsctmp, interval_ms=None).code == 1
    out = run_agent("start", {**params, "catalog": "Good"}, rsctmp, interval_ms=None)
    assert out.code == 0, out.stderr
    out = run_agent("validate-all", {**params, "catalog": "Nope"}, rsctmp)
    assert out.code == 6
    assert "Nope" in out.reason and "Good" in out.reason


# -- tools -----------------------------------------------------------------------------------


def test_ocf_tester_passes(
    tmp_path: Path, ocf_root: Path, backend: Backend, catalog: CatalogInfo
) -> None:
    params = params_for(backend, tmp_path, catalog)
    agent = provider_dir(ocf_root) / "bacula-catalog"
    argv = ["/usr/sbin/ocf-tester", "-n", "cattest"]
    for key, value in params.items():
        argv += ["-o", f"{key}={value}"]
    proc = subprocess.run(
        [*argv, str(agent)], capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed all tests" in proc.stdout


def test_crm_resource_validate_and_force_check(
    tmp_path: Path, ocf_root: Path, backend: Backend, catalog: CatalogInfo
) -> None:
    params = params_for(backend, tmp_path, catalog)
    base = ["crm_resource", "--class", "ocf", "--provider", "bacula", "--agent", "bacula-catalog"]
    opts = [arg for key, value in params.items() for arg in ("--option", f"{key}={value}")]
    ok = subprocess.run([*base, "--validate", *opts], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run(
        [*base, "--validate", "--option", "backend=oracle"], capture_output=True, text=True
    )
    assert bad.returncode != 0
    assert "oracle" in bad.stdout + bad.stderr
    # A probe of a resource never started here: not running (crm_resource exits 7).
    probe = subprocess.run([*base, "--force-check", *opts], capture_output=True, text=True)
    assert probe.returncode == 7, probe.stdout + probe.stderr


def test_metadata_validates_against_ocf_1_1(tmp_path: Path) -> None:
    out = run_agent("meta-data", {}, tmp_path, interval_ms=None)
    assert out.code == 0
    doc = tmp_path / "md.xml"
    doc.write_text(out.stdout)
    proc = subprocess.run(
        ["xmllint", "--noout", "--relaxng", "/usr/share/pcs/data/ocf-1.1.rng", str(doc)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert 'depth="20"' in out.stdout and "latency_threshold" in out.stdout
    assert 'name="reload-agent"' in out.stdout


# -- faults ----------------------------------------------------------------------------------


def test_server_stopped_is_generic_error_and_probe_ignores_it(
    tmp_path: Path,
    rsctmp: Path,
    backend: Backend,
    private_catalog: tuple[SandboxServer, CatalogInfo],
) -> None:
    server, info = private_catalog
    params = started(params_for(backend, tmp_path, info), rsctmp)
    server.stop()
    out = run_agent("monitor", params, rsctmp)
    assert out.code == 1
    assert "catalog unreachable" in out.reason and backend.refused in out.reason
    assert_clean(out)
    # A probe answers from this node's state, never from the database.
    assert run_agent("monitor", params, rsctmp, interval_ms=None).code == 0
    assert run_agent("start", params, rsctmp, interval_ms=None).code == 1
    assert run_agent("stop", params, rsctmp, interval_ms=None).code == 0


def test_hung_server_returns_within_deadline_and_hides_password(
    tmp_path: Path,
    rsctmp: Path,
    backend: Backend,
    private_catalog: tuple[SandboxServer, CatalogInfo],
) -> None:
    server, info = private_catalog
    params = started(params_for(backend, tmp_path, info, connect_timeout="60"), rsctmp)
    logfile = tmp_path / "agent.log"
    seen: dict[str, object] = {}

    def look() -> None:
        # Look once the agent's client runs: it then waits on the stopped server until the
        # action's deadline (5 s). Not found within 4 s fails below ("clients").
        deadline = time.monotonic() + 4.0
        while not [x for x in processes_mentioning(backend.client) if "cmdline" in x]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        ps = subprocess.run(["ps", "axeww", "-o", "args"], capture_output=True, text=True)
        seen["ps_has_client"] = backend.client in ps.stdout
        seen["ps_has_password"] = backend.password in ps.stdout
        seen["proc_hits"] = processes_mentioning(backend.password)
        seen["clients"] = [
            line for line in processes_mentioning(backend.client) if "cmdline" in line
        ]
        seen["files"] = [p.name for p in rsctmp.iterdir()]

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
    assert out.seconds < 5.0, out.seconds  # within the 5 s action timeout
    assert "did not answer" in out.reason
    assert seen["ps_has_client"] is True
    assert seen["clients"], "the client was not running while we looked"
    assert seen["ps_has_password"] is False
    assert seen["proc_hits"] == []
    # The password file existed only while the client ran, and is gone now.
    files = seen["files"]
    assert isinstance(files, list)
    assert any(str(f).startswith(".bacula-catalog-") for f in files)
    assert not [p for p in rsctmp.iterdir() if p.name.startswith(".bacula-catalog-")]
    log = logfile.read_text()
    assert backend.client in log  # the command line was logged ...
    assert backend.password not in log + out.stderr  # ... without the password


@pytest.mark.parametrize("broken", ["wrong_password", "missing_database"])
def test_start_fails_on_wrong_catalog_settings(
    tmp_path: Path, rsctmp: Path, backend: Backend, catalog: CatalogInfo, broken: str
) -> None:
    if broken == "wrong_password":
        info, words = dataclasses.replace(catalog, db_password="wrong-pw"), backend.auth_failed
    else:
        info, words = dataclasses.replace(catalog, db_name="nosuchdb"), backend.no_database
    out = run_agent("start", params_for(backend, tmp_path, info), rsctmp, interval_ms=None)
    assert out.code == 1
    assert words in out.reason
    assert "wrong-pw" not in out.stderr


def test_version_changed_is_not_configured(
    tmp_path: Path,
    rsctmp: Path,
    backend: Backend,
    server: SandboxServer,
    scratch_catalog: CatalogInfo,
) -> None:
    params = started(params_for(backend, tmp_path, scratch_catalog), rsctmp)
    server.sql("UPDATE Version SET VersionId = 15", db=scratch_catalog.db_name)
    assert run_agent("monitor", params, rsctmp, depth=0).code == 0  # depth 0 does not look
    out = run_agent("monitor", params, rsctmp, depth=10)
    # 5 (this node only), not 6: another node's Bacula may expect 15 during an upgrade.
    assert out.code == 5
    assert "15" in out.reason and "16" in out.reason
    assert_clean(out)


def test_table_dropped(
    tmp_path: Path,
    rsctmp: Path,
    backend: Backend,
    server: SandboxServer,
    scratch_catalog: CatalogInfo,
) -> None:
    params = started(params_for(backend, tmp_path, scratch_catalog), rsctmp)
    server.sql(f"DROP TABLE {backend.table}", db=scratch_catalog.db_name)
    out = run_agent("monitor", params, rsctmp, depth=10)
    assert out.code == 1
    assert backend.table in out.reason
    assert_clean(out)


def test_latency_is_degraded_not_failed(
    tmp_path: Path,
    rsctmp: Path,
    backend: Backend,
    server: SandboxServer,
    scratch_catalog: CatalogInfo,
) -> None:
    params = params_for(backend, tmp_path, scratch_catalog, latency_threshold="300")
    started(params, rsctmp)
    server.sql(backend.slow_insert, db=scratch_catalog.db_name)
    assert run_agent("monitor", params, rsctmp, depth=10).code == 0  # no write: not slow
    out = run_agent("monitor", params, rsctmp, depth=20)
    assert out.code == 190, out.stderr
    assert "slow" in out.stderr
    # Nothing of the write round trip is left behind (it was rolled back).
    assert server.sql("SELECT COUNT(*) FROM Counters", db=scratch_catalog.db_name) == "0"
    # Start ignores slowness (degraded is not a reason to refuse to start).
    assert run_agent("start", params, rsctmp, interval_ms=None).code == 0


# -- bad input (no server needed) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"backend": "oracle"}, 6, "oracle"),
        ({"db_port": "99999"}, 6, "db_port"),
        ({"connect_timeout": "soon"}, 6, "connect_timeout"),
        ({"client": "psql"}, 6, "absolute"),
        ({"client": "/nonexistent/psql"}, 5, "not installed"),
        ({"config": "/nonexistent/bacula-dir.conf"}, 5, "does not exist"),
    ],
)
def test_bad_parameters(rsctmp: Path, params: dict[str, str], code: int, words: str) -> None:
    out = run_agent("start", params, rsctmp, interval_ms=None)
    assert out.code == code, out.stderr
    assert words in out.reason
    assert_clean(out)
    # Stop still succeeds (nothing can be running), and a probe says "not running".
    assert run_agent("stop", params, rsctmp, interval_ms=None).code == 0
    probe = run_agent("monitor", params, rsctmp, interval_ms=None)
    assert probe.code in (6, 7) if code == 6 else probe.code == 7


def test_broken_director_config(tmp_path: Path, rsctmp: Path) -> None:
    conf = tmp_path / "broken.conf"
    conf.write_text("Catalog {\n  Name = X\n")
    out = run_agent("validate-all", {"config": str(conf)}, rsctmp, interval_ms=None)
    assert out.code == 6
    assert "Config error" in out.reason
    assert_clean(out)


# -- settings cache --------------------------------------------------------------------------


def test_monitor_reuses_settings_until_a_source_changes(
    tmp_path: Path, rsctmp: Path, backend: Backend, catalog: CatalogInfo
) -> None:
    """After start, monitors skip bdirjson; an edit of an @included file is noticed."""
    inc = tmp_path / "catalog.conf"
    main = tmp_path / "bacula-dir.conf"
    good = CatalogEntry(
        "MyCatalog", catalog.db_name, "bacula", backend.password, "127.0.0.1", catalog.port
    )
    write_director_conf(main, [good])
    text = main.read_text()
    start = text.index("Catalog {")
    end = text.index("}\n", start) + 2
    inc.write_text(text[start:end])
    main.write_text(text[:start] + f'@"{inc}"\n' + text[end:])
    params = started({"config": str(main), **backend.params}, rsctmp)
    debug = {"HA_debug": "1"}
    out = run_agent("monitor", params, rsctmp, extra_env=debug)
    assert out.code == 0
    assert "bdirjson" not in out.stderr and backend.client in out.stderr
    inc.write_text(inc.read_text().replace(backend.password, "changed-pw"))
    out = run_agent("monitor", params, rsctmp, extra_env=debug)
    assert out.code == 1
    assert "bdirjson" in out.stderr
    assert backend.auth_failed in out.reason
    state = next((rsctmp / "bacula-ha").iterdir())
    assert oct(state.stat().st_mode & 0o777) == "0o600"
