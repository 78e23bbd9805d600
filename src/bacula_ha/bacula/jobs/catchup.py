"""Scheduled runs an outage made Bacula skip, run late and once after the director answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...ocf.deadline import Deadline
from ...ocf.errors import GenericError
from .bringback import queued_job_id
from .ledger import Ledger
from .policy import Policy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ...ocf.log import Log
    from ..schedule import Planned, Rule


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

    from ..schedule import planned

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
    deadline: Deadline,
    log: Log,
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

    from ..schedule import one_per_job

    now = time.time() if now is None else now
    # The window is closed (this life recorded) in the same step that reads where it opened:
    # before any command, so that no retried start runs a missed job twice.
    last = ledger.alive(director, int(now), False, deadline, timeout)
    todo: list[Planned] = []
    if last is None:
        log.info("no earlier life of this director is recorded: no missed scheduled runs")
    elif last[1]:
        log.debug("the director was stopped cleanly: no scheduled run to catch up")
    elif policy.window > 0 and policy.mode != "off":
        missed = missed_runs(jobs, last[0], launched, policy.window)
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
