"""Scheduled runs an outage made Bacula skip (bacula/jobs.py catch_up), with a real director,
storage and file daemon and a real PostgreSQL catalog; and the evaluator of Schedule rules
(bacula/schedule.py) against the director's own listing of what it will run."""

from __future__ import annotations

import re
import time
from pathlib import Path

from bacula_ha.bacula import jobs
from bacula_ha.bacula.config import load
from bacula_ha.bacula.schedule import planned, scheduled_jobs
from bacula_ha.ocf.deadline import Deadline
from testkit.sandbox.bacula import BaculaSite
from testkit.sandbox.postgres import CatalogInfo, PostgresServer

from .fixtures_bacula import DIRECTOR, FILEDAEMON, STORAGE, SiteFactory, bconsole

# Every kind of rule a site uses: weekdays, weeks of the month, last day, days of the month,
# weeks of the year, months, hourly, and more than one hour.
RICH_SCHEDULE = """
  Run = Full 1st sun at 23:05
  Run = Differential 2nd-5th sun at 23:05
  Run = Level=Incremental Priority=7 mon-sat at 23:05
  Run = Full lastday at 1:00
  Run = Differential w02-w50 on 1-3 at 12:30
  Run = Incremental jan-mar,nov-dec on 10,20 at 6:45, 18:45
  Run = Incremental 2nd wed hourly at 0:10
  Run = Full 3rd-4th fri at 4:00
"""


def _with_schedule(site: BaculaSite, runs: str) -> None:
    """BackupSandbox on a Schedule made of `runs` (Run lines)."""
    text = site.dir_conf.read_text()
    marker = "  Reschedule Times = 5\n}"
    assert marker in text
    text = text.replace(marker, "  Reschedule Times = 5\n  Schedule = Cycle\n}", 1)
    site.dir_conf.write_text(text + "Schedule {\n  Name = Cycle\n" + runs + "}\n")


