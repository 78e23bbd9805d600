"""Jobs across a failover: what a director left interrupted, and bringing each back once.

Bacula 9.6's director, when it starts, marks every catalog job in `R` (running) or `C`
(created) as failed (`cleanup_running_job`, `cleanup_created_job` in src/cats/sql_cmds.c,
run from src/dird/dird.c), so the evidence exists only *before* the daemon starts. The start
of the bacula-dir agent therefore records those jobs first (`record_interrupted`), then, once
the director answers, brings them back (`bring_back`) with the console's `restart`:

- a job in `I` (Incomplete: stopped with `stop jobid=N`, attributes spooled) is *resumed*:
  same JobId, the director sends the file daemon the list of files already saved;
- any other job (`f` after a crash) is *re-run from the start* with the same job, level,
  client, fileset, pool and storage, under a new JobId.

The record is a table in the catalog itself (`bacula_ha_rerun`), so it survives the node
that wrote it and moves with the catalog. One row per interruption, keyed by the chain's
first JobId (`origin`) and the interruption's number in the chain (`attempt`): a second
claim of the same interruption (a retried start, a start after a failed one) collides with
the unique key and changes nothing, which is what makes a job come back once per
interruption. A re-run's new JobId is stored in the row, so when the re-run is interrupted
in turn the chain continues (attempt + 1) and a chain longer than `max_reruns` is left
failed and reported. A Log row on the interrupted job repeats each decision for
`list joblog`. PostgreSQL and MySQL (MariaDB) catalogs alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from ..ocf import params as P
from ..ocf.deadline import Deadline
from ..ocf.errors import GenericError, NotConfiguredError
from ..ocf.metadata import Parameter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Protocol

    from ..ocf.env import Environment
    from .catalog import CatalogSettings
    from .config import Resources
    from .console import RunningJob
    from .daemon import Daemon
    from .schedule import Planned, Rule

    class _Log(Protocol):
        def debug(self, message: str) -> None: ...
        def info(self, message: str) -> None: ...
        def warning(self, message: str) -> None: ...

else:
    from ..ocf.record import dataclass

# The statuses Bacula 9.6's start-up clean-up turns into `f` (src/cats/sql_cmds.c).
CLEANED_AT_START = ("R", "C")
# Job types (Job.Type) by the names the rerun_types parameter takes.
TYPE_NAMES = {
    "backup": "B",
    "restore": "R",
    "verify": "V",
    "copy": "c",
    "migration": "g",
    "admin": "D",
}
MODES = ("rerun", "log", "off")
# The restart kind (the console's keyword) for a job's status once the director runs.
_RESTART_KIND = {"I": "incomplete", "A": "canceled", "f": "failed", "E": "failed"}
# Final outcomes of an interruption; `pending` and `issuing` are the ones still to act on.
FINAL = ("rerun", "resumed", "logged", "limit", "finished", "refused")
TABLE = "bacula_ha_rerun"
_SEP = "\x1f"


class CatalogError(GenericError):
    """The catalog could not be read or written for the job bookkeeping."""


@dataclass(frozen=True)
class Policy:
    """What to do with interrupted jobs (the director agent's parameters, parsed)."""

    mode: str = "rerun"  # rerun | log | off
    types: frozenset[str] = frozenset({"B"})  # Job.Type letters brought back
    max_reruns: int = 2  # re-runs of one chain; interrupted once more, it is left failed


@dataclass(frozen=True)
class Job:
    """A job as the catalog holds it, with the chain it belongs to."""

    job_id: int
    name: str
    type: str
    level: str
    status: str
    client: str = ""
    fileset: str = ""
    pool: str = ""
    origin: int = 0  # first JobId of the chain (0: not known yet)
    attempt: int = 1  # which interruption of the chain this is

    def describe(self) -> str:
        return f"JobId {self.job_id} ({self.name}, type {self.type}, level {self.level})"


@dataclass(frozen=True)
class Entry:
    """One row of the record: an interruption and what was decided for it."""

    job_id: int
    origin: int
    attempt: int
    action: str
    name: str = ""
    status_now: str = ""  # the job's status in the catalog when read
    new_job_id: int | None = None
    max_before: int = 0  # the highest JobId when the command was issued (to adopt a re-run)


def parse_policy(mode: str, types: str, max_reruns: int) -> Policy:
    """The policy from parameter text; ValueError names what is wrong."""
    mode = (mode or "rerun").strip().lower()
    if mode not in MODES:
        raise ValueError(f"interrupted_jobs must be one of {', '.join(MODES)}, not {mode!r}")
    if max_reruns < 0:
        raise ValueError("max_reruns must be 0 or more")
    return Policy(mode, type_letters(types), max_reruns)


def type_letters(types: str) -> frozenset[str]:
    """The Job.Type letters of the rerun_types parameter; ValueError names an unknown type."""
    letters = set()
    for word in (types or "backup").replace(",", " ").split():
        if word.lower() not in TYPE_NAMES:
            known = ", ".join(TYPE_NAMES)
            raise ValueError(f"rerun_types: unknown job type {word!r} (known: {known})")
        letters.add(TYPE_NAMES[word.lower()])
    return frozenset(letters)


def _types_rule(value: str) -> None:
    """rerun_types as the meta-data declares it (ocf.params.check)."""
    try:
        type_letters(value)
    except ValueError as exc:
        raise NotConfiguredError(str(exc)) from None


# -- pure decisions ----------------------------------------------------------------------------


def decide(job: Job, policy: Policy) -> str:
    """The action recorded for one interruption: pending (bring back), logged, or limit."""
    if job.attempt > policy.max_reruns:
        return "limit"
    if policy.mode != "rerun" or job.type not in policy.types:
        return "logged"
    return "pending"


def restart_command(job_id: int, status: str) -> str | None:
    """The console command that brings a job in `status` back, or None (nothing to do)."""
    kind = _RESTART_KIND.get(status)
    return None if kind is None else f"restart {kind} jobid={job_id} yes"


def queued_job_id(output: str) -> int | None:
    """The JobId in the console's "Job queued. JobId=N" (restart, run)."""
    # Imported here: `re` alone costs every probe and monitor of the director 4 ms.
    import re

    found = re.findall(r"JobId=(\d+)", output)
    return int(found[-1]) if found else None


def adopted(entry: Entry, later: Mapping[str, int]) -> tuple[str, int] | None:
    """For an entry left `issuing` (the agent died between the command and its record):
    (outcome, JobId) of what the command made, if the catalog shows it; None: never queued.

    A resume keeps the JobId, so it happened if the job left its stopped state; a re-run
    is the newest job of the same name above the highest JobId when it was issued."""
    status = entry.status_now
    if status in ("f", "A", "E"):
        newest = later.get(entry.name, 0)
        if entry.max_before and newest > entry.max_before:
            return "rerun", newest
        return None
    if status and status != "I":
        return "resumed", entry.job_id
    return None


# -- the catalog -----------------------------------------------------------------------------


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# The record's tables in each catalog's SQL (the rest of the SQL here is common to both).
_SERIAL = {"postgresql": "serial", "mysql": "integer AUTO_INCREMENT"}
_STAMP = {"postgresql": "timestamptz", "mysql": "timestamp"}
# First in every script: quieter notices (PostgreSQL); quotes doubled, backslashes literal
# (MySQL), so that `_lit` means the same in both.
_PRELUDE = {
    "postgresql": "SET client_min_messages = warning;\n",
    "mysql": "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES');\n",
}
_ON_CONFLICT = " ON CONFLICT (origin, attempt) DO NOTHING"


def _create(backend: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {TABLE} (
  id {_SERIAL[backend]} PRIMARY KEY,
  jobid integer NOT NULL,
  origin integer NOT NULL,
  attempt integer NOT NULL,
  found char(1) NOT NULL,
  action varchar(16) NOT NULL,
  new_jobid integer,
  max_before integer NOT NULL DEFAULT 0,
  node varchar(255) NOT NULL DEFAULT '',
  created {_STAMP[backend]} NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated {_STAMP[backend]} NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE (origin, attempt));
"""


def sql(
    settings: CatalogSettings,
    script: str,
    *,
    client: str,
    deadline: Deadline,
    timeout: float,
    tmpdir: str | None = None,
    log: _Log | None = None,
    backend: str = "postgresql",
) -> list[list[str]]:
    """Run a script on the catalog (PostgreSQL or MySQL); the rows it printed, fields split."""
    # Imported here: the agent pays for them only when it has jobs to look at.
    from .catalog import POSTGRESQL, CheckOptions, _client_error, run_client

    timeout = max(1.0, deadline.bound(timeout))
    options = CheckOptions(
        depth=0,
        connect_timeout=max(2, int(timeout / 2)),
        query_timeout=max(1, int(timeout)),
        tmpdir=tmpdir,
    )
    pg = backend == POSTGRESQL
    result = run_client(
        backend,
        client,
        settings,
        options,
        script,
        deadline=deadline,
        timeout=timeout + 1,
        log=log,
        late="did not answer in time",
        extra_args=["-F", _SEP] if pg else (),
        extra_env={"PGAPPNAME": "bacula-ha-jobs"} if pg else None,
    )
    if not result.ok:
        error = _client_error(result.stderr, settings.password) or f"exit {result.returncode}"
        raise CatalogError(f"catalog {settings.where()}: {error}")
    # MySQL's --batch --raw separates fields with tabs (a job name holds none: Bacula's
    # names are letters, digits, spaces and - _ . :).
    sep = _SEP if backend == POSTGRESQL else "\t"
    return [line.split(sep) for line in result.stdout.splitlines() if line.strip()]


ALIVE_TABLE = "bacula_ha_alive"
# The director's last sign of life, so that the next start knows when an outage began.


def _create_alive(backend: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {ALIVE_TABLE} (
  director varchar(255) PRIMARY KEY,
  seen bigint NOT NULL,
  stopped integer NOT NULL DEFAULT 0,
  node varchar(255) NOT NULL DEFAULT '',
  updated {_STAMP[backend]} NOT NULL DEFAULT CURRENT_TIMESTAMP);
"""


def _jobs_query(where: str) -> str:
    # The chain: the latest record whose re-run this job is (a resume keeps the JobId, so the
    # job's own earlier records count too).
    # (Scalar subqueries rather than a LATERAL join: MySQL and MariaDB have none.)
    latest = f"FROM {TABLE} r WHERE r.new_jobid = j.JobId ORDER BY r.attempt DESC LIMIT 1"
    return f"""SELECT 'job', j.JobId, j.Name, j.Type, j.Level, j.JobStatus,
  coalesce(c.Name, ''), coalesce(f.FileSet, ''), coalesce(p.Name, ''),
  coalesce((SELECT r.origin {latest}), j.JobId),
  coalesce((SELECT r.attempt {latest}), 0) + 1
FROM Job j
LEFT JOIN Client c ON c.ClientId = j.ClientId
LEFT JOIN FileSet f ON f.FileSetId = j.FileSetId
LEFT JOIN Pool p ON p.PoolId = j.PoolId
WHERE {where} ORDER BY j.JobId;
"""


def _rows_to_jobs(rows: Iterable[Sequence[str]]) -> list[Job]:
    jobs = []
    for row in rows:
        if len(row) != 11 or row[0] != "job" or not all(f.isdigit() for f in row[9:]):
            continue
        if not row[1].isdigit():
            continue
        jobs.append(
            Job(
                job_id=int(row[1]),
                name=row[2],
                type=row[3],
                level=row[4],
                status=row[5],
                client=row[6],
                fileset=row[7],
                pool=row[8],
                origin=int(row[9]),
                attempt=int(row[10]),
            )
        )
    return jobs


class Ledger:
    """The record of interrupted jobs in one catalog, through psql."""

    def __init__(
        self,
        settings: CatalogSettings,
        *,
        client: str,
        node: str = "",
        tmpdir: str | None = None,
        log: _Log | None = None,
        backend: str = "postgresql",
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.create = _create(backend)
        self.create_alive = _create_alive(backend)
        self.client = client
        self.node = node or os.uname().nodename
        self.tmpdir = tmpdir
        self.log = log

    def _sql(self, script: str, deadline: Deadline, timeout: float) -> list[list[str]]:
        return sql(
            self.settings,
            _PRELUDE[self.backend] + script,
            client=self.client,
            deadline=deadline,
            timeout=timeout,
            tmpdir=self.tmpdir,
            log=self.log,
            backend=self.backend,
        )

    def interrupted(
        self, deadline: Deadline, timeout: float, statuses: Sequence[str] = CLEANED_AT_START
    ) -> list[Job]:
        """Jobs in `statuses` (what the start-up clean-up will fail), with their chains."""
        wanted = ", ".join(_lit(s) for s in statuses)
        rows = self._sql(self.create + _jobs_query(f"j.JobStatus IN ({wanted})"), deadline, timeout)
        return _rows_to_jobs(rows)

    def jobs(self, job_ids: Iterable[int], deadline: Deadline, timeout: float) -> list[Job]:
        ids = ", ".join(str(int(i)) for i in job_ids) or "NULL"
        rows = self._sql(self.create + _jobs_query(f"j.JobId IN ({ids})"), deadline, timeout)
        return _rows_to_jobs(rows)

    def claim(
        self, decided: Sequence[tuple[Job, str]], deadline: Deadline, timeout: float
    ) -> list[tuple[Job, str]]:
        """Record each interruption once; the (job, action) pairs that were new."""
        if not decided:
            return []
        lines = [self.create]
        # Only a new row is returned: a claim made before collides with the unique key.
        ignore, conflict = ("", _ON_CONFLICT) if self.backend == "postgresql" else ("IGNORE ", "")
        for job, action in decided:
            lines.append(
                f"INSERT {ignore}INTO {TABLE} (jobid, origin, attempt, found, action, node) "
                f"VALUES ({job.job_id}, {job.origin}, {job.attempt}, "
                f"{_lit(job.status[:1] or '?')}, {_lit(action)}, {_lit(self.node)}){conflict} "
                f"RETURNING 'new', origin, attempt;"
            )
            lines.append(_log_row(job.job_id, _claim_text(job, action)))
        rows = self._sql("BEGIN;\n" + "\n".join(lines) + "\nCOMMIT;\n", deadline, timeout)
        new = {(int(r[1]), int(r[2])) for r in rows if len(r) == 3 and r[0] == "new"}
        return [(job, action) for job, action in decided if (job.origin, job.attempt) in new]

    def open_entries(
        self, deadline: Deadline, timeout: float
    ) -> tuple[list[Entry], dict[str, int]]:
        """Entries still to act on, each with its job's current status; and, per job name,
        the newest JobId above the lowest `max_before` among them (to adopt lost re-runs)."""
        rows = self._sql(
            self.create
            + f"""SELECT 'entry', r.jobid, r.origin, r.attempt, r.action, coalesce(j.Name, ''),
  coalesce(j.JobStatus, ''), r.max_before
FROM {TABLE} r LEFT JOIN Job j ON j.JobId = r.jobid
WHERE r.action IN ('pending', 'issuing') ORDER BY r.id;
SELECT 'later', j.Name, max(j.JobId) FROM Job j
WHERE j.JobId > (SELECT coalesce(min(max_before), 0) FROM {TABLE}
  WHERE action = 'issuing' AND max_before > 0)
  AND EXISTS (SELECT 1 FROM {TABLE} WHERE action = 'issuing' AND max_before > 0)
GROUP BY j.Name;
SELECT 'max', coalesce(max(JobId), 0) FROM Job;
""",
            deadline,
            timeout,
        )
        entries = []
        later: dict[str, int] = {}
        for row in rows:
            if row[0] == "entry" and len(row) == 8:
                entries.append(
                    Entry(
                        job_id=int(row[1]),
                        origin=int(row[2]),
                        attempt=int(row[3]),
                        action=row[4],
                        name=row[5],
                        status_now=row[6],
                        max_before=int(row[7] or 0),
                    )
                )
            elif row[0] == "later" and len(row) == 3:
                later[row[1]] = int(row[2])
            elif row[0] == "max" and len(row) == 2:
                later[""] = int(row[1])
        return entries, later

    def mark(
        self,
        entries: Sequence[Entry],
        action: str,
        deadline: Deadline,
        timeout: float,
        *,
        new_ids: Mapping[tuple[int, int], int] | None = None,
        max_before: int = 0,
        notes: Mapping[tuple[int, int], str] | None = None,
    ) -> None:
        if not entries:
            return
        lines = []
        for e in entries:
            key = (e.origin, e.attempt)
            new = (new_ids or {}).get(key)
            sets = [f"action = {_lit(action)}", "updated = now()", f"node = {_lit(self.node)}"]
            if new is not None:
                sets.append(f"new_jobid = {int(new)}")
            if max_before:
                sets.append(f"max_before = {int(max_before)}")
            lines.append(
                f"UPDATE {TABLE} SET {', '.join(sets)} "
                f"WHERE origin = {e.origin} AND attempt = {e.attempt};"
            )
            note = (notes or {}).get(key)
            if note:
                lines.append(_log_row(e.job_id, note))
        self._sql("BEGIN;\n" + "\n".join(lines) + "\nCOMMIT;\n", deadline, timeout)

    def entries(self, deadline: Deadline, timeout: float) -> list[dict[str, str]]:
        """Every row of the record (for tests and reports)."""
        rows = self._sql(
            self.create
            + f"SELECT 'row', jobid, origin, attempt, found, action, coalesce(new_jobid, 0),"
            f" node FROM {TABLE} ORDER BY id;\n",
            deadline,
            timeout,
        )
        keys = ("jobid", "origin", "attempt", "found", "action", "new_jobid", "node")
        found = [dict(zip(keys, r[1:], strict=True)) for r in rows if r[0] == "row" and len(r) == 8]
        for row in found:
            row["new_jobid"] = "" if row["new_jobid"] == "0" else row["new_jobid"]
        return found

    def alive(
        self, director: str, seen: int, stopped: bool, deadline: Deadline, timeout: float
    ) -> tuple[int, bool] | None:
        """Record the director's latest sign of life (`stopped`: a clean stop, no outage);
        return the one it replaces, (seen, stopped cleanly), None if there was none."""
        if self.backend == "postgresql":
            upsert = "ON CONFLICT (director) DO UPDATE SET seen = EXCLUDED.seen, "
            upsert += "stopped = EXCLUDED.stopped, node = EXCLUDED.node, updated = now()"
        else:
            upsert = "ON DUPLICATE KEY UPDATE seen = VALUES(seen), stopped = VALUES(stopped), "
            upsert += "node = VALUES(node), updated = now()"
        # One round trip (a start waits for it): the old row, then the new one, atomically.
        rows = self._sql(
            self.create_alive + "BEGIN;\n" + f"SELECT 'alive', seen, stopped FROM {ALIVE_TABLE} "
            f"WHERE director = {_lit(director)} FOR UPDATE;\n"
            + f"INSERT INTO {ALIVE_TABLE} (director, seen, stopped, node) VALUES "
            f"({_lit(director)}, {int(seen)}, {int(stopped)}, {_lit(self.node)}) {upsert};\n"
            + "COMMIT;\n",
            deadline,
            timeout,
        )
        for row in rows:
            if len(row) == 3 and row[0] == "alive" and row[1].lstrip("-").isdigit():
                return int(row[1]), row[2] == "1"
        return None

    def ran(
        self, runs: Sequence[Planned], deadline: Deadline, timeout: float
    ) -> set[tuple[str, str]]:
        """Of these runs, (job, SchedTime) of those the catalog has a job for."""
        if not runs:
            return set()
        names = ", ".join(sorted({_lit(r.job) for r in runs}))
        times = ", ".join(sorted({_lit(r.when()) for r in runs}))
        rows = self._sql(
            # Both print a timestamp (Bacula stores whole seconds) as 'YYYY-MM-DD HH:MM:SS'.
            f"SELECT 'ran', Name, SchedTime FROM Job "
            f"WHERE Name IN ({names}) AND SchedTime IN ({times});\n",
            deadline,
            timeout,
        )
        return {(r[1], r[2]) for r in rows if len(r) == 3 and r[0] == "ran"}

    def note(self, job_id: int, text: str, deadline: Deadline, timeout: float) -> None:
        """A line in the job's log (`list joblog`)."""
        self._sql(_log_row(job_id, text) + "\n", deadline, timeout)


def _claim_text(job: Job, action: str) -> str:
    what = {
        "pending": "to be brought back",
        "logged": "logged only (policy)",
        "limit": "not brought back: interrupted too often in a row",
    }.get(action, action)
    chain = f"attempt {job.attempt} of chain {job.origin}"
    return f"bacula-ha: interrupted (found {job.status}), {chain}: {what}"


def _log_row(job_id: int, text: str) -> str:
    values = f"({int(job_id)}, now(), {_lit(text + chr(10))})"
    return f"INSERT INTO Log (JobId, Time, LogText) VALUES {values};"


# -- the two phases of a start -------------------------------------------------------------------


def record_interrupted(
    ledger: Ledger,
    policy: Policy,
    deadline: Deadline,
    log: _Log,
    *,
    timeout: float = 5.0,
    statuses: Sequence[str] = CLEANED_AT_START,
) -> list[tuple[Job, str]]:
    """Before the director starts: record the jobs the last instance left running, once.

    Returns the interruptions newly recorded (an interruption recorded by an earlier,
    failed start is not returned again, and not recorded twice)."""
    jobs = ledger.interrupted(deadline, timeout, statuses)
    if not jobs:
        return []
    decided = [(job, decide(job, policy)) for job in jobs]
    new = ledger.claim(decided, deadline, timeout)
    for job, action in new:
        if action == "limit":
            log.warning(
                f"{job.describe()} was interrupted {job.attempt} times in a row (chain from "
                f"JobId {job.origin}): not brought back again (max_reruns={policy.max_reruns})"
            )
        elif action == "logged":
            log.warning(f"{job.describe()} was interrupted; policy: logged, not brought back")
        else:
            log.info(f"{job.describe()} was interrupted (status {job.status}); will bring it back")
    return new


def bring_back(
    ledger: Ledger,
    console: Callable[[str], str],
    deadline: Deadline,
    log: _Log,
    *,
    timeout: float = 5.0,
    storages: Mapping[str, Sequence[str]] | None = None,
) -> list[tuple[Entry, str, int | None]]:
    """After the director answers: restart every recorded interruption not yet acted on.

    A storage daemon that outlived the director (on another node) still holds the old job's
    session and its volume reservation until its client wait times out (30 minutes by
    default), which would keep the re-run waiting: each re-run job is followed by `cancel
    inactive storage=S jobid=OLD` for the job's storages (`storages`: job name -> names).

    Each entry is marked `issuing` (with the highest JobId so far) before its command, and
    its outcome right after; an entry found `issuing` by a later start adopts the job the
    command made instead of issuing it again. Returns (entry, outcome, new JobId)."""
    entries, later = ledger.open_entries(deadline, timeout)
    if not entries:
        return []
    highest = later.pop("", 0)
    done: list[tuple[Entry, str, int | None]] = []
    to_issue: list[Entry] = []
    for e in entries:
        if e.action == "issuing":
            found = adopted(e, later)
            if found is not None:
                done.append((e, found[0], found[1]))
                continue
        if e.status_now in CLEANED_AT_START:
            continue  # running under this director already: nothing to do now
        if e.status_now in ("T", "W", ""):
            done.append((e, "finished", None))
            continue
        to_issue.append(e)
    ledger.mark(to_issue, "issuing", deadline, timeout, max_before=highest)
    for e in to_issue:
        command = restart_command(e.job_id, e.status_now)
        if command is None:
            done.append((e, "refused", None))
            continue
        try:
            output = console(command)
        except GenericError as exc:
            log.warning(f"could not bring back JobId {e.job_id}: {exc.reason}")
            continue  # stays `issuing`: a later start adopts or issues it
        new = queued_job_id(output)
        if new is None:
            tail = " ".join(output.split())[-160:]
            log.warning(f"the director did not queue JobId {e.job_id} again: {tail}")
            done.append((e, "refused", None))
            continue
        done.append((e, "resumed" if new == e.job_id else "rerun", new))
    for e, outcome, _new in done:
        if outcome != "rerun" or e not in to_issue:
            continue
        for storage in (storages or {}).get(e.name, ()):
            try:
                console(f"cancel inactive storage={storage} jobid={e.job_id}")
            except GenericError as exc:
                log.warning(f"could not cancel JobId {e.job_id} on storage {storage}: {exc.reason}")
    by_outcome: dict[str, list[Entry]] = {}
    new_ids: dict[tuple[int, int], int] = {}
    notes: dict[tuple[int, int], str] = {}
    for e, outcome, new in done:
        by_outcome.setdefault(outcome, []).append(e)
        key = (e.origin, e.attempt)
        if new is not None:
            new_ids[key] = new
        notes[key] = f"bacula-ha: {_outcome_text(e, outcome, new)}"
    for outcome, group in by_outcome.items():
        ledger.mark(group, outcome, deadline, timeout, new_ids=new_ids, notes=notes)
    for e, outcome, new in done:
        text = f"JobId {e.job_id} ({e.name or '?'}): {_outcome_text(e, outcome, new)}"
        (log.warning if outcome == "refused" else log.info)(text)
    return done


def _outcome_text(e: Entry, outcome: str, new: int | None) -> str:
    chain = f"(attempt {e.attempt}, chain from JobId {e.origin})"
    if outcome == "resumed":
        return f"resumed as JobId {new} {chain}"
    if outcome == "rerun":
        return f"re-run from the start as JobId {new} {chain}"
    if outcome == "finished":
        return "finished meanwhile: not run again"
    return f"could not be brought back (status {e.status_now or 'gone'})"


# -- scheduled runs an outage made Bacula skip -----------------------------------------------------

# A director that starts still runs a job scheduled less than 59 s before, in the current hour
# (find_runs and add_job, src/dird/scheduler.c); 2 s more, so that a run it is starting at this
# very moment is not started a second time here.
SCHEDULER_GRACE = 61


def missed_runs(
    jobs: Sequence[tuple[str, str, list[Rule]]], seen: float, launched: float, window: float
) -> list[Planned]:
    """The runs Bacula skipped: after the director's last sign of life (and within `window`
    before the new one was launched), too early for the new director's scheduler."""
    import time

    from .schedule import planned

    tm = time.localtime(launched)
    hour_start = launched - tm.tm_min * 60 - tm.tm_sec
    runs = planned(jobs, max(seen, launched - window), launched)
    return [r for r in runs if r.runtime < launched - SCHEDULER_GRACE or r.runtime < hour_start]


def catch_up(
    ledger: Ledger,
    jobs: Sequence[tuple[str, str, list[Rule]]],
    console: Callable[[str], str],
    director: str,
    launched: float,
    policy: Policy,
    window: float,
    deadline: Deadline,
    log: _Log,
    *,
    timeout: float = 5.0,
    now: float | None = None,
) -> list[tuple[Planned, int | None]]:
    """After the director answers: run, late and once, the scheduled runs an outage skipped.

    The outage starts at the director's last sign of life in the catalog (`bacula_ha_alive`,
    written by its monitors and by each start and stop); a clean stop is no outage, and a
    director with no recorded life (a new site) has nothing to catch up. Several missed runs
    of one job become one (`one_per_job`); a run the catalog has a job for (SchedTime) ran.
    The window is closed in the catalog before any command: a start that dies halfway, or
    its retry, never runs a missed job twice (at worst a run stays missed, and is logged).
    Returns (run, new JobId or None)."""
    import time

    from .schedule import one_per_job

    now = time.time() if now is None else now
    # The window is closed (this life recorded) in the same step that reads where it opened:
    # before any command, so that no retried start runs a missed job twice.
    last = ledger.alive(director, int(now), False, deadline, timeout)
    todo: list[Planned] = []
    if last is None:
        log.info("no earlier life of this director is recorded: no missed scheduled runs")
    elif last[1]:
        log.debug("the director was stopped cleanly: no scheduled run to catch up")
    elif window > 0 and policy.mode != "off":
        missed = missed_runs(jobs, last[0], launched, window)
        others = sorted({r.job for r in missed if r.type not in policy.types})
        if others:
            log.info(f"missed scheduled runs not run late (rerun_types): {', '.join(others)}")
        wanted = [r for r in missed if r.type in policy.types]
        ran = ledger.ran(wanted, deadline, timeout)
        todo = one_per_job(r for r in wanted if (r.job, r.when()) not in ran)
    if policy.mode == "log":
        for run in todo:
            log.warning(f"scheduled run of {run.job} at {run.when()} was missed; policy: logged")
        return [(run, None) for run in todo]
    done: list[tuple[Planned, int | None]] = []
    for run in todo:
        try:
            output = console(run.command())
        except GenericError as exc:
            log.warning(f"could not run the missed {run.job} of {run.when()}: {exc.reason}")
            done.append((run, None))
            continue
        new = queued_job_id(output)
        if new is None:
            tail = " ".join(output.split())[-160:]
            log.warning(f"the director did not queue the missed {run.job} of {run.when()}: {tail}")
        else:
            log.info(f"{run.job} scheduled at {run.when()} was missed: run late as JobId {new}")
            down = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last[0] if last else 0))
            text = f"bacula-ha: run late: scheduled at {run.when()}, missed while the director"
            ledger.note(new, f"{text} was down (last seen {down})", deadline, timeout)
        done.append((run, new))
    return done


# -- the bacula-dir agent's side ----------------------------------------------------------------

PARAMETERS = (
    Parameter(
        "interrupted_jobs",
        "what start does with interrupted jobs",
        "rerun: before the director starts, its start reads from the catalog the jobs the "
        "previous instance left running (R) or created (C), which the director marks failed "
        "when it starts; once the director answers, it brings each back once: a job stopped "
        "Incomplete (see on_stop) is RESUMED under the same JobId, sending only the files not "
        "yet saved; any other (a crash or fencing of the director's node) is RE-RUN FROM THE "
        "START under a new JobId with the same job, level, client, fileset, pool and storage. "
        "Only the types in rerun_types; the others are logged. log: log them only. off: do "
        "nothing. The record (table bacula_ha_rerun in the catalog) makes "
        "each interruption count once, also across nodes and retried starts. A catalog that "
        "cannot be read is a warning, never a failed start.",
        default="rerun",
        choices=MODES,
    ),
    Parameter(
        "rerun_types",
        "job types brought back",
        "Space-separated job types that interrupted_jobs=rerun brings back: backup, restore, "
        "verify, copy, migration, admin. Jobs of other types are logged, not re-run.",
        default="backup",
        rule=_types_rule,
    ),
    Parameter(
        "max_reruns",
        "re-runs of one job in a row",
        "How many times in a row one job is brought back. Interrupted once more (its re-runs "
        "keep crashing the director), it is left failed and reported in the log.",
        content_type="integer",
        default="2",
        high=1000,
    ),
    Parameter(
        "missed_runs_window",
        "how far back missed scheduled runs are run late",
        "Bacula skips a job whose scheduled time passed more than a minute before the "
        "director started. With interrupted_jobs=rerun, start runs each job of rerun_types "
        "whose scheduled time fell into the director's outage (from its last sign of life, "
        "recorded in the catalog by its monitors, to this start) once, late, at the highest "
        "level missed, under its scheduled time (Max Start Delay still applies); no further "
        "back than this many seconds. A clean stop is no outage. 0: never.",
        content_type="integer",
        default="21600",
        high=P.MAX_WHOLE_SECONDS,
    ),
    Parameter(
        "on_stop",
        "what stop does with running backups",
        "resume: stop (a planned move: crm resource move, node standby) ends running backup "
        "jobs with the console's `stop jobid=N` after job_wait, which leaves them Incomplete "
        "when the job spools attributes (Spool Attributes = yes), and the next start RESUMES "
        "them (`restart incomplete`): only the files not saved yet are sent again. Without "
        "spooled attributes Bacula cancels them instead and they are re-run from the start. "
        "interrupt: the director is stopped under its jobs, which are then re-run from the "
        "start. Ignored with interrupted_jobs=off.",
        default="resume",
        choices=("resume", "interrupt"),
    ),
)


def policy_from(params: Mapping[str, str]) -> Policy:
    """The policy from the agent's parameters; NotConfiguredError names a bad value."""
    # The rules the parameters declare (type, bounds, choices, rerun_types' own): one place.
    P.check_all(PARAMETERS, params)
    max_reruns = P.integer_of(_parameter("max_reruns"), params.get("max_reruns", "")) or 0
    try:
        return parse_policy(
            params.get("interrupted_jobs", ""), params.get("rerun_types", ""), max_reruns
        )
    except ValueError as exc:
        raise NotConfiguredError(str(exc)) from None


def ledger_for(res: Resources, env: Environment, log: _Log) -> Ledger | None:
    """The record in the catalog the director uses (its first Catalog), or None."""
    from .catalog import _settings_from_json, default_client
    from .network import catalog_backend

    catalogs = res.all("Catalog")
    if not catalogs:
        return None
    backend = catalog_backend(catalogs[0])
    return Ledger(
        _settings_from_json(catalogs[0]),
        client=default_client(backend),
        tmpdir=env.rsctmp or None,
        log=log,
        backend=backend,
    )


def _why(exc: Exception) -> str:
    return exc.reason if isinstance(exc, GenericError) else f"{type(exc).__name__}: {exc}"


def _budget(deadline: Deadline, share: float, most: float) -> Deadline:
    return deadline.sooner(min(most, max(0.5, deadline.remaining() * share)))


def on_launch(params: Mapping[str, str], res: Resources, env: Environment, log: _Log) -> None:
    """Before the director starts: record what the last instance left (never fails the start)."""
    policy = policy_from(params)
    if policy.mode == "off":
        return
    try:
        ledger = ledger_for(res, env, log)
        if ledger is not None:
            until = _budget(env.deadline, 0.15, 8.0)
            record_interrupted(ledger, policy, until, log, timeout=until.remaining())
    except (GenericError, OSError, ValueError) as exc:
        # Whatever goes wrong here, the director still starts: this is a warning.
        log.warning(f"interrupted jobs: cannot read the catalog ({_why(exc)}); none noted")


def window_from(params: Mapping[str, str]) -> float:
    """missed_runs_window in seconds; NotConfiguredError names a bad value."""
    window = _parameter("missed_runs_window")
    return float(P.integer_of(window, params.get("missed_runs_window", "")) or 0)


def _parameter(name: str) -> Parameter:
    return next(p for p in PARAMETERS if p.name == name)


def on_started(
    params: Mapping[str, str],
    res: Resources,
    console: Callable[[str], str],
    env: Environment,
    log: _Log,
    *,
    director: str = "",
    launched: float | None = None,
) -> Started:
    """Once the director answers: bring back what is recorded, then run what its outage
    made Bacula skip (never fails the start). Returns what was done (nothing when off, or
    when the catalog cannot be read)."""
    import time

    policy = policy_from(params)
    started = Started()
    if policy.mode == "off":
        return started
    try:
        ledger = ledger_for(res, env, log)
        if ledger is None:
            return started
        until = _budget(env.deadline, 0.3, 15.0)
        back = bring_back(
            ledger, console, until, log, timeout=until.remaining(), storages=_storages(res)
        )
        started = Started(tuple(back))
    except (GenericError, OSError, ValueError) as exc:
        log.warning(f"interrupted jobs: not brought back now ({_why(exc)}); the next start will")
        return started
    if not director:
        return started
    from .schedule import scheduled_jobs

    try:
        until = _budget(env.deadline, 0.3, 10.0)
        missed = catch_up(
            ledger,
            scheduled_jobs(res),
            console,
            director,
            time.time() if launched is None else launched,
            policy,
            window_from(params),
            until,
            log,
            timeout=until.remaining(),
        )
    except (GenericError, OSError, ValueError) as exc:
        log.warning(f"missed scheduled runs: not looked for ({_why(exc)})")
        return started
    return Started(started.brought_back, tuple(missed))


def heartbeat(
    params: Mapping[str, str],
    res: Resources,
    director: str,
    env: Environment,
    log: _Log,
    *,
    stopped: bool = False,
) -> None:
    """Record in the catalog that the director is alive (or stopped cleanly): where the
    next start's search for missed scheduled runs begins. Never fails the action."""
    import time

    try:
        if policy_from(params).mode == "off" or not window_from(params):
            return
        ledger = ledger_for(res, env, log)
        if ledger is not None:
            until = _budget(env.deadline, 0.2, 3.0)
            ledger.alive(director, int(time.time()), stopped, until, until.remaining())
    except (GenericError, OSError, ValueError) as exc:
        log.debug(f"the director's sign of life is not recorded: {_why(exc)}")


@dataclass(frozen=True)
class Started:
    """What a start did: interrupted jobs brought back, missed scheduled runs run late."""

    brought_back: tuple[tuple[Entry, str, int | None], ...] = ()
    missed: tuple[tuple[Planned, int | None], ...] = ()


def summary(started: Started) -> str:
    """One line for people (alerts, status): what a start did with interrupted jobs."""
    words = {"resumed": "resumed", "rerun": "re-run as", "finished": "finished meanwhile"}
    parts = []
    for e, outcome, new in started.brought_back:
        what = words.get(outcome, "NOT brought back")
        parts.append(f"JobId {e.job_id} {what}" + (f" {new}" if outcome == "rerun" else ""))
    for run, new in started.missed:
        late = f"run late as JobId {new}" if new else "NOT run"
        parts.append(f"missed {run.job} of {run.when()} {late}")
    return "; ".join(parts) or "no interrupted job to bring back"


def _storages(res: Resources) -> dict[str, list[str]]:
    """Job name -> its Storage names (bdirjson resolves JobDefs), else every Storage."""
    every = [str(r.get("Name", "")) for r in res.all("Storage") if r.get("Name")]
    found: dict[str, list[str]] = {}
    for job in res.all("Job"):
        named = job.get("Storage")
        names = [str(n) for n in named] if isinstance(named, list) else []
        if isinstance(named, str):
            names = [named]
        found[str(job.get("Name", ""))] = names or every
    return found


def console_for(
    res: Resources,
    daemon: Daemon,
    timeout: float,
    tls_fallback: Callable[[str], str] | None = None,
) -> Callable[[str], str]:
    """A console command runner on the director itself (its own address and password).

    A director that requires TLS (certificates, or TLS-PSK) only talks to a client that
    speaks it: then every command goes to `tls_fallback` (bconsole with its configuration), if
    given, at once when its resource says `TLS Require = yes`.
    """
    from . import protocol
    from .daemon import passwords_of, requires_tls

    password = passwords_of(res, "Director").get(daemon.name, "")
    needs_tls = requires_tls(res, "Director", daemon.name)

    def send(command: str) -> str:
        nonlocal needs_tls
        if needs_tls and tls_fallback is not None:
            return tls_fallback(command)
        try:
            return protocol.console_probe(
                daemon.address,
                daemon.port,
                password,
                timeout,
                command=command,
                requires_tls=needs_tls,
            )
        except protocol.TLSRequired as exc:
            if tls_fallback is None:
                raise GenericError(f"console {command.split()[0]!r}: {exc}") from None
            needs_tls = True
            return tls_fallback(command)
        except protocol.ProtocolError as exc:
            raise GenericError(f"console {command.split()[0]!r}: {exc}") from None

    return send


def stop_for_resume(
    params: Mapping[str, str],
    res: Resources,
    console: Callable[[str], str],
    list_running: Callable[[], list[RunningJob]],
    running: list[RunningJob],
    env: Environment,
    log: _Log,
) -> list[RunningJob]:
    """on_stop=resume: `stop` the running jobs the policy brings back, wait (bounded) for
    them to end, record them for the next start; the jobs still running afterwards."""
    import time

    try:
        policy = policy_from(params)
    except NotConfiguredError:
        return running  # validate reports it; a stop must not fail over a parameter
    if not running or policy.mode != "rerun" or params.get("on_stop", "resume") != "resume":
        return running
    try:
        ledger = ledger_for(res, env, log)
        if ledger is None:
            return running
        until = _budget(env.deadline, 0.2, 5.0)
        ids = [job.job_id for job in running]
        wanted = [j for j in ledger.jobs(ids, until, until.remaining()) if j.type in policy.types]
        # Recorded before the stop: whatever happens next (the stop fails, the node dies),
        # the next start brings each back once, resumed if it ended Incomplete.
        until = _budget(env.deadline, 0.2, 5.0)
        ledger.claim([(j, decide(j, policy)) for j in wanted], until, until.remaining())
    except (GenericError, OSError, ValueError) as exc:
        log.warning(f"cannot stop jobs for a resume ({_why(exc)}); they are interrupted")
        return running
    refused = 0
    for job in wanted:
        try:
            console(f"stop jobid={job.job_id}")
            log.info(f"{job.describe()} stopped to be resumed by the next start")
        except GenericError as exc:
            log.warning(f"could not stop {job.describe()}: {exc.reason}")
            refused += 1
    if refused:
        # A director that cannot stop a job (its file daemon out of reach: this node lost its
        # network) will not see it end by waiting either: it is interrupted, and the next
        # start brings it back as after a crash (recorded above).
        return running
    # Leave most of the stop timeout to the daemon's own shutdown.
    until = _budget(env.deadline, 0.4, 30.0)
    stopping = {j.job_id for j in wanted}
    while not until.expired():
        try:
            running = list_running()
        except GenericError:
            break
        if not stopping & {r.job_id for r in running}:
            break
        time.sleep(min(0.2, until.remaining()))
    return running
