"""Bacula 9.6's Schedule `Run` rules, evaluated as its scheduler does: the runs in a time window.

The rules come from `bdirjson` (Bacula's own parser), which gives each `Run` as sets of hours,
days of the month (0-based), months (0-based), days of the week (0 = Sunday), weeks of the
month and weeks of the year, a minute, `LastDay`, a level and the overrides. The matching
follows `find_runs` in src/dird/scheduler.c: an hour matches when its hour is in the set and
either day, weekday, month, week of month (`mday / 7`) and week of year (`tm_woy`) all are,
or the month is and `LastDay` is set and it is the last day of the month. The run's time is
that hour at the run's minute, in local time (the director's, which is this node's).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Any

    from .config import Resources
else:
    from ..ocf.record import dataclass

# Job.Type names in bdirjson -> the one-letter codes of the catalog (and of jobs.TYPE_NAMES).
TYPE_CODES = {
    "backup": "B",
    "restore": "R",
    "verify": "V",
    "admin": "D",
    "copy": "c",
    "migrate": "g",
    "migration": "g",
}
# Which of two missed runs of one job matters more: a Full covers an Incremental.
_LEVEL_RANK = {"full": 4, "virtualfull": 3, "differential": 2, "incremental": 1}
# `Run` overrides the console's `run` takes, by bdirjson's key -> the console keyword.
_OVERRIDES = (("Storage", "storage"), ("Priority", "priority"))
_BOOLEAN_OVERRIDES = (("SpoolData", "spooldata"), ("Accurate", "accurate"))
_LEVEL_POOLS = {
    "full": "FullPool",
    "incremental": "IncrementalPool",
    "differential": "DifferentialPool",
}
HOUR = 3600


@dataclass(frozen=True)
class Rule:
    """One `Run` of a Schedule."""

    level: str
    minute: int
    hours: frozenset[int]
    days: frozenset[int]
    last_day: bool
    months: frozenset[int]
    weekdays: frozenset[int]
    weeks_of_month: frozenset[int]
    weeks_of_year: frozenset[int]
    overrides: tuple[tuple[str, str], ...] = ()

    def matches_hour(self, tm: time.struct_time, stamp: float) -> bool:
        """Does this rule run in the hour of `tm` (local time of `stamp`)?"""
        if tm.tm_hour not in self.hours or tm.tm_mon - 1 not in self.months:
            return False
        mday = tm.tm_mday - 1
        if self.last_day and mday == last_day_of_month(tm.tm_mon - 1, tm.tm_year):
            return True
        return (
            mday in self.days
            and (tm.tm_wday + 1) % 7 in self.weekdays
            and mday // 7 in self.weeks_of_month
            and week_of_year(stamp) in self.weeks_of_year
        )


@dataclass(frozen=True)
class Planned:
    """A run of a job at a time, as the scheduler would have started it."""

    job: str
    type: str
    runtime: int
    level: str
    overrides: tuple[tuple[str, str], ...] = ()

    def when(self) -> str:
        """The run's time as Bacula writes SchedTime (local time, seconds)."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.runtime))

    def command(self) -> str:
        """The console command that runs it now under its own scheduled time (`when`).

        With `when` in the past the director starts the job at once, and the catalog's
        SchedTime is the scheduled time: `Max Start Delay` still applies, and the job's row
        says which run it was.
        """
        words = [f"run job={_quote(self.job)}"]
        if self.level:
            words.append(f"level={self.level}")
        words += [f"{key}={_quote(value)}" for key, value in self.overrides]
        words += [f'when="{self.when()}"', "yes"]
        return " ".join(words)


def _quote(value: str) -> str:
    return '"' + value.replace('"', "") + '"'


def last_day_of_month(month: int, year: int) -> int:
    """0-based last day of a 0-based month (tm_ldom)."""
    days = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month]
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return days - 1 + (1 if leap and month == 1 else 0)


def week_of_year(stamp: float) -> int:
    """Bacula's tm_woy: weeks from the one holding 4 January (1-53), 0 before it."""
    tm = time.localtime(stamp)
    jan4 = time.struct_time((tm.tm_year, 1, 4, 12, 0, 0, 0, 0, 0))
    # tm_wday of 4 January, Sunday = 0 as in C; `fty` and the arithmetic are tm_woy's.
    wday4 = (time.localtime(time.mktime(jan4)).tm_wday + 1) % 7
    fty = 1 - wday4
    if fty <= 0:
        fty += 7
    woy = (tm.tm_yday - 1) - fty + 4
    return 0 if woy < 0 else 1 + woy // 7


