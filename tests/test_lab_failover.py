"""The Bacula stack on the lab cluster: the failover tests 1-6 of issue 7.

One lab (examples/lab-site.toml, generated and applied with pcs) serves the module; every
test leaves it healed, wherever the resources ended up (stickiness keeps them there).
"""

from __future__ import annotations

import os
import re
import time

import pytest

from bacula_ha.lab import cluster, lifecycle, machine, stack
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    BaculaWatch,
    failed_actions,
    fresh_client_data,
    pcs,
    restore_differences,
    started_on,
    vip_holder,
    wait_until,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]


def _active(cfg: LabConfig, rid: str = "dir1-dir") -> str:
    nodes = started_on(cfg, rid)
    assert len(nodes) == 1, f"{rid} runs on {nodes}"
    return nodes[0]


def _other(cfg: LabConfig, node: str) -> str:
    return next(m.name for m in cfg.cluster_nodes if m.name != node)


def _reason(cfg: LabConfig, rid: str) -> list[str]:
    return [f for f in failed_actions(cfg) if f.startswith(rid + "_")]


# A start, restart or move the scheduler plans for a resource (crm_simulate's summary line).
_PLANNED = r"^\s*\* (Start|Restart|Recover|Move|Migrate)\s+{rid}\s(?!.*\(blocked\))"


def test_1_nothing_lost_on_crash(stack_lab: LabConfig) -> None:
    cfg = stack_lab
    fresh_client_data(cfg, "one")
    jobid, status = stack.backup(cfg)
    assert status == "T", f"backup {jobid} ended {status}"
    active = _active(cfg)
    assert _active(cfg, "cat1-catalog") == active
    standby = _other(cfg, active)
    crash = time.time()
    lifecycle.fail(cfg, active, "crash")
    watch = BaculaWatch(cfg, seconds=90)
    answered = watch.result()
    assert answered["dir"] is not None and answered["sd"] is not None, answered
    print(f"crash RTO: director {answered['dir'] - crash:.2f} s, sd {answered['sd'] - crash:.2f} s")
    # Fenced first: the power switch acted on fence_dummy's "off" for the crashed node.
    assert (cfg.lab_dir / "power" / active).read_text() == "off"
    assert f"powered off {active}" in (cfg.lab_dir / "log" / "power.log").read_text()
    # A daemon answers just before Pacemaker records its start as done: give it a moment.
    for rid in ("cat1-catalog", "dir1-dir", "sd1-sd"):
        wait_until(f"{rid} on {standby}", lambda r=rid: started_on(cfg, r) == (standby,), 30)
    rjob, rstatus = stack.restore(cfg, jobid)
    assert rstatus == "T", f"restore {rjob} ended {rstatus}"
    assert not restore_differences(cfg), "restored files differ from the originals"
    fresh_client_data(cfg, "two")
    jobid2, status2 = stack.backup(cfg)
    assert status2 == "T" and jobid2 > jobid
    lifecycle.heal(cfg)


@pytest.mark.parametrize(
    ("mode", "rid", "target", "interval", "timeout"),
    [
        ("hang-dir", "dir1-dir", "dir", 11, 20),
        ("hang-sd", "sd1-sd", "sd", 11, 20),
        # A killed director is the depth-0 monitor's job (every 10 s).
        ("kill-dir", "dir1-dir", "dir", 10, 20),
    ],
)
def test_3_hang_detected_and_recovered(
    stack_lab: LabConfig, mode: str, rid: str, target: str, interval: int, timeout: int
) -> None:
    cfg = stack_lab
    node = _active(cfg, rid)
    start_timeout = 60
    hung = time.time()
    lifecycle.fail(cfg, node, mode)
    # A stopped daemon still completes TCP handshakes: only a real answer counts.
    watch = BaculaWatch(cfg, seconds=interval + timeout + start_timeout + 15, targets=target)
    answered = watch.result()[target]
    assert answered is not None, f"{rid} did not recover"
    took = answered - hung
    print(f"{mode}: answered again after {took:.2f} s")
    assert took <= interval + timeout + start_timeout
    reasons = _reason(cfg, rid)
    assert reasons, failed_actions(cfg)
    lifecycle.heal(cfg)


