"""A rolling upgrade from Bacula 9.6.7 to 13.0.3 under cluster control, without losing a
backup (issue 21, part 6; the runbook is docs/upgrade.md).

The lab starts on Debian's 9.6.7. `lab upgrade NODE --bacula PREFIX` upgrades one node in
place (13.0.3's programs bound over Debian's, in that node only). The story: a 9.6 backup A;
a backup B running (throttled) on node1; node2 upgraded in standby; then the one moment the
director is stopped: the director's stop leaves B Incomplete, the storage daemon stops, 13's
update_postgresql_tables takes the catalog from 16 to 1024 on the node running it, node1 goes
to standby so that everything moves to node2, where the director and storage daemon start on
13.0.3 (the catalog agent on node1, still 9.6, says 5); B finishes once; node1 is upgraded
too; a crash of node2 moves everything back; A and B restore byte-identical. Skipped when
13.0.3 is not built (scripts/build-bacula builds it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bacula_ha.lab import backups, lifecycle, machine, stack
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.errors import LabError
from testkit.lab import (
    BaculaWatch,
    fresh_client_data,
    pcs,
    started_on,
    wait_until,
)
from tests.fixtures_agents import NOT_BUILT, bacula13_prefix

BACULA_HA = str(Path(sys.executable).with_name("bacula-ha"))
PREFIX = bacula13_prefix() or ""

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(not PREFIX, reason=NOT_BUILT),
]

COMPONENTS = ("cat1-catalog", "dir1-dir", "sd1-sd")
# B: 8 x 16 MiB at 5 MB/s (Bacula's own setbandwidth on 9.6.7) runs about 27 s, so it still
# runs when the director stops; resumed on 13.0.3 it is not throttled any more.
FILES, MIB_EACH, MB_PER_S = 8, 16, 5
# A's data as it was backed up: B replaces the backup set.
A_COPY = "/srv/data-a"
# What the switch runs on the catalog's node, as PostgreSQL's superuser: the new release's
# own scripts, copied from the upgraded node (docs/upgrade.md, "The switch").
SCHEMA_UPDATE = """
set -e
rm -rf /tmp/upgrade && mkdir /tmp/upgrade && cd /tmp/upgrade
scp -q {source}:/usr/share/bacula-director/update_postgresql_tables \
    {source}:/usr/share/bacula-director/grant_postgresql_privileges .
chown -R postgres: /tmp/upgrade
runuser -u postgres -- sh ./update_postgresql_tables -h /run/postgresql
runuser -u postgres -- env db_user=bacula sh ./grant_postgresql_privileges -h /run/postgresql
"""


def test_0_upgrade_without_a_lab_is_refused(tmp_path: Path) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "BACULA_HA_LAB_DIR": str(tmp_path / "lab")}
    argv = [BACULA_HA, "lab", "upgrade", "node2", "--bacula", PREFIX]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 1 and "no lab is up" in proc.stderr, proc
    assert not (tmp_path / "lab").exists()


def _release(cfg: LabConfig, node: str) -> str:
    """What the director installed on `node` says it is."""
    out = machine.run_in(cfg, node, ["/usr/sbin/bacula-dir", "-?"], check=False)
    found = re.search(r"Version: (\S+)", out.stdout + out.stderr)
    return found.group(1) if found else "?"


def _running_release(cfg: LabConfig) -> str:
    """The release of the director behind its VIP, asked from the client (its 9.6 bconsole)."""
    found = re.search(r"lab-dir Version: (\S+)", stack.bconsole(cfg, "version\n"))
    return found.group(1) if found else "?"


def _all_on(cfg: LabConfig, node: str) -> bool:
    return all(started_on(cfg, rid) == (node,) for rid in COMPONENTS)


DAEMONS = ["/usr/sbin/bacula-dir", "/usr/sbin/bacula-sd"]


def _daemons_from(cfg: LabConfig, node: str) -> list[str]:
    """The programs the node's director and storage daemon run. The oldest process of each
    name: a configuration test (`bacula-dir -t` of a reload that config sync asks for after
    a start) may run beside the daemon for a moment."""
    script = "for d in bacula-dir bacula-sd; do readlink /proc/$(pgrep -o -x $d)/exe; done"
    return machine.run_in(cfg, node, ["sh", "-c", script], check=False).stdout.split()


def _wait_daemons_from(cfg: LabConfig, node: str) -> None:
    wait_until(
        f"the director and storage daemon running {DAEMONS} on {node}",
        lambda: _daemons_from(cfg, node) == DAEMONS,
        30,
    )


def _upgrade(cfg: LabConfig, node: str) -> None:
    """The node's Bacula upgraded in place while the node is in standby."""
    pcs(cfg, "node", "standby", node, "--wait=60")
    done = lifecycle.upgrade(cfg, node, PREFIX)
    print(done.describe())
    assert done.release == "13.0.3" and f"{PREFIX}/lib/libbac-13.0.3.so" in done.libraries
    assert _release(cfg, node) == "13.0.3"
    pcs(cfg, "node", "unstandby", node, "--wait=60")


