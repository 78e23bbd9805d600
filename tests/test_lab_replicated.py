"""The lab with its catalog on PostgreSQL streaming replication under PAF (`--catalog replicated`).

One lab (examples/lab-replicated-site.toml) serves the module, in this order: synchronous
replication runs; the primary's node crashes after a backup, which is in the promoted catalog
and restores byte-identical; `lab heal` makes the fenced primary a streaming standby; the
standby's node crashes under a backup, which waits until the standby is fenced and then goes
on (docs/replicated-catalog.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from bacula_ha.lab import backups, lifecycle, machine, procs, replicated, stack
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    connectivity,
    failed_actions,
    fresh_client_data,
    power_offs,
    restore_differences,
    running_lab,
    wait_until,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]


@pytest.fixture(scope="module")
def repl_lab(host_unchanged: None) -> Iterator[LabConfig]:
    with running_lab(site=replicated.default_site(), catalog="replicated") as cfg:
        yield cfg


def _sql(cfg: LabConfig, node: str, sql: str) -> str:
    return replicated.psql(cfg, node, sql, db="postgres")


def _primary(cfg: LabConfig) -> str:
    (node,) = replicated.promoted(cfg, _live(cfg))
    return node


def _live(cfg: LabConfig) -> str:
    from bacula_ha.lab.cluster import any_live_node

    return any_live_node(cfg)


def _other(cfg: LabConfig, node: str) -> str:
    return next(m.name for m in cfg.cluster_nodes if m.name != node)


def _sync_names(cfg: LabConfig, node: str) -> str:
    return _sql(cfg, node, "SHOW synchronous_standby_names")


def _synchronous(cfg: LabConfig, primary: str, standby: str) -> bool:
    """The standby streams and counts for commits; the primary waits for it."""
    rows = _sql(cfg, primary, "SELECT application_name, state, sync_state FROM pg_stat_replication")
    wanted = replicated.sync_standby_names(cfg)
    return rows == f"{standby}|streaming|quorum" and _sync_names(cfg, primary) == wanted


def _job_in_catalog(cfg: LabConfig, node: str, jobid: int) -> str:
    """The job's status and file count as the node's own database holds them."""
    sql = f"SELECT jobstatus || ' ' || jobfiles FROM job WHERE jobid = {jobid}"
    return replicated.psql(cfg, node, sql)


def test_synchronous_replication_runs(repl_lab: LabConfig) -> None:
    cfg = repl_lab
    assert replicated.roles(cfg, "node1") == {"node1": "Promoted", "node2": "Unpromoted"}
    wait_until("node2 a synchronous standby", lambda: _synchronous(cfg, "node1", "node2"), 30)
    assert _sql(cfg, "node2", "SELECT pg_is_in_recovery()") == "t"
    # The catalog VIP and bacula-catalog follow the Promoted instance, the director with them.
    holders = lifecycle.vip_holders(cfg)
    assert holders["catalog-vip"] == ["node1"] and holders["dir-vip"] == ["node1"]
    assert not failed_actions(cfg)


def test_replica_side_bacula_catalog(repl_lab: LabConfig) -> None:
    """On the Unpromoted node: the probe says not running; a start on its replica fails."""
    cfg = repl_lab
    standby = _other(cfg, _primary(cfg))
    env = {
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESOURCE_INSTANCE": "replica-check",
        "HA_RSCTMP": "/run/replica-check",
        "OCF_RESKEY_config": "/etc/bacula/bacula-dir.conf",
        # The standby's own server, not the VIP (which leads to the primary).
        "OCF_RESKEY_db_address": cfg.node(standby).address,
        "OCF_RESKEY_CRM_meta_timeout": "20000",
    }
    agent = "/usr/lib/ocf/resource.d/bacula/bacula-catalog"
    machine.run_in(cfg, standby, ["mkdir", "-p", "/run/replica-check"])

    def action(name: str, interval: str = "0") -> tuple[int, str]:
        run_env = {**env, "OCF_RESKEY_CRM_meta_interval": interval}
        done = machine.run_in(cfg, standby, [agent, name], env=run_env, check=False)
        return done.returncode, done.stderr

    assert action("monitor")[0] == 7  # the probe
    code, err = action("start")
    assert code == 1 and "in recovery" in err, err
    assert action("monitor", "10000")[0] == 7
    assert action("monitor")[0] == 7
    # Pacemaker's own probes and monitors of the group never failed there either.
    assert not failed_actions(cfg)


def test_crash_of_the_primary_keeps_an_acknowledged_backup(repl_lab: LabConfig) -> None:
    cfg = repl_lab
    primary = _primary(cfg)
    standby = _other(cfg, primary)
    wait_until("a synchronous standby", lambda: _synchronous(cfg, primary, standby), 30)
    fresh_client_data(cfg, "before-crash", size=3_000_000)
    jobid, status = stack.backup(cfg)
    assert status == "T"
    lifecycle.fail(cfg, primary, "crash")
    wait_until("the director on the standby", lambda: stack.director_answers(cfg), 90, step=0.3)
    assert replicated.roles(cfg, standby) == {standby: "Promoted"}
    # The standby's node holds the job as the director reported it, before any heal.
    assert _job_in_catalog(cfg, standby, jobid).startswith("T ")
    # Alone, the new primary does not wait for a standby (the old one was fenced).
    assert _sync_names(cfg, standby) == ""
    rid, rstatus = stack.restore(cfg, jobid)
    assert rstatus == "T", rid
    assert not restore_differences(cfg)


def test_heal_makes_the_old_primary_a_streaming_standby(repl_lab: LabConfig) -> None:
    cfg = repl_lab
    (fenced,) = [
        m.name for m in cfg.cluster_nodes if m.name not in procs.machine_inits(cfg.lab_dir)
    ]
    lifecycle.heal(cfg)
    primary = _other(cfg, fenced)
    assert replicated.roles(cfg, primary) == {primary: "Promoted", fenced: "Unpromoted"}
    assert _sql(cfg, fenced, "SELECT pg_is_in_recovery()") == "t"
    # It follows the promoted node's timeline, and commits wait for it again.
    wait_until("synchronous again", lambda: _synchronous(cfg, primary, fenced), 30)
    timeline = "SELECT timeline_id FROM pg_control_checkpoint()"
    wait_until(
        "the standby on the new timeline",
        lambda: _sql(cfg, fenced, timeline) == _sql(cfg, primary, timeline),
        30,
    )
    assert not failed_actions(cfg)


def test_backup_waits_for_a_lost_standby_then_goes_on(repl_lab: LabConfig) -> None:
    """The documented choice: commits wait until the standby's node is fenced, then go on."""
    cfg = repl_lab
    primary = _primary(cfg)
    standby = _other(cfg, primary)
    wait_until("a synchronous standby", lambda: _synchronous(cfg, primary, standby), 30)
    fresh_client_data(cfg, "standby-lost", size=3_000_000)
    lifecycle.fail(cfg, standby, "crash")
    result: dict[str, object] = {}

    def backup() -> None:
        # Its own bconsole: the `run` answers only once the job's record is committed, later
        # than stack.bconsole's 10 s console timeout would wait.
        argv = ["bconsole", "-c", "/etc/bacula/bconsole.conf", "-u", "90"]
        commands = f"run job={stack.BACKUP_JOB} yes\nwait\n"
        try:
            out = machine.run_in(cfg, "client", argv, input_text=commands, timeout=180).stdout
            jobid = int(out.split("JobId=", 1)[1].split()[0])
            result["job"] = (jobid, _job_in_catalog(cfg, primary, jobid))
        except Exception as exc:  # reported below, in the test's thread
            result["error"] = exc

    worker = threading.Thread(target=backup)
    worker.start()
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
    try:
        wait_until(
            "a catalog commit waiting for the standby",
            lambda: _sql(cfg, primary, waiting) != "0",
            20,
            step=0.05,
        )
    finally:
        worker.join(timeout=180)
    assert "error" not in result, result
    _, status = result["job"]  # type: ignore[misc]
    assert status.startswith("T "), status
    assert _sync_names(cfg, primary) == ""
    lifecycle.heal(cfg)
    wait_until("synchronous again", lambda: _synchronous(cfg, primary, standby), 30)


def test_the_primary_losing_its_uplink_hands_over_during_a_backup(repl_lab: LabConfig) -> None:
    """The primary's node loses the clients' network during a backup: the promotion moves to
    the connected standby (a switchover: the replication VIP on the cluster network keeps
    bringing the old primary's last WAL until its demotion), nobody is fenced, the backup
    finishes once and restores byte-identical."""
    cfg = repl_lab
    primary = _primary(cfg)
    standby = _other(cfg, primary)
    total = backups.make_data(cfg, files=8, mib_each=16)
    names = {m.name for m in cfg.cluster_nodes}
    wait_until("both nodes connected", lambda: connectivity(cfg) == names, 60)
    offs = len(power_offs(cfg))
    run = backups.backup_through(cfg, total, lambda: lifecycle.fail(cfg, primary, "uplink"))
    assert replicated.promoted(cfg, standby) == [standby]
    assert power_offs(cfg)[offs:] == []
    assert run.finished_once, run.describe()
    assert backups.restore_identical(cfg, run.finished[0].job_id), "restore differs"
    lifecycle.heal(cfg)
    wait_until("every node connected again", lambda: connectivity(cfg) == names, 60)
    replicated.wait_replicating(cfg, standby)
