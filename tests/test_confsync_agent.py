"""The bacula-confsync agent as Pacemaker runs it: OCF contract, faults, admin actions, tools."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from bacula_ha.bacula import configtest, confsync
from bacula_ha.bacula.confsync import cluster, remote
from bacula_ha.bacula.confsync import settings as agent
from bacula_ha.ocf.deadline import Deadline
from bacula_ha.ocf.errors import ArgsError, NotConfiguredError
from bacula_ha.ocf.log import Logger
from tests.fixtures_agents import SYSTEM_OCF_ROOT, AgentRun, run_agent
from tests.test_confsync_fixtures import Lab, lab, tree_state

__all__ = ["lab"]

NAME = "bacula-confsync"
EXECUTABLE = SYSTEM_OCF_ROOT / "resource.d" / "bacula" / NAME


@pytest.fixture
def rsctmp(tmp_path: Path) -> Path:
    path = tmp_path / "rsctmp"
    path.mkdir()
    return path


def run(
    lab: Lab, action: str, rsctmp: Path, *, interval_ms: int | None = 10_000, **params: str
) -> AgentRun:
    return run_agent(
        NAME,
        action,
        lab.params(**params),
        rsctmp=rsctmp,
        interval_ms=interval_ms,
        timeout_ms=60_000,
        instance="confsync-test",
    )


def admin(action: str, rsctmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """An admin's command on the node: no OCF variables at all."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HA_RSCTMP": str(rsctmp)}
    return subprocess.run(
        [str(EXECUTABLE), action, *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_lifecycle_and_periodic_sync(lab: Lab, rsctmp: Path, ocf_root: Path) -> None:
    assert run(lab, "monitor", rsctmp, interval_ms=0).code == 7  # probe, never started
    assert run(lab, "stop", rsctmp).code == 0
    start = run(lab, "start", rsctmp)
    assert start.code == 0, start.stderr
    for peer in ("p1", "p2"):
        assert tree_state(lab.peer_path(peer)) == tree_state(lab.source)
    assert run(lab, "start", rsctmp).code == 0  # idempotent
    assert run(lab, "monitor", rsctmp).code == 0

    # A change reaches every peer within one monitor.
    (lab.source / "clients" / "c0007.conf").write_text("edited on the active node\n")
    assert run(lab, "monitor", rsctmp).code == 0
    for peer in ("p1", "p2"):
        assert (lab.peer_path(peer) / "clients" / "c0007.conf").read_text().startswith("edited")

    # A peer that goes away: degraded, naming it; the other still gets changes.
    lab.servers["p2"].stop()
    (lab.source / "clients" / "c0008.conf").write_text("while p2 is down\n")
    degraded = run(lab, "monitor", rsctmp)
    assert degraded.code == 190, degraded.stderr
    assert degraded.reason.startswith("peer p2:")
    assert (lab.peer_path("p1") / "clients" / "c0008.conf").read_text() == "while p2 is down\n"

    # A probe never touches the network: it answers even with every peer gone.
    lab.servers["p1"].stop()
    began = time.monotonic()
    assert run(lab, "monitor", rsctmp, interval_ms=0).code == 0
    assert time.monotonic() - began < 5

    status = admin("status", rsctmp)
    assert status.returncode == 0, status.stderr
    assert "p1: last good sync 20" in status.stdout
    assert "p2: last good sync 20" in status.stdout and "failing since" in status.stdout

    stop = run(lab, "stop", rsctmp)  # the last push fails (peers gone): still 0, and quick
    assert stop.code == 0, stop.stderr
    assert run(lab, "monitor", rsctmp).code == 7
    assert run(lab, "stop", rsctmp).code == 0
    assert not list((rsctmp / "bacula-ha").glob("bacula-confsync-*"))


def test_stop_pushes_one_last_time(lab: Lab, rsctmp: Path, ocf_root: Path) -> None:
    assert run(lab, "start", rsctmp).code == 0
    (lab.source / "bacula-dir.conf.inc").write_text("# just before the stop\n")
    assert run(lab, "stop", rsctmp).code == 0
    assert (lab.peer_path("p1") / "bacula-dir.conf.inc").read_text() == "# just before the stop\n"


def test_director_reload_triggers_an_immediate_sync(lab: Lab, rsctmp: Path, ocf_root: Path) -> None:
    # What bacula-dir's reload calls: request_sync finds the instance from its state file.
    assert run(lab, "start", rsctmp).code == 0
    (lab.source / "clients" / "c0009.conf").write_text("reloaded\n")
    reports = confsync.request_sync(Deadline.after(60), rsctmp=str(rsctmp))
    assert len(reports) == 1 and not reports[0].degraded
    assert (lab.peer_path("p2") / "clients" / "c0009.conf").read_text() == "reloaded\n"
    assert run(lab, "stop", rsctmp).code == 0
    assert confsync.request_sync(Deadline.after(10), rsctmp=str(rsctmp)) == []


def test_broken_config_is_not_pushed_and_degrades(lab: Lab, rsctmp: Path, ocf_root: Path) -> None:
    assert run(lab, "start", rsctmp, config_check="parse").code == 0
    (lab.source / "bacula-sd.conf").write_text("Storage {\n  Name = half\n")
    mon = run(lab, "monitor", rsctmp, config_check="parse")
    assert mon.code == 190 and "not pushed" in mon.reason and "bacula-sd.conf" in mon.reason
    assert not (lab.peer_path("p1") / "bacula-sd.conf").exists()
    assert run(lab, "stop", rsctmp, config_check="parse").code == 0


def test_rollback_through_the_installed_agent(lab: Lab, rsctmp: Path, ocf_root: Path) -> None:
    assert run(lab, "start", rsctmp).code == 0
    before = tree_state(lab.source)
    (lab.source / "bacula-dir.conf.inc").write_text("# a mistake\n")
    assert run(lab, "monitor", rsctmp).code == 0
    listing = admin("backups", rsctmp)
    assert listing.returncode == 0 and "p1:" in listing.stdout, listing.stderr
    done = admin("rollback", rsctmp)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored p1:" in done.stdout
    assert tree_state(lab.source) == before
    for peer in ("p1", "p2"):
        assert tree_state(lab.peer_path(peer)) == before
    missing = admin("rollback", rsctmp, "19700101T000000Z")
    assert missing.returncode == 1 and "no backup" in missing.stderr
    assert run(lab, "stop", rsctmp).code == 0
    # No active instance and no parameters: a clear "not running", no traceback.
    gone = admin("status", rsctmp)
    assert gone.returncode == 7 and "Traceback" not in gone.stderr


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"paths": "etc/bacula"}, 6, "absolute"),
        ({"paths": "/nonexistent/bacula"}, 2, "does not exist"),
        ({"identity": "/nonexistent/id_ed25519"}, 2, "identity"),
        ({"identity": "id_ed25519"}, 6, "absolute"),
        ({"ssh_config": "/nonexistent/ssh_config"}, 2, "ssh_config"),
        ({"targets": "p1= p2"}, 6, "NAME=ADDRESS"),
        ({"targets": "p1 p1"}, 6, "twice"),
        ({"config_check": "maybe"}, 6, "config_check"),
        ({"backups": "0"}, 6, "backups"),
        ({"ssh_options": "-oFoo"}, 6, "Key=Value"),
        ({"exclude": "a/b"}, 6, "exclude"),
    ],
)
def test_bad_parameters_get_the_right_code(
    lab: Lab, rsctmp: Path, ocf_root: Path, params: dict[str, str], code: int, words: str
) -> None:
    result = run(lab, "validate-all", rsctmp, **params)
    assert result.code == code, result.stderr
    assert words in result.reason
    # A stop with unusable parameters succeeds: nothing runs between syncs.
    assert run(lab, "stop", rsctmp, **params).code == 0
    if code == 2:  # not usable on this node: a probe says "not running here"
        assert run(lab, "monitor", rsctmp, interval_ms=0, **params).code == 7


