"""Bacula's Schedule rules evaluated like its scheduler (bacula/schedule.py), and which runs an
outage made it skip (jobs.missed_runs): pure logic, the local time zone pinned per test."""

from __future__ import annotations

import calendar
import datetime
import os
import time
from collections.abc import Iterator

import pytest

from bacula_ha.bacula import jobs
from bacula_ha.bacula.config import Resources
from bacula_ha.bacula.schedule import (
    Planned,
    last_day_of_month,
    one_per_job,
    planned,
    rule_from_json,
    scheduled_jobs,
    week_of_year,
)

ALL_DAYS = list(range(31))
ALL_MONTHS = list(range(12))
ALL_WDAYS = list(range(7))
ALL_WOM = list(range(6))
ALL_WOY = list(range(54))


def _set_zone(name: str) -> None:
    os.environ["TZ"] = name
    time.tzset()


@pytest.fixture(autouse=True)
def zone() -> Iterator[None]:
    """A fixed local time zone (Europe/Berlin: it has DST) for the test, restored afterwards."""
    old = os.environ.get("TZ")
    _set_zone("Europe/Berlin")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def _at(text: str) -> int:
    return int(time.mktime(time.strptime(text, "%Y-%m-%d %H:%M")))


def _run(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "Level": "Incremental",
        "Hour": [23],
        "Minute": 5,
        "Day": ALL_DAYS,
        "Month": ALL_MONTHS,
        "DayOfWeek": ALL_WDAYS,
        "WeekOfMonth": ALL_WOM,
        "WeekOfYear": ALL_WOY,
    }
    base.update(over)
    return base


def _jobs(*runs: dict[str, object], job: str = "Nightly") -> list[tuple[str, str, list]]:  # type: ignore[type-arg]
    return [(job, "B", [rule_from_json(r) for r in runs])]


def _times(found: list[Planned]) -> list[str]:
    return [f"{p.job} {p.level} {p.when()[:16]}" for p in found]


def test_week_of_year_is_iso_inside_the_year() -> None:
    # tm_woy counts weeks from the one holding 4 January, Monday first: ISO 8601 wherever
    # the ISO year is the calendar year (it says 0 where ISO says last year's week).
    day = datetime.date(2023, 1, 1)
    checked = 0
    while day.year < 2029:
        stamp = time.mktime(day.timetuple()) + 12 * 3600
        iso_year, iso_week, _ = day.isocalendar()
        if iso_year == day.year:
            assert week_of_year(stamp) == iso_week, day
            checked += 1
        elif iso_year < day.year:
            assert week_of_year(stamp) == 0, day
        day += datetime.timedelta(days=1)
    assert checked > 2100


def test_last_day_of_month_is_zero_based() -> None:
    for year in (2023, 2024, 1900, 2000):
        for month in range(12):
            assert last_day_of_month(month, year) == calendar.monthrange(year, month + 1)[1] - 1


def test_weekly_cycle_over_a_week() -> None:
    rules = _jobs(
        _run(Level="Full", DayOfWeek=[0], WeekOfMonth=[0]),  # 1st sun
        _run(Level="Differential", DayOfWeek=[0], WeekOfMonth=[1, 2, 3, 4]),  # 2nd-5th sun
        _run(DayOfWeek=[1, 2, 3, 4, 5, 6]),  # mon-sat
    )
    found = planned(rules, _at("2026-11-28 00:00"), _at("2026-12-07 00:00"))
    assert _times(found) == [
        "Nightly Incremental 2026-11-28 23:05",  # Saturday
        "Nightly Differential 2026-11-29 23:05",  # Sunday, day 29: 5th week
        "Nightly Incremental 2026-11-30 23:05",
        "Nightly Incremental 2026-12-01 23:05",
        "Nightly Incremental 2026-12-02 23:05",
        "Nightly Incremental 2026-12-03 23:05",
        "Nightly Incremental 2026-12-04 23:05",
        "Nightly Incremental 2026-12-05 23:05",
        "Nightly Full 2026-12-06 23:05",  # first Sunday of December
    ]


def test_hourly_lastday_and_days_of_month() -> None:
    hourly = _run(Level="Full", Hour=list(range(24)), Minute=15, Pool="p2")
    last = _run(Level="Full", Hour=[1], Minute=0, Day=[], LastDay=1)
    found = planned(_jobs(hourly), _at("2026-11-30 21:30"), _at("2026-12-01 00:30"))
    assert _times(found) == [
        "Nightly Full 2026-11-30 22:15",
        "Nightly Full 2026-11-30 23:15",
        "Nightly Full 2026-12-01 00:15",
    ]
    assert found[0].overrides == (("pool", "p2"),)
    found = planned(_jobs(last), _at("2024-01-01 00:00"), _at("2024-04-01 00:00"))
    assert _times(found) == [
        "Nightly Full 2024-01-31 01:00",
        "Nightly Full 2024-02-29 01:00",  # a leap year
        "Nightly Full 2024-03-31 01:00",
    ]
    on_1_15 = _run(Level="Full", Hour=[2], Minute=0, Day=[0, 14], Month=[0, 1])
    found = planned(_jobs(on_1_15), _at("2026-01-01 00:00"), _at("2026-12-31 00:00"))
    days = [p.when()[:10] for p in found]
    assert days == ["2026-01-01", "2026-01-15", "2026-02-01", "2026-02-15"]


