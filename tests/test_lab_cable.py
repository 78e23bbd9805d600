"""Pull a node's cable during a backup (issue 20): the node that lost its network loses.

One two-node lab (examples/lab-site.toml: connectivity to the lab's gateway, fence heuristics)
serves the module. Each test starts a throttled backup, injects its fault while the backup
runs, and checks who was fenced (the power switch's log: exactly the expected power-offs),
where the resources run, that the backup finished exactly once and restores byte-identical.
Every test leaves the lab healed, wherever the resources ended up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from bacula_ha.lab import backups, lifecycle
from bacula_ha.lab.backups import FaultRun
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    ArpWatch,
    BaculaWatch,
    arp_probing,
    connectivity,
    power_offs,
    powered_off,
    started_on,
    wait_until,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

COMPONENTS = ("cat1-catalog", "dir1-dir", "sd1-sd")
VIPS = ("catalog-vip", "dir-vip", "sd1-vip")
# 8 x 16 MiB throttled to 20 MB/s: the backup runs about 7 s, long enough for every fault.
FILES, MIB_EACH = 8, 16


@pytest.fixture(scope="module")
def cable_lab(stack_lab: LabConfig) -> tuple[LabConfig, int]:
    cfg = stack_lab
    total = backups.make_data(cfg, files=FILES, mib_each=MIB_EACH)
    wait_until("both nodes connected", lambda: connectivity(cfg) == {"node1", "node2"}, 60)
    return cfg, total


def _placement(cfg: LabConfig) -> dict[str, tuple[str, ...]]:
    return {rid: started_on(cfg, rid) for rid in COMPONENTS}


def _active(cfg: LabConfig) -> str:
    placement = _placement(cfg)
    nodes = {n for where in placement.values() for n in where}
    assert len(nodes) == 1 and all(len(w) == 1 for w in placement.values()), placement
    return nodes.pop()


def _other(cfg: LabConfig, node: str) -> str:
    return next(m.name for m in cfg.cluster_nodes if m.name != node)


def _all_on(cfg: LabConfig, node: str) -> bool:
    return all(where == (node,) for where in _placement(cfg).values())


def _exactly_once(cfg: LabConfig, run: FaultRun) -> None:
    """One run of the job finished, none is left to run, and it restores byte-identical."""
    assert run.finished_once, f"runs of JobId {run.first}: {run.describe()}"
    assert backups.restore_identical(cfg, run.finished[0].job_id), "restore differs"


def _heal(cfg: LabConfig, run: FaultRun) -> None:
    lifecycle.heal(cfg)
    wait_until("both nodes connected", lambda: connectivity(cfg) == {"node1", "node2"}, 60)
    # Healing (a node back, perhaps resources moving) brought no run of the job back.
    after = backups.jobs(cfg, after=run.first - 1)
    assert [r.job_id for r in after] == [r.job_id for r in run.rows], after


@dataclass
class Outcome:
    """What one fault during a backup did: the runs, the director's outage, the ARP watches."""

    run: FaultRun
    director_after: float  # seconds from the fault until the director answered the client
    arp: dict[str, dict[str, Any]]
    power_offs: list[str]  # the power switch's power-offs since the fault


def _fault_during_backup(cfg: LabConfig, total: int, node: str, mode: str) -> Outcome:
    """Inject `lab fail node --mode mode` into a running backup, ARP watches on every VIP."""
    offs = len(power_offs(cfg))
    watches = {vip: ArpWatch(cfg, lifecycle.VIPS[vip], 30) for vip in VIPS}
    answered: dict[str, float | None] = {}
    try:
        wait_until(
            "the ARP probes", lambda: all(arp_probing(lifecycle.VIPS[v]) for v in VIPS), 10, 0.05
        )

        def fault() -> None:
            lifecycle.fail(cfg, node, mode)
            answered.update(BaculaWatch(cfg, seconds=90, targets="dir").result())

        run = backups.backup_through(cfg, total, fault)
        arp = {vip: w.result() for vip, w in watches.items()}
    finally:
        for w in watches.values():
            w.kill()
    when = answered.get("dir")
    assert when is not None, "the director did not answer from the client within 90 s"
    for vip, result in arp.items():
        assert result["rounds"] > 100, (vip, result)
        # Never two nodes answering for one address, through the whole fault.
        assert result["max_macs"] == 1, (vip, result["duplicates"])
    outcome = Outcome(run, when - run.fault_at, arp, power_offs(cfg)[offs:])
    print(
        f"{mode} of {node}: director answered {outcome.director_after:.2f} s after the fault; "
        f"runs {run.describe()}; power-offs {outcome.power_offs}"
    )
    return outcome


