"""pg_ctl-wait (bacula_ha.pgwait) and the generator's use of it: a start that waits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bacula_ha.generator.plan import build
from bacula_ha.pgwait import arguments, real_pg_ctl
from bacula_ha.site.model import PG_CTL_WAIT_PATH
from bacula_ha.site.parse import parse_site

START = ["-D", "/pg", "-l", "/dev/null", "-o", "-p 5432", "-W", "start"]


def test_a_start_waits_as_long_as_the_operation_may() -> None:
    env = {"OCF_RESKEY_CRM_meta_timeout": "120000"}
    assert arguments(START, env) == ["-t", "120", *START[:-2], "-w", "start"]
    assert arguments(START, {})[:2] == ["-t", "60"]
    assert arguments(START, {"OCF_RESKEY_CRM_meta_timeout": "x"})[:2] == ["-t", "60"]


def test_every_other_command_passes_through() -> None:
    for args in (["-W", "-D", "/pg", "stop", "-m", "fast"], ["-D", "/pg", "-W", "promote"], []):
        assert arguments(args, {"OCF_RESKEY_CRM_meta_timeout": "9000"}) == args


def test_the_real_pg_ctl_is_the_one_beside_psql(tmp_path: Path) -> None:
    pg_ctl = tmp_path / "pg_ctl"
    pg_ctl.write_text('#!/bin/sh\necho "$@"\n')
    pg_ctl.chmod(0o755)
    assert real_pg_ctl({"OCF_RESKEY_psql": str(tmp_path / "psql")}) == str(pg_ctl)
    assert real_pg_ctl({"OCF_RESKEY_psql": "psql"}) is None
    assert real_pg_ctl({}) is None
    # Run as installed: the arguments reach the real pg_ctl, a start rewritten.
    env = {**os.environ, "OCF_RESKEY_psql": str(tmp_path / "psql")}
    argv = [
        sys.executable,
        "-I",
        "-c",
        "from bacula_ha.pgwait import main; raise SystemExit(main())",
        *START,
    ]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [
        "-t",
        "60",
        "-D",
        "/pg",
        "-l",
        "/dev/null",
        "-o",
        "-p",
        "5432",
        "-w",
        "start",
    ]
    env["OCF_RESKEY_psql"] = str(tmp_path / "elsewhere" / "psql")
    missing = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert missing.returncode == 127 and "no pg_ctl beside the agent's psql" in missing.stderr


SITE = """
[site]
name = "s"
[[node]]
name = "n1"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/tmp/n1" } }
[[node]]
name = "n2"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/tmp/n2" } }
[[director]]
name = "dir"
preferred = "n1"
standby = "n2"
vip = { ip = "10.1.0.10" }
[director.catalog]
backend = "postgresql"
vip = { ip = "10.1.0.11" }
disk = { type = "shared", device = "/dev/loop7", fstype = "ext4", directory = "/srv/cat" }
database = { agent = "pgsql", params = { pgdata = "/srv/cat/data", PARAMS } WAIT }
"""


def _pgctl(params: str, wait: str = "") -> str | None:
    text = SITE.replace("PARAMS", params).replace("WAIT", wait)
    plan = build(parse_site(text, "site.toml"))
    members = [m for b in plan.blocks for g in b.groups for m in g.members]
    (db,) = [p for p in members if p.id.endswith("-db")]
    return dict(db.params).get("pgctl")


def test_the_generator_makes_a_pgsql_start_wait_when_it_can() -> None:
    beside = 'pgctl = "/usr/lib/postgresql/15/bin/pg_ctl", psql = "/usr/lib/postgresql/15/bin/psql"'
    assert _pgctl(beside) == PG_CTL_WAIT_PATH
    assert _pgctl(beside, ", wait_start = false") == "/usr/lib/postgresql/15/bin/pg_ctl"
    # Not beside its psql: pg_ctl-wait could not find it, so the site's own stays.
    apart = 'pgctl = "/opt/pg/bin/pg_ctl", psql = "/usr/bin/psql"'
    assert _pgctl(apart) == "/opt/pg/bin/pg_ctl"
