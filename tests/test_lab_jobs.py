"""Backups survive a failover (issue 11, sections 1-3), on the lab with 1 GiB of client data.

One lab serves the module; the data (1 GiB of urandom in 65 files) is written once. No test
types a console command to bring a job back: the agents and Bacula's own rescheduling do it.
"""

from __future__ import annotations

import os
import time

import pytest

from bacula_ha.lab import backups, lifecycle, machine, stack
from bacula_ha.lab.config import LabConfig
from testkit.lab import BaculaWatch, pcs, wait_until

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]


@pytest.fixture(scope="module")
def jobs_lab(stack_lab: LabConfig) -> tuple[LabConfig, int]:
    return stack_lab, backups.make_data(stack_lab)


def _other(cfg: LabConfig, node: str) -> str:
    return next(m.name for m in cfg.cluster_nodes if m.name != node)


def _fd_running(cfg: LabConfig) -> None:
    """The client's file daemon is not part of the cluster: make sure it runs."""
    proc = machine.run_in(cfg, "client", ["pgrep", "-x", "bacula-fd"], check=False)
    if proc.returncode != 0:
        print("bacula-fd was not running in the client: started again")
        stack.start_client(cfg)


def _crash_director_node(cfg: LabConfig) -> str:
    node = backups.started(cfg, "dir1-dir")
    assert node is not None
    lifecycle.fail(cfg, node, "crash")
    answered = BaculaWatch(cfg, seconds=90, targets="dir").result()["dir"]
    assert answered is not None, "the director did not come back"
    return node


def _heal_settled(cfg: LabConfig) -> None:
    lifecycle.heal(cfg)
    wait_until("the director to answer", lambda: stack.director_answers(cfg), 60, step=0.5)


