"""An upgrade from Bacula 9.6.7 to 13.0.3 on one catalog, through the agents: what the catalog
agent says before and after Bacula's own update_postgresql_tables, and the pre-upgrade backup
restored byte-identical by 13.0.3 (the cluster's rolling version: docs/upgrade.md)."""

from __future__ import annotations

import dataclasses
import filecmp
import time
from pathlib import Path

import pytest

from bacula_ha.bacula.layout import DEBIAN, Layout
from testkit.sandbox.bacula import BaculaSite, CatalogSettings
from testkit.sandbox.postgres import PostgresServer
from tests.catalog_helpers import run_agent as run_catalog
from tests.fixtures_bacula import DIRECTOR, FILEDAEMON, STORAGE, SiteFactory, bconsole

pytestmark = pytest.mark.bacula13

NEW_SCHEMA = "1024"


def _wait_for(site: BaculaSite, job_id: str, status: str = "T") -> str:
    deadline = time.monotonic() + 90
    while f"jobstatus: {status}" not in (record := bconsole(site, f"llist jobid={job_id}")):
        assert time.monotonic() < deadline, record
        assert "jobstatus: f" not in record and "jobstatus: E" not in record, record
        time.sleep(0.5)
    return record


def _queued(answer: str) -> str:
    assert "Job queued. JobId=" in answer, answer
    return answer.split("Job queued. JobId=")[1].split()[0]


def _catalog_start(site: BaculaSite, install: Layout, rsctmp: Path) -> tuple[int, str]:
    """bacula-catalog's start (depth 20: schema and tables of `install`'s director) and its
    stop; the start's code and reason."""
    params = {"config": str(site.dir_conf), "binary": install.tool("bacula-dir")}
    out = run_catalog("start", params, rsctmp, interval_ms=None, instance="upgrade")
    assert run_catalog("stop", params, rsctmp, interval_ms=None, instance="upgrade").code == 0
    return out.code, out.reason


def test_upgrade_9_6_to_13_keeps_every_backup(
    site_factory: SiteFactory,
    rsctmp: Path,
    ocf_root: Path,
    pg_server: PostgresServer,
    bacula13_install: Layout,
) -> None:
    old, new = DEBIAN, bacula13_install
    info = pg_server.create_bacula_catalog("upgrade", "bacula", "upgrade-pw", install=old)
    catalog = CatalogSettings(dbname=info.db_name, password=info.db_password, port=pg_server.port)
    site = site_factory(install=old, catalog=catalog, name="upgrade")
    payload = bytes(range(256)) * 8192
    (site.data_dir / "before.bin").write_bytes(payload)
    daemons = [STORAGE.on(site), FILEDAEMON.on(site), DIRECTOR.on(site)]
    for each in daemons:
        each.start(rsctmp)

    # 9.6.7: a backup, and the catalog agent of each release on the 9.6 schema.
    before = _queued(bconsole(site, "run job=BackupSandbox yes"))
    _wait_for(site, before)
    assert _catalog_start(site, old, rsctmp) == (0, "")
    code, reason = _catalog_start(site, new, rsctmp)  # a node already upgraded
    assert code == 5 and "schema version 16" in reason and "expects 1024" in reason, reason

    # The one moment the director is stopped: the schema update, by 13's own script.
    for each in reversed(daemons):
        assert each.run("stop", rsctmp).code == 0
    assert pg_server.update_bacula_catalog(info, install=new) == NEW_SCHEMA
    tables = pg_server.psql(
        "SELECT string_agg(relname, ',') FROM pg_class WHERE relname IN ('filename', 'events')"
        " AND relkind = 'r'",
        db=info.db_name,
    )
    assert tables == "events", tables  # Filename gone (names moved into File), Events new
    assert _catalog_start(site, new, rsctmp) == (0, "")
    # The node that still runs the old director is ruled out (5), not the catalog (6 or 1).
    code, reason = _catalog_start(site, old, rsctmp)
    assert code == 5 and "schema version 1024" in reason and "expects 16" in reason, reason

    # 13.0.3 on the same catalog and volumes: the pre-upgrade backup restores byte-identical,
    # and a new backup runs.
    # The same root, names, passwords and ports: the upgrade keeps the volumes, the archive
    # directory and the catalog; only the programs (and the files they name) change.
    site = dataclasses.replace(site, install=new).write()
    daemons = [STORAGE.on(site), FILEDAEMON.on(site), DIRECTOR.on(site)]
    for each in daemons:
        each.start(rsctmp, params={"interrupted_jobs": "off"} if each.agent is DIRECTOR else None)
    assert "13.0.3" in bconsole(site, "version")
    restore = _queued(
        bconsole(
            site,
            f"restore jobid={before} where={site.restore_dir} all done yes",
        )
    )
    _wait_for(site, restore)
    restored = next(site.restore_dir.rglob("before.bin"))
    assert filecmp.cmp(restored, site.data_dir / "before.bin", shallow=False)
    after = _queued(bconsole(site, "run job=BackupSandbox yes"))
    assert "jobfiles: 3" in _wait_for(site, after)  # the directory, hello.txt, before.bin
    for each in reversed(daemons):
        assert each.run("stop", rsctmp).code == 0
