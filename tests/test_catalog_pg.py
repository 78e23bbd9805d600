"""bacula-catalog against a real PostgreSQL holding a catalog made by Debian's scripts."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bacula_ha.install import provider_dir
from bacula_ha.sandbox.postgres import CatalogInfo, PostgresServer, make_basedir
from tests.catalog_helpers import (
    CatalogEntry,
    assert_clean,
    director_params,
    processes_mentioning,
    run_agent,
    started,
    write_director_conf,
)

PASSWORD = "pg-Secret-4711"  # pg_catalog's; a string we can look for in ps and logs


@pytest.fixture
def rsctmp(tmp_path: Path) -> Path:
    path = tmp_path / "rsctmp"
    path.mkdir()
    return path


# -- healthy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [True, False], ids=["tcp", "socket"])
def test_healthy_catalog_passes_every_depth(
    tmp_path: Path, rsctmp: Path, pg_catalog: CatalogInfo, tcp: bool
) -> None:
    params = director_params(tmp_path, pg_catalog, tcp=tcp)
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


def test_explicit_parameters_without_director_config(
    tmp_path: Path, rsctmp: Path, pg_catalog: CatalogInfo
) -> None:
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


def test_catalog_picked_by_name(tmp_path: Path, rsctmp: Path, pg_catalog: CatalogInfo) -> None:
    conf = tmp_path / "two.conf"
    good = CatalogEntry(
        "Good", pg_catalog.db_name, "bacula", PASSWORD, "127.0.0.1", pg_catalog.port
    )
    bad = CatalogEntry("Bad", "nosuchdb", "bacula", PASSWORD, "127.0.0.1", pg_catalog.port)
    write_director_conf(conf, [bad, good])
    assert run_agent("start", {"config": str(conf)}, rsctmp, interval_ms=None).code == 1
    out = run_agent("start", {"config": str(conf), "catalog": "Good"}, rsctmp, interval_ms=None)
    assert out.code == 0, out.stderr
    out = run_agent("validate-all", {"config": str(conf), "catalog": "Nope"}, rsctmp)
    assert out.code == 6
    assert "Nope" in out.reason and "Good" in out.reason


# -- tools -----------------------------------------------------------------------------------


def test_ocf_tester_passes(tmp_path: Path, ocf_root: Path, pg_catalog: CatalogInfo) -> None:
    params = director_params(tmp_path, pg_catalog)
    agent = provider_dir(ocf_root) / "bacula-catalog"
    proc = subprocess.run(
        ["/usr/sbin/ocf-tester", "-n", "cattest", "-o", f"config={params['config']}", str(agent)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed all tests" in proc.stdout


def test_crm_resource_validate_and_force_check(
    tmp_path: Path, ocf_root: Path, pg_catalog: CatalogInfo
) -> None:
    params = director_params(tmp_path, pg_catalog)
    base = ["crm_resource", "--class", "ocf", "--provider", "bacula", "--agent", "bacula-catalog"]
    opts = ["--option", f"config={params['config']}"]
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
    tmp_path: Path, rsctmp: Path, pg_factory: Callable[[], PostgresServer]
) -> None:
    server = pg_factory()
    info = server.create_bacula_catalog("bacula", "bacula", PASSWORD)
    params = started(director_params(tmp_path, info), rsctmp)
    server.stop()
    out = run_agent("monitor", params, rsctmp)
    assert out.code == 1
    assert "catalog unreachable" in out.reason and "refused" in out.reason
    assert_clean(out)
    # A probe answers from this node's state, never from the database.
    assert run_agent("monitor", params, rsctmp, interval_ms=None).code == 0
    assert run_agent("start", params, rsctmp, interval_ms=None).code == 1
    assert run_agent("stop", params, rsctmp, interval_ms=None).code == 0


def test_hung_server_returns_within_deadline_and_hides_password(
    tmp_path: Path, rsctmp: Path, pg_factory: Callable[[], PostgresServer]
) -> None:
    server = pg_factory()
    info = server.create_bacula_catalog("bacula", "bacula", PASSWORD)
    params = started(director_params(tmp_path, info, connect_timeout="60"), rsctmp)
    logfile = tmp_path / "agent.log"
    server.pause()
    try:
        seen: dict[str, object] = {}

        def look() -> None:
            time.sleep(1.5)  # the agent's psql is now waiting on the stopped server
            ps = subprocess.run(["ps", "axeww", "-o", "args"], capture_output=True, text=True)
            seen["ps_has_psql"] = "psql" in ps.stdout
            seen["ps_has_password"] = PASSWORD in ps.stdout
            seen["proc_hits"] = processes_mentioning(PASSWORD)
            seen["files"] = [p.name for p in rsctmp.iterdir()]

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
    assert seen["ps_has_psql"] is True
    assert seen["ps_has_password"] is False
    assert seen["proc_hits"] == []
    # The password file existed only while the client ran, and is gone now.
    files = seen["files"]
    assert isinstance(files, list)
    assert any(str(f).startswith(".bacula-catalog-") for f in files)
    assert not [p for p in rsctmp.iterdir() if p.name.startswith(".bacula-catalog-")]
    log = logfile.read_text()
    assert "psql" in log  # the command line was logged ...
    assert PASSWORD not in log + out.stderr  # ... without the password


def test_connect_timeout_bounds_a_hung_server(
    tmp_path: Path, rsctmp: Path, pg_factory: Callable[[], PostgresServer]
) -> None:
    server = pg_factory()
    info = server.create_bacula_catalog("bacula", "bacula", PASSWORD)
    params = started(director_params(tmp_path, info, connect_timeout="2"), rsctmp)
    server.pause()
    try:
        out = run_agent("monitor", params, rsctmp, timeout_ms=20_000)
    finally:
        server.resume()
    assert out.code == 1
    assert out.seconds < 6, out.seconds
    assert_clean(out)


def test_wrong_password(tmp_path: Path, rsctmp: Path, pg_catalog: CatalogInfo) -> None:
    info = CatalogInfo(pg_catalog.db_name, pg_catalog.db_user, "wrong-pw", "", pg_catalog.port)
    out = run_agent("start", director_params(tmp_path, info), rsctmp, interval_ms=None)
    assert out.code == 1
    assert "password authentication failed" in out.reason
    assert "wrong-pw" not in out.stderr


def test_missing_database(tmp_path: Path, rsctmp: Path, pg_catalog: CatalogInfo) -> None:
    info = CatalogInfo("nosuchdb", pg_catalog.db_user, PASSWORD, "", pg_catalog.port)
    out = run_agent("start", director_params(tmp_path, info), rsctmp, interval_ms=None)
    assert out.code == 1
    assert 'database "nosuchdb" does not exist' in out.reason


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


@pytest.fixture
def scratch_catalog(pg_server: PostgresServer) -> Iterator[CatalogInfo]:
    """A catalog of its own on the shared server, for tests that break it."""
    name = f"scratch_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    info = pg_server.create_bacula_catalog(name, "bacula", PASSWORD)
    try:
        yield info
    finally:
        pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_read_only_database(
    tmp_path: Path, rsctmp: Path, pg_server: PostgresServer, scratch_catalog: CatalogInfo
) -> None:
    params = started(director_params(tmp_path, scratch_catalog), rsctmp)
    pg_server.set_config("default_transaction_read_only", "on", db=scratch_catalog.db_name)
    out = run_agent("monitor", params, rsctmp)
    assert out.code == 1
    assert "read-only" in out.reason


def test_version_changed_is_not_configured(
    tmp_path: Path, rsctmp: Path, pg_server: PostgresServer, scratch_catalog: CatalogInfo
) -> None:
    params = started(director_params(tmp_path, scratch_catalog), rsctmp)
    pg_server.psql("UPDATE version SET versionid = 15", db=scratch_catalog.db_name)
    assert run_agent("monitor", params, rsctmp, depth=0).code == 0  # depth 0 does not look
    out = run_agent("monitor", params, rsctmp, depth=10)
    assert out.code == 6
    assert "15" in out.reason and "16" in out.reason
    assert_clean(out)


def test_table_dropped(
    tmp_path: Path, rsctmp: Path, pg_server: PostgresServer, scratch_catalog: CatalogInfo
) -> None:
    params = started(director_params(tmp_path, scratch_catalog), rsctmp)
    pg_server.psql("DROP TABLE jobmedia", db=scratch_catalog.db_name)
    out = run_agent("monitor", params, rsctmp, depth=10)
    assert out.code == 1
    assert "JobMedia" in out.reason


def test_write_refused_at_depth_20(
    tmp_path: Path, rsctmp: Path, pg_server: PostgresServer, scratch_catalog: CatalogInfo
) -> None:
    params = started(director_params(tmp_path, scratch_catalog), rsctmp)
    pg_server.psql("REVOKE INSERT ON counters FROM bacula", db=scratch_catalog.db_name)
    assert run_agent("monitor", params, rsctmp, depth=10).code == 0
    out = run_agent("monitor", params, rsctmp, depth=20)
    assert out.code == 1
    assert "write check failed" in out.reason and "permission denied" in out.reason


def test_latency_is_degraded_not_failed(
    tmp_path: Path, rsctmp: Path, pg_server: PostgresServer, scratch_catalog: CatalogInfo
) -> None:
    params = started(director_params(tmp_path, scratch_catalog, latency_threshold="300"), rsctmp)
    # A slow-write hook: every insert into counters sleeps 0.5 s (as a slow disk would).
    pg_server.psql(
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END$$;"
        " CREATE TRIGGER slow BEFORE INSERT ON counters FOR EACH ROW EXECUTE FUNCTION slow();",
        db=scratch_catalog.db_name,
    )
    assert run_agent("monitor", params, rsctmp, depth=10).code == 0  # no write: not slow
    out = run_agent("monitor", params, rsctmp, depth=20)
    assert out.code == 190, out.stderr
    assert "slow" in out.stderr
    # Nothing of the write round trip is left behind.
    assert pg_server.psql("SELECT count(*) FROM counters", db=scratch_catalog.db_name) == "0"
    # Start ignores slowness (degraded is not a reason to refuse to start).
    assert run_agent("start", params, rsctmp, interval_ms=None).code == 0


# -- bad input -------------------------------------------------------------------------------


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
    tmp_path: Path, rsctmp: Path, pg_catalog: CatalogInfo
) -> None:
    """After start, monitors skip bdirjson; an edit of an @included file is noticed."""
    inc = tmp_path / "catalog.conf"
    main = tmp_path / "bacula-dir.conf"
    good = CatalogEntry("MyCatalog", "bacula", "bacula", PASSWORD, "127.0.0.1", pg_catalog.port)
    write_director_conf(main, [good])
    text = main.read_text()
    start = text.index("Catalog {")
    end = text.index("}\n", start) + 2
    inc.write_text(text[start:end])
    main.write_text(text[:start] + f'@"{inc}"\n' + text[end:])
    params = started({"config": str(main)}, rsctmp)
    debug = {"HA_debug": "1"}
    out = run_agent("monitor", params, rsctmp, extra_env=debug)
    assert out.code == 0
    assert "bdirjson" not in out.stderr and "psql" in out.stderr
    inc.write_text(inc.read_text().replace(PASSWORD, "changed-pw"))
    out = run_agent("monitor", params, rsctmp, extra_env=debug)
    assert out.code == 1
    assert "bdirjson" in out.stderr
    assert "password authentication failed" in out.reason
    state = next((rsctmp / "bacula-ha").iterdir())
    assert oct(state.stat().st_mode & 0o777) == "0o600"