def test_1_crash_mid_backup_is_rerun_once(jobs_lab: tuple[LabConfig, int]) -> None:
    cfg, total = jobs_lab
    _fd_running(cfg)
    base = backups.volume_bytes(cfg)
    first = backups.start_backup(cfg)
    backups.wait_written(cfg, base, total // 3)
    _crash_director_node(cfg)
    rows = backups.wait_job(
        cfg,
        lambda r: len(r) > 1 and r[-1].status not in ("C", "R"),
        "the re-run to end",
        after=first - 1,
        timeout=300,
    )
    assert rows[0].job_id == first and rows[0].status == "f", rows
    reruns = rows[1:]
    assert len(reruns) == 1, f"brought back more than once: {rows}"
    (rerun,) = reruns
    assert rerun.status == "T" and rerun.bytes >= total, rerun
    record = [r for r in backups.rerun_record(cfg) if r["origin"] == str(first)]
    assert record == [
        {
            "jobid": str(first),
            "origin": str(first),
            "attempt": "1",
            "found": "R",
            "action": "rerun",
            "new_jobid": str(rerun.job_id),
        }
    ]
    assert backups.restore_identical(cfg, rerun.job_id), "restore differs from the source"
    _heal_settled(cfg)
    # A start run again on the director's node (what a retried start does: the director
    # answers already) brings nothing back again.
    node = backups.started(cfg, "dir1-dir")
    assert node is not None
    machine.run_in(cfg, node, ["crm_resource", "-r", "dir1-dir", "--force-start"], timeout=90)
    # Neither did healing (the crashed node back, resources perhaps moving).
    assert [r.job_id for r in backups.jobs(cfg, after=first - 1)] == [first, rerun.job_id]


def test_2_two_crashes_in_a_row_third_run_finishes(jobs_lab: tuple[LabConfig, int]) -> None:
    cfg, total = jobs_lab
    _fd_running(cfg)
    finished = [r.job_id for r in backups.jobs(cfg) if r.status == "T"]
    assert finished, "test 1 left a finished backup"
    base = backups.volume_bytes(cfg)
    first = backups.start_backup(cfg)
    backups.wait_written(cfg, base, total // 3)
    _crash_director_node(cfg)
    rows = backups.wait_job(
        cfg, lambda r: any(x.status == "R" for x in r[1:]), "the re-run", after=first - 1
    )
    second = next(x.job_id for x in rows[1:] if x.status == "R")
    # Slow the re-run down (30 MB/s) so that the crashed node is back before the second crash.
    backups.limit(cfg, second, 30)
    _heal_settled(cfg)
    running = backups.jobs(cfg, after=second - 1)
    assert running and running[0].status == "R", f"the re-run should still run: {running}"
    _crash_director_node(cfg)
    rows = backups.wait_job(
        cfg,
        lambda r: len(r) > 2 and r[-1].status not in ("C", "R"),
        "the third run to end",
        after=first - 1,
        timeout=300,
    )
    assert [r.status for r in rows] == ["f", "f", "T"], rows
    third = rows[2].job_id
    record = [r for r in backups.rerun_record(cfg) if r["origin"] == str(first)]
    assert [(r["jobid"], r["attempt"], r["action"], r["new_jobid"]) for r in record] == [
        (str(first), "1", "rerun", str(second)),
        (str(second), "2", "rerun", str(third)),
    ]
    # A job that had finished before the crashes was never brought back.
    noted = {int(r["jobid"]) for r in backups.rerun_record(cfg)}
    assert not noted & set(finished)
    _heal_settled(cfg)


def test_3_planned_move_resumes_the_backup(jobs_lab: tuple[LabConfig, int]) -> None:
    cfg, total = jobs_lab
    _fd_running(cfg)
    node = backups.started(cfg, "dir1-dir")
    assert node is not None
    target = _other(cfg, node)
    base = backups.volume_bytes(cfg)
    job = backups.start_backup(cfg)
    # 40 MB/s: the move, past half way, comes while the job still runs.
    backups.limit(cfg, job, 40)
    at_move = backups.wait_written(cfg, base, int(total * 0.55))
    moved = time.time()
    pcs(cfg, "resource", "move", "cat1-group", target)
    try:
        rows = backups.wait_job(
            cfg,
            lambda r: r[0].status not in ("C", "R", "I"),
            "the job to end",
            after=job - 1,
            timeout=300,
        )
    finally:
        pcs(cfg, "resource", "clear", "cat1-group")
    ended = time.time()
    after = backups.volume_bytes(cfg)
    sent_after = after - at_move
    print(
        f"planned move at {(at_move - base) / total:.0%} of {total} bytes: {sent_after} bytes "
        f"written after the move ({sent_after / total:.0%} of the whole); job ended "
        f"{ended - moved:.1f} s after the move"
    )
    assert rows[0].job_id == job and rows[0].status == "T", rows
    assert len(rows) == 1, f"a resume keeps the JobId; other runs appeared: {rows}"
    assert backups.started(cfg, "dir1-dir") == target
    record = [r for r in backups.rerun_record(cfg) if r["origin"] == str(job)]
    assert [(r["action"], r["new_jobid"]) for r in record] == [("resumed", str(job))], record
    assert sent_after < 0.6 * total, f"{sent_after} of {total} bytes sent again after the move"
    assert backups.restore_identical(cfg, job), "restore differs from the source"


def test_4_storage_crash_with_director_elsewhere(jobs_lab: tuple[LabConfig, int]) -> None:
    cfg, total = jobs_lab
    _fd_running(cfg)
    director = backups.started(cfg, "dir1-dir")
    assert director is not None
    sd_node = _other(cfg, director)
    if backups.started(cfg, "sd1-sd") != sd_node:
        pcs(cfg, "resource", "move", "sd1-group", sd_node)
        wait_until("sd1 on the other node", lambda: backups.started(cfg, "sd1-sd") == sd_node, 90)
    try:
        wait_until("the storage daemon to answer", lambda: _sd_answers(cfg), 30, step=0.5)
        base = backups.volume_bytes(cfg)
        job = backups.start_backup(cfg)
        backups.wait_written(cfg, base, total // 3)
        lifecycle.fail(cfg, sd_node, "crash")
        # Bacula's own Reschedule On Error (30 s in the lab's job) runs it again.
        rows = backups.wait_job(
            cfg,
            lambda r: any(x.status == "T" for x in r),
            "a finished run",
            after=job - 1,
            timeout=300,
        )
    finally:
        pcs(cfg, "resource", "clear", "sd1-group")
    print(f"storage daemon crash: runs {[(r.job_id, r.status) for r in rows]}")
    assert backups.started(cfg, "dir1-dir") == director, "the director did not stay"
    assert [r.status for r in rows].count("T") == 1, rows
    done = next(r for r in rows if r.status == "T")
    assert done.bytes >= total
    _heal_settled(cfg)


def _sd_answers(cfg: LabConfig) -> bool:
    out = stack.bconsole(cfg, "status storage=sd1\n")
    return "Daemon started" in out
