"""bacula-catalog next to PostgreSQL streaming replication: a real primary and standby on loopback.

The replica side (what PAF's Unpromoted node holds): a probe and a monitor say "not running"
without a database error, a start never succeeds. The primary side: sync_standby_names is
restored while a standby streams, and relaxed only when no named standby is in the cluster
partition (crm_node -p is a fake executable here: there is no cluster).
"""

from __future__ import annotations

import contextlib
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bacula_ha.bacula import catalog as cat
from bacula_ha.bacula import pgsync
from bacula_ha.bacula.layout import DEBIAN, Layout
from bacula_ha.ocf.deadline import Deadline
from testkit.sandbox.postgres import CatalogInfo, PostgresServer, make_basedir
from tests.catalog_helpers import POSTGRES, director_params, run_agent

PASSWORD = POSTGRES.password
Pair = tuple[PostgresServer, CatalogInfo, PostgresServer, CatalogInfo]
# pg_basebackup -R leaves application_name unset: a walreceiver reports itself so.
WANTED = "ANY 1 (walreceiver, elsewhere)"


def test_standby_names_forms() -> None:
    assert pgsync.standby_names("ANY 1 (node1, node2)") == ("node1", "node2")
    assert pgsync.standby_names('FIRST 1 ("node1",node2)') == ("node1", "node2")
    assert pgsync.standby_names("node1, node2") == ("node1", "node2")
    assert pgsync.standby_names("*") is None
    assert pgsync.standby_names("ANY 1 (*)") is None


@pytest.mark.parametrize("value", ["", "node1'; DROP TABLE job; --", "a\nb", "ANY 1 ()", "x\\y"])
def test_unusable_values_are_refused(value: str) -> None:
    assert not pgsync.valid(value)


def test_bad_parameter_is_not_configured(tmp_path: Path, rsctmp: Path) -> None:
    params = {"config": str(tmp_path / "x.conf"), "sync_standby_names": "a'b"}
    out = run_agent("validate-all", params, rsctmp, interval_ms=None)
    assert out.code == 6
    assert "sync_standby_names" in out.reason


@pytest.fixture
def pair(
    pg_factory: Callable[[], PostgresServer],
) -> Iterator[Pair]:
    """A private primary with a catalog and the grants sync_standby_names needs, a replica."""
    with primary_and_replica(pg_factory) as made:
        yield made


@contextlib.contextmanager
def primary_and_replica(
    pg_factory: Callable[[], PostgresServer], install: Layout = DEBIAN
) -> Iterator[Pair]:
    """`pair`, its catalog made by the scripts of `install` (test_bacula13_catalog.py: 13.0.3)."""
    primary = pg_factory()
    info = primary.create_bacula_catalog("bacula", "bacula", PASSWORD, install=install)
    primary.psql(
        "GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names TO bacula;"
        " GRANT pg_read_all_stats TO bacula;"
    )
    primary.psql("GRANT EXECUTE ON FUNCTION pg_reload_conf() TO bacula;", db="bacula")
    replica = primary.make_replica(make_basedir("postgres", prefix="bacula-ha-pgrep-"))
    try:
        on_replica = CatalogInfo(info.db_name, info.db_user, PASSWORD, "", replica.port)
        yield primary, info, replica, on_replica
    finally:
        replica.cleanup()
        # A primary left waiting for a standby would hang its own cleanup's queries.
        primary.reset_config("synchronous_standby_names")


def _streaming(primary: PostgresServer) -> bool:
    sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    return primary.psql(sql) == "1"


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def test_replica_side_probe_and_monitor_tell_the_truth(
    tmp_path: Path, rsctmp: Path, pair: Pair
) -> None:
    """Where PAF keeps a standby, bacula-catalog is not running, and cannot be started."""
    _, _, replica, on_replica = pair
    params = director_params(tmp_path, on_replica, sync_standby_names=WANTED)
    assert replica.is_in_recovery()
    assert run_agent("monitor", params, rsctmp, interval_ms=0).code == 7  # the probe
    assert run_agent("monitor", params, rsctmp, depth=10).code == 7
    out = run_agent("start", params, rsctmp, interval_ms=None)
    assert out.code == 1
    assert "in recovery" in out.reason
    # The failed start left nothing that a later probe would take for a running resource.
    assert run_agent("monitor", params, rsctmp, interval_ms=0).code == 7


def test_primary_restores_synchronous_standbys_while_one_streams(
    tmp_path: Path, rsctmp: Path, pair: Pair
) -> None:
    primary, info, replica, _ = pair
    _wait(lambda: _streaming(primary))
    params = director_params(tmp_path, info, sync_standby_names=WANTED)
    out = run_agent("start", params, rsctmp, interval_ms=None)
    assert out.code == 0, out.stderr
    assert primary.psql("SHOW synchronous_standby_names") == WANTED
    _wait(lambda: primary.psql("SELECT sync_state FROM pg_stat_replication") == "quorum")
    # Outside a cluster (crm_node cannot tell who is there) a lost standby keeps commits
    # waiting: the agent cannot know that it will not come back.
    replica.stop()
    assert run_agent("monitor", params, rsctmp).code == 0
    assert primary.psql("SHOW synchronous_standby_names") == WANTED


def _fake_cluster(directory: Path, members: str, walreceiver: str) -> tuple[str, str]:
    """crm_node -p printing `members`; crm_mon listing node walreceiver with `walreceiver`."""
    crm_node = directory / "crm_node"
    crm_node.write_text(f"#!/bin/sh\necho '{members}'\n")
    crm_mon = directory / "crm_mon"
    xml = (
        '<pacemaker-result><nodes><node name="primary" online="true" unclean="false"/>'
        f'<node name="walreceiver" {walreceiver}/></nodes></pacemaker-result>'
    )
    crm_mon.write_text(f"#!/bin/sh\necho '{xml}'\n")
    for path in (crm_node, crm_mon):
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(crm_node), str(crm_mon)


@pytest.mark.parametrize(
    ("members", "walreceiver", "relaxed"),
    [
        ("primary", 'online="false" unclean="false"', True),  # fenced
        ("primary", 'online="false" unclean="true"', False),  # lost, not fenced yet
        ("primary walreceiver", 'online="true" unclean="false"', False),  # there, not streaming
    ],
)
def test_relaxed_only_once_every_named_standby_is_known_down(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pair: Pair,
    members: str,
    walreceiver: str,
    relaxed: bool,
) -> None:
    primary, info, replica, _ = pair
    primary.set_config("synchronous_standby_names", WANTED)
    replica.stop()
    crm_node, crm_mon = _fake_cluster(tmp_path, members, walreceiver)
    monkeypatch.setattr(pgsync, "CRM_NODE", crm_node)
    monkeypatch.setattr(pgsync, "CRM_MON", crm_mon)
    settings = cat.CatalogSettings(
        name="MyCatalog",
        db_name=info.db_name,
        user=info.db_user,
        password=PASSWORD,
        address="127.0.0.1",
        port=info.port,
    )
    options = cat.CheckOptions(depth=0)
    changed = pgsync.reconcile(
        cat.default_client(cat.POSTGRESQL),
        settings,
        WANTED,
        options,
        deadline=Deadline.after(30),
        this_node="primary",
    )
    assert changed == (pgsync.RELAXED if relaxed else None)
    expected = "" if relaxed else WANTED
    assert primary.psql("SHOW synchronous_standby_names") == expected
    if relaxed:
        # Commits go on without a standby.
        primary.psql("CREATE TABLE after_relax (x int); INSERT INTO after_relax VALUES (1)")
