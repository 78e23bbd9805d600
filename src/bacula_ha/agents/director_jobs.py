"""The bacula-dir agent's side of jobs across a failover: when each phase runs, and its budget.

What is decided and recorded is bacula/jobs; here, the agent's moments: before the director
starts (on_launch), once it answers (on_started), its monitors and clean stops (heartbeat),
and a planned stop that leaves backups to be resumed (stop_for_resume). None of them ever
fails the action: a catalog that cannot be read is a warning.
"""

from __future__ import annotations

from collections.abc import Callable

from ..bacula import jobs
from ..ocf.deadline import Deadline
from ..ocf.errors import GenericError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass

    from ..bacula.config import Resources
    from ..bacula.console import RunningJob
    from ..bacula.jobs import Entry, Policy
    from ..bacula.schedule import Planned
    from ..ocf.env import Environment
    from ..ocf.log import Log
else:
    from ..ocf.record import dataclass


def _why(exc: Exception) -> str:
    return exc.reason if isinstance(exc, GenericError) else f"{type(exc).__name__}: {exc}"


def _budget(deadline: Deadline, share: float, most: float) -> Deadline:
    return deadline.sooner(min(most, max(0.5, deadline.remaining() * share)))


def on_launch(policy: Policy, res: Resources, env: Environment, log: Log) -> None:
    """Before the director starts: record what the last instance left (never fails the start)."""
    if policy.mode == "off":
        return
    try:
        ledger = jobs.ledger_for(res, env.rsctmp or None, log)
        if ledger is not None:
            until = _budget(env.deadline, 0.15, 8.0)
            jobs.record_interrupted(ledger, policy, until, log, timeout=until.remaining())
    except (GenericError, OSError, ValueError) as exc:
        # Whatever goes wrong here, the director still starts: this is a warning.
        log.warning(f"interrupted jobs: cannot read the catalog ({_why(exc)}); none noted")


def on_started(
    policy: Policy,
    res: Resources,
    console: Callable[[str], str],
    env: Environment,
    log: Log,
    *,
    director: str = "",
    launched: float | None = None,
) -> Started:
    """Once the director answers: bring back what is recorded, then run what its outage
    made Bacula skip (never fails the start). Returns what was done (nothing when off, or
    when the catalog cannot be read)."""
    import time

    started = Started()
    if policy.mode == "off":
        return started
    try:
        ledger = jobs.ledger_for(res, env.rsctmp or None, log)
        if ledger is None:
            return started
        until = _budget(env.deadline, 0.3, 15.0)
        back = jobs.bring_back(
            ledger, console, until, log, timeout=until.remaining(), storages=_storages(res)
        )
        started = Started(tuple(back))
    except (GenericError, OSError, ValueError) as exc:
        log.warning(f"interrupted jobs: not brought back now ({_why(exc)}); the next start will")
        return started
    if not director:
        return started
    from ..bacula.schedule import scheduled_jobs

    try:
        until = _budget(env.deadline, 0.3, 10.0)
        missed = jobs.catch_up(
            ledger,
            scheduled_jobs(res),
            console,
            director,
            time.time() if launched is None else launched,
            policy,
            until,
            log,
            timeout=until.remaining(),
        )
    except (GenericError, OSError, ValueError) as exc:
        log.warning(f"missed scheduled runs: not looked for ({_why(exc)})")
        return started
    return Started(started.brought_back, tuple(missed))


def heartbeat(
    policy: Policy,
    res: Resources,
    director: str,
    env: Environment,
    log: Log,
    *,
    stopped: bool = False,
) -> None:
    """Record in the catalog that the director is alive (or stopped cleanly): where the
    next start's search for missed scheduled runs begins. Never fails the action."""
    import time

    try:
        if policy.mode == "off" or not policy.window:
            return
        ledger = jobs.ledger_for(res, env.rsctmp or None, log)
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


def stop_for_resume(
    policy: Policy,
    res: Resources,
    console: Callable[[str], str],
    list_running: Callable[[], list[RunningJob]],
    running: list[RunningJob],
    env: Environment,
    log: Log,
) -> list[RunningJob]:
    """on_stop=resume: `stop` the running jobs the policy brings back, wait (bounded) for
    them to end, record them for the next start; the jobs still running afterwards."""
    import time

    if not running or policy.mode != "rerun" or policy.on_stop != "resume":
        return running
    try:
        ledger = jobs.ledger_for(res, env.rsctmp or None, log)
        if ledger is None:
            return running
        until = _budget(env.deadline, 0.2, 5.0)
        ids = [job.job_id for job in running]
        wanted = [j for j in ledger.jobs(ids, until, until.remaining()) if j.type in policy.types]
        # Recorded before the stop: whatever happens next (the stop fails, the node dies),
        # the next start brings each back once, resumed if it ended Incomplete.
        until = _budget(env.deadline, 0.2, 5.0)
        ledger.claim([(j, jobs.decide(j, policy)) for j in wanted], until, until.remaining())
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