def test_a_former_peer_separates_its_live_files_from_its_backups_at_start(
    lab: Lab, rsctmp: Path, ocf_root: Path
) -> None:
    # p1 received pushes: its live files are hard links shared with its backups.
    cfg = lab.config(peers=(confsync.Peer("p1", "p1"),))
    state: dict[str, object] = {}
    confsync.sync(cfg, Deadline.after(30), Logger("t"), state)
    (lab.source / "clients" / "c0001.conf").write_text("second push\n")
    confsync.sync(cfg, Deadline.after(30), Logger("t"), state)
    former = lab.peer_path("p1")
    shared = former / "clients" / "c0002.conf"
    assert shared.stat().st_nlink > 1
    before = tree_state(former)
    # Failover: p1's tree becomes a source (pushing to p2).
    params = lab.params(paths=str(former), targets="p2", peer_root=str(lab.tmp / "%n-root"))
    started = run_agent(NAME, "start", params, rsctmp=rsctmp, instance="former")
    assert started.code == 0, started.stderr
    assert shared.stat().st_nlink == 1
    assert tree_state(former) == before  # same content, owners, modes, times
    # An in-place edit on the new source no longer reaches the backups.
    with open(shared, "a") as handle:
        handle.write("# edited in place\n")
    backups = Path(remote.backups_dir(str(former)))
    for stamp in backups.iterdir():
        assert "edited in place" not in (stamp / "clients" / "c0002.conf").read_text()
    assert run_agent(NAME, "stop", params, rsctmp=rsctmp, instance="former").code == 0


