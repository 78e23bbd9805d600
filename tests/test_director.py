"""The bacula-dir agent against a real director and a real PostgreSQL catalog.

What it shares with the other daemon agents is in test_daemon_contract.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from bacula_ha.bacula.layout import DEBIAN, Layout
from testkit.sandbox.bacula import CatalogSettings
from testkit.sandbox.postgres import PostgresServer

from .fixtures_bacula import DIRECTOR, SiteFactory, bconsole


def test_reload_with_broken_config_keeps_the_old_one(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    d = DIRECTOR.on(site)
    assert d.run("start", rsctmp).code == 0
    pid = d.pid()
    original = site.dir_conf.read_text()
    site.dir_conf.write_text(original + "\nJob {\n  Name = Broken\n  Type = \n")
    refused = d.run("reload", rsctmp)
    assert refused.code == 1 and "old configuration kept" in refused.reason
    assert d.pid() == pid and d.run("monitor", rsctmp, depth=0).code == 0
    # Deeper, the broken file on disk shows as degraded, never as a configuration error.
    degraded = d.run("monitor", rsctmp, depth=10)
    assert degraded.code == 190 and "configuration on disk" in degraded.reason
    # A good change goes through, without a restart.
    site.dir_conf.write_text(original.replace("Name = RestoreSandbox", "Name = RestoreAgain"))
    reloaded = d.run("reload-agent", rsctmp)
    assert reloaded.code == 0, reloaded.stderr
    assert d.pid() == pid
    assert "RestoreAgain" in bconsole(site, ".jobs")
    assert d.run("stop", rsctmp).code == 0


def test_catalog_down_at_start_is_not_a_configuration_error(
    pg_factory: object, site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    server: PostgresServer = pg_factory()  # type: ignore[operator]
    info = server.create_bacula_catalog("bacula", "bacula", "pw-down")
    d = DIRECTOR.on(site_factory(catalog=CatalogSettings(password="pw-down", port=info.port)))
    server.stop()
    result = d.run("start", rsctmp)
    assert result.code == 1, result.stderr
    assert "catalog" in result.reason.lower()
    assert d.run("monitor", rsctmp).code == 7
    assert d.run("validate-all", rsctmp).code == 1


def test_stop_logs_the_jobs_it_interrupts(
    site_factory: SiteFactory,
    rsctmp: Path,
    tmp_path: Path,
    ocf_root: Path,
    bacula_install: Layout,
) -> None:
    site = site_factory()
    d = DIRECTOR.on(site)
    assert d.run("start", rsctmp).code == 0
    # No storage daemon runs: the job waits for it, which is "running" for the director.
    out = bconsole(site, "run job=BackupSandbox yes")
    assert "Job queued. JobId=" in out, out
    # The catalog is shared by the session: the id this run got, not 1 (nor 10-19).
    job_id = out.split("Job queued. JobId=")[1].split()[0]
    assert job_id.isdigit(), out
    deadline = time.monotonic() + 15
    while "BackupSandbox" not in bconsole(site, "status dir").split("Running Jobs:")[1]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    log = tmp_path / "ha.log"
    stop = d.run("stop", rsctmp, extra_env={"HA_LOGFILE": str(log)})
    assert stop.code == 0, stop.stderr
    text = log.read_text()
    assert f"JobId {job_id} (BackupSandbox, type B, level F) stopped to be resumed" in text
    if bacula_install == DEBIAN:
        # 9.6 leaves a stopped job that still waits for its storage running: the daemon's
        # stop interrupts it. 13.0 cancels one that the stop finds not started yet
        # (cancel_job in src/dird/job.c): then nothing is left running to interrupt.
        assert f"interrupts JobId {job_id}:" in text


def test_stop_waits_for_running_jobs_with_job_wait(
    site_factory: SiteFactory, rsctmp: Path, tmp_path: Path, ocf_root: Path
) -> None:
    """With job_wait, a stop lets a running backup finish: the catalog records it as OK."""
    from .fixtures_bacula import FILEDAEMON, STORAGE

    site = site_factory()
    # Enough data that the job is still running when the stop comes.
    (site.data_dir / "big.bin").write_bytes(b"\0" * (64 << 20))
    sd, fd, d = STORAGE.on(site), FILEDAEMON.on(site), DIRECTOR.on(site)
    # The session's catalog may hold jobs an earlier test's stop interrupted: not re-run here.
    off = {"interrupted_jobs": "off"}
    for daemon in (sd, fd, d):
        assert daemon.run("start", rsctmp, params=off if daemon is d else None).code == 0
    queued = bconsole(site, "run job=BackupSandbox yes")
    assert "Job queued. JobId=" in queued, queued
    # The catalog is shared by the session: take the id this run got.
    job_id = queued.split("Job queued. JobId=")[1].split()[0]
    log = tmp_path / "ha.log"
    stop = d.run("stop", rsctmp, params={"job_wait": "60"}, extra_env={"HA_LOGFILE": str(log)})
    assert stop.code == 0, stop.stderr
    text = log.read_text()
    assert "waiting up to 60s for 1 running job(s)" in text
    assert "interrupts JobId" not in text
    assert d.run("start", rsctmp).code == 0
    record = bconsole(site, f"llist jobid={job_id}")
    assert "jobstatus: T" in record, record  # T: terminated normally
    for daemon in (d, fd, sd):
        assert daemon.run("stop", rsctmp).code == 0


def test_each_action_reads_the_configuration_once(
    site_factory: SiteFactory, rsctmp: Path, tmp_path: Path, ocf_root: Path
) -> None:
    """Bacula's parser runs once per action (bdirjson beside the binary, counting its calls):
    start and reload hand the one reading down to the catalog check, `-t`, the record."""
    import os
    import stat

    site = site_factory()
    d = DIRECTOR.on(site)
    real = Path(d.binary)
    tools = tmp_path / "sbin"
    tools.mkdir()
    calls = tmp_path / "bdirjson-calls"
    for name in ("bacula-dir", "bconsole"):
        (tools / name).symlink_to(real.parent / name)
    wrapper = tools / "bdirjson"
    wrapper.write_text(f'#!/bin/sh\necho x >> {calls}\nexec {real.parent / "bdirjson"} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    params = {"binary": str(tools / "bacula-dir"), "interrupted_jobs": "off"}

    def count(action: str) -> int:
        before = calls.read_text().count("x") if calls.exists() else 0
        result = d.run(action, rsctmp, params=params)
        assert result.code == 0, result.stderr
        return calls.read_text().count("x") - before if calls.exists() else 0

    assert os.access(wrapper, os.X_OK)
    assert count("validate-all") == 1
    assert count("start") == 1
    assert count("monitor") == 0  # from what start recorded
    assert count("reload") == 1
    assert count("stop") == 0
