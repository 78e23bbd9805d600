"""Two data centres with a quorum arbiter in the lab: DC crash, DC partition, arbiter loss,
a DC's uplink lost.

One lab (`lab up --nodes 4 --dcs 2`, examples/lab-two-dc-site.toml) serves the module; each
test writes a backup before its fault, restores it after, and leaves the lab healed wherever
the resources ended up (stickiness keeps them there).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from bacula_ha.lab import backups, lifecycle, machine, stack, twodc
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    ArpWatch,
    BaculaWatch,
    arp_probing,
    connectivity,
    failed_actions,
    fresh_client_data,
    pcs,
    power_offs,
    powered_off,
    restore_differences,
    running_lab,
    started_on,
    wait_until,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

COMPONENTS = ("cat1-catalog", "dir1-dir", "sd1-sd")
VIPS = ("catalog-vip", "dir-vip", "sd1-vip")


@pytest.fixture(scope="module")
def dc_lab(host_unchanged: None) -> Iterator[LabConfig]:
    with running_lab(nodes=4, site=twodc.default_site(), dcs=2) as cfg:
        yield cfg


def _dc_names(cfg: LabConfig, dc: str) -> set[str]:
    return {m.name for m in twodc.dc_nodes(cfg, dc)}


def _placement(cfg: LabConfig) -> dict[str, tuple[str, ...]]:
    return {rid: started_on(cfg, rid) for rid in COMPONENTS}


def _backup_before_fault(cfg: LabConfig, tag: str) -> int:
    """Fresh random files in the client's backup set, backed up; the restore dir emptied."""
    fresh_client_data(cfg, tag, size=3_000_000)
    jobid, status = stack.backup(cfg)
    assert status == "T", f"backup {jobid} ended {status}"
    return jobid


def _restores_identical(cfg: LabConfig, jobid: int) -> None:
    rjob, status = stack.restore(cfg, jobid)
    assert status == "T", f"restore {rjob} of {jobid} ended {status}"
    differences = restore_differences(cfg)
    assert not differences, f"restored files differ: {differences}"


def _all_in(cfg: LabConfig, dc: str) -> bool:
    names = _dc_names(cfg, dc)
    placement = _placement(cfg)
    return all(len(nodes) == 1 and nodes[0] in names for nodes in placement.values())


def _rtt_ms(cfg: LabConfig, source: str, address: str) -> float:
    out = machine.run_in(cfg, source, ["ping", "-c", "5", "-i", "0.2", "-q", address]).stdout
    match = re.search(r"= [\d.]+/([\d.]+)/", out)
    assert match, out
    return float(match.group(1))


def test_0_latency_between_the_dcs_not_within(dc_lab: LabConfig) -> None:
    cfg, one_way = dc_lab, twodc.LINK_DELAY_MS
    # Two WAN links each way between the data centres, one to the third place, none inside one.
    assert _rtt_ms(cfg, "node1", "10.99.0.3") >= 4 * one_way
    assert _rtt_ms(cfg, "node4", "10.99.0.200") >= 2 * one_way
    assert _rtt_ms(cfg, "node1", "10.99.0.2") < one_way


def test_1_dc_crash_moves_everything_fenced_with_the_arbiters_vote(dc_lab: LabConfig) -> None:
    cfg = dc_lab
    jobid = _backup_before_fault(cfg, "crash")
    (active,) = started_on(cfg, "dir1-dir")
    lost = twodc.dc_of_node(cfg, active)
    (other,) = (dc for dc in twodc.dcs(cfg) if dc != lost)
    assert _all_in(cfg, lost), _placement(cfg)
    lifecycle.fail(cfg, lost, "crash")
    answered = BaculaWatch(cfg, seconds=120).result()
    assert answered["dir"] is not None and answered["sd"] is not None, answered
    # Both lost nodes were fenced by the survivors (fence_dummy wrote "off"; the switch acted).
    power_log = (cfg.lab_dir / "log" / "power.log").read_text()
    for name in _dc_names(cfg, lost):
        assert (cfg.lab_dir / "power" / name).read_text() == "off"
        assert f"powered off {name}" in power_log
    survivor = sorted(_dc_names(cfg, other))[0]
    # Two nodes of four hold quorum only with the arbiter's vote: 2 + 1 of 5.
    assert twodc.arbiter_votes(cfg, survivor), twodc.quorum_status(cfg, survivor)
    assert "Total votes:      3" in twodc.quorum_status(cfg, survivor)
    # A daemon answers just before Pacemaker records its start as done: give it a moment.
    wait_until(f"every component in {other}", lambda: _all_in(cfg, other), 60)
    _restores_identical(cfg, jobid)
    lifecycle.heal(cfg, timeout=90)
    assert stack.director_answers(cfg)