def test_symlinked_path_is_refused_here_and_on_a_peer(
    lab: Lab, rsctmp: Path, ocf_root: Path
) -> None:
    link = lab.tmp / "src" / "etc" / "bacula-link"
    link.symlink_to(lab.source)
    refused = run(lab, "validate-all", rsctmp, paths=str(link))
    assert refused.code == 2 and "symlink" in refused.reason
    # On a peer: the live tree is a symlink there; that peer fails, with the reason.
    real = lab.roots["p1"] / "elsewhere"
    real.mkdir()
    target = lab.peer_path("p1")
    target.parent.mkdir(parents=True)
    target.symlink_to(real)
    report = confsync.sync(lab.config(), Deadline.after(30), Logger("t"), {})
    p1, p2 = report.results
    assert not p1.ok and "symlink" in p1.error and p2.ok
    assert target.is_symlink() and not any(real.iterdir())


def test_unknown_action_and_usage(lab: Lab, rsctmp: Path, ocf_root: Path) -> None:
    assert run(lab, "promote", rsctmp).code == 3
    usage = subprocess.run([str(EXECUTABLE), "usage"], capture_output=True, text=True)
    assert "rollback" in usage.stdout


def test_ocf_tester_passes(lab: Lab, rsctmp: Path, ocf_root: Path) -> None:
    args = [a for k, v in lab.params().items() for a in ("-o", f"{k}={v}")]
    env = dict(os.environ, HA_RSCTMP=str(rsctmp))
    out = subprocess.run(
        ["/usr/sbin/ocf-tester", "-n", "confsync-tester", *args, str(EXECUTABLE)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed all tests" in out.stdout
    assert tree_state(lab.peer_path("p1")) == tree_state(lab.source)


def test_crm_resource_validate_and_force_check(lab: Lab, ocf_root: Path) -> None:
    opts = [a for k, v in lab.params().items() for a in ("--option", f"{k}={v}")]
    base = ["crm_resource", "--class", "ocf", "--provider", "bacula", "--agent", NAME]
    valid = subprocess.run([*base, *opts, "--validate"], capture_output=True, text=True)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    probe = subprocess.run([*base, *opts, "--force-check"], capture_output=True, text=True)
    assert probe.returncode == 7, probe.stdout + probe.stderr
    bad = [*opts, "--option", "paths=relative/path"]
    broken = subprocess.run([*base, *bad, "--validate"], capture_output=True, text=True)
    assert broken.returncode != 0 and "absolute" in broken.stdout + broken.stderr


# --- pure logic --------------------------------------------------------------------------------


def test_targets_resolution(mocker: pytest.MockFixture) -> None:
    mocker.patch.object(cluster, "cluster_nodes", return_value=("n1", ["n1", "n2", "n3"]))
    peers, local = agent.resolve_targets("", Deadline.after(5))
    assert [p.name for p in peers] == ["n2", "n3"] and local == "n1"
    peers, _ = agent.resolve_targets("n1,n3=10.0.0.3", Deadline.after(5))
    assert peers == [confsync.Peer("n3", "10.0.0.3")]
    with pytest.raises(NotConfiguredError, match="stranger"):
        agent.resolve_targets("n2 stranger", Deadline.after(5))
    mocker.patch.object(cluster, "cluster_nodes", return_value=None)
    with pytest.raises(ArgsError):
        agent.resolve_targets("", Deadline.after(5))


def test_paths_parsing() -> None:
    assert agent.parse_paths("/etc/bacula/ /etc/ssl/bacula.pem") == (
        "/etc/bacula",
        "/etc/ssl/bacula.pem",
    )
    for bad in ("/etc/bacula /etc/bacula/scripts", "/", "/etc/../x", ""):
        with pytest.raises(NotConfiguredError):
            agent.parse_paths(bad)


def test_bacula_error_text_and_catalog_failures() -> None:
    text = (
        "bacula-dir: smartall.c:418-0 Orphaned buffer: bacula-dir 24 bytes\n"
        "bacula-dir: ERROR TERMINATION at parse_conf.c:1192\n"
        "Config error: End of conf file reached with unclosed resource.\n"
        "            : line 325, col 15 of file /etc/bacula/bacula-dir.conf\n"
    )
    assert configtest.error_reason(text) == (
        "Config error: End of conf file reached with unclosed resource. "
        "(line 325, col 15 of file /etc/bacula/bacula-dir.conf)"
    )


def test_parser_errors_keep_error_lines_and_hide_passwords() -> None:
    out = (
        '{\n  "Director": {\n    "Password": "s3cret-error",\n'
        'Config error: expected a string, got: x : Password = "s3cret" x\n'
        "            : line 9, col 20 of file /etc/bacula/bacula-dir.conf\n"
        '  Password = "s3cret" x\n'
    )
    text = configtest.error_reason(out)
    assert "s3cret" not in text
    assert "Config error: expected a string" in text and "line 9, col 20" in text


def test_config_survives_the_state_file() -> None:
    cfg = confsync.SyncConfig(
        paths=("/etc/bacula",),
        peers=(confsync.Peer("n2", "10.0.0.2"),),
        ssh_options=("Port=2222",),
        rsync_options=("--bwlimit=10",),
    )
    assert confsync.config_from_json(confsync.config_to_json(cfg)) == cfg


def test_report_reason_names_the_first_failed_peer() -> None:
    report = confsync.SyncReport(
        results=(
            confsync.PeerResult("n2", ok=True),
            confsync.PeerResult("n3", ok=False, error="Connection refused"),
            confsync.PeerResult("n4", ok=False, error="timeout"),
        )
    )
    assert report.degraded and report.reason() == "peer n3: Connection refused (+1 more)"
    assert not confsync.SyncReport(results=(confsync.PeerResult("n2", ok=True),)).degraded


def test_cli_status_sync_and_rollback(lab: Lab, rsctmp: Path, ocf_root: Path) -> None:
    from click.testing import CliRunner

    from bacula_ha.cli import main

    cli = CliRunner()
    common = ["--rsctmp", str(rsctmp)]
    none = cli.invoke(main, ["confsync", "status", *common])
    assert none.exit_code == 1 and "no instance is active" in none.output
    assert run(lab, "start", rsctmp).code == 0
    before = tree_state(lab.source)
    (lab.source / "bacula-dir.conf.inc").write_text("# pushed by hand\n")
    pushed = cli.invoke(main, ["confsync", "sync", *common])
    assert pushed.exit_code == 0, pushed.output
    assert "p1: pushed" in pushed.output and "p2: pushed" in pushed.output
    status = cli.invoke(main, ["confsync", "status", *common])
    assert status.exit_code == 0 and "p2: last good sync 20" in status.output
    back = cli.invoke(main, ["confsync", "rollback", *common, "--from", "p2"])
    assert back.exit_code == 0, back.output
    assert "\nrestored p2:" in back.output
    assert tree_state(lab.source) == before == tree_state(lab.peer_path("p1"))
    assert run(lab, "stop", rsctmp).code == 0


def test_node_attribute_written_for_good_peers_and_rate_limited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # crm_attribute needs a cluster: a stand-in executable records how it is called.
    calls = tmp_path / "calls"
    fake = tmp_path / "crm_attribute"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setattr(cluster, "CRM_ATTRIBUTE", str(fake))
    cfg = confsync.SyncConfig(
        paths=("/etc/bacula",),
        peers=(confsync.Peer("n2", "n2"), confsync.Peer("n3", "n3")),
        local_node="n1",
    )
    peers = {"n2": {"last_good": 1_800_000_000.0}, "n3": {"last_good": None, "error": "down"}}
    log = Logger("t", to_stderr=False)
    cluster.update_attributes(cfg, peers, Deadline.after(10), log)
    assert calls.read_text().split("\n")[0] == (
        "-N n2 -n bacula-confsync-last-good -l reboot -v 2027-01-15T08:00:00Z"
    )
    assert "n3" not in calls.read_text()
    peers["n2"]["last_good"] += 60  # a minute later: not worth a round trip to the cluster
    cluster.update_attributes(cfg, peers, Deadline.after(10), log)
    assert len(calls.read_text().splitlines()) == 1
    peers["n2"]["last_good"] += cluster.ATTRIBUTE_REFRESH
    cluster.update_attributes(cfg, peers, Deadline.after(10), log)
    assert len(calls.read_text().splitlines()) == 2