def test_1_partition_of_the_active_node(cable_lab: tuple[LabConfig, int]) -> None:
    cfg, total = cable_lab
    active = _active(cfg)
    standby = _other(cfg, active)
    out = _fault_during_backup(cfg, total, active, "partition")
    # Exactly one fencing action: the isolated node, powered off by the connected one.
    assert out.power_offs == [active]
    assert powered_off(cfg) == [active]
    wait_until(f"everything on {standby}", lambda: _all_on(cfg, standby), 60)
    _exactly_once(cfg, out.run)
    _heal(cfg, out.run)


def test_2_partition_of_the_standby(cable_lab: tuple[LabConfig, int]) -> None:
    cfg, total = cable_lab
    active = _active(cfg)
    standby = _other(cfg, active)
    out = _fault_during_backup(cfg, total, standby, "partition")
    assert out.power_offs == [standby]
    assert powered_off(cfg) == [standby]
    # Nothing moved, and the backup never noticed: one run, the first.
    assert _all_on(cfg, active), _placement(cfg)
    assert [r.job_id for r in out.run.rows] == [out.run.first], out.run.describe()
    _exactly_once(cfg, out.run)
    _heal(cfg, out.run)


def test_3_uplink_of_the_active_node_moves_without_fencing(
    cable_lab: tuple[LabConfig, int],
) -> None:
    cfg, total = cable_lab
    active = _active(cfg)
    standby = _other(cfg, active)
    out = _fault_during_backup(cfg, total, active, "uplink")
    wait_until(f"everything on {standby}", lambda: _all_on(cfg, standby), 90)
    # The cluster kept talking over its own network: nobody was fenced.
    assert out.power_offs == [] and powered_off(cfg) == []
    assert connectivity(cfg) == {standby}
    _exactly_once(cfg, out.run)
    _heal(cfg, out.run)


def test_4_uplink_of_the_standby_changes_nothing(cable_lab: tuple[LabConfig, int]) -> None:
    cfg, total = cable_lab
    active = _active(cfg)
    standby = _other(cfg, active)

    def fault() -> None:
        lifecycle.fail(cfg, standby, "uplink")
        wait_until(f"{standby} without connectivity", lambda: connectivity(cfg) == {active}, 30)

    offs = len(power_offs(cfg))
    run = backups.backup_through(cfg, total, fault)
    assert power_offs(cfg)[offs:] == [] and powered_off(cfg) == []
    assert _all_on(cfg, active), _placement(cfg)
    assert [r.job_id for r in run.rows] == [run.first], run.describe()
    _exactly_once(cfg, run)
    _heal(cfg, run)


def test_5_ping_target_lost_everywhere_changes_nothing(cable_lab: tuple[LabConfig, int]) -> None:
    cfg, total = cable_lab
    active = _active(cfg)

    def fault() -> None:
        lifecycle.fail(cfg, "gateway", "crash")
        wait_until("no node connected", lambda: connectivity(cfg) == set(), 30)

    offs = len(power_offs(cfg))
    run = backups.backup_through(cfg, total, fault)
    # Both nodes equally cut off from the target: where things run is as good as anywhere.
    assert _all_on(cfg, active), _placement(cfg)
    assert power_offs(cfg)[offs:] == [] and powered_off(cfg) == []
    assert [r.job_id for r in run.rows] == [run.first], run.describe()
    _exactly_once(cfg, run)
    _heal(cfg, run)
    assert _all_on(cfg, active), _placement(cfg)
