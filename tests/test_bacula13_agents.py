"""bacula-dir, bacula-sd and bacula-fd on Bacula 13.0.3 (bacula.org's layout, TLS-PSK on).

The 9.6.7 contract tests of test_daemon_contract.py, run again here on the 13.0.3 build that
scripts/build-bacula makes: marked `bacula13`, their sites come from that install (site_factory
follows bacula_install), their agents get `binary=PREFIX/bin/bacula-*` (and `bconsole=` for the
director) and the catalog is 13's own (schema 1024, no Filename table). Skipped when 13.0.3 is
not built; `scripts/test` runs them as a tier of their own.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bacula_ha.bacula.layout import Layout

from . import test_daemon_contract as contract
from .fixtures_bacula import (
    DAEMON_AGENTS,
    DIRECTOR,
    FILEDAEMON,
    STORAGE,
    Daemon,
    SiteFactory,
    bconsole,
    gone,
)

# The shared tests themselves (and the fixtures they take), not copies: collected here again.
agent = contract.agent
daemon = contract.daemon
test_lifecycle_all_depths = contract.test_lifecycle_all_depths
test_ocf_tester_passes = contract.test_ocf_tester_passes
test_probe_finds_a_daemon_started_outside_the_cluster = (
    contract.test_probe_finds_a_daemon_started_outside_the_cluster
)
test_sigstop_fails_depth_10_within_its_bound = contract.test_sigstop_fails_depth_10_within_its_bound
test_stop_of_a_stopped_daemon_escalates = contract.test_stop_of_a_stopped_daemon_escalates
test_broken_config = contract.test_broken_config
test_missing_binary = contract.test_missing_binary
test_bad_parameters = contract.test_bad_parameters

pytestmark = pytest.mark.bacula13


def test_sites_run_13(bacula_install: Layout, site_factory: SiteFactory) -> None:
    """The tier really is on 13.0.3: the site's programs are the build's, its catalog 13's."""
    site = site_factory()
    assert site.install == bacula_install and bacula_install.prefix
    for d in (DIRECTOR, STORAGE, FILEDAEMON):
        assert d.on(site).params()["binary"] == f"{bacula_install.bindir}/{d.name}"
    assert 'dbdriver = "postgresql"' in site.dir_conf.read_text()
    assert "bacula13" in site.dir_conf.read_text()


@pytest.mark.parametrize("agent", DAEMON_AGENTS, ids=str)
def test_stop_is_0_even_unconfigured(daemon: Daemon, rsctmp: Path, ocf_root: Path) -> None:
    """A stop returns 0 with no configuration anywhere, and after the file went away under a
    running daemon; the probe after it is 7."""
    d = daemon
    nowhere = {"config": str(d.site.etc / "gone.conf")}
    assert d.run("stop", rsctmp, params=nowhere).code == 0
    assert d.run("monitor", rsctmp, params=nowhere, interval_ms=0).code == 7
    d.start(rsctmp)
    pid = d.pid()
    d.conf.unlink()
    stop = d.run("stop", rsctmp)
    assert stop.code == 0, stop.stderr
    assert gone(pid)
    assert d.run("monitor", rsctmp, interval_ms=0).code == 7


def _job_id(queued: str) -> str:
    assert "Job queued. JobId=" in queued, queued
    job_id = queued.split("Job queued. JobId=")[1].split()[0]
    assert job_id.isdigit(), queued
    return job_id


def test_backup_through_agent_run_daemons_ends_T(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    (site.data_dir / "some.bin").write_bytes(bytes(range(256)) * 4096)
    sd, fd, d = STORAGE.on(site), FILEDAEMON.on(site), DIRECTOR.on(site)
    off = {"interrupted_jobs": "off"}  # the session's catalog: not this test's to bring back
    for each in (sd, fd, d):
        each.start(rsctmp, params=off if each is d else None)
    for each in (sd, fd, d):
        deep = each.run("monitor", rsctmp, depth=each.agent.deepest)
        assert deep.code == 0, (each.agent.name, deep.stderr)
    assert "13.0.3" in bconsole(site, "version")
    job_id = _job_id(bconsole(site, "run job=BackupSandbox yes"))
    deadline = time.monotonic() + 90
    while "jobstatus: T" not in (record := bconsole(site, f"llist jobid={job_id}")):
        assert time.monotonic() < deadline, record
        assert "jobstatus: f" not in record and "jobstatus: E" not in record, record
        time.sleep(0.5)
    assert "jobfiles: 3" in record, record  # the directory, hello.txt and some.bin
    pids = [each.pid() for each in (d, fd, sd)]
    for each in (d, fd, sd):
        assert each.run("stop", rsctmp).code == 0
    assert all(gone(pid) for pid in pids)
    for each in (d, fd, sd):
        assert each.run("monitor", rsctmp, interval_ms=0).code == 7
