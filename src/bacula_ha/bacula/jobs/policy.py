"""The director's parameters for jobs across a failover: declared once, parsed once per action."""

from __future__ import annotations

from collections.abc import Mapping

from ...ocf import params as P
from ...ocf.errors import NotConfiguredError
from ...ocf.metadata import Parameter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass

    from .ledger import Job
else:
    from ...ocf.record import dataclass

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


def type_letters(types: str) -> frozenset[str]:
    """The Job.Type letters of the rerun_types parameter; ValueError names an unknown type."""
    letters = set()
    for word in (types or _default("rerun_types")).replace(",", " ").split():
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


# The bacula-dir agent's parameters for its jobs (its meta-data lists them): their types,
# defaults and bounds are stated here only.
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


def _parameter(name: str) -> Parameter:
    return next(p for p in PARAMETERS if p.name == name)


def _default(name: str) -> str:
    return _parameter(name).default or ""


@dataclass(frozen=True)
class Policy:
    """What to do with interrupted jobs and missed runs: the parameters above, parsed."""

    mode: str = _default("interrupted_jobs")  # rerun | log | off
    types: frozenset[str] = type_letters(_default("rerun_types"))  # Job.Type letters brought back
    max_reruns: int = int(_default("max_reruns"))  # re-runs of one chain, then left failed
    window: float = float(_default("missed_runs_window"))  # seconds back missed runs are run late
    on_stop: str = _default("on_stop")  # resume | interrupt


def parse_policy(mode: str, types: str, max_reruns: int) -> Policy:
    """The policy from parameter text; ValueError names what is wrong."""
    mode = (mode or _default("interrupted_jobs")).strip().lower()
    if mode not in MODES:
        raise ValueError(f"interrupted_jobs must be one of {', '.join(MODES)}, not {mode!r}")
    if max_reruns < 0:
        raise ValueError("max_reruns must be 0 or more")
    return Policy(mode, type_letters(types), max_reruns)


def policy_from(params: Mapping[str, str]) -> Policy:
    """The agent's parameters, parsed (once per action: the agent's configure); an empty value
    is the meta-data's default. NotConfiguredError names a bad value."""
    # The rules the parameters declare (type, bounds, choices, rerun_types' own): one place.
    P.check_all(PARAMETERS, params)
    max_reruns = P.integer_of(_parameter("max_reruns"), params.get("max_reruns", "")) or 0
    window = P.integer_of(_parameter("missed_runs_window"), params.get("missed_runs_window", ""))
    try:
        parsed = parse_policy(
            params.get("interrupted_jobs", ""), params.get("rerun_types", ""), max_reruns
        )
    except ValueError as exc:
        raise NotConfiguredError(str(exc)) from None
    on_stop = params.get("on_stop", "") or _default("on_stop")
    return Policy(parsed.mode, parsed.types, parsed.max_reruns, float(window or 0), on_stop)


def decide(job: Job, policy: Policy) -> str:
    """The action recorded for one interruption: pending (bring back), logged, or limit."""
    if job.attempt > policy.max_reruns:
        return "limit"
    if policy.mode != "rerun" or job.type not in policy.types:
        return "logged"
    return "pending"
