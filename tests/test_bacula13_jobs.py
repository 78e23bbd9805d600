"""Backups across a director failover on Bacula 13.0.3 (docs/jobs.md): the agent's start brings
back what the previous instance left running, on 13's catalog (schema 1024).

The 9.6 tests written over site_factory and the install's catalogs are collected again here
(test_jobs: the exactly-once record on 13's tables in both SQLs; test_missed_runs: the Schedule
rules against 13's own listing and a run missed in an outage run late once; test_director: stop
and reload with running jobs). New here: a director killed mid-backup is re-run exactly once,
and a planned move (stop with on_stop=resume) is resumed under the same JobId.

A backup must still run when the fault lands. 13.0.3's file daemon does not slow down on
loopback for `setbandwidth` (it answers "2000 Limiting bandwidth") nor for `Maximum Bandwidth
Per Job` (measured: 100 MB in under 3 s either way), so these tests pace the backup with a
named pipe among its files (FileSet `readfifo = yes`): the job reads it as long as the test
feeds it.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacula_ha.bacula.jobs import TABLE as RERUN_TABLE
from bacula_ha.bacula.layout import Layout
from testkit.sandbox.bacula import BaculaSite, CatalogSettings
from testkit.sandbox.postgres import CatalogInfo, PostgresServer

from . import test_director as director_tests
from . import test_jobs as jobs_tests
from . import test_missed_runs as missed_tests
from .catalog_helpers import POSTGRES, scratch_catalog_on
from .fixtures_bacula import DIRECTOR, FILEDAEMON, STORAGE, Daemon, SiteFactory, bconsole, gone

pytestmark = pytest.mark.bacula13

# The shared tests themselves (and the fixture they take), not copies: collected here again.
catalog = jobs_tests.catalog
test_catalog_record_is_exactly_once_and_chains = (
    jobs_tests.test_catalog_record_is_exactly_once_and_chains
)
test_sign_of_life_and_runs_that_ran = jobs_tests.test_sign_of_life_and_runs_that_ran
test_rules_agree_with_the_directors_own_listing = (
    missed_tests.test_rules_agree_with_the_directors_own_listing
)
test_a_run_missed_in_an_outage_runs_late_once = (
    missed_tests.test_a_run_missed_in_an_outage_runs_late_once
)
test_reload_with_broken_config_keeps_the_old_one = (
    director_tests.test_reload_with_broken_config_keeps_the_old_one
)
test_catalog_down_at_start_is_not_a_configuration_error = (
    director_tests.test_catalog_down_at_start_is_not_a_configuration_error
)
test_stop_logs_the_jobs_it_interrupts = director_tests.test_stop_logs_the_jobs_it_interrupts
test_stop_waits_for_running_jobs_with_job_wait = (
    director_tests.test_stop_waits_for_running_jobs_with_job_wait
)


class Feed:
    """A named pipe the backup saves as one file's data (`readfifo = yes`), at the pace this
    feeds it: every reader (the run, a re-run, a resume) gets `chunk` bytes every `pause`
    seconds until `release()`, then the end of its file."""

    def __init__(self, path: Path, chunk: int = 256 << 10, pause: float = 0.05) -> None:
        os.mkfifo(path, 0o644)
        self.path, self.chunk, self.pause = path, chunk, pause
        self.sent = 0  # bytes, over every reader
        self.readers = 0  # how many times a reader opened it before release()
        self._released = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed", daemon=True)

    def __enter__(self) -> Feed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._released.set()
        self._thread.join(10)

    def release(self) -> None:
        self._released.set()

    def wait_sent(self, more: int, timeout: float = 60) -> None:
        """Until `more` bytes went through the pipe (counted from now)."""
        base, end = self.sent, time.monotonic() + timeout
        while self.sent - base < more:
            assert time.monotonic() < end, f"the backup read {self.sent - base} bytes only"
            time.sleep(0.05)

    def _run(self) -> None:
        data = os.urandom(self.chunk)  # nothing to compress
        while not self._closed.is_set():
            try:  # non-blocking: a writer open fails (ENXIO) until a reader has it open
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO, exc
                time.sleep(0.02)
                continue
            self.readers += not self._released.is_set()
            try:
                self._serve(fd, data)
            finally:
                os.close(fd)  # the reader's end of file

    def _serve(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while not self._released.is_set():
            done = 0
            while done < len(view) and not self._closed.is_set():
                try:
                    done += os.write(fd, view[done:])
                except BlockingIOError:
                    time.sleep(0.01)
                except BrokenPipeError:
                    return  # the reader went away
            self.sent += done
            self._released.wait(self.pause)


@pytest.fixture
def own_catalog(pg_server: PostgresServer, bacula13_install: Layout) -> Iterator[CatalogInfo]:
    """A 13.0.3 catalog of the test's own: every job in it is the test's (the shared one
    holds what other tests interrupted, which a start with interrupted_jobs=rerun would bring
    back too)."""
    with scratch_catalog_on(pg_server, POSTGRES, bacula13_install) as info:
        yield info


def _paced_site(site_factory: SiteFactory, info: CatalogInfo) -> BaculaSite:
    catalog = CatalogSettings(
        dbname=info.db_name,
        user=info.db_user,
        password=info.db_password,
        address="127.0.0.1",
        port=info.port,
    )
    site = site_factory(catalog=catalog)
    # readfifo reads only a pipe the FileSet names itself.
    data = f'    File = "{site.data_dir}"\n'
    text = site.dir_conf.read_text()
    assert text.count("signature = MD5\n") == 1 and text.count(data) == 1
    text = text.replace("signature = MD5\n", "signature = MD5\n      readfifo = yes\n")
    text = text.replace(data, f'{data}    File = "{_stream(site)}"\n')
    site.dir_conf.write_text(text)
    for n in range(12):  # a job of more than 10 files, as a resumable one would be
        (site.data_dir / f"small{n:02}.txt").write_text(f"file {n}\n" * 100)
    return site


def _stream(site: BaculaSite) -> Path:
    """The named pipe a paced site's backup reads (beside its data)."""
    return site.root / "stream"


