"""The alert agent's lines, deliveries and command, from Pacemaker's alert environment."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from bacula_ha import alert

ROOT = Path(__file__).resolve().parent.parent
ROLES = "dir-main=director ip-dir-main=vip sd-one=storage"


def _env(**kw: str) -> dict[str, str]:
    return {"bacula_resources": ROLES, "CRM_alert_node": "node2", **kw}


def test_a_director_start_is_one_plain_line() -> None:
    got = alert.describe(
        _env(
            CRM_alert_kind="resource",
            CRM_alert_rsc="dir-main",
            CRM_alert_task="start",
            CRM_alert_rc="0",
            CRM_alert_target_rc="0",
            CRM_alert_interval="0",
        )
    )
    assert got is not None
    line, run_here = got
    assert line == "director dir-main started on node2" and run_here


def test_a_failure_says_what_failed_where() -> None:
    got = alert.describe(
        _env(
            CRM_alert_kind="resource",
            CRM_alert_rsc="sd-one",
            CRM_alert_task="monitor",
            CRM_alert_rc="7",
            CRM_alert_target_rc="0",
            CRM_alert_interval="10000",
            CRM_alert_desc="not running",
        )
    )
    assert got is not None
    assert got[0] == "storage sd-one: check on node2 found it not running: not running"


def test_quiet_for_routine_checks_and_foreign_resources() -> None:
    ok_monitor = _env(
        CRM_alert_kind="resource",
        CRM_alert_rsc="dir-main",
        CRM_alert_task="monitor",
        CRM_alert_rc="0",
        CRM_alert_target_rc="0",
        CRM_alert_interval="10000",
    )
    assert alert.describe(ok_monitor) is None
    foreign = {**ok_monitor, "CRM_alert_rsc": "apache", "CRM_alert_interval": "0"}
    assert alert.describe(foreign) is None


def test_a_cancelled_check_is_not_told_twice() -> None:
    failed = _env(
        CRM_alert_kind="resource",
        CRM_alert_rsc="sd-one",
        CRM_alert_task="monitor",
        CRM_alert_rc="7",
        CRM_alert_target_rc="0",
        CRM_alert_interval="10000",
        CRM_alert_status="0",
    )
    told = ("storage sd-one: check on node2 found it not running", True)
    assert alert.describe(failed) == told
    assert alert.describe({**failed, "CRM_alert_status": "1"}) is None  # cancelled
    assert alert.describe({**failed, "CRM_alert_status": "2"}) == told  # timed out: told once


def test_fencing_and_node_loss_name_the_node() -> None:
    fenced = alert.describe(
        _env(
            CRM_alert_kind="fencing",
            CRM_alert_rc="0",
            CRM_alert_desc="Operation reboot of node2 by node1: OK",
        )
    )
    assert fenced is not None and fenced[0].startswith("node node2 was fenced")
    failed = alert.describe(_env(CRM_alert_kind="fencing", CRM_alert_rc="1"))
    assert failed is not None and "could NOT be fenced" in failed[0]
    lost = alert.describe(_env(CRM_alert_kind="node", CRM_alert_desc="lost"))
    assert lost is not None and "will move once it is fenced" in lost[0]


def test_hostile_values_stay_one_printable_line() -> None:
    got = alert.describe(
        _env(
            CRM_alert_kind="resource",
            CRM_alert_rsc="dir-main",
            CRM_alert_task="st\nart\x1b",
            CRM_alert_rc="99999999999999",
            CRM_alert_target_rc="x",
            CRM_alert_node="n\x00\n",
        )
    )
    assert got is not None and got[0].isprintable()


def _run_agent(env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import sys; from bacula_ha.alert import main; sys.exit(main())",
        ],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"), **env},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp,
    )


def test_file_recipient_and_command(tmp_path: Path) -> None:
    log = tmp_path / "alerts.log"
    seen = tmp_path / "seen"
    script = tmp_path / "hook"
    script.write_text(f'#!/bin/sh\necho "$BACULA_HA_EVENT|$BACULA_HA_RSC" > {seen}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = _env(
        CRM_alert_kind="resource",
        CRM_alert_rsc="dir-main",
        CRM_alert_task="stop",
        CRM_alert_rc="0",
        CRM_alert_target_rc="0",
        CRM_alert_recipient=str(log),
        command=str(script),
    )
    for _ in range(2):
        done = _run_agent(env, tmp_path)
        assert done.returncode == 0 and not done.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and all(
        ln.endswith("bacula-ha: director dir-main stopped on node2") for ln in lines
    )
    assert seen.read_text() == "bacula-ha: director dir-main stopped on node2|dir-main\n"


def test_never_fails_pacemaker(tmp_path: Path) -> None:
    env = _env(
        CRM_alert_kind="resource",
        CRM_alert_rsc="dir-main",
        CRM_alert_task="start",
        CRM_alert_rc="1",
        CRM_alert_target_rc="0",
        CRM_alert_recipient=str(tmp_path / "no" / "such" / "dir" / "file"),
        command="relative/hook",
    )
    done = _run_agent(env, tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert not os.path.exists(tmp_path / "no")
