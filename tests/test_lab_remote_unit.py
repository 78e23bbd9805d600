"""Remote nodes in the lab without a lab: names, addresses, the site the lab applies."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bacula_ha.generator.plan import build
from bacula_ha.generator.render import render
from bacula_ha.lab import lifecycle, remote
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.stack import default_site
from bacula_ha.site.parse import parse_site

LAB_DIR = Path("/var/lib/bacula-ha-lab-unit")


def _cfg(nodes: int = 2, remotes: int = 2) -> LabConfig:
    return LabConfig(nodes=nodes, remotes=remotes, lab_dir=LAB_DIR)


def test_remote_machines_have_their_own_names_and_addresses() -> None:
    cfg = _cfg(remotes=3)
    assert [(m.name, m.address) for m in cfg.machines] == [
        ("node1", "10.99.0.1"),
        ("node2", "10.99.0.2"),
        ("remote1", "10.99.0.11"),
        ("remote2", "10.99.0.12"),
        ("remote3", "10.99.0.13"),
        ("client", "10.99.0.100"),
    ]
    assert [m.name for m in cfg.cluster_nodes] == ["node1", "node2"]
    assert cfg.server("remote2").address == "10.99.0.12"
    with pytest.raises(LabError, match="no cluster node 'remote1'"):
        cfg.node("remote1")
    with pytest.raises(
        LabError, match=r"no cluster node 'client' in this lab \(known: node1, node2, remote1"
    ):
        cfg.server("client")
    with pytest.raises(LabError, match="0 to 4 remote nodes"):
        LabConfig(remotes=5)
    assert "10.99.0.12 remote2" in lifecycle.hosts_file(cfg)
    # Without --remote the lab is what it was.
    assert [m.name for m in _cfg(remotes=0).machines] == ["node1", "node2", "client"]


def _applied(cfg: LabConfig, site: Path) -> dict[str, object]:
    text = lifecycle._site_text(cfg, site)
    data = tomllib.loads(text)
    # What the lab applies must be a valid site: the generator takes it.
    render(build(parse_site(text, str(site))), "pcs")
    return data


def test_the_remote_site_gets_this_labs_power_files_and_disk_labels() -> None:
    cfg = _cfg()
    data = _applied(cfg, remote.default_site())
    remotes = data["remote"]
    assert isinstance(remotes, list)
    assert [r["name"] for r in remotes] == ["remote1", "remote2"]
    assert [r["address"] for r in remotes] == ["10.99.0.11", "10.99.0.12"]
    for r in remotes:
        status_file = r["fence"]["params"]["status_file"]
        assert status_file == f"{LAB_DIR}/power/{r['name']}"
    text = lifecycle._site_text(cfg, remote.default_site())
    assert "/var/lib/bacula-ha-lab/" not in text


def test_further_lab_remote_nodes_join_the_site_idle_and_fenced() -> None:
    data = _applied(_cfg(nodes=3, remotes=3), remote.default_site())
    remotes = data["remote"]
    assert isinstance(remotes, list)
    added = remotes[2]
    assert added["name"] == "remote3" and added["address"] == "10.99.0.13"
    assert added["fence"]["params"]["status_file"] == f"{LAB_DIR}/power/remote3"
    assert added["reconnect_interval"] == remote.RECONNECT
    # The plain lab site on a lab with remote nodes: they join, nothing runs there.
    data = _applied(_cfg(remotes=1), default_site())
    assert [r["name"] for r in data["remote"]] == ["remote1"]  # type: ignore[index]


def test_a_site_with_more_remote_nodes_than_the_lab_is_refused() -> None:
    with pytest.raises(
        LabError, match=r"remote nodes remote1, remote2, the lab has none.*--remote 2"
    ):
        lifecycle._site_text(_cfg(remotes=0), remote.default_site())
    with pytest.raises(LabError, match="the lab has remote1: use `--remote 2`"):
        lifecycle._site_text(_cfg(remotes=1), remote.default_site())


def test_bare_seed_adds_a_connection_and_a_fence_device_per_remote_node(tmp_path: Path) -> None:
    from bacula_ha.lab import cluster

    cfg = LabConfig(nodes=2, remotes=2, lab_dir=tmp_path)
    cib = cluster.seed_cib(cfg, tmp_path)
    remote.seed(cfg, cib)
    xml = cib.read_text()
    for name, address in (("remote1", "10.99.0.11"), ("remote2", "10.99.0.12")):
        assert f'id="{name}" class="ocf" provider="pacemaker" type="remote"' in xml
        assert f'value="{address}"' in xml
        assert f'id="fence-{name}"' in xml
        assert f'rsc="fence-{name}" node="{name}" score="-INFINITY"' in xml
    assert 'name="monitor" interval="3s" timeout="6s"' in xml


def test_remoted_is_found() -> None:
    # scripts/bootstrap puts it in the virtualenv (Debian's package conflicts with pacemaker).
    assert Path(remote.remoted_binary()).name == "pacemaker-remoted"


@pytest.mark.root(reason="`lab up` checks for root first")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("up", "--remote", "9"), "Invalid value for '--remote'"),
        (("up", "--remote", "1"), "the lab has remote1: use `--remote 2`"),
    ],
)
def test_cli_refuses_a_remote_count_before_building(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "BACULA_HA_LAB_DIR": str(tmp_path / "lab")}
    cli = str(Path(sys.executable).with_name("bacula-ha"))
    proc = subprocess.run([cli, "lab", *args], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode in (1, 2) and message in proc.stderr, proc
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "lab").exists()


def test_heal_waits_for_the_power_switch_to_act_on_a_fenced_machine(tmp_path: Path) -> None:
    import time

    from bacula_ha.lab import machine

    cfg = LabConfig(nodes=2, remotes=1, lab_dir=tmp_path)
    m = cfg.server("remote1")
    (tmp_path / "power").mkdir()
    cfg.log_dir.mkdir()
    log = cfg.log_dir / "power.log"
    log.write_text(f"{time.time() - 60:.3f} powered off remote1\n")  # an earlier fencing
    m.power_file.write_text("on")
    machine.wait_power_switch(cfg, m, timeout=0.1)  # not fenced: nothing to wait for
    m.power_file.write_text("off")
    with pytest.raises(LabError, match="did not act on remote1"):
        machine.wait_power_switch(cfg, m, timeout=0.2)
    with log.open("a") as fh:
        fh.write(f"{time.time():.3f} powered off node1\n")
        fh.write(f"{time.time():.3f} powered off remote1\n")
    machine.wait_power_switch(cfg, m, timeout=0.2)
