"""The receiving side of config sync: manifests, drift, stage-and-swap, backups (stdlib only).

Longer than the package's other modules on purpose: transport.py sends this file's own text,
unchanged, as the whole program `python3 -I -S` runs on a peer (see `_helper_program`), so it
must stay one self-contained module: it imports nothing from bacula_ha (not even under
TYPE_CHECKING), and every answer it gives is one JSON object on stdout. The source node
imports it too, for its own manifests, local rollback and the start's `unshare`.

Layout beside every synchronised path P (same file system, so that renames are atomic):
    dirname(P)/.bacula-ha-confsync/NAME.stage        the tree being received
    dirname(P)/.bacula-ha-confsync/NAME.manifest     the tree as of the last sync
    dirname(P)/.bacula-ha-confsync/backups/NAME/STAMP previous trees, newest last
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATE_DIR = ".bacula-ha-confsync"
MANIFEST_MAGIC = "bacula-ha-confsync-manifest 1"
ABSENT = "absent"
MAX_NAMES = 50  # drifted names returned: enough for a log line, bounded for the wire

Entries = dict[str, str]


def state_dir(path: str) -> str:
    return os.path.join(os.path.dirname(path), STATE_DIR)


def stage_path(path: str) -> str:
    return os.path.join(state_dir(path), os.path.basename(path) + ".stage")


def manifest_path(path: str) -> str:
    return os.path.join(state_dir(path), os.path.basename(path) + ".manifest")


def backups_dir(path: str) -> str:
    return os.path.join(state_dir(path), "backups", os.path.basename(path))


def _key(full: str, st: os.stat_result) -> str:
    """What identifies one entry's state: type, mode, owner, and for files size and mtime.

    Directory sizes and times are left out: they change when an editor drops a swap file
    next to a configuration, which is no change to the configuration. ctime is left out
    because the hard links made for the stage change it on the live files.
    """
    mode = st.st_mode
    if stat.S_ISREG(mode):
        detail = f"f{st.st_size}:{st.st_mtime_ns}"
    elif stat.S_ISDIR(mode):
        detail = "d"
    elif stat.S_ISLNK(mode):
        detail = "l" + os.readlink(full)
    else:
        detail = f"o{st.st_rdev}"
    key = f"{detail}:{stat.S_IMODE(mode):o}:{st.st_uid}:{st.st_gid}"
    try:
        names = os.listxattr(full, follow_symlinks=False)
    except OSError:
        names = []
    if names:
        # ACLs are stored as xattrs (system.posix_acl_access): a changed ACL is a change.
        digest = hashlib.sha256()
        for name in sorted(names):
            try:
                value = os.getxattr(full, name, follow_symlinks=False)
            except OSError:
                continue
            digest.update(name.encode() + b"\0" + value + b"\0")
        key += ":x" + digest.hexdigest()[:16]
    return key


def walk(path: str, excludes: list[str]) -> Entries | None:
    """Entries of the tree (or single file) at `path` by relative name; None when absent."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return None
    entries: Entries = {".": _key(path, top)}
    if not stat.S_ISDIR(top.st_mode):
        return entries
    # One compiled pattern: five fnmatch calls per name were a third of a walk's time.
    excluded = (
        re.compile("|".join(fnmatch.translate(p) for p in excludes)).match if excludes else None
    )
    pending = [("", path)]
    while pending:
        rel_dir, full_dir = pending.pop()
        with os.scandir(full_dir) as it:
            for entry in it:
                if excluded is not None and excluded(entry.name):
                    continue
                rel = rel_dir + entry.name
                st = entry.stat(follow_symlinks=False)
                entries[rel] = _key(entry.path, st)
                if stat.S_ISDIR(st.st_mode):
                    pending.append((rel + "/", entry.path))
    return entries


