"""Interrupted jobs (bacula/jobs): the decisions, the exactly-once record, on a real catalog."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bacula_ha.agents import director_jobs
from bacula_ha.bacula import jobs
from bacula_ha.bacula.catalog import CatalogSettings, default_client
from bacula_ha.bacula.config import Resources
from bacula_ha.bacula.jobs import Entry, Job, Ledger, Policy
from bacula_ha.bacula.layout import Layout
from bacula_ha.ocf.deadline import Deadline
from bacula_ha.ocf.errors import GenericError, NotConfiguredError
from testkit.sandbox.mariadb import MariaDBServer
from testkit.sandbox.postgres import PostgresServer
from testkit.sandbox.server import CatalogInfo, SandboxServer
from tests.catalog_helpers import MARIADB, POSTGRES, Backend, scratch_catalog_on
from tests.tiers import slow_fixture


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def debug(self, message: str) -> None:
        self.lines.append(("debug", message))

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def text(self, level: str) -> str:
        return "\n".join(m for lv, m in self.lines if lv == level)


def _job(job_id: int, type_: str = "B", attempt: int = 1, status: str = "R") -> Job:
    return Job(job_id, "Backup1", type_, "F", status, origin=job_id, attempt=attempt)


# -- pure decisions ----------------------------------------------------------------------------


def test_policy_defaults_and_errors() -> None:
    assert jobs.parse_policy("", "", 2) == Policy("rerun", frozenset({"B"}), 2)
    p = jobs.parse_policy("LOG", "backup, restore verify", 0)
    assert p.mode == "log" and p.types == frozenset({"B", "R", "V"}) and p.max_reruns == 0
    with pytest.raises(ValueError, match="interrupted_jobs"):
        jobs.parse_policy("sometimes", "", 2)
    with pytest.raises(ValueError, match="unknown job type 'backups'"):
        jobs.parse_policy("rerun", "backups", 2)
    with pytest.raises(NotConfiguredError, match="max_reruns"):
        jobs.policy_from({"max_reruns": "two"})
    with pytest.raises(NotConfiguredError, match="on_stop"):
        jobs.policy_from({"on_stop": "kill"})


def test_decide_brings_back_backups_until_the_limit() -> None:
    policy = Policy(max_reruns=2)
    assert jobs.decide(_job(1), policy) == "pending"
    assert jobs.decide(_job(1, attempt=2), policy) == "pending"
    assert jobs.decide(_job(1, attempt=3), policy) == "limit"
    assert jobs.decide(_job(1, type_="R"), policy) == "logged"  # a restore: logged only
    assert jobs.decide(_job(1), Policy(mode="log")) == "logged"
    assert jobs.decide(_job(1, type_="R"), Policy(types=frozenset({"B", "R"}))) == "pending"


def test_restart_command_loses_least() -> None:
    # Incomplete: resumed under the same JobId; failed/canceled: a fresh run.
    assert jobs.restart_command(7, "I") == "restart incomplete jobid=7 yes"
    assert jobs.restart_command(7, "f") == "restart failed jobid=7 yes"
    assert jobs.restart_command(7, "A") == "restart canceled jobid=7 yes"
    assert jobs.restart_command(7, "T") is None
    assert jobs.queued_job_id("Job queued. JobId=42\n") == 42
    assert jobs.queued_job_id("Job failed.") is None


def test_adopting_what_a_dead_agent_issued() -> None:
    issued = Entry(5, 5, 1, "issuing", name="Backup1", status_now="f", max_before=9)
    assert jobs.adopted(issued, {"Backup1": 12}) == ("rerun", 12)
    assert jobs.adopted(issued, {"Backup1": 9}) is None  # nothing newer: never queued
    assert jobs.adopted(issued, {}) is None
    resumed = Entry(5, 5, 1, "issuing", name="Backup1", status_now="R", max_before=9)
    assert jobs.adopted(resumed, {}) == ("resumed", 5)  # a resume keeps the JobId
    still = Entry(5, 5, 1, "issuing", name="Backup1", status_now="I", max_before=9)
    assert jobs.adopted(still, {"Backup1": 12}) is None


class FakeLedger:
    """open_entries/mark in memory: the pure side of bring_back."""

    def __init__(self, entries: list[Entry], later: dict[str, int]) -> None:
        self.entries, self.later = entries, later
        self.marks: list[tuple[str, list[int], dict[tuple[int, int], int]]] = []

    def open_entries(
        self, deadline: Deadline, timeout: float
    ) -> tuple[list[Entry], dict[str, int]]:
        return list(self.entries), dict(self.later)

    def mark(self, entries: list[Entry], action: str, *a: Any, **kw: Any) -> None:
        self.marks.append((action, [e.job_id for e in entries], dict(kw.get("new_ids") or {})))


def test_bring_back_issues_each_open_entry_once() -> None:
    ledger = FakeLedger(
        [
            Entry(1, 1, 1, "pending", "B1", "f"),
            Entry(2, 2, 1, "pending", "B2", "I"),
            Entry(3, 3, 1, "pending", "B3", "T"),  # finished meanwhile
            Entry(4, 4, 1, "issuing", "B4", "f", max_before=10),  # issued by a dead agent
        ],
        {"": 20, "B4": 11},
    )
    sent: list[str] = []

    def console(command: str) -> str:
        sent.append(command)
        return "Job queued. JobId=21\n" if "failed" in command else "Job queued. JobId=2\n"

    log = Log()
    storages = {"B1": ["sd1"], "B2": ["sd1"]}
    done = jobs.bring_back(
        ledger,  # type: ignore[arg-type]
        console,
        Deadline.after(5),
        log,
        storages=storages,
    )
    # The re-run (not the resume) frees what a surviving storage daemon holds of the old job.
    assert sent == [
        "restart failed jobid=1 yes",
        "restart incomplete jobid=2 yes",
        "cancel inactive storage=sd1 jobid=1",
    ]
    outcome = {e.job_id: (o, n) for e, o, n in done}
    assert outcome == {1: ("rerun", 21), 2: ("resumed", 2), 3: ("finished", None), 4: ("rerun", 11)}
    assert ledger.marks[0][:2] == ("issuing", [1, 2])
    assert "re-run from the start as JobId 21" in log.text("info")
    assert "resumed as JobId 2" in log.text("info")


def test_bring_back_leaves_an_entry_open_when_the_console_fails() -> None:
    ledger = FakeLedger([Entry(1, 1, 1, "pending", "B1", "f")], {"": 3})

    def console(command: str) -> str:
        raise GenericError("no answer")

    log = Log()
    assert jobs.bring_back(ledger, console, Deadline.after(5), log) == []  # type: ignore[arg-type]
    assert [m[0] for m in ledger.marks] == ["issuing"]  # a later start adopts or issues it
    assert "could not bring back JobId 1" in log.text("warning")


# -- on a real PostgreSQL catalog ------------------------------------------------------------------


@pytest.fixture(params=[POSTGRES, MARIADB], ids=lambda b: b.name)
@slow_fixture
def catalog(
    request: pytest.FixtureRequest, bacula_install: Layout
) -> Iterator[tuple[SandboxServer, CatalogInfo]]:
    """A scratch catalog of the install under test on each backend: the record speaks both
    SQLs."""
    backend: Backend = request.param
    server = backend.fixture(request, "server")
    assert isinstance(server, (PostgresServer, MariaDBServer))
    with scratch_catalog_on(server, backend, bacula_install) as info:
        yield server, info


def _backend(server: SandboxServer) -> str:
    return "postgresql" if isinstance(server, PostgresServer) else "mysql"


def _settings(info: CatalogInfo, password: str | None = None) -> CatalogSettings:
    return CatalogSettings(
        name="MyCatalog",
        db_name=info.db_name,
        user=info.db_user,
        password=info.db_password if password is None else password,
        address=info.host,
        port=info.port,
    )


def _ledger(server: SandboxServer, info: CatalogInfo, tmp: Path) -> Ledger:
    backend = _backend(server)
    return Ledger(
        _settings(info),
        client=default_client(backend),
        node="n1",
        tmpdir=str(tmp),
        backend=backend,
    )


def _add_job(server: SandboxServer, db: str, name: str, status: str, type_: str = "B") -> int:
    # Subqueries on other tables: MySQL refuses a subquery on the table it inserts into.
    out = server.sql(
        "INSERT INTO Job (Job, Name, Type, Level, JobStatus, ClientId, FileSetId, PoolId)"
        f" VALUES ('{name}.x', '{name}', '{type_}', 'F', '{status}',"
        " (SELECT min(ClientId) FROM Client), (SELECT min(FileSetId) FROM FileSet),"
        " (SELECT min(PoolId) FROM Pool)) RETURNING JobId",
        db=db,
    )
    return int(next(w for w in out.split() if w.isdigit()))


def _seed(server: SandboxServer, db: str) -> None:
    server.sql(
        "INSERT INTO Client (Name, Uname) VALUES ('c-fd', 'x');"
        "INSERT INTO FileSet (FileSet, MD5, CreateTime) VALUES ('Set', 'x', now());"
        "INSERT INTO Pool (Name, LabelFormat) VALUES ('File', 'Vol-');",
        db=db,
    )


def test_catalog_record_is_exactly_once_and_chains(
    catalog: tuple[SandboxServer, CatalogInfo], tmp_path: Path
) -> None:
    server, info = catalog
    db = info.db_name
    _seed(server, db)
    done = _add_job(server, db, "Backup1", "T")
    running = _add_job(server, db, "Backup1", "R")
    created = _add_job(server, db, "Restore1", "C", type_="R")
    failed = _add_job(server, db, "Backup1", "f")
    ledger = _ledger(server, info, tmp_path)
    found = ledger.interrupted(Deadline.after(10), 10)
    # Exactly what the director's start-up clean-up fails: R and C, with their names.
    assert [(j.job_id, j.status) for j in found] == [(running, "R"), (created, "C")]
    assert found[0].client == "c-fd" and found[0].fileset == "Set" and found[0].pool == "File"
    assert (found[0].origin, found[0].attempt) == (running, 1)

    log = Log()
    new = jobs.record_interrupted(ledger, Policy(), Deadline.after(10), log)
    assert [(j.job_id, a) for j, a in new] == [(running, "pending"), (created, "logged")]
    # A retried start (the director never ran, both still R/C): nothing recorded twice.
    assert jobs.record_interrupted(ledger, Policy(), Deadline.after(10), log) == []
    rows = ledger.entries(Deadline.after(10), 10)
    assert [(r["jobid"], r["action"]) for r in rows] == [
        (str(running), "pending"),
        (str(created), "logged"),
    ]
    assert done not in [int(r["jobid"]) for r in rows] and failed not in [
        int(r["jobid"]) for r in rows
    ]
    # What the director does when it starts; then the agent brings the job back.
    server.sql("UPDATE Job SET JobStatus = 'f' WHERE JobStatus IN ('R', 'C')", db=db)
    rerun_ids: list[int] = []

    def console(command: str) -> str:
        assert command == f"restart failed jobid={rerun_ids[-1] if rerun_ids else running} yes"
        new_id = _add_job(server, db, "Backup1", "R")
        return f"Job queued. JobId={new_id}\n"

    outcome = jobs.bring_back(ledger, console, Deadline.after(10), log)
    assert [(e.job_id, o) for e, o, _ in outcome] == [(running, "rerun")]
    rerun = outcome[0][2]
    assert rerun is not None
    rerun_ids.append(rerun)
    # Nothing left to do: a second start (or a bounce before the re-run ran) issues nothing.
    assert jobs.bring_back(ledger, console, Deadline.after(10), log) == []
    # The re-run is interrupted in turn: the chain continues (attempt 2 of the same origin).
    (again,) = ledger.interrupted(Deadline.after(10), 10)
    assert (again.job_id, again.origin, again.attempt) == (rerun, running, 2)
    # With max_reruns=1 that second interruption is left failed and reported.
    new = jobs.record_interrupted(ledger, Policy(max_reruns=1), Deadline.after(10), log)
    assert [a for _, a in new] == ["limit"]
    assert f"JobId {rerun} (Backup1" in log.text("warning")
    assert "not brought back again (max_reruns=1)" in log.text("warning")
    # Each decision is in the job's own log too (`list joblog`).
    texts = server.sql(f"SELECT LogText FROM Log WHERE JobId = {running}", db=db)
    assert "to be brought back" in texts and f"re-run from the start as JobId {rerun}" in texts


def test_unreadable_catalog_is_a_warning_not_a_failed_start(
    catalog: tuple[SandboxServer, CatalogInfo], tmp_path: Path
) -> None:
    server, info = catalog
    entry = {
        "DbDriver": "MySQL" if _backend(server) == "mysql" else "",
        "Name": "MyCatalog",
        "DbName": info.db_name,
        "User": info.db_user,
        "Password": "wrong-password",
        "Address": info.host,
        "DbPort": info.port,
    }
    res = Resources("/etc/bacula/bacula-dir.conf", {"Catalog": (entry,)})
    env = SimpleNamespace(deadline=Deadline.after(10), rsctmp=str(tmp_path))
    log = Log()
    policy = jobs.policy_from({})
    director_jobs.on_launch(policy, res, env, log)  # type: ignore[arg-type]
    director_jobs.on_started(policy, res, lambda c: "", env, log)  # type: ignore[arg-type]
    warnings = log.text("warning")
    assert "cannot read the catalog" in warnings and "wrong-password" not in warnings
    assert "not brought back now" in warnings
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".bacula-catalog")]


def test_sign_of_life_and_runs_that_ran(
    catalog: tuple[SandboxServer, CatalogInfo], tmp_path: Path
) -> None:
    """What catch_up reads and writes (scheduled runs missed in an outage), in both SQLs."""
    from bacula_ha.bacula.schedule import Planned

    server, info = catalog
    db = info.db_name
    ledger = _ledger(server, info, tmp_path)
    deadline = Deadline.after(10)
    # Each write returns the row it replaces: one row per director.
    assert ledger.alive("dir-1", 1000, False, deadline, 10) is None
    assert ledger.alive("dir-2", 5, True, deadline, 10) is None
    assert ledger.alive("dir-1", 2000, True, deadline, 10) == (1000, False)
    assert ledger.alive("dir-1", 3000, False, deadline, 10) == (2000, True)
    assert ledger.alive("dir-2", 6, False, deadline, 10) == (5, True)
    # A job's SchedTime says which scheduled run it was.
    _seed(server, db)
    job_id = _add_job(server, db, "Nightly", "T")
    server.sql(f"UPDATE Job SET SchedTime = '2026-11-30 23:05:00' WHERE JobId = {job_id}", db=db)
    stamp = int(time.mktime(time.strptime("2026-11-30 23:05", "%Y-%m-%d %H:%M")))
    runs = [Planned("Nightly", "B", stamp, "Full"), Planned("Nightly", "B", stamp + 60, "Full")]
    runs.append(Planned("Weekly's", "B", stamp, "Full"))  # a quote in a name is data
    assert ledger.ran(runs, deadline, 10) == {("Nightly", "2026-11-30 23:05:00")}
    ledger.note(job_id, "bacula-ha: a note with 'quotes' and a \\ backslash", deadline, 10)
    # Read back raw (the sandbox's client escapes backslashes on output): one backslash.
    rows = ledger._sql(f"SELECT 'log', LogText FROM Log WHERE JobId = {job_id};", deadline, 10)
    assert rows == [["log", "bacula-ha: a note with 'quotes' and a \\ backslash"]]
