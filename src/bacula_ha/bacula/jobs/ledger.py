"""The catalog's record of interrupted jobs (table bacula_ha_rerun) and of the director's life.

The record is a table in the catalog itself, so it survives the node that wrote it and moves
with the catalog. One row per interruption, keyed by the chain's first JobId (`origin`) and the
interruption's number in the chain (`attempt`): a second claim of the same interruption (a
retried start, a start after a failed one) collides with the unique key and changes nothing,
which is what makes a job come back once per interruption. A re-run's new JobId is stored in
the row, so when the re-run is interrupted in turn the chain continues (attempt + 1). A Log
row on the interrupted job repeats each decision for `list joblog`. The SQL is common to
PostgreSQL and MySQL (MariaDB) but for the per-server pieces named below.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from ...ocf.deadline import Deadline
from ...ocf.errors import GenericError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass

    from ...ocf.log import Log
    from ..catalog import CatalogSettings
    from ..config import Resources
    from ..schedule import Planned
else:
    from ...ocf.record import dataclass

# The statuses Bacula 9.6's start-up clean-up turns into `f` (src/cats/sql_cmds.c).
CLEANED_AT_START = ("R", "C")
# Final outcomes of an interruption; `pending` and `issuing` are the ones still to act on.
FINAL = ("rerun", "resumed", "logged", "limit", "finished", "refused")
TABLE = "bacula_ha_rerun"
_SEP = "\x1f"


class CatalogError(GenericError):
    """The catalog could not be read or written for the job bookkeeping."""


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
    log: Log | None = None,
    backend: str = "postgresql",
) -> list[list[str]]:
    """Run a script on the catalog (PostgreSQL or MySQL); the rows it printed, fields split."""
    # Imported here: the agent pays for them only when it has jobs to look at.
    from ..catalog import POSTGRESQL, CheckOptions, client_error, run_client

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
        error = client_error(result.stderr, settings.password) or f"exit {result.returncode}"
        raise CatalogError(f"catalog {settings.where()}: {error}")
    # MySQL's --batch --raw separates fields with tabs (a job name holds none: Bacula's
    # names are letters, digits, spaces and - _ . :).
    sep = _SEP if backend == POSTGRESQL else "\t"
    return [line.split(sep) for line in result.stdout.splitlines() if line.strip()]


ALIVE_TABLE = "bacula_ha_alive"
# The director's last sign of life, so that the next start knows when an outage began.


def create_alive(backend: str) -> str:
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
        log: Log | None = None,
        backend: str = "postgresql",
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.create = _create(backend)
        self.create_alive = create_alive(backend)
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


def ledger_for(res: Resources, tmpdir: str | None, log: Log) -> Ledger | None:
    """The record in the catalog the director uses (its first Catalog), or None."""
    from ..catalog import catalog_backend, default_client, settings_from_json

    catalogs = res.all("Catalog")
    if not catalogs:
        return None
    backend = catalog_backend(catalogs[0])
    return Ledger(
        settings_from_json(catalogs[0]),
        client=default_client(backend),
        tmpdir=tmpdir,
        log=log,
        backend=backend,
    )