def digest(entries: Entries | None) -> str:
    if entries is None:
        return ABSENT
    h = hashlib.sha256()
    for rel in sorted(entries):
        h.update(f"{rel}\0{entries[rel]}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def read_manifest_digest(path: str) -> str | None:
    try:
        with open(manifest_path(path), encoding="utf-8") as handle:
            magic, _, value = handle.readline().strip().rpartition(" ")
    except OSError:
        return None
    return value if magic == MANIFEST_MAGIC else None


def read_manifest(path: str) -> Entries | None:
    try:
        with open(manifest_path(path), encoding="utf-8", errors="surrogateescape") as handle:
            handle.readline()
            data = json.loads(handle.read() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(path: str, entries: Entries | None) -> str:
    """Record `entries` as the tree of the last sync (atomically); returns their digest."""
    value = digest(entries)
    os.makedirs(state_dir(path), mode=0o700, exist_ok=True)
    target = manifest_path(path)
    tmp = f"{target}.{os.getpid()}.tmp"
    # json.dumps runs the C encoder; json.dump to a file would encode in Python, 3x slower.
    text = json.dumps(entries, separators=(",", ":"))
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(f"{MANIFEST_MAGIC} {value}\n{text}")
    os.replace(tmp, target)
    return value


def diff(old: Entries | None, new: Entries | None) -> list[str]:
    """Names that were added, removed or changed between two manifests, sorted."""
    old = old or {}
    new = new or {}
    return sorted(n for n in old.keys() | new.keys() if old.get(n) != new.get(n))


def _remove_tree(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def ready_path(path: str) -> str:
    """Marks a stage built ahead of time: holds the digest of the live tree it mirrors."""
    return stage_path(path) + ".ready"


def entries_path(path: str) -> str:
    return stage_path(path) + ".entries"


def _stage_entries(path: str, item: dict[str, Any]) -> Entries | None:
    """The staged tree's entries: from the scan plus the names rsync brought, else a walk."""
    new = stage_path(path)
    saved: Entries | None = None
    if "changed" in item:
        try:
            with open(entries_path(path), encoding="utf-8", errors="surrogateescape") as handle:
                saved = json.loads(handle.read())
        except (OSError, ValueError):
            saved = None
    _remove_tree(entries_path(path))
    if not isinstance(saved, dict):
        return walk(new, item.get("excludes", []))
    for rel in item["changed"]:
        full = new if rel == "." else os.path.join(new, rel)
        try:
            saved[rel] = _key(full, os.lstat(full))
        except FileNotFoundError:
            saved.pop(rel, None)
    saved["."] = _key(new, os.lstat(new))
    return saved


def _lock(path: str, timeout: float = 60.0) -> int:
    """An exclusive flock per path: a scan waits for a stage still being built."""
    import fcntl

    fd = os.open(
        os.path.join(state_dir(path), os.path.basename(path) + ".lock"),
        os.O_RDWR | os.O_CREAT,
        0o600,
    )
    end = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > end:
                os.close(fd)
                raise TimeoutError(f"{path}: stage still being built") from None
            time.sleep(0.02)


def _read_ready(path: str) -> str | None:
    try:
        with open(ready_path(path), encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _drop_ready(path: str) -> None:
    try:
        os.unlink(ready_path(path))
    except FileNotFoundError:
        pass


def check_swappable(path: str) -> None:
    """A path is replaced by one rename: it cannot be a symlink or a mount point."""
    if os.path.islink(path):
        raise ValueError(f"{path} is a symlink: list the directory it points to instead")
    if os.path.ismount(path):
        raise ValueError(f"{path} is a mount point: it cannot be replaced by a rename")


def scan(item: dict[str, Any]) -> dict[str, Any]:
    """The state of one path: its digest, and what drifted since the last recorded sync."""
    path = item["path"]
    check_swappable(path)
    # rsync creates the stage itself but not its parent (nor a missing parent of the path).
    os.makedirs(state_dir(path), mode=0o700, exist_ok=True)
    fd = _lock(path)
    try:
        return _scan(path, item)
    finally:
        os.close(fd)


def _scan(path: str, item: dict[str, Any]) -> dict[str, Any]:
    entries = walk(path, item.get("excludes", []))
    current = digest(entries)
    recorded = read_manifest_digest(path)
    drift: list[str] = []
    if recorded is not None and recorded != current:
        drift = diff(read_manifest(path), entries)
    prepared = False
    plan = item.get("prepare")
    ready = _read_ready(path)
    if plan and entries is not None and plan["expect"] == current and not drift:
        # The tree is exactly what the source last pushed: the source knows which names
        # changed since, so the stage is the live tree hard-linked minus those names.
        skip, gone = set(plan["skip"]), set(plan["gone"])
        _drop_ready(path)  # claimed: from here on it is not a clean mirror any more
        if ready == current and os.path.isdir(stage_path(path)):
            _unlink_names(stage_path(path), entries, skip, gone)
        else:
            link_stage(path, entries, skip, gone)
        # What the stage holds before rsync: the swap only re-reads the names rsync brings.
        with open(entries_path(path), "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write(json.dumps({n: k for n, k in entries.items() if n not in skip}))
        prepared = True
    elif ready != current and os.path.lexists(stage_path(path)):
        # Left by an interrupted transfer, or built for a tree that changed since.
        clear(path)
    return {
        "digest": current,
        "recorded": recorded,
        "drift": drift[:MAX_NAMES],
        "drift_count": len(drift),
        "prepared": prepared,
    }


def clear(path: str) -> None:
    """Remove the stage: rsync must not meet hard links to the live tree in it.

    (rsync replaces a changed file by a new one, but changes modes and owners in place:
    on a hard link that would change the live tree before the swap.)
    """
    _drop_ready(path)
    _remove_tree(stage_path(path))
    _remove_tree(entries_path(path))


def unshare(path: str) -> int:
    """Give every live file that shares its inode (with a backup, a stage) one of its own.

    A node that received pushes holds its live tree as hard links shared with its backups.
    Once it becomes the source, admins edit that tree, and an editor that writes in place
    (nano, `>>`, vim on a file with several links) would change the backups too. The copy
    keeps content, owner, mode, times, ACLs and xattrs, and replaces each file by a rename.
    Returns how many files were copied.
    """
    clear(path)  # the stage built while this node was a peer is of no use to a source
    if not os.path.isdir(path) or os.path.islink(path):
        return 0
    copied = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(top, name)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
                continue
            tmp = os.path.join(top, f".{name}.bacula-ha-unshare")
            shutil.copy2(full, tmp)  # content, mode, times and xattrs (ACLs are xattrs)
            os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, stat.S_IMODE(st.st_mode))  # chown may drop set-id bits
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.replace(tmp, full)
            copied += 1
    return copied


def _unlink_names(stage: str, entries: Entries, skip: set[str], gone: set[str]) -> None:
    """Take the names about to change out of a stage built ahead of time."""
    for rel in sorted(skip, reverse=True):  # children before their directory
        full = os.path.join(stage, rel)
        kind = entries.get(rel, "")
        if kind.startswith("d"):
            if rel in gone:
                _remove_tree(full)
            continue  # a directory whose owner or mode changed: rsync fixes it in place
        try:
            os.unlink(full)
        except FileNotFoundError:
            pass


def _copy_dir_meta(src: str, dst: str, st: os.stat_result) -> None:
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    for name in os.listxattr(src):
        # Default ACLs of a directory decide the modes of files created in it later.
        os.setxattr(dst, name, os.getxattr(src, name))


def link_stage(path: str, entries: Entries, skip: set[str], gone: set[str]) -> None:
    """Build the stage as hard links to the live tree, leaving out the names in `skip`.

    Directories are recreated (a directory cannot be hard-linked) with their owner, mode
    and ACLs, except those in `gone`; rsync then brings the skipped names. Nothing in the
    stage that rsync will touch is shared with the live tree, so the live tree never
    changes before the swap.
    """
    stage = stage_path(path)
    _remove_tree(stage)
    os.mkdir(stage)
    _copy_dir_meta(path, stage, os.lstat(path))
    for rel in sorted(entries):  # a directory sorts before everything inside it
        if rel == "." or rel in gone:
            continue
        src = os.path.join(path, rel)
        dst = os.path.join(stage, rel)
        if entries[rel].startswith("d"):
            os.mkdir(dst)
            _copy_dir_meta(src, dst, os.lstat(src))
        elif rel not in skip:
            os.link(src, dst, follow_symlinks=False)


def _stamp(directory: str) -> str:
    base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    stamp, n = base, 1
    while os.path.lexists(os.path.join(directory, stamp)):
        n += 1
        stamp = f"{base}.{n}"
    return stamp


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: str, b: str) -> None:
    """Swap two paths in one step (renameat2 RENAME_EXCHANGE): there is no moment without P."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    func = getattr(libc, "renameat2", None)
    if func is not None:
        rc = func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        import errno

        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), a)
    # No exchange on this file system: two renames, with a window of microseconds.
    tmp = a + ".swap"
    os.rename(b, tmp)
    os.rename(a, b)
    os.rename(tmp, a)


def _install(path: str, new: str, entries: Entries | None) -> dict[str, Any]:
    """Put the tree at `new` in place of `path`; the old tree becomes a backup."""
    os.makedirs(backups_dir(path), mode=0o700, exist_ok=True)
    backup = None
    if os.path.lexists(path):
        exchange(new, path)
        backup = _stamp(backups_dir(path))
        os.rename(new, os.path.join(backups_dir(path), backup))
    else:
        os.rename(new, path)
    return {"digest": write_manifest(path, entries), "backup": backup}


def _prune(path: str, keep: int) -> list[str]:
    """Drop the oldest backups beyond `keep`: renamed away now, deleted in the background."""
    directory = backups_dir(path)
    try:
        stamps = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    doomed = stamps[: max(0, len(stamps) - keep)]
    if not doomed:
        return []
    trash = os.path.join(state_dir(path), "trash")
    os.makedirs(trash, mode=0o700, exist_ok=True)
    for stamp in doomed:
        os.rename(os.path.join(directory, stamp), os.path.join(trash, f"{stamp}.{os.getpid()}"))
    return doomed


def swap(items: list[dict[str, Any]], keep: int) -> dict[str, Any]:
    """Install every staged path (all renames first, then the bookkeeping)."""
    import signal

    # Once the first rename is done the rest must follow: a dropped ssh session (the
    # source failing, the action timing out) must not stop this process half-way.
    for sig in (signal.SIGHUP, signal.SIGPIPE, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    locks = [_lock(item["path"]) for item in items]
    try:
        for item in items:
            if not os.path.lexists(stage_path(item["path"])):
                raise FileNotFoundError(f"nothing staged for {item['path']}")
        out: dict[str, Any] = {}
        for item in items:
            _drop_ready(item["path"])
            entries = _stage_entries(item["path"], item)
            out[item["path"]] = _install(item["path"], stage_path(item["path"]), entries)
        for item in items:
            out[item["path"]]["pruned"] = _prune(item["path"], keep)
        return out
    finally:
        for fd in locks:
            os.close(fd)


def backups(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        try:
            out[item["path"]] = sorted(os.listdir(backups_dir(item["path"])))
        except FileNotFoundError:
            out[item["path"]] = []
    return out


def restore(items: list[dict[str, Any]], stamp: str | None, keep: int) -> dict[str, Any]:
    """Put backup `stamp` (default: the newest) back in place of each path."""
    import signal

    for sig in (signal.SIGHUP, signal.SIGPIPE, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    chosen: dict[str, str] = {}
    for item in items:
        stamps = sorted(os.listdir(backups_dir(item["path"])))
        pick = stamp or (stamps[-1] if stamps else None)
        if pick is None or pick not in stamps:
            raise FileNotFoundError(f"no backup {pick or ''} of {item['path']}".replace("  ", " "))
        chosen[item["path"]] = pick
    out: dict[str, Any] = {}
    for item in items:
        path = item["path"]
        held = stage_path(path)
        os.makedirs(state_dir(path), mode=0o700, exist_ok=True)
        fd = _lock(path)
        _drop_ready(path)
        os.close(fd)
        _remove_tree(held)
        os.rename(os.path.join(backups_dir(path), chosen[path]), held)
        out[path] = _install(path, held, walk(held, item["excludes"]))
        out[path]["restored"] = chosen[path]
    for item in items:
        out[item["path"]]["pruned"] = _prune(item["path"], keep)
    return out


def record(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Record the current trees as synced (the source does this after a push)."""
    return {i["path"]: write_manifest(i["path"], walk(i["path"], i["excludes"])) for i in items}


def empty_trash_now(items: list[dict[str, Any]]) -> None:
    """Delete pruned backups here and now (for callers that are not a peer helper)."""
    for item in items:
        shutil.rmtree(os.path.join(state_dir(item["path"]), "trash"), ignore_errors=True)


def prestage(path: str, excludes: list[str]) -> None:
    """Build the next stage now, while nobody waits: a link farm of the live tree.

    Linking 10,000 files takes a few tenths of a second; done here, after the swap, the
    next push only takes the changed names out of it (see `_scan`).
    """
    if not os.path.isdir(path) or os.path.islink(path):
        return
    fd = _lock(path)
    try:
        _drop_ready(path)
        entries = walk(path, excludes)
        if entries is None:
            return
        link_stage(path, entries, set(), set())
        with open(ready_path(path), "w", encoding="ascii") as handle:
            handle.write(digest(entries))
    finally:
        os.close(fd)


def _background(items: list[dict[str, Any]]) -> None:
    """After a swap, in a detached child at low priority: delete pruned backups, then
    build the next stages. Nobody waits for it; a scan waits for its lock."""
    sys.stdout.flush()
    if os.fork() != 0:
        return
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        os.nice(19)
        for item in items:
            shutil.rmtree(os.path.join(state_dir(item["path"]), "trash"), ignore_errors=True)
        for item in items:
            prestage(item["path"], item.get("excludes", []))
    finally:
        os._exit(0)


def handle(request: dict[str, Any]) -> dict[str, Any]:
    op = request["op"]
    items = request["items"]
    if op == "scan":
        return {"paths": {i["path"]: scan(i) for i in items}}
    if op == "swap":
        return {"paths": swap(items, int(request["keep"]))}
    if op == "clear":
        for item in items:
            fd = _lock(item["path"])
            try:
                clear(item["path"])
            finally:
                os.close(fd)
        return {"paths": {i["path"]: True for i in items}}
    if op == "backups":
        return {"paths": backups(items)}
    if op == "restore":
        return {"paths": restore(items, request.get("stamp"), int(request["keep"]))}
    if op == "record":
        return {"paths": record(items)}
    raise ValueError(f"unknown operation {op!r}")


def main(request: dict[str, Any]) -> int:
    """Answer one request with one JSON line; errors are answers too, never tracebacks."""
    try:
        answer: dict[str, Any] = {"ok": True, **handle(request)}
    except Exception as exc:
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    if answer["ok"] and request["op"] in ("swap", "restore") and request.get("prestage", True):
        _background(request["items"])
    return 0