def _jobs(server: PostgresServer, db: str) -> list[tuple[int, str]]:
    """The site's backups in its catalog: (JobId, JobStatus), oldest first."""
    out = server.sql(
        "SELECT 'job:' || JobId || ':' || JobStatus FROM Job WHERE Name = 'BackupSandbox' "
        "ORDER BY JobId",
        db=db,
    )
    return [(int(w.split(":")[1]), w.split(":")[2]) for w in out.split() if w.startswith("job:")]


def _wait_status(server: PostgresServer, db: str, job_id: int, status: str) -> None:
    end = time.monotonic() + 90
    while (now := dict(_jobs(server, db)).get(job_id)) != status:
        assert time.monotonic() < end, f"JobId {job_id} is {now}, not {status}"
        assert now not in ("E", "A") or status in ("E", "A"), f"JobId {job_id} ended {now}"
        time.sleep(0.25)


def _queue(site: BaculaSite) -> int:
    out = bconsole(site, "run job=BackupSandbox yes")
    found = re.search(r"Job queued\. JobId=(\d+)", out)
    assert found, out
    return int(found[1])


def _start_all(site: BaculaSite, rsctmp: Path, env: dict[str, str]) -> tuple[Daemon, ...]:
    sd, fd, d = STORAGE.on(site), FILEDAEMON.on(site), DIRECTOR.on(site)
    for each in (sd, fd, d):
        started = each.run("start", rsctmp, extra_env=env)
        assert started.code == 0, started.stderr
    return sd, fd, d


def _stop_all(daemons: tuple[Daemon, ...], rsctmp: Path) -> None:
    for each in reversed(daemons):
        assert each.run("stop", rsctmp).code == 0