def _ints(value: Any, low: int, high: int) -> frozenset[int]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, int) and low <= v <= high)


def rule_from_json(run: Mapping[str, Any]) -> Rule:
    """A Rule from one element of a Schedule's "Run" list in bdirjson's output."""
    level = str(run.get("Level") or "")
    overrides: list[tuple[str, str]] = []
    pool = run.get(_LEVEL_POOLS.get(level.lower(), "")) or run.get("Pool")
    if pool:
        overrides.append(("pool", str(pool)))
    for key, word in _OVERRIDES:
        if run.get(key) not in (None, "", 0):
            overrides.append((word, str(run[key])))
    for key, word in _BOOLEAN_OVERRIDES:
        if isinstance(run.get(key), bool):
            overrides.append((word, "yes" if run[key] else "no"))
    minute = run.get("Minute")
    return Rule(
        level=level,
        minute=minute if isinstance(minute, int) and 0 <= minute < 60 else 0,
        hours=_ints(run.get("Hour"), 0, 23),
        days=_ints(run.get("Day"), 0, 30),
        last_day=bool(run.get("LastDay")),
        months=_ints(run.get("Month"), 0, 11),
        weekdays=_ints(run.get("DayOfWeek"), 0, 6),
        weeks_of_month=_ints(run.get("WeekOfMonth"), 0, 5),
        weeks_of_year=_ints(run.get("WeekOfYear"), 0, 53),
        overrides=tuple(overrides),
    )


def scheduled_jobs(res: Resources) -> list[tuple[str, str, list[Rule]]]:
    """(job, type code, rules) for each enabled job with an enabled schedule and client."""
    schedules = {str(s.get("Name", "")): s for s in res.all("Schedule")}
    clients = {str(c.get("Name", "")): c for c in res.all("Client")}
    found = []
    for job in res.all("Job"):
        sched = schedules.get(str(job.get("Schedule") or ""))
        client = clients.get(str(job.get("Client") or ""), {})
        if sched is None or False in (
            job.get("Enabled"),
            sched.get("Enabled"),
            client.get("Enabled"),
        ):
            continue
        runs = sched.get("Run")
        rules = [rule_from_json(r) for r in runs if isinstance(r, Mapping)] if runs else []
        kind = TYPE_CODES.get(str(job.get("Type", "")).lower(), "?")
        found.append((str(job.get("Name", "")), kind, rules))
    return found


def _hour_starts(after: float, until: float) -> Iterable[float]:
    """The starts of the local hours that overlap (after, until]."""
    tm = time.localtime(after)
    stamp = after - tm.tm_min * 60 - tm.tm_sec - (after % 1)
    while stamp <= until:
        yield stamp
        # Across a DST change an hour start moves: recompute from the next hour's middle.
        probe = stamp + HOUR + HOUR / 2
        tm = time.localtime(probe)
        stamp = probe - tm.tm_min * 60 - tm.tm_sec - (probe % 1)


def planned(
    jobs: Sequence[tuple[str, str, list[Rule]]], after: float, until: float
) -> list[Planned]:
    """Every run with after < runtime <= until, in time order (then job name)."""
    out = []
    for start in _hour_starts(after, until):
        tm = time.localtime(start + 1)
        for name, kind, rules in jobs:
            for rule in rules:
                if not rule.matches_hour(tm, start + 1):
                    continue
                runtime = int(start) + rule.minute * 60
                if after < runtime <= until:
                    out.append(Planned(name, kind, runtime, rule.level, rule.overrides))
    return sorted(out, key=lambda p: (p.runtime, p.job))


def one_per_job(runs: Iterable[Planned]) -> list[Planned]:
    """Of several missed runs of a job, the one to run late: the highest level, then latest.

    Running a job three times back to back after an outage helps nobody; a missed Full
    must not be replaced by the Incremental that followed it."""
    best: dict[str, Planned] = {}
    for run in runs:
        rank = (_LEVEL_RANK.get(run.level.lower(), 0), run.runtime)
        held = best.get(run.job)
        if held is None or rank > (_LEVEL_RANK.get(held.level.lower(), 0), held.runtime):
            best[run.job] = run
    return sorted(best.values(), key=lambda p: (p.runtime, p.job))