def test_4_config_change_reaches_standby_and_survives_failover(stack_lab: LabConfig) -> None:
    cfg = stack_lab
    active = _active(cfg)
    standby = _other(cfg, active)
    extra = (
        "\nJob {\n  Name = LabExtra\n  Type = Backup\n  Level = Full\n  Client = client-fd\n"
        "  FileSet = LabSet\n  Storage = sd1\n  Pool = File\n  Messages = Standard\n}\n"
    )
    conf = "/etc/bacula/bacula-dir.conf"
    machine.run_in(cfg, active, ["sh", "-c", f"cat >> {conf}"], input_text=extra)
    # Reload through the cluster: a reloadable parameter change makes Pacemaker call reload.
    pcs(cfg, "resource", "update", "dir1-dir", f"reload_token={int(time.time())}")
    wait_until(
        "the director to know LabExtra",
        lambda: "LabExtra" in stack.bconsole(cfg, "show job=LabExtra\n"),
        30,
    )
    wait_until(
        "the standby to hold the change",
        lambda: "LabExtra" in machine.run_in(cfg, standby, ["cat", conf]).stdout,
        60,
    )
    # Each peer's last good sync is a transient node attribute (what crm_mon -A shows).
    last_good = machine.run_in(
        cfg,
        active,
        [
            "crm_attribute",
            "-N",
            standby,
            "-n",
            "bacula-confsync-last-good",
            "-l",
            "reboot",
            "-G",
            "-q",
        ],
    ).stdout.strip()
    assert last_good.startswith("20"), last_good
    lifecycle.fail(cfg, active, "crash")
    wait_until("the director on the standby", lambda: stack.director_answers(cfg), 90, step=0.5)
    wait_until("dir1-dir on the standby", lambda: started_on(cfg, "dir1-dir") == (standby,), 30)
    _, status = stack.run_job(cfg, "run job=LabExtra yes")
    assert status == "T"
    lifecycle.heal(cfg)


def test_5_read_only_catalog_stops_the_director(stack_lab: LabConfig) -> None:
    cfg = stack_lab
    node = _active(cfg, "cat1-db")
    lifecycle.fail(cfg, node, "catalog-readonly")
    wait_until(
        "bacula-catalog to fail with its reason", lambda: bool(_reason(cfg, "cat1-catalog")), 60
    )
    assert any("read-only" in r for r in _reason(cfg, "cat1-catalog")), _reason(cfg, "cat1-catalog")
    wait_until(
        "the director and the catalog check stopped everywhere",
        lambda: not started_on(cfg, "dir1-dir") and not started_on(cfg, "cat1-catalog"),
        120,
    )
    # It stays so: once the cluster has settled, the scheduler plans no start of the director
    # (nor of the catalog check) against a catalog that refuses writes.
    live = cluster.any_live_node(cfg)
    settled = machine.run_in(
        cfg, live, ["crm_resource", "--wait", "--timeout", "60s"], check=False, timeout=90
    )
    assert settled.returncode == 0, settled.stdout + settled.stderr
    plan = machine.run_in(cfg, live, ["crm_simulate", "--live-check", "--run"]).stdout
    for rid in ("dir1-dir", "cat1-catalog"):
        assert not re.search(_PLANNED.format(rid=rid), plan, re.MULTILINE), plan
    assert not started_on(cfg, "dir1-dir")
    assert not stack.director_answers(cfg)
    lifecycle.heal(cfg)
    assert stack.director_answers(cfg)


def test_6_storage_unmounted_detected_and_recovered(stack_lab: LabConfig) -> None:
    cfg = stack_lab
    node = _active(cfg, "sd1-sd")
    lifecycle.fail(cfg, node, "unmount-sd")
    wait_until(
        "the unmount to be detected",
        lambda: bool(_reason(cfg, "sd1-sd") or _reason(cfg, "sd1-fs")),
        60,
    )
    # Whichever looks first: bacula-sd's depth-20 check (archive_mounts, every 13 s here) or
    # the Filesystem monitor (every 20 s); both are real detections of the same fault.
    print("detected by:", _reason(cfg, "sd1-sd") + _reason(cfg, "sd1-fs"))

    def remounted() -> bool:
        nodes = started_on(cfg, "sd1-sd")
        if not nodes:
            return False
        mounts = machine.run_in(cfg, nodes[0], ["cat", "/proc/mounts"]).stdout
        return f" {stack.SD_MOUNT} " in mounts

    wait_until("the storage daemon back on its mounted disk", remounted, 90)
    # Recovered as the group it is: the daemon, its filesystem and its address on one node.
    (where,) = started_on(cfg, "sd1-sd")
    assert started_on(cfg, "sd1-fs") == (where,)
    assert vip_holder(cfg, "sd1-vip") == [where]
    lifecycle.heal(cfg)
    fresh_client_data(cfg, "six")
    _, status = stack.backup(cfg)
    assert status == "T"
    # Healed means healed: no failure of the storage group is left.
    assert not _reason(cfg, "sd1-sd") and not _reason(cfg, "sd1-fs")
