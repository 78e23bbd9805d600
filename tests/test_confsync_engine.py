"""The confsync engine against real sshd and rsync: pushes, drift, faults, atomicity, rollback."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from bacula_ha.bacula import confsync
from bacula_ha.bacula.confsync import remote
from bacula_ha.ocf.deadline import Deadline
from bacula_ha.ocf.log import Logger
from tests.fixtures_bacula import SiteFactory
from tests.test_confsync_fixtures import PEERS, Lab, lab, make_tree, sync_lab, tree_state

__all__ = ["lab"]  # the fixture, imported for pytest

LOG = Logger("confsync-test", to_stderr=True, debug_enabled=True)


def _backups(lab: Lab, peer: str) -> list[str]:
    directory = Path(remote.backups_dir(str(lab.peer_path(peer))))
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def test_first_sync_then_a_change_reaches_every_peer(lab: Lab) -> None:
    cfg = lab.config()
    state: dict[str, object] = {}
    report = sync_lab(lab, cfg, state)
    assert not report.degraded, report.reason()
    assert all(r.pushed for r in report.results)
    for name, _ in PEERS:
        assert tree_state(lab.peer_path(name)) == tree_state(lab.source)
        secret = lab.peer_path(name) / "passwords.conf"
        assert (secret.stat().st_mode & 0o777) == 0o640
        assert secret.stat().st_gid == (lab.source / "passwords.conf").stat().st_gid

    # One changed file, one new, one removed: the fast path (stage linked on the peer).
    (lab.source / "clients" / "c0001.conf").write_text("changed\n")
    (lab.source / "clients" / "new.conf").write_text("new\n")
    (lab.source / "clients" / "c0002.conf").unlink()
    (lab.source / "passwords.conf").chmod(0o600)
    report = sync_lab(lab, cfg, state)
    assert not report.degraded, report.reason()
    assert all(r.pushed for r in report.results)
    for name, _ in PEERS:
        assert tree_state(lab.peer_path(name)) == tree_state(lab.source)
        assert not (lab.peer_path(name) / "clients" / "c0002.conf").exists()
        # The previous tree is a complete backup.
        (stamp,) = _backups(lab, name)[-1:]
        old = Path(remote.backups_dir(str(lab.peer_path(name)))) / stamp
        assert (old / "clients" / "c0002.conf").read_text().endswith("# v1\n")
        # The live file was replaced, not written in place: the backup kept its content.
        assert (old / "clients" / "c0001.conf").read_text() != "changed\n"


def test_no_change_pushes_nothing(lab: Lab) -> None:
    cfg = lab.config()
    state: dict[str, object] = {}
    sync_lab(lab, cfg, state)
    before = {n: _backups(lab, n) for n, _ in PEERS}
    inode = (lab.peer_path("p1") / "passwords.conf").stat().st_ino
    report = sync_lab(lab, cfg, state)
    assert not report.degraded
    assert not any(r.pushed for r in report.results)
    assert {n: _backups(lab, n) for n, _ in PEERS} == before
    assert (lab.peer_path("p1") / "passwords.conf").stat().st_ino == inode
    # An editor's swap file is no change either.
    (lab.source / ".passwords.conf.swp").write_text("swap")
    assert not any(r.pushed for r in sync_lab(lab, cfg, state).results)


def test_drift_on_a_peer_is_kept_and_reported(lab: Lab) -> None:
    cfg = lab.config()
    state: dict[str, object] = {}
    sync_lab(lab, cfg, state)
    edited = lab.peer_path("p1") / "clients" / "c0003.conf"
    edited.write_text("edited on the standby\n")
    report = sync_lab(lab, cfg, state)
    p1, p2 = report.results
    assert p1.drift == (f"{lab.source}/clients/c0003.conf",)
    assert p1.pushed and not p2.pushed and p2.drift_count == 0
    assert tree_state(lab.peer_path("p1")) == tree_state(lab.source)
    kept = Path(remote.backups_dir(str(lab.peer_path("p1")))) / p1.backups[0]
    assert (kept / "clients" / "c0003.conf").read_text() == "edited on the standby\n"
    peers = state["peers"]
    assert isinstance(peers, dict)
    assert peers["p1"]["drift"]["files"] == [f"{lab.source}/clients/c0003.conf"]


def test_unreachable_peer_degrades_and_the_other_still_syncs(lab: Lab) -> None:
    cfg = lab.config()
    state: dict[str, object] = {}
    sync_lab(lab, cfg, state)
    confsync.close_connection(cfg, confsync.Peer("p2", "p2"), Deadline.after(5))
    lab.servers["p2"].stop()
    (lab.source / "clients" / "c0004.conf").write_text("while p2 is away\n")
    started = time.monotonic()
    report = sync_lab(lab, cfg, state)
    assert time.monotonic() - started < 15
    p1, p2 = report.results
    assert p1.ok and p1.pushed
    assert not p2.ok and report.degraded
    assert report.reason().startswith("peer p2:")
    assert (lab.peer_path("p1") / "clients" / "c0004.conf").read_text() == "while p2 is away\n"
    assert (lab.peer_path("p2") / "clients" / "c0004.conf").read_text() != "while p2 is away\n"
    peers = state["peers"]
    assert isinstance(peers, dict)
    assert peers["p2"]["error"] and peers["p2"]["last_good"] < peers["p1"]["last_good"]


def test_frozen_peer_is_bounded_by_connect_timeout(lab: Lab) -> None:
    # No multiplexed connection yet: a frozen sshd accepts TCP but never says hello.
    cfg = lab.config(connect_timeout=2)
    lab.servers["p2"].pause()
    try:
        started = time.monotonic()
        report = sync_lab(lab, cfg, {})
        elapsed = time.monotonic() - started
    finally:
        lab.servers["p2"].resume()
    p1, p2 = report.results
    assert p1.ok and not p2.ok
    assert elapsed < 10


def _digest(path: Path) -> str:
    return remote.digest(remote.walk(str(path), list(confsync.DEFAULT_EXCLUDES)))


@pytest.mark.parametrize("fault", ["deadline", "peer-goes-away"])
def test_interrupted_transfer_leaves_a_complete_tree(lab: Lab, fault: str) -> None:
    cfg = lab.config(peers=(confsync.Peer("p1", "p1"),))
    state: dict[str, object] = {}
    sync_lab(lab, cfg, state)
    live = lab.peer_path("p1")
    old = _digest(live)
    # Enough data that a slowed transfer takes seconds.
    for i in range(40):
        (lab.source / "clients" / f"big{i}.conf").write_bytes(os.urandom(50_000))
    seen: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add(_digest(live))
            time.sleep(0.05)

    def stop_mid_transfer() -> None:
        # The peer goes away once the new files arrive in its stage (rsync's temporary
        # .big*.conf.XXXXXX first), not after a guessed delay.
        stage = Path(remote.stage_path(str(live)))
        deadline = time.monotonic() + 20
        while not any(stage.rglob("*big*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        lab.servers["p1"].stop()

    watcher = threading.Thread(target=watch)
    watcher.start()
    slow = lab.config(peers=cfg.peers, rsync_options=("--bwlimit=200",))
    try:
        if fault == "deadline":
            report = confsync.sync(slow, Deadline.after(3.0), LOG, state)
        else:
            stopper = threading.Thread(target=stop_mid_transfer)
            stopper.start()
            report = confsync.sync(slow, Deadline.after(30), LOG, state)
            stopper.join()
    finally:
        stop.set()
        watcher.join()
    assert report.degraded
    assert _digest(live) == old
    assert seen == {old}, "the live tree was seen half-copied"
    assert Path(remote.stage_path(str(live))).exists(), "the transfer did start"

    if fault == "peer-goes-away":
        lab.servers["p1"].process.wait()
        from testkit.sandbox import sshd

        lab.servers["p1"] = sshd.start(lab.servers["p1"].setup)
    report = sync_lab(lab, cfg, state)
    assert not report.degraded, report.reason()
    assert tree_state(live) == tree_state(lab.source)
    # The next stage is built in the background after the swap: a clean mirror of live.
    ready = Path(remote.ready_path(str(live)))
    end = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert ready.read_text() == _digest(live)
    assert tree_state(Path(remote.stage_path(str(live)))) == tree_state(live)


def test_backups_are_bounded(lab: Lab) -> None:
    cfg = lab.config(backups=2)
    state: dict[str, object] = {}
    for round_ in range(5):
        (lab.source / "bacula-dir.conf.inc").write_text(f"# round {round_}\n")
        assert not sync_lab(lab, cfg, state).degraded
    for name, _ in PEERS:
        assert len(_backups(lab, name)) == 2


def test_rollback_restores_the_previous_tree_everywhere(lab: Lab) -> None:
    cfg = lab.config()
    state: dict[str, object] = {}
    sync_lab(lab, cfg, state)
    good = tree_state(lab.source)
    shutil.rmtree(lab.source / "clients")
    (lab.source / "bacula-dir.conf.inc").write_text("# a bad push\n")
    assert not sync_lab(lab, cfg, state).degraded
    assert not (lab.peer_path("p1") / "clients").exists()

    origin, report = confsync.rollback(cfg, Deadline.after(60), LOG, state)
    assert origin.startswith("p1:")
    assert not report.degraded, report.reason()
    assert tree_state(lab.source) == good
    for name, _ in PEERS:
        assert tree_state(lab.peer_path(name)) == good
    # The bad tree is not lost: it is the newest backup here and on the peers.
    local = remote.backups([{"path": str(lab.source), "excludes": []}])[str(lab.source)]
    bad = Path(remote.backups_dir(str(lab.source))) / local[-1]
    assert (bad / "bacula-dir.conf.inc").read_text() == "# a bad push\n"


def test_local_rollback_needs_no_network(lab: Lab) -> None:
    cfg = lab.config()
    state: dict[str, object] = {}
    sync_lab(lab, cfg, state)
    (lab.source / "bacula-dir.conf.inc").write_text("# v2\n")
    sync_lab(lab, cfg, state)
    peer_tree = lab.peer_path("p1")
    peer_cfg = confsync.SyncConfig(paths=(str(peer_tree),), peers=())
    out = confsync.rollback_local(peer_cfg, None)
    assert (peer_tree / "bacula-dir.conf.inc").read_text() == "# v1\n"
    assert out[str(peer_tree)]["restored"]
    with pytest.raises(confsync.SyncError):
        confsync.rollback_local(peer_cfg, "19700101T000000Z")


def test_a_single_file_path_is_synced_too(lab: Lab) -> None:
    key = lab.tmp / "src" / "etc" / "ssl" / "bacula.pem"
    key.parent.mkdir(parents=True)
    key.write_text("KEY\n")
    key.chmod(0o600)
    cfg = lab.config(paths=(str(lab.source), str(key)))
    state: dict[str, object] = {}
    assert not sync_lab(lab, cfg, state).degraded
    copy = lab.peer_path("p2", key)
    assert copy.read_text() == "KEY\n" and (copy.stat().st_mode & 0o777) == 0o600
    key.write_text("KEY2\n")
    assert not sync_lab(lab, cfg, state).degraded
    assert copy.read_text() == "KEY2\n"


def test_failing_bacula_config_is_not_pushed(lab: Lab) -> None:
    cfg = lab.config(check="parse")
    state: dict[str, object] = {}
    shutil.copy("/etc/bacula/bacula-fd.conf", lab.source / "bacula-fd.conf")
    assert not sync_lab(lab, cfg, state).degraded
    (lab.source / "bacula-fd.conf").write_text("FileDaemon {\n  Name = broken\n")
    report = sync_lab(lab, cfg, state)
    assert report.degraded and "bacula-fd.conf" in report.check_failed
    assert report.results == ()
    assert "broken" not in (lab.peer_path("p1") / "bacula-fd.conf").read_text()
    # Fixed: pushed at the next sync.
    shutil.copy("/etc/bacula/bacula-fd.conf", lab.source / "bacula-fd.conf")
    assert not sync_lab(lab, cfg, state).degraded


def test_unreachable_catalog_is_not_a_config_error(lab: Lab) -> None:
    # bacula-dir -t against a catalog nobody serves: retries for 30 s; bounded here, and
    # since bdirjson accepted the file, the push goes ahead with a note.
    shutil.copy("/etc/bacula/bacula-dir.conf", lab.source / "bacula-dir.conf")
    cfg = lab.config(check="full", check_timeout=2.0, peers=(confsync.Peer("p1", "p1"),))
    report = sync_lab(lab, cfg, {})
    assert not report.degraded, report.reason()
    assert report.notes and "catalog" in report.notes[0]
    assert (lab.peer_path("p1") / "bacula-dir.conf").exists()


def test_new_peer_tree_absent_and_paths_with_spaces(lab: Lab) -> None:
    spaced = lab.tmp / "src" / "etc" / "bacula extra"
    make_tree(spaced, files=3)
    cfg = lab.config(paths=(str(spaced),))
    report = sync_lab(lab, cfg, {})
    assert not report.degraded, report.reason()
    assert tree_state(lab.peer_path("p1", spaced)) == tree_state(spaced)


def test_request_sync_uses_the_saved_parameters(lab: Lab, tmp_path: Path) -> None:
    rsctmp = tmp_path / "rsctmp"
    rsctmp.mkdir()
    path = confsync.state_path(str(rsctmp), "confsync-test")
    os.makedirs(os.path.dirname(path))
    confsync.save_state(path, {"config": confsync.config_to_json(lab.config())})
    (lab.source / "clients" / "c0005.conf").write_text("after a reload\n")
    reports = confsync.request_sync(Deadline.after(60), rsctmp=str(rsctmp), log=LOG)
    assert len(reports) == 1 and not reports[0].degraded
    assert (lab.peer_path("p2") / "clients" / "c0005.conf").read_text() == "after a reload\n"
    saved = confsync.load_state(path)
    assert saved is not None and saved["peers"]["p1"]["last_good"] > 0
    # No instance active: nothing to do, no error.
    assert confsync.request_sync(Deadline.after(5), rsctmp=str(tmp_path / "none"), log=LOG) == []


def test_mode_drift_stays_in_the_backup_despite_the_prebuilt_stage(lab: Lab) -> None:
    # The stage built after a push is hard links to the live tree; rsync changes modes in
    # place, so the full transfer that drift forces must not run into those links.
    cfg = lab.config(peers=(confsync.Peer("p1", "p1"),))
    state: dict[str, object] = {}
    sync_lab(lab, cfg, state)
    live = lab.peer_path("p1")
    ready = Path(remote.ready_path(str(live)))
    end = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert ready.exists()
    (live / "passwords.conf").chmod(0o604)
    report = sync_lab(lab, cfg, state)
    (p1,) = report.results
    assert p1.pushed and p1.drift == (f"{lab.source}/passwords.conf",)
    assert ((live / "passwords.conf").stat().st_mode & 0o777) == 0o640
    kept = Path(remote.backups_dir(str(live))) / p1.backups[0] / "passwords.conf"
    assert (kept.stat().st_mode & 0o777) == 0o604


def test_a_new_source_does_not_change_the_live_tree_through_the_stage(lab: Lab) -> None:
    # After a failover the new source knows nothing of the peer: the whole tree goes through
    # rsync, and the stage built ahead (hard links to live) must be cleared first.
    cfg = lab.config(peers=(confsync.Peer("p1", "p1"),))
    sync_lab(lab, cfg, {})
    live = lab.peer_path("p1")
    ready = Path(remote.ready_path(str(live)))
    end = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert ready.exists()
    (lab.source / "passwords.conf").chmod(0o600)
    (p1,) = sync_lab(lab, cfg, {}).results
    assert p1.pushed and ((live / "passwords.conf").stat().st_mode & 0o777) == 0o600
    kept = Path(remote.backups_dir(str(live))) / p1.backups[0] / "passwords.conf"
    assert (kept.stat().st_mode & 0o777) == 0o640


def test_full_check_with_a_reachable_catalog(lab: Lab, site_factory: SiteFactory) -> None:
    # A complete site (director, storage, file daemon, console) on a live PostgreSQL
    # catalog: every daemon's own -t passes and the tree goes out without a note.
    site = site_factory()
    cfg = lab.config(paths=(str(site.etc),), check="full", peers=(confsync.Peer("p1", "p1"),))
    state: dict[str, object] = {}
    report = sync_lab(lab, cfg, state)
    assert not report.degraded and report.notes == (), report
    peer_conf = lab.peer_path("p1", site.dir_conf)
    assert peer_conf.read_text() == site.dir_conf.read_text()

    # A director configuration with a resource that is never closed: not pushed.
    good = site.dir_conf.read_text()
    site.dir_conf.write_text(good + "Job {\n  Name = unfinished\n")
    report = sync_lab(lab, cfg, state)
    assert report.degraded and report.results == ()
    assert "bacula-dir.conf" in report.check_failed and "unclosed" in report.check_failed
    assert peer_conf.read_text() == good


def test_request_sync_does_not_queue_behind_a_stuck_sync(lab: Lab, tmp_path: Path) -> None:
    rsctmp = tmp_path / "rsctmp"
    path = confsync.state_path(str(rsctmp), "confsync-test")
    os.makedirs(os.path.dirname(path))
    confsync.save_state(path, {"config": confsync.config_to_json(lab.config())})
    held = confsync.Lock(path)
    assert held.acquire(Deadline.after(1))
    try:
        began = time.monotonic()
        assert confsync.request_sync(Deadline.after(2), rsctmp=str(rsctmp), log=LOG) == []
        assert time.monotonic() - began < 4
        assert not (lab.peer_path("p1") / "passwords.conf").exists()
    finally:
        held.release()
    assert len(confsync.request_sync(Deadline.after(60), rsctmp=str(rsctmp), log=LOG)) == 1
    assert (lab.peer_path("p1") / "passwords.conf").exists()


def test_peer_frozen_behind_a_live_connection_is_bounded_by_the_deadline(lab: Lab) -> None:
    # The multiplexed connection is up when the peer freezes: no connect timeout applies,
    # only the action's deadline (and ssh's keep-alives).
    cfg = lab.config()
    state: dict[str, object] = {}
    sync_lab(lab, cfg, state)
    (lab.source / "clients" / "c0010.conf").write_text("while p2 is frozen\n")
    lab.servers["p2"].pause()
    try:
        began = time.monotonic()
        report = confsync.sync(cfg, Deadline.after(8), LOG, state)
        elapsed = time.monotonic() - began
    finally:
        lab.servers["p2"].resume()
    p1, p2 = report.results
    assert p1.ok and p1.pushed and not p2.ok
    assert elapsed < 10
    assert (lab.peer_path("p1") / "clients" / "c0010.conf").read_text() == "while p2 is frozen\n"


def _acl(entries: list[tuple[int, int, int]]) -> bytes:
    """A POSIX ACL in the kernel's xattr format (what setfacl writes)."""
    import struct

    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def test_acls_and_xattrs_travel(lab: Lab) -> None:
    import pwd

    try:
        uid = pwd.getpwnam("bacula").pw_uid
    except KeyError:
        pytest.skip("no bacula user on this machine")
    undefined = 0xFFFFFFFF
    # user::rw- user:bacula:r-- group::r-- mask::r-- other::---
    user_obj, user, group_obj, mask, other = 0x01, 0x02, 0x04, 0x10, 0x20
    acl = _acl(
        [
            (user_obj, 6, undefined),
            (user, 4, uid),
            (group_obj, 4, undefined),
            (mask, 4, undefined),
            (other, 0, undefined),
        ]
    )
    secret = lab.source / "passwords.conf"
    os.setxattr(secret, "system.posix_acl_access", acl)
    os.setxattr(secret, "user.bacula-ha-test", b"kept")
    cfg = lab.config(peers=(confsync.Peer("p1", "p1"),))
    state: dict[str, object] = {}
    assert not sync_lab(lab, cfg, state).degraded
    copy = lab.peer_path("p1") / "passwords.conf"
    assert os.getxattr(copy, "system.posix_acl_access") == os.getxattr(
        secret, "system.posix_acl_access"
    )
    assert os.getxattr(copy, "user.bacula-ha-test") == b"kept"
    # An xattr-only change is a change: it reaches the peer at the next sync.
    os.setxattr(secret, "user.bacula-ha-test", b"changed")
    (p1,) = sync_lab(lab, cfg, state).results
    assert p1.pushed and os.getxattr(copy, "user.bacula-ha-test") == b"changed"
