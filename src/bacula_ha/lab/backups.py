"""Backups in the lab, for the jobs tests and benchmark: big data, jobs, the catalog's view."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from bacula_ha.lab import cluster, machine, stack
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.errors import LabError

MIB = 1 << 20


@dataclass(frozen=True)
class JobRow:
    job_id: int
    name: str
    status: str
    level: str
    files: int
    bytes: int


def make_data(cfg: LabConfig, files: int = 64, mib_each: int = 16) -> int:
    """Fresh incompressible files in the client's backup set (urandom: no sparse, no zeros);
    the total in bytes. An empty restore directory."""
    script = (
        f"set -e; rm -rf {stack.CLIENT_DATA} {stack.CLIENT_RESTORE}; mkdir -p {stack.CLIENT_DATA}"
        f"; for i in $(seq -w 1 {files}); do head -c {mib_each}M /dev/urandom"
        f" > {stack.CLIENT_DATA}/part-$i.bin; done; echo note > {stack.CLIENT_DATA}/note.txt"
    )
    machine.run_in(cfg, "client", ["sh", "-c", script], timeout=300)
    return files * mib_each * MIB + len("note\n")


def started(cfg: LabConfig, rid: str) -> str | None:
    try:
        view = cluster.view(cfg, cluster.any_live_node(cfg))
    except LabError:
        return None
    role, nodes = view.resources.get(rid, ("", ()))
    return nodes[0] if role == "Started" and len(nodes) == 1 else None


def sql(cfg: LabConfig, query: str) -> list[list[str]]:
    """Rows of a query on the catalog, as postgres inside the node running it."""
    # cat1-db is a Started primitive on a shared disk; a replicated catalog's is a promotable
    # clone, and bacula-catalog runs beside its Promoted instance.
    node = started(cfg, "cat1-db") or started(cfg, "cat1-catalog")
    if node is None:
        raise LabError("the catalog database is not running")
    argv = ["runuser", "-u", "postgres", "--", str(stack.PG_BIN / "psql"), "-h", "/run/postgresql"]
    argv += ["-d", "bacula", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", query]
    out = machine.run_in(cfg, node, argv, timeout=30).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def jobs(cfg: LabConfig, name: str = stack.BACKUP_JOB, after: int = 0) -> list[JobRow]:
    rows = sql(
        cfg,
        "SELECT JobId, Name, JobStatus, Level, JobFiles, JobBytes FROM Job"
        f" WHERE Name = '{name}' AND JobId > {after} ORDER BY JobId",
    )
    return [JobRow(int(r[0]), r[1], r[2], r[3], int(r[4]), int(r[5])) for r in rows]


def rerun_record(cfg: LabConfig) -> list[dict[str, str]]:
    """The agent's record of interruptions (table bacula_ha_rerun), oldest first."""
    try:
        rows = sql(
            cfg,
            "SELECT jobid, origin, attempt, found, action, coalesce(new_jobid::text, '')"
            " FROM bacula_ha_rerun ORDER BY id",
        )
    except LabError as exc:
        if "does not exist" in str(exc):
            return []
        raise
    keys = ("jobid", "origin", "attempt", "found", "action", "new_jobid")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def volume_bytes(cfg: LabConfig) -> int:
    """Bytes in the storage daemon's volumes, on the node that has them mounted."""
    node = started(cfg, "sd1-fs")
    if node is None:
        raise LabError("the storage disk is not mounted anywhere")
    out = machine.run_in(cfg, node, ["du", "-sb", "--apparent-size", stack.ARCHIVE]).stdout
    return int(out.split()[0])


def start_backup(cfg: LabConfig) -> int:
    """Queue the lab's backup job (not waiting for it); its JobId."""
    out = stack.bconsole(cfg, f"run job={stack.BACKUP_JOB} yes\n")
    match = re.search(r"Job queued\. JobId=(\d+)", out)
    if not match:
        raise LabError(f"the director did not queue the backup:\n{out[-800:]}")
    return int(match.group(1))


def wait_written(cfg: LabConfig, base: int, more: int, timeout: float = 300) -> int:
    """Wait until the volumes grew by `more` bytes since `base`; the volume bytes then."""
    end = time.monotonic() + timeout
    while True:
        try:
            now = volume_bytes(cfg)
        except LabError:
            now = base
        if now - base >= more:
            return now
        if time.monotonic() > end:
            raise LabError(f"the volumes grew by {now - base} bytes only in {timeout:.0f} s")
        time.sleep(0.2)


# What setbandwidth answers once the file daemon applied it: 9.6 "2000 OK Limiting bandwidth
# to ...", 13.0 "2000 Limiting bandwidth to ... on running and future jobs".
_LIMITED = re.compile(r"^2000 (OK )?Limiting bandwidth", re.MULTILINE)


def limit(cfg: LabConfig, job: int, mb_per_s: int) -> None:
    """Throttle a running job at its file daemon (once the job has reached it)."""
    command = f'setbandwidth limit="{mb_per_s} mb/s" jobid={job}\n'
    end = time.monotonic() + 60
    while not _LIMITED.search(stack.bconsole(cfg, command)):
        if time.monotonic() > end:
            raise LabError(f"JobId {job} could not be throttled within 60 s")
        time.sleep(0.5)


