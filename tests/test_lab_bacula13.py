"""The lab on Bacula 13.0.3 (issue 21, part 5): every node runs bacula.org's /opt/bacula.

One lab (`bacula-ha lab up --bacula PREFIX`, PREFIX the build of scripts/build-bacula) serves
the module: the daemons and the catalog are 13's, a crash of the director's node loses no
backup (restored byte-identical from the other node), and a backup cut by such a crash is run
again exactly once. Skipped when 13.0.3 is not built (scripts/build-bacula builds it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacula_ha.lab import backups, lifecycle, machine, stack
from bacula_ha.lab.baculaorg import OPT
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    BaculaWatch,
    fresh_client_data,
    restore_differences,
    running_lab,
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
# 8 x 16 MiB throttled to 20 MB/s: the backup runs about 7 s, long enough for the crash.
FILES, MIB_EACH = 8, 16


@pytest.fixture(scope="module")
def lab13(host_unchanged: None) -> Iterator[LabConfig]:
    with running_lab(nodes=2, site=stack.default_site(), bacula=PREFIX) as cfg:
        yield cfg


def _active(cfg: LabConfig) -> str:
    (node,) = started_on(cfg, "dir1-dir")
    return node


def _other(cfg: LabConfig, node: str) -> str:
    return next(m.name for m in cfg.cluster_nodes if m.name != node)


def _crash_director_node(cfg: LabConfig) -> tuple[str, float]:
    """Power off the director's node; (the node, seconds until the director answered again)."""
    node = _active(cfg)
    crash = time.time()
    lifecycle.fail(cfg, node, "crash")
    answered = BaculaWatch(cfg, seconds=90, targets="dir").result()["dir"]
    assert answered is not None, "the director did not answer again within 90 s"
    return node, answered - crash


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bacula", "15.0.2"), "build-bacula builds Bacula 13.0.3"),
        (("--bacula", "/nonexistent/bacula"), "no executable bin/bacula-dir"),
        (("--bacula", "13.0.3", "--bare"), "--bare runs no Bacula"),
        (("--bacula", "13.0.3", "--remote", "2"), "goes with neither"),
    ],
)
def test_0_a_bacula_the_lab_cannot_run_is_refused_first(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "BACULA_HA_LAB_DIR": str(tmp_path / "lab")}
    argv = [BACULA_HA, "lab", "up", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode in (1, 2) and message in proc.stderr, proc
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "lab").exists()


def test_1_the_nodes_run_bacula_13_from_opt(lab13: LabConfig) -> None:
    cfg = lab13
    node = _active(cfg)
    running = []
    for rid, daemon in (("dir1-dir", "bacula-dir"), ("sd1-sd", "bacula-sd")):
        # Each where Pacemaker runs it (the storage daemon's group is placed on its own), and
        # the oldest process of the name: a configuration test (-t) may run beside it.
        (where,) = started_on(cfg, rid)
        script = f"readlink /proc/$(pgrep -o -x {daemon})/exe"
        running.append(machine.run_in(cfg, where, ["sh", "-c", script]).stdout.strip())
    assert running == [f"{OPT}/bin/bacula-dir", f"{OPT}/bin/bacula-sd"]
    fd = machine.run_in(cfg, "client", ["sh", "-c", "readlink /proc/$(pgrep -x bacula-fd)/exe"])
    assert fd.stdout.strip() == f"{OPT}/bin/bacula-fd"
    usage = machine.run_in(cfg, node, [f"{OPT}/bin/bacula-dir", "-?"], check=False)
    assert "Version: 13.0.3" in usage.stdout + usage.stderr
    # The build is the same read-only files everywhere; etc/ is each node's own.
    assert machine.run_in(cfg, node, ["touch", f"{OPT}/bin/x"], check=False).returncode != 0
    # The lab wrote into the nodes' own etc/, never into the build.
    assert "lab-dir" not in Path(PREFIX, "etc", "bacula-dir.conf").read_text()
    # The catalog was made by 13's own scripts: schema 1024, file names in File, no Filename.
    assert backups.sql(cfg, "SELECT versionid FROM version") == [["1024"]]
    tables = backups.sql(cfg, "SELECT count(*) FROM pg_tables WHERE tablename = 'filename'")
    assert tables == [["0"]]
    # What the generator's `[bacula] prefix` gave the agents.
    cib = machine.run_in(cfg, node, ["cibadmin", "-Q", "--xpath", "//primitive"]).stdout
    for value in ("bin/bacula-dir", "bin/bacula-sd", "bin/bconsole", "etc/bconsole.conf"):
        assert f'value="{OPT}/{value}"' in cib, value
    assert 'value="/etc/bacula' not in cib


def test_2_crash_of_the_director_node_loses_nothing(lab13: LabConfig) -> None:
    cfg = lab13
    fresh_client_data(cfg, "thirteen")
    jobid, status = stack.backup(cfg)
    assert status == "T", f"backup {jobid} ended {status}"
    crashed, took = _crash_director_node(cfg)
    print(f"crash of {crashed}: the director answered after {took:.2f} s")
    standby = _other(cfg, crashed)
    assert f"powered off {crashed}" in (cfg.lab_dir / "log" / "power.log").read_text()
    for rid in COMPONENTS:
        wait_until(f"{rid} on {standby}", lambda r=rid: started_on(cfg, r) == (standby,), 30)
    rjob, rstatus = stack.restore(cfg, jobid)
    assert rstatus == "T", f"restore {rjob} ended {rstatus}"
    assert not restore_differences(cfg), "restored files differ from the originals"
    lifecycle.heal(cfg)


def test_3_crash_mid_backup_is_run_again_once(lab13: LabConfig) -> None:
    cfg = lab13
    total = backups.make_data(cfg, files=FILES, mib_each=MIB_EACH)
    took: list[float] = []
    run = backups.backup_through(cfg, total, lambda: took.append(_crash_director_node(cfg)[1]))
    print(f"runs {run.describe()}; the director answered {took[0]:.2f} s after the crash")
    # The cut run, then exactly one run again that finished, and nothing after it.
    assert run.rows[0].job_id == run.first and run.rows[0].status not in ("T", *backups.ACTIVE)
    assert len(run.rows) == 2 and run.finished_once, run.describe()
    record = [r for r in backups.rerun_record(cfg) if r["origin"] == str(run.first)]
    assert [(r["action"], r["new_jobid"]) for r in record] == [
        ("rerun", str(run.rows[1].job_id))
    ], record
    assert run.rows[1].bytes >= total, run.rows[1]
    assert backups.restore_identical(cfg, run.rows[1].job_id), "restore differs"
    # No heal: the module's lab comes down next.
