"""Bringing interrupted jobs back once: recorded before the director starts, restarted after.

Bacula 9.6's director, when it starts, marks every catalog job in `R` (running) or `C`
(created) as failed (`cleanup_running_job`, `cleanup_created_job` in src/cats/sql_cmds.c,
run from src/dird/dird.c), so the evidence exists only *before* the daemon starts. The start
of the bacula-dir agent therefore records those jobs first (`record_interrupted`), then, once
the director answers, brings them back (`bring_back`) with the console's `restart`:

- a job in `I` (Incomplete: stopped with `stop jobid=N`, attributes spooled) is *resumed*:
  same JobId, the director sends the file daemon the list of files already saved;
- any other job (`f` after a crash) is *re-run from the start* with the same job, level,
  client, fileset, pool and storage, under a new JobId.

A chain longer than `max_reruns` is left failed and reported (see ledger.py for the record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ...ocf.deadline import Deadline
from ...ocf.errors import GenericError
from .ledger import CLEANED_AT_START, Entry, Job, Ledger
from .policy import Policy, decide

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ...ocf.log import Log

# The restart kind (the console's keyword) for a job's status once the director runs.
_RESTART_KIND = {"I": "incomplete", "A": "canceled", "f": "failed", "E": "failed"}


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


def record_interrupted(
    ledger: Ledger,
    policy: Policy,
    deadline: Deadline,
    log: Log,
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
    log: Log,
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