def test_a_director_killed_mid_backup_is_re_run_once(
    own_catalog: CatalogInfo,
    pg_server: PostgresServer,
    site_factory: SiteFactory,
    rsctmp: Path,
    tmp_path: Path,
    ocf_root: Path,
) -> None:
    db = own_catalog.db_name
    site = _paced_site(site_factory, own_catalog)
    log = tmp_path / "ha.log"
    env = {"HA_LOGFILE": str(log)}
    with Feed(_stream(site)) as feed:
        daemons = _start_all(site, rsctmp, env)
        d = daemons[-1]
        first = _queue(site)
        feed.wait_sent(2 << 20)  # mid-backup: the job is reading the stream
        assert _jobs(pg_server, db) == [(first, "R")]
        pid = d.pid()
        os.kill(pid, signal.SIGKILL)  # the director's node dies; fd and sd live on
        while not gone(pid):
            time.sleep(0.05)
        start = d.run("start", rsctmp, extra_env=env)
        assert start.code == 0, start.stderr
        text = log.read_text()
        found = re.search(
            rf"JobId {first} \(BackupSandbox\): re-run from the start as JobId (\d+)", text
        )
        assert found, text
        rerun = int(found[1])
        _wait_status(pg_server, db, rerun, "R")
        feed.wait_sent(1 << 20)  # the re-run reads the stream from its start
        feed.release()
        _wait_status(pg_server, db, rerun, "T")
        # Exactly once: the interrupted job failed, one re-run (a new JobId) ended T.
        assert _jobs(pg_server, db) == [(first, "f"), (rerun, "T")]
        rows = pg_server.sql(
            f"SELECT 'row:' || jobid || ':' || action || ':' || new_jobid FROM {RERUN_TABLE}",
            db=db,
        )
        assert [w for w in rows.split() if w.startswith("row:")] == [f"row:{first}:rerun:{rerun}"]
        joblog = bconsole(site, f"list joblog jobid={first}")
        assert f"re-run from the start as JobId {rerun}" in joblog, joblog
        # A later bounce finds nothing left to bring back.
        assert d.run("stop", rsctmp).code == 0
        assert d.run("start", rsctmp, extra_env=env).code == 0
        assert log.read_text().count("re-run from the start") == text.count("re-run from the start")
        assert _jobs(pg_server, db) == [(first, "f"), (rerun, "T")]
        _stop_all(daemons, rsctmp)


def test_a_planned_move_mid_backup_is_resumed_under_its_jobid(
    own_catalog: CatalogInfo,
    pg_server: PostgresServer,
    site_factory: SiteFactory,
    rsctmp: Path,
    tmp_path: Path,
    ocf_root: Path,
) -> None:
    db = own_catalog.db_name
    site = _paced_site(site_factory, own_catalog)
    log = tmp_path / "ha.log"
    env = {"HA_LOGFILE": str(log)}
    with Feed(_stream(site)) as feed:
        daemons = _start_all(site, rsctmp, env)
        d = daemons[-1]
        job = _queue(site)
        feed.wait_sent(2 << 20)
        assert _jobs(pg_server, db) == [(job, "R")]
        # The move's stop (on_stop=resume by default): `stop jobid=N`, the job ends Incomplete.
        stop = d.run("stop", rsctmp, extra_env=env)
        assert stop.code == 0, stop.stderr
        assert f"JobId {job} (BackupSandbox" in log.read_text()
        assert "stopped to be resumed by the next start" in log.read_text()
        assert _jobs(pg_server, db) == [(job, "I")]
        start = d.run("start", rsctmp, extra_env=env)
        assert start.code == 0, start.stderr
        assert f"JobId {job} (BackupSandbox): resumed as JobId {job}" in log.read_text()
        _wait_status(pg_server, db, job, "R")
        feed.wait_sent(1 << 20)  # the resume reads the stream again: it was not saved yet
        feed.release()
        _wait_status(pg_server, db, job, "T")
        assert _jobs(pg_server, db) == [(job, "T")]  # the same JobId, nothing run again
        assert feed.readers == 2  # by the job, then by its resume
        _stop_all(daemons, rsctmp)