def test_rules_agree_with_the_directors_own_listing(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory(name="listing")
    _with_schedule(site, RICH_SCHEDULE)
    d = DIRECTOR.on(site)
    assert d.run("start", rsctmp, params={"interrupted_jobs": "off"}).code == 0
    try:
        days = 62
        listing = bconsole(site, f"status schedule days={days}", timeout=60)
    finally:
        assert d.run("stop", rsctmp).code == 0
    # "Full  Backup  10  Mon 30-Nov 01:00  BackupSandbox  Cycle": level and time, no year.
    line = re.compile(r"^(\w+)\s+Backup\s+\d+\s+(\w{3} \d\d-\w{3} \d\d:\d\d)\s", re.M)
    theirs = sorted((m[1], m[2]) for m in line.finditer(listing))
    assert len(theirs) > 60, listing  # two months of a busy schedule
    res = load(site.binary("bdirjson"), str(site.dir_conf), Deadline.after(20))
    tm = time.localtime()
    today = time.mktime((tm.tm_year, tm.tm_mon, tm.tm_mday, 0, 0, 0, 0, 0, -1))
    # The listing starts today (no year is printed; within 62 days none is needed).
    first = re.search(r"\w{3} (\d\d-\w{3}) \d\d:\d\d", listing)
    assert first and first[1] == time.strftime("%d-%b", time.localtime(today)), listing
    # The listing shows a Run's first time of each day only (its `hourly` and `at 6:45, 18:45`
    # run every hour or time, as the scheduler does): compare each rule's first time a day.
    ((name, kind, rules),) = scheduled_jobs(res)
    ours = []
    for rule in rules:
        firsts: dict[str, str] = {}
        for p in planned([(name, kind, [rule])], today - 1, today + days * 86400 - 1):
            day = time.strftime("%a %d-%b", time.localtime(p.runtime))
            firsts.setdefault(day, time.strftime("%H:%M", time.localtime(p.runtime)))
        ours += [(rule.level, f"{day} {at}") for day, at in firsts.items()]
    ours.sort()
    # The listing's last day may be cut short or run one over: compare the days both cover.
    last_day = max(t for _, t in theirs)[4:10]
    both_theirs = [x for x in theirs if x[1][4:10] != last_day]
    both_ours = [x for x in ours if x in both_theirs or x[1][4:10] != last_day]
    assert set(both_theirs) <= set(ours), sorted(set(both_theirs) - set(ours))
    assert set(both_ours) <= set(theirs), sorted(set(both_ours) - set(theirs))


def _alive(server: PostgresServer, db: str, director: str, seen: float, stopped: bool) -> None:
    server.sql(
        jobs.create_alive("postgresql")
        + f"INSERT INTO {jobs.ALIVE_TABLE} (director, seen, stopped) VALUES "
        f"('{director}', {int(seen)}, {int(stopped)}) ON CONFLICT (director) DO UPDATE "
        "SET seen = EXCLUDED.seen, stopped = EXCLUDED.stopped;",
        db=db,
    )


def _alive_row(server: PostgresServer, db: str, director: str) -> tuple[int, str]:
    out = server.sql(
        f"SELECT seen || '|' || stopped FROM {jobs.ALIVE_TABLE} WHERE director = '{director}'",
        db=db,
    )
    seen, stopped = next(w for w in out.split() if "|" in w).split("|")
    return int(seen), stopped


def _late_jobs(server: PostgresServer, db: str, when: str) -> list[str]:
    out = server.sql(
        f"SELECT 'late:' || JobId || ':' || Level FROM Job WHERE Name = 'BackupSandbox' "
        f"AND SchedTime = '{when}'",
        db=db,
    )
    return [w for w in out.split() if w.startswith("late:")]


def test_a_run_missed_in_an_outage_runs_late_once(
    site_factory: SiteFactory,
    rsctmp: Path,
    ocf_root: Path,
    tmp_path: Path,
    pg_server: PostgresServer,
    site_catalog: CatalogInfo,
) -> None:
    db = site_catalog.db_name
    site = site_factory(name="latecomer")
    (site.data_dir / "file.bin").write_bytes(b"late" * 4096)
    director = site.dir_name()
    # A daily Full five minutes ago: the director was down then (its node died ten
    # minutes ago, say); its scheduler, starting now, skips it.
    runtime = (int(time.time()) // 60 - 5) * 60
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(runtime))
    _with_schedule(site, f"  Run = Level=Full daily at {when[11:16]}\n")
    sd, fd, d = STORAGE.on(site), FILEDAEMON.on(site), DIRECTOR.on(site)
    log = tmp_path / "ha.log"
    env = {"HA_LOGFILE": str(log)}
    assert sd.run("start", rsctmp).code == 0 and fd.run("start", rsctmp).code == 0

    # No life of this director recorded (a new site): nothing is run late.
    pg_server.sql(
        jobs.create_alive("postgresql")
        + f"DELETE FROM {jobs.ALIVE_TABLE} WHERE director = '{director}'",
        db=db,
    )
    assert d.run("start", rsctmp, extra_env=env).code == 0
    assert "no earlier life of this director is recorded" in log.read_text()
    assert _late_jobs(pg_server, db, when) == []
    # The start recorded this life; its clean stop says so: no outage to catch up.
    assert d.run("stop", rsctmp, extra_env=env).code == 0
    assert _alive_row(pg_server, db, director)[1] == "1"
    assert d.run("start", rsctmp, extra_env=env).code == 0
    assert _late_jobs(pg_server, db, when) == [] and "run late" not in log.read_text()

    # The outage: last sign of life ten minutes ago, no clean stop (a crash).
    d.run("stop", rsctmp)
    _alive(pg_server, db, director, time.time() - 600, stopped=False)
    assert d.run("start", rsctmp, extra_env=env).code == 0
    text = log.read_text()
    late = rf"BackupSandbox scheduled at {when} was missed: run late as JobId (\d+)"
    found = re.search(late, text)
    assert found, text
    job_id = found[1]
    assert _late_jobs(pg_server, db, when) == [f"late:{job_id}:F"]
    deadline = time.monotonic() + 90
    while "jobstatus: T" not in (record := bconsole(site, f"llist jobid={job_id}")):
        assert time.monotonic() < deadline, record
        time.sleep(0.5)
    assert "run late: scheduled at" in bconsole(site, f"list joblog jobid={job_id}")
    # The start closed the window: its own sign of life, now.
    seen, stopped = _alive_row(pg_server, db, director)
    assert stopped == "0" and abs(seen - time.time()) < 60

    # Another crash with the same window: the run has its job now, nothing runs twice.
    pid = d.pid()
    import os
    import signal

    os.kill(pid, signal.SIGKILL)
    _alive(pg_server, db, director, time.time() - 600, stopped=False)
    before = log.read_text().count("run late")
    assert d.run("start", rsctmp, extra_env=env).code == 0
    assert log.read_text().count("run late") == before
    assert _late_jobs(pg_server, db, when) == [f"late:{job_id}:F"]

    # A monitor records the sign of life (at most once a minute).
    _alive(pg_server, db, director, 0, stopped=False)
    assert d.run("monitor", rsctmp, depth=0).code == 0
    assert abs(_alive_row(pg_server, db, director)[0] - time.time()) < 60
    _alive(pg_server, db, director, 0, stopped=False)
    assert d.run("monitor", rsctmp, depth=0).code == 0
    assert _alive_row(pg_server, db, director)[0] == 0  # not again within the minute
    for daemon in (d, fd, sd):
        assert daemon.run("stop", rsctmp).code == 0