def test_2_dc_partition_leaves_exactly_one_side_running(dc_lab: LabConfig) -> None:
    cfg = dc_lab
    jobid = _backup_before_fault(cfg, "partition")
    assert not powered_off(cfg)
    # The director (with its catalog) in dc2, where the tie-breaker alone (lowest node id)
    # would lose; the storage daemon in dc1, so that both halves run something. The quorum
    # device's heuristics must give the vote to the half holding the director's VIP.
    _place(cfg, "cat1-group", "dir1-dir", "node3")
    _place(cfg, "sd1-group", "sd1-sd", "node2")
    wait_until("the storage daemon answering", lambda: _sd_answers(cfg), 60, step=0.5)
    wait_until("the director answering", lambda: stack.director_answers(cfg), 60, step=0.5)
    director_on, winner, loser = "node3", "dc2", "dc1"
    watches = {vip: ArpWatch(cfg, lifecycle.VIPS[vip], 30) for vip in VIPS}
    try:
        # Probing before the partition too: the watch covers the whole transition.
        wait_until(
            "the ARP probes to run",
            lambda: all(arp_probing(lifecycle.VIPS[vip]) for vip in VIPS),
            10,
            step=0.05,
        )
        lifecycle.fail(cfg, "dc1", "partition")
        wait_until(f"{loser} fenced", lambda: set(powered_off(cfg)) == _dc_names(cfg, loser), 60)
        results = {vip: w.result() for vip, w in watches.items()}
    finally:
        for w in watches.values():
            w.kill()
    for vip, result in results.items():
        assert result["rounds"] > 200, (vip, result)
        # Never two nodes answering for one address, through the whole partition.
        assert result["max_macs"] == 1, (vip, result["duplicates"])
        assert result["answered"] > 0, (vip, result)
    # The director never moved; the storage daemon came over from the fenced half.
    assert started_on(cfg, "dir1-dir") == (director_on,)
    wait_until(f"every component in {winner}", lambda: _all_in(cfg, winner), 90)
    wait_until("the director answering", lambda: stack.director_answers(cfg), 60, step=0.5)
    _restores_identical(cfg, jobid)
    lifecycle.heal(cfg, timeout=90)
    assert not twodc.dc_partitioned(cfg)


def _place(cfg: LabConfig, group: str, rid: str, node: str) -> None:
    """Move a group (and what follows it) to node, unless rid already runs there."""
    if started_on(cfg, rid) != (node,):
        pcs(cfg, "resource", "move", group, node, timeout=120)
        wait_until(f"{rid} on {node}", lambda: started_on(cfg, rid) == (node,), 90)


def _sd_answers(cfg: LabConfig) -> bool:
    return BaculaWatch(cfg, seconds=1, targets="sd").result()["sd"] is not None


def test_3_arbiter_loss_changes_nothing(dc_lab: LabConfig) -> None:
    cfg = dc_lab
    jobid = _backup_before_fault(cfg, "arbiter")
    placement = _placement(cfg)
    power_log = (cfg.lab_dir / "log" / "power.log").read_text()
    lifecycle.fail(cfg, "arbiter", "crash")
    wait_until(
        "the nodes to lose the arbiter's vote",
        lambda: not twodc.arbiter_votes(cfg, "node1"),
        30,
    )
    status = twodc.quorum_status(cfg, "node1")
    assert "Quorate:          Yes" in status and "Total votes:      4" in status, status
    assert _placement(cfg) == placement
    assert not powered_off(cfg)
    assert (cfg.lab_dir / "log" / "power.log").read_text() == power_log
    assert not failed_actions(cfg)
    _restores_identical(cfg, jobid)
    _, again = stack.backup(cfg)
    assert again == "T"
    lifecycle.heal(cfg)
    wait_until("the arbiter's vote back", lambda: twodc.arbiter_votes(cfg, "node1"), 30)
    assert _placement(cfg) == placement


def test_4_dc_uplink_lost_during_a_backup_moves_everything_without_fencing(
    dc_lab: LabConfig,
) -> None:
    """The data centre running everything loses its clients' network (the ping target with
    it) while corosync and the quorum device keep their own network: every group moves to
    the other data centre for connectivity, nobody is fenced, the backup finishes once."""
    cfg = dc_lab
    total = backups.make_data(cfg, files=8, mib_each=16)
    (active,) = started_on(cfg, "dir1-dir")
    lost = twodc.dc_of_node(cfg, active)
    (other,) = (dc for dc in twodc.dcs(cfg) if dc != lost)
    # After the earlier tests' heals: everything settled in the director's data centre.
    wait_until(f"every component in {lost}", lambda: _all_in(cfg, lost), 60)
    offs = len(power_offs(cfg))
    run = backups.backup_through(cfg, total, lambda: lifecycle.fail(cfg, lost, "uplink"))
    wait_until(f"every component in {other}", lambda: _all_in(cfg, other), 90)
    others = _dc_names(cfg, other)
    wait_until(f"only {other} connected", lambda: connectivity(cfg) == others, 30)
    assert power_offs(cfg)[offs:] == [] and not powered_off(cfg)
    # The cluster never split: four nodes and the arbiter's vote.
    wait_until("five votes", lambda: "Total votes:      5" in twodc.quorum_status(cfg, "node1"), 30)
    assert run.finished_once, run.describe()
    assert backups.restore_identical(cfg, run.finished[0].job_id), "restore differs"
    lifecycle.heal(cfg, timeout=90)
    names = {m.name for m in cfg.cluster_nodes}
    wait_until("every node connected again", lambda: connectivity(cfg) == names, 60)
