"""The storage daemon on pacemaker_remote nodes: `lab up --remote 2`, lab-remote-site.toml.

One lab serves the module: two full nodes (director, catalog), remote1 and remote2 running
pacemaker_remoted (the storage daemon, preferred on remote1). A backup is written, remote1
crashes, is fenced, the storage daemon and its VIP move to remote2, the backup restores
byte-identical from there; `lab heal` brings remote1 back as a remote node.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bacula_ha.lab import cluster, lifecycle, machine, remote, stack
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    failed_actions,
    fresh_client_data,
    powered_off,
    restore_differences,
    running_lab,
    started_on,
    vip_holder,
    wait_until,
)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]


@pytest.fixture(scope="module")
def remote_lab(host_unchanged: None) -> Iterator[LabConfig]:
    with running_lab(nodes=2, remotes=2, site=remote.default_site()) as cfg:
        yield cfg


def _runs(cfg: LabConfig, node: str, program: str) -> bool:
    # -f: the kernel's process name stops at 15 characters ("pacemaker-remot").
    argv = ["pgrep", "-f", f"(^|/){program}( |$)"]
    return machine.run_in(cfg, node, argv, check=False).returncode == 0


def test_storage_daemon_runs_on_a_remote_node(remote_lab: LabConfig) -> None:
    cfg = remote_lab
    view = cluster.view(cfg, "node1")
    assert {"node1", "node2", "remote1", "remote2"} <= set(view.online)
    # Remote nodes: pacemaker_remoted, and neither corosync nor pacemakerd (no vote).
    for name in ("remote1", "remote2"):
        assert _runs(cfg, name, "pacemaker-remoted")
        assert not _runs(cfg, name, "corosync") and not _runs(cfg, name, "pacemakerd")
    members = machine.run_in(cfg, "node1", ["corosync-cmapctl", "-b", "nodelist"]).stdout
    assert "node1" in members and "remote1" not in members
    assert started_on(cfg, "sd1-sd") == ("remote1",)
    assert vip_holder(cfg, "sd1-vip") == ["remote1"]
    assert started_on(cfg, "dir1-dir")[0] in ("node1", "node2")
    assert started_on(cfg, "cat1-catalog")[0] in ("node1", "node2")
    # The connection to each remote node runs on a full node.
    assert started_on(cfg, "remote1")[0] in ("node1", "node2")
    assert "remote1" in lifecycle.status(cfg)


def test_remote_node_crash_is_fenced_and_the_backup_restores_from_the_standby(
    remote_lab: LabConfig,
) -> None:
    cfg = remote_lab
    fresh_client_data(cfg, "remote")
    jobid, status = stack.backup(cfg)
    assert status == "T", f"backup {jobid} ended {status}"

    lifecycle.fail(cfg, "remote1", "crash")
    wait_until("sd1-sd on remote2", lambda: started_on(cfg, "sd1-sd") == ("remote2",), 90)
    # Fenced (fence_dummy turned its power file off), by a full node; nothing else fenced.
    assert (cfg.lab_dir / "power/remote1").read_text() == "off"
    history = machine.run_in(cfg, "node1", ["stonith_admin", "--history", "remote1"]).stdout
    assert "of remote1 successful" in history, history
    assert all((cfg.lab_dir / f"power/{n}").read_text() == "on" for n in ("node1", "node2"))
    assert vip_holder(cfg, "sd1-vip") == ["remote2"]
    assert powered_off(cfg) == ["remote1"]

    out = stack.bconsole(cfg, "status storage=sd1\n")
    assert "Daemon started" in out and stack.ARCHIVE in out, out[-1500:]
    rjob, rstatus = stack.restore(cfg, jobid)
    assert rstatus == "T", f"restore {rjob} ended {rstatus}"
    assert not restore_differences(cfg)


def test_heal_brings_the_remote_node_back(remote_lab: LabConfig) -> None:
    cfg = remote_lab
    lifecycle.heal(cfg)
    view = cluster.view(cfg, "node1")
    assert {"remote1", "remote2"} <= set(view.online)
    assert (cfg.lab_dir / "power/remote1").read_text() == "on"
    assert _runs(cfg, "remote1", "pacemaker-remoted")
    # Stickiness keeps the storage daemon where it went; nothing failed along the way.
    assert started_on(cfg, "sd1-sd") == ("remote2",)
    assert not failed_actions(cfg), failed_actions(cfg)


def test_full_node_crash_moves_the_connection_not_the_storage_daemon(
    remote_lab: LabConfig,
) -> None:
    """The full node holding the storage daemon's connection dies: the connection moves to
    the other full node, the storage daemon goes on running where it is (same process)."""
    cfg = remote_lab
    (sd_node,) = started_on(cfg, "sd1-sd")
    (holder,) = started_on(cfg, sd_node)
    survivor = next(m.name for m in cfg.cluster_nodes if m.name != holder)
    pid_before = machine.run_in(cfg, sd_node, ["pgrep", "-x", "bacula-sd"]).stdout.split()

    lifecycle.fail(cfg, holder, "crash")
    wait_until(
        f"the {sd_node} connection on {survivor}",
        lambda: started_on(cfg, sd_node) == (survivor,),
        90,
    )
    assert (cfg.lab_dir / "power" / holder).read_text() == "off"  # fenced before it moved
    wait_until("the director", lambda: stack.director_answers(cfg), 90)
    # crm_mon shows the remote node's resources Stopped until the new connection's probes
    # find them running: the same process, never stopped.
    wait_until("sd1-sd probed", lambda: started_on(cfg, "sd1-sd") == (sd_node,), 60)
    assert machine.run_in(cfg, sd_node, ["pgrep", "-x", "bacula-sd"]).stdout.split() == pid_before
    out = stack.bconsole(cfg, "status storage=sd1\n")
    assert "Daemon started" in out, out[-1500:]
    lifecycle.heal(cfg)
    assert not failed_actions(cfg), failed_actions(cfg)
