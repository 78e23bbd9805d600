"""The lab with three nodes (bare cluster): quorum, crash with fencing, a minority partition."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bacula_ha.lab import cluster, lifecycle
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    client_pings,
    pcs,
    powered_off,
    resource_nodes,
    running_lab,
    vip_holder,
    wait_until,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

VIP = lifecycle.VIPS["test-vip"]


@pytest.fixture(scope="module")
def lab3() -> Iterator[LabConfig]:
    with running_lab(nodes=3) as cfg:
        pcs(cfg, "resource", "create", "test-dummy", "ocf:heartbeat:Dummy", "--group", "test-group")
        pcs(
            cfg,
            *("resource", "create", "test-ip", "ocf:heartbeat:IPaddr2", f"ip={VIP}"),
            *("cidr_netmask=24", "nic=eth0", "--group", "test-group"),
        )
        wait_until("the test group", lambda: bool(resource_nodes(cfg, "test-ip")), 30)
        yield cfg


def test_three_nodes_formed(lab3: LabConfig) -> None:
    view = cluster.view(lab3, "node3")
    assert set(view.online) == {"node1", "node2", "node3"} and view.quorate
    assert all(view.resources[f"fence-node{i}"][0] == "Started" for i in (1, 2, 3))
    conf = (lab3.cluster_nodes[0].dir / "fs/etc/corosync/corosync.conf").read_text()
    assert "two_node" not in conf


def test_crash_moves_group_after_fencing(lab3: LabConfig) -> None:
    (active,) = vip_holder(lab3, "test-vip")
    lifecycle.fail(lab3, active, "crash")
    took = wait_until("the VIP to answer", lambda: client_pings(lab3, VIP), 60, step=0.05)
    print(f"3-node crash failover: {took:.2f} s")
    (holder,) = vip_holder(lab3, "test-vip")
    assert holder != active
    assert (lab3.lab_dir / "power" / active).read_text() == "off"
    lifecycle.heal(lab3)


def test_minority_partition_is_fenced_by_the_majority(lab3: LabConfig) -> None:
    (active,) = vip_holder(lab3, "test-vip")
    lifecycle.fail(lab3, active, "partition")
    # The isolated node has no quorum and cannot fence; the two others do, and take over.
    wait_until("the isolated node powered off", lambda: powered_off(lab3) == [active], 60)
    wait_until("the VIP to answer", lambda: client_pings(lab3, VIP), 60)
    (holder,) = vip_holder(lab3, "test-vip")
    assert holder != active
    lifecycle.heal(lab3)
    wait_until(
        "the healed node to see all three", lambda: len(cluster.view(lab3, active).online) == 3, 30
    )
