"""The lab harness on a real 2-node cluster: formation, crash with fencing, partition, teardown."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacula_ha.lab import cluster, lifecycle, machine, procs
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    ArpWatch,
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
BACULA_HA = str(Path(sys.executable).with_name("bacula-ha"))


@pytest.fixture(scope="module")
def lab2(host_unchanged: None) -> Iterator[LabConfig]:
    with running_lab(nodes=2) as cfg:
        pcs(cfg, "resource", "create", "test-dummy", "ocf:heartbeat:Dummy", "--group", "test-group")
        pcs(
            cfg,
            *("resource", "create", "test-ip", "ocf:heartbeat:IPaddr2", f"ip={VIP}"),
            *(
                "cidr_netmask=24",
                "nic=eth0",
                "op",
                "monitor",
                "interval=5s",
                "--group",
                "test-group",
            ),
        )
        wait_until("the test group to start", lambda: bool(resource_nodes(cfg, "test-ip")), 30)
        yield cfg


def _healed(cfg: LabConfig) -> None:
    lifecycle.heal(cfg)
    wait_until("the VIP to answer", lambda: client_pings(cfg, VIP), 30)


def test_cluster_formed_with_fencing(lab2: LabConfig) -> None:
    view = cluster.view(lab2, "node1")
    assert set(view.online) == {"node1", "node2"}
    assert view.quorate and view.dc in {"node1", "node2"}
    assert view.resources["fence-node1"] == ("Started", ("node2",))
    assert view.resources["fence-node2"] == ("Started", ("node1",))
    # Each machine is its own host: name, address, cluster files.
    for m in lab2.cluster_nodes:
        assert machine.run_in(lab2, m.name, ["hostname"]).stdout.strip() == m.name
        assert m.address in machine.addresses(m)
        conf = machine.run_in(lab2, m.name, ["cat", "/etc/corosync/corosync.conf"]).stdout
        assert "token: 1000" in conf and "to_syslog: no" in conf
    # The lab subnet has no way out: no default route in any machine.
    for m in lab2.machines:
        assert "default" not in machine.run_in(lab2, m.name, ["ip", "route"]).stdout
    holders = vip_holder(lab2, "test-vip")
    assert len(holders) == 1 and client_pings(lab2, VIP)


def test_ssh_between_nodes(lab2: LabConfig) -> None:
    out = machine.run_in(
        lab2, "node1", ["ssh", "-o", "BatchMode=yes", "node2", "hostname"], timeout=20
    ).stdout
    assert out.strip() == "node2"


def test_shared_disks_are_loop_devices(lab2: LabConfig) -> None:
    from bacula_ha.lab import disks

    devs = disks.devices(lab2)
    assert set(devs) == {"catalog", "sd1"}
    for dev in devs.values():
        out = machine.run_in(lab2, "node1", ["blkid", "-o", "value", "-s", "TYPE", dev]).stdout
        assert out.strip() == "ext4"


def test_crash_fails_over_after_fencing(lab2: LabConfig) -> None:
    (active,) = vip_holder(lab2, "test-vip")
    (standby,) = [m.name for m in lab2.cluster_nodes if m.name != active]
    log = lab2.lab_dir / "log" / "power.log"
    fenced_before = log.read_text().count(f"powered off {active}")
    start = time.monotonic()
    lifecycle.fail(lab2, active, "crash")
    took = wait_until("the VIP to answer again", lambda: client_pings(lab2, VIP), 60, step=0.05)
    assert took < 20, f"failover took {took:.1f} s"
    assert vip_holder(lab2, "test-vip") == [standby]
    assert resource_nodes(lab2, "test-dummy") == (standby,)
    # The survivor fenced the crashed node through fence_dummy, and the switch acted on it.
    assert (lab2.lab_dir / "power" / active).read_text() == "off"
    history = machine.run_in(lab2, standby, ["stonith_admin", "--history", active]).stdout
    assert "successful" in history or "success" in history, history
    assert log.read_text().count(f"powered off {active}") == fenced_before + 1
    print(f"crash failover (crash to VIP answering): {time.monotonic() - start:.2f} s")
    _healed(lab2)
    assert set(cluster.view(lab2, active).online) == {"node1", "node2"}
    # The rebooted node came back without the VIP it held when it crashed.
    assert vip_holder(lab2, "test-vip") == [standby]


def test_partition_fences_one_side_and_never_two_answer(lab2: LabConfig) -> None:
    (active,) = vip_holder(lab2, "test-vip")
    watch = ArpWatch(lab2, VIP, seconds=12)  # returns once it is probing
    try:
        lifecycle.fail(lab2, active, "partition")
        wait_until("one side to be powered off", lambda: len(powered_off(lab2)) == 1, 30)
        result = watch.result()
    finally:
        watch.kill()
    assert result["rounds"] > 100
    assert result["max_macs"] == 1, result["duplicates"]
    # Exactly one side was fenced; the other keeps the cluster and the group.
    (fenced,) = powered_off(lab2)
    (survivor,) = [m.name for m in lab2.cluster_nodes if m.name != fenced]
    wait_until(
        "the group on the survivor", lambda: resource_nodes(lab2, "test-ip") == (survivor,), 30
    )
    assert vip_holder(lab2, "test-vip") == [survivor]
    _healed(lab2)


def test_cli_status_exec_and_bad_input(lab2: LabConfig) -> None:
    out = subprocess.run([BACULA_HA, "lab", "status"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "test-vip" in out.stdout and "Online: [ node1 node2 ]" in out.stdout
    out = subprocess.run(
        [BACULA_HA, "lab", "exec", "node2", "hostname"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "node2"
    bad = subprocess.run([BACULA_HA, "lab", "fail", "node9"], capture_output=True, text=True)
    assert bad.returncode == 1 and "no cluster node 'node9'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_up_recovers_after_a_crashed_lab(lab2: LabConfig) -> None:
    # Simulate `lab up` dying half-way: the supervisor and one node gone, everything else left.
    procs.kill_and_wait(procs.supervisors(lab2.lab_dir))
    procs.kill_and_wait([procs.machine_inits(lab2.lab_dir)["node2"]])
    assert not lifecycle.healthy(lab2)
    messages: list[str] = []
    lifecycle.up(lab2, log=messages.append)
    assert any("removing leftovers" in m for m in messages), messages
    assert lifecycle.healthy(lab2)
    # Idempotent: a second up on a healthy lab changes nothing.
    inits = procs.machine_inits(lab2.lab_dir)
    assert lifecycle.up(lab2) == 0.0
    assert procs.machine_inits(lab2.lab_dir) == inits


def test_down_leaves_nothing(lab2: LabConfig) -> None:
    images = [str(p) for p in (lab2.lab_dir / "disks").glob("*.img")]
    assert images
    lifecycle.down(lab2.lab_dir)
    left = lifecycle.leftovers(lab2.lab_dir)
    assert left.empty, left.describe()
    assert not [n for n in machine.netns_list() if n.startswith("bhl-")]
    # Loop device names are reused by anything else on the machine: check backing files.
    attached = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    assert not [i for i in images if i in attached]
    assert not lab2.lab_dir.exists()
    assert "bhl-" not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
