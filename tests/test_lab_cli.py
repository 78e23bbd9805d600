"""`bacula-ha lab` without a lab: bad input and a missing lab give a message, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bacula_ha.lab import lifecycle
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.errors import LabError

BACULA_HA = str(Path(sys.executable).with_name("bacula-ha"))


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "BACULA_HA_LAB_DIR": str(tmp_path / "lab")}
    return subprocess.run(
        [BACULA_HA, "lab", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.root(reason="`bacula-ha lab` checks for root first")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("status",), "no lab is up"),
        (("heal",), "no lab is up"),
        (("exec", "node1", "true"), "no lab is up"),
        (("fail", "node1"), "no lab is up"),
        (("fail", "node1", "--mode", "explode"), "Invalid value for '--mode'"),
        (("up", "--nodes", "9"), "Invalid value for '--nodes'"),
        (("up", "--bare", "--site", "x.toml"), "exclude each other"),
        (("up", "--dcs", "2"), "--dcs 2 needs --nodes 4"),
        (("up", "--dcs", "3", "--nodes", "4"), "Invalid value for '--dcs'"),
        (("fail", "dc1", "--mode", "crash"), "no lab is up"),
        (("up", "--bare", "--catalog", "replicated"), "--bare has no catalog"),
        (("up", "--catalog", "drbd"), "Invalid value for '--catalog'"),
        (("up", "--catalog", "replicated", "--remote", "2"), "goes with neither"),
        (("up", "--dcs", "2", "--nodes", "4", "--remote", "2"), "exclude each other"),
    ],
)
def test_cli_errors_are_messages(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    proc = _cli(tmp_path, *args)
    assert proc.returncode in (1, 2), proc
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "lab").exists()


@pytest.mark.root(reason="`lab up` checks for root first")
def test_bad_site_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[node]\nname = ")
    proc = _cli(tmp_path, "up", "--site", str(bad))
    assert proc.returncode == 1 and "is not valid TOML" in proc.stderr
    other = tmp_path / "other.toml"
    other.write_text('[site]\nname = "x"\n[[node]]\nname = "alpha"\n')
    proc = _cli(tmp_path, "up", "--site", str(other))
    assert proc.returncode == 1 and "describes nodes alpha" in proc.stderr
    assert not (tmp_path / "lab").exists()


def test_lab_config_bounds() -> None:
    with pytest.raises(LabError, match="2 to 5 nodes"):
        LabConfig(nodes=1)
    cfg = LabConfig(nodes=3)
    assert [m.address for m in cfg.machines] == [
        "10.99.0.1",
        "10.99.0.2",
        "10.99.0.3",
        "10.99.0.100",
    ]
    with pytest.raises(LabError, match="no cluster node 'client'"):
        cfg.node("client")


def test_hosts_file_names_every_machine_and_vip() -> None:
    hosts = lifecycle.hosts_file(LabConfig(nodes=2))
    # Cluster nodes by their address on the cluster network, the client on the clients'.
    for line in ("10.99.1.1 node1", "10.99.0.100 client", "10.99.0.21 dir-vip"):
        assert line in hosts.splitlines()
    assert "10.99.0.1 node1" not in hosts.splitlines()


def test_replicated_site_goes_through_the_generator(tmp_path: Path) -> None:
    """examples/lab-replicated-site.toml: PAF as a notified promotable clone, the catalog group
    with its Promoted instance, the agents' synchronous standbys; this lab's power files."""
    from bacula_ha.lab import replicated

    with pytest.raises(LabError, match="use shared or replicated"):
        LabConfig(catalog="drbd")
    cfg = LabConfig(lab_dir=tmp_path / "lab", catalog="replicated")
    site = tmp_path / "site.toml"
    site.write_text(lifecycle._site_text(cfg, replicated.default_site()))
    assert f"{tmp_path}/lab/power/node1" in site.read_text()
    out = subprocess.run(
        [BACULA_HA, "generate", str(site), "--format", "pcs"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "cat1-db ocf:heartbeat:pgsqlms" in out
    assert "promotable promoted-max=1 promoted-node-max=1 clone-max=2" in out
    assert "notify=true" in out
    assert "pgdata=/var/lib/postgresql/15/lab" in out
    assert f"'sync_standby_names={replicated.sync_standby_names(cfg)}'" in out
    assert "cat1-group with Promoted cat1-db-clone INFINITY" in out
    assert "order promote cat1-db-clone then start cat1-group" in out