def test_1_rolling_upgrade_loses_no_backup(stack_lab: LabConfig) -> None:
    _story(stack_lab)


def _story(cfg: LabConfig) -> None:
    t: dict[str, float] = {"up": time.time()}
    assert _all_on(cfg, "node1")
    assert _release(cfg, "node1") == _release(cfg, "node2") == "9.6.7"

    # A: a backup on 9.6.7, and a copy of what it saved.
    fresh_client_data(cfg, "before-upgrade")
    machine.run_in(cfg, "client", ["cp", "-a", stack.CLIENT_DATA, A_COPY])
    a, status = stack.backup(cfg)
    assert status == "T", f"backup A {a} ended {status}"
    assert _running_release(cfg) == "9.6.7"

    # B: running on node1's 9.6.7, throttled.
    total = backups.make_data(cfg, files=FILES, mib_each=MIB_EACH)
    base = backups.volume_bytes(cfg)
    b = backups.start_backup(cfg)
    backups.limit(cfg, b, MB_PER_S)
    backups.wait_written(cfg, base, total // 8)
    t["B running"] = time.time()

    # A node running the director or the storage daemon is not upgraded under them.
    with pytest.raises(LabError, match="bacula-dir and bacula-sd run on node1"):
        lifecycle.upgrade(cfg, "node1", PREFIX)
    # The standby node first.
    _upgrade(cfg, "node2")
    t["node2 upgraded"] = time.time()
    assert [r.status for r in backups.jobs(cfg, after=b - 1)] == ["R"], "B should still run"
    assert _all_on(cfg, "node1") and _release(cfg, "node1") == "9.6.7"

    # The switch. The director's stop first (on_stop=resume: B is stopped Incomplete, which
    # needs the storage daemon still there), then the storage daemon's.
    t["switch"] = time.time()
    pcs(cfg, "resource", "disable", "dir1-dir", "--wait=90")
    t["director stopped"] = time.time()
    log = "/var/log/pacemaker/pacemaker.log"
    said = machine.run_in(cfg, "node1", ["grep", "-F", "bacula-dir(dir1-dir)", log]).stdout
    print("the director's stop:\n" + "\n".join(said.splitlines()[-8:]))
    rows = backups.jobs(cfg, after=b - 1)
    assert [r.status for r in rows] == ["I"], f"B after the director's stop: {rows}"
    written_at_stop = backups.volume_bytes(cfg) - base
    pcs(cfg, "resource", "disable", "sd1-sd", "--wait=60")
    t["sd stopped"] = time.time()
    # The schema update on the catalog's node, with 13's own scripts.
    (db_node,) = started_on(cfg, "cat1-db")
    assert db_node == "node1"
    out = machine.run_in(cfg, db_node, ["sh", "-c", SCHEMA_UPDATE.format(source="node2")])
    assert "Update of Bacula PostgreSQL tables 1023 to 1024 succeeded" in out.stdout, out.stdout
    assert backups.sql(cfg, "SELECT versionid FROM version") == [["1024"]]
    tables = backups.sql(cfg, "SELECT count(*) FROM pg_tables WHERE tablename = 'filename'")
    assert tables == [["0"]]
    t["schema 1024"] = time.time()
    watch = BaculaWatch(cfg, seconds=120)
    try:
        # Everything to node2: node1 (9.6.7) in standby until it is upgraded too.
        pcs(cfg, "node", "standby", "node1", "--wait=120")
        t["moved"] = time.time()
        pcs(cfg, "resource", "enable", "sd1-sd", "--wait=60")
        pcs(cfg, "resource", "enable", "dir1-dir", "--wait=90")
        t["started"] = time.time()
        answered = watch.result()
    finally:
        watch.kill()
    assert answered["dir"] is not None and answered["sd"] is not None, answered
    t["director answers"], t["sd answers"] = answered["dir"], answered["sd"]
    assert _all_on(cfg, "node2")
    _wait_daemons_from(cfg, "node2")
    assert _release(cfg, "node2") == "13.0.3" == _running_release(cfg)
    # What an admin sees on the upgraded node (its director's bconsole is 13's).
    view = machine.run_in(cfg, "node2", ["bacula-ha", "status"], check=False, timeout=60)
    print(f"bacula-ha status on node2 ({view.returncode}):\n{view.stdout}{view.stderr}")
    assert view.returncode == 0, view.stderr

    # The catalog agent on node1, which still runs 9.6.7: 5 (not installed), this node only.
    check = machine.run_in(
        cfg, "node1", ["crm_resource", "-r", "cat1-catalog", "--force-start"], check=False
    )
    said = check.stdout + check.stderr
    print(f"crm_resource --force-start on node1 ({check.returncode}): {said.strip()}")
    assert check.returncode == 5, said
    assert "schema version 1024" in said and "expects 16" in said, said

    # B finishes exactly once: resumed under its JobId, or run again once.
    def settled(rows: list[backups.JobRow]) -> bool:
        done = any(r.status == "T" for r in rows)
        return done and all(r.status not in backups.ACTIVE for r in rows)

    rows = backups.wait_job(cfg, settled, "B to finish", after=b - 1, timeout=180)
    t["B finished"] = time.time()
    run = backups.FaultRun(b, tuple(rows), t["switch"])
    record = [r for r in backups.rerun_record(cfg) if r["origin"] == str(b)]
    print(f"B: runs {run.describe()}; record {record}")
    assert run.finished_once, run.describe()
    final = run.finished[0].job_id
    if final == b:
        assert len(rows) == 1
        assert [(r["action"], r["new_jobid"]) for r in record] == [("resumed", str(b))]
    else:
        assert len(rows) == 2
        assert [(r["action"], r["new_jobid"]) for r in record] == [("rerun", str(final))]

    # node1 too, then a failover back: everything on 13.0.3.
    _upgrade(cfg, "node1")
    t["node1 upgraded"] = time.time()
    crash = time.time()
    lifecycle.fail(cfg, "node2", "crash")
    came = BaculaWatch(cfg, seconds=90, targets="dir").result()["dir"]
    assert came is not None, "the director did not answer again after the crash of node2"
    wait_until("everything on node1", lambda: _all_on(cfg, "node1"), 60)
    _wait_daemons_from(cfg, "node1")
    assert _running_release(cfg) == "13.0.3"

    # A (written by 9.6.7) and B (by both) restored by 13.0.3, byte-identical.
    assert backups.restore_identical(cfg, a, reference=A_COPY), "restore of A differs"
    assert backups.restore_identical(cfg, final), "restore of B differs"
    t["restored"] = time.time()

    spans = [
        ("the director's stop (B Incomplete)", "switch", "director stopped"),
        ("the storage daemon's stop", "director stopped", "sd stopped"),
        ("the schema update 16 -> 1024", "sd stopped", "schema 1024"),
        ("everything to node2 (node1 standby)", "schema 1024", "moved"),
        ("sd and director started on node2", "moved", "started"),
        ("outage of the director", "switch", "director answers"),
        ("outage of the storage daemon", "director stopped", "sd answers"),
        ("the switch to B finished", "switch", "B finished"),
    ]
    for what, start, end in spans:
        print(f"{what}: {t[end] - t[start]:.1f} s")
    print(f"B: {written_at_stop} of {total} bytes written at the director's stop")
    print(f"crash of node2: the director answered after {came - crash:.1f} s")
    print(f"the story from lab up: {t['restored'] - t['up']:.0f} s")