def throttle_client_link(cfg: LabConfig, mb_per_s: int | None) -> None:
    """Shape what the client sends (a backup's data) to mb_per_s MB/s with a token bucket on its
    eth0; None takes the shaping away."""
    if mb_per_s is None:
        argv = ["tc", "qdisc", "del", "dev", "eth0", "root"]
        machine.run_in(cfg, "client", argv, check=False)
        return
    rate = f"{mb_per_s * 8}mbit"
    argv = ["tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate]
    machine.run_in(cfg, "client", [*argv, "burst", "64kb", "latency", "200ms"])


@dataclass(frozen=True)
class FaultRun:
    """A backup with a fault injected while it ran: every run of the job, oldest first."""

    first: int
    rows: tuple[JobRow, ...]
    fault_at: float  # time.time() of the fault

    @property
    def finished(self) -> list[JobRow]:
        return [r for r in self.rows if r.status == "T"]

    @property
    def finished_once(self) -> bool:
        """Exactly one run finished, and it is the last: nothing ran again after it."""
        return len(self.finished) == 1 and self.rows[-1].status == "T"

    def describe(self) -> str:
        return ", ".join(f"{r.job_id}:{r.status}" for r in self.rows)


def backup_through(
    cfg: LabConfig,
    total: int,
    fault: Callable[[], None],
    mb_per_s: int = 20,
    timeout: float = 300,
) -> FaultRun:
    """Start the backup, throttled so it still runs at the fault; inject the fault once a
    quarter is written; wait until a run finished and none is left queued or running.

    On Debian's Bacula the job is throttled by Bacula's own `setbandwidth`. A lab running
    another Bacula (`lab up --bacula`) throttles the client's network instead, until the
    fault is in: 13.0.3's file daemon answers setbandwidth (2000) but does not slow the job
    (128 MiB at "2 mb/s" took 1 s in the lab), which ends before any fault can land.
    """
    base = volume_bytes(cfg)
    if cfg.bacula:
        throttle_client_link(cfg, mb_per_s)
    try:
        first = start_backup(cfg)
        if not cfg.bacula:
            limit(cfg, first, mb_per_s)
        wait_written(cfg, base, total // 4)
        at = time.time()
        fault()
    finally:
        if cfg.bacula:
            throttle_client_link(cfg, None)

    def settled(rows: list[JobRow]) -> bool:
        return any(r.status == "T" for r in rows) and all(r.status not in ACTIVE for r in rows)

    rows = wait_job(cfg, settled, "a finished run", after=first - 1, timeout=timeout)
    return FaultRun(first, tuple(rows), at)


# Job states of a run not over yet (C created/queued, R running, I incomplete, to resume).
ACTIVE = ("C", "R", "I")


def wait_job(
    cfg: LabConfig,
    predicate: object,
    what: str,
    timeout: float = 300,
    after: int = 0,
    step: float = 0.5,
) -> list[JobRow]:
    """Poll the backup jobs after `after` until predicate(rows) holds; the rows."""
    end = time.monotonic() + timeout
    while True:
        try:
            rows = jobs(cfg, after=after)
        except LabError:
            rows = []
        if rows and predicate(rows):  # type: ignore[operator]
            return rows
        if time.monotonic() > end:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}: {rows}")
        time.sleep(step)


def restore_identical(cfg: LabConfig, job_id: int, reference: str = stack.CLIENT_DATA) -> bool:
    """Restore a backup job into the client's restore directory; True if byte-identical with
    `reference` in the client (the backup set itself, or a copy of it as it was then)."""
    machine.run_in(cfg, "client", ["rm", "-rf", stack.CLIENT_RESTORE])
    command = f"restore jobid={job_id} client={stack.CLIENT_FD} where={stack.CLIENT_RESTORE}"
    out = stack.bconsole(cfg, f"{command} all done yes\n")
    match = re.search(r"Job queued\. JobId=(\d+)", out)
    if not match:
        raise LabError(f"the director did not queue the restore:\n{out[-800:]}")
    rjob = int(match.group(1))
    end = time.monotonic() + 600
    while True:
        rows = sql(cfg, f"SELECT JobStatus FROM Job WHERE JobId = {rjob}")
        status = rows[0][0] if rows else "?"
        if status not in ("C", "R", "?"):
            break
        if time.monotonic() > end:
            raise LabError(f"restore {rjob} did not end")
        time.sleep(0.5)
    if status != "T":
        raise LabError(f"restore {rjob} ended {status}")
    restored = f"{stack.CLIENT_RESTORE}{stack.CLIENT_DATA}"
    proc = machine.run_in(cfg, "client", ["diff", "-r", reference, restored], check=False)
    machine.run_in(cfg, "client", ["rm", "-rf", stack.CLIENT_RESTORE])
    return proc.returncode == 0