def test_the_window_is_open_below_and_closed_above() -> None:
    rules = _jobs(_run(Hour=[3], Minute=0))
    at3 = _at("2026-11-30 03:00")
    assert planned(rules, at3, at3 + 86399) == []
    assert len(planned(rules, at3 - 1, at3)) == 1


def test_a_dst_change_neither_skips_nor_doubles_an_hour() -> None:
    # 29 March 2026, Europe/Berlin: 02:00 does not exist; 25 October 2026: 02:xx twice.
    every_hour = _jobs(_run(Hour=list(range(24)), Minute=30))
    spring = planned(every_hour, _at("2026-03-29 00:00"), _at("2026-03-29 05:00"))
    assert [p.when()[11:16] for p in spring] == ["00:30", "01:30", "03:30", "04:30"]
    autumn = planned(every_hour, _at("2026-10-25 00:00"), _at("2026-10-25 04:00"))
    hours = [p.when()[11:16] for p in autumn]
    assert hours[:2] == ["00:30", "01:30"] and hours[-1] == "03:30"
    assert len(autumn) == len({p.runtime for p in autumn})  # no run twice at one instant


def test_half_hour_zones_keep_local_minutes() -> None:
    _set_zone("Asia/Kolkata")
    rules = _jobs(_run(Hour=[23], Minute=5))
    found = planned(rules, _at("2026-11-30 00:00"), _at("2026-12-01 00:00"))
    assert _times(found) == ["Nightly Incremental 2026-11-30 23:05"]


def test_disabled_jobs_schedules_and_clients_do_not_run() -> None:
    sched = {"Name": "S", "Run": [_run()]}
    res = Resources(
        "dir.conf",
        {
            "Schedule": (sched, {"Name": "Off", "Enabled": False, "Run": [_run()]}),
            "Client": ({"Name": "c1"}, {"Name": "c2", "Enabled": False}),
            "Job": (
                {"Name": "A", "Type": "Backup", "Schedule": "S", "Client": "c1"},
                {"Name": "B", "Type": "Backup", "Schedule": "S", "Client": "c1", "Enabled": False},
                {"Name": "C", "Type": "Backup", "Schedule": "Off", "Client": "c1"},
                {"Name": "D", "Type": "Backup", "Schedule": "S", "Client": "c2"},
                {"Name": "E", "Type": "Verify", "Schedule": "S", "Client": "c1"},
                {"Name": "F", "Type": "Backup", "Client": "c1"},
            ),
        },
    )
    assert [(name, kind) for name, kind, _ in scheduled_jobs(res)] == [("A", "B"), ("E", "V")]


def test_one_late_run_per_job_at_the_highest_level_missed() -> None:
    runs = [
        Planned("A", "B", 100, "Incremental"),
        Planned("A", "B", 200, "Full"),
        Planned("A", "B", 300, "Incremental"),
        Planned("B", "B", 150, "Incremental"),
        Planned("B", "B", 250, "Incremental"),
    ]
    assert [(p.job, p.runtime, p.level) for p in one_per_job(runs)] == [
        ("A", 200, "Full"),
        ("B", 250, "Incremental"),
    ]


def test_the_late_command_keeps_the_scheduled_time_and_overrides() -> None:
    rule = rule_from_json(
        _run(
            Level="Full",
            Pool="p",
            FullPool="full-pool",
            Storage="sd 2",
            Priority=5,
            SpoolData=True,
            Accurate=False,
        )
    )
    run = Planned('Nightly "x"', "B", _at("2026-11-30 23:05"), rule.level, rule.overrides)
    assert run.command() == (
        'run job="Nightly x" level=Full pool="full-pool" storage="sd 2" priority="5" '
        'spooldata="yes" accurate="no" when="2026-11-30 23:05:00" yes'
    )


def test_missed_runs_leave_bacula_what_its_scheduler_still_runs() -> None:
    rules = _jobs(_run(Hour=list(range(24)), Minute=0), _run(Hour=list(range(24)), Minute=59))
    launched = _at("2026-11-30 10:00") + 30  # 10:00:30
    found = jobs.missed_runs(rules, _at("2026-11-30 08:30"), launched, 6 * 3600)
    # 10:00 is 30 s old at the launch: Bacula's own scheduler runs it. 09:59 is in the
    # previous hour, which a starting scheduler never looks at: missed.
    assert [p.when()[11:16] for p in found] == ["08:59", "09:00", "09:59"]
    # The window bounds how far back: a director down for two days catches up 6 hours.
    found = jobs.missed_runs(rules, launched - 2 * 86400, launched, 6 * 3600)
    # (from 04:00:30: 04:59, then two a hour up to 09:59)
    assert len(found) == 11 and found[0].when()[11:16] == "04:59"
