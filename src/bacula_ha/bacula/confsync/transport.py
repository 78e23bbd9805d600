"""Talking to a peer: multiplexed ssh, rsync, the helper program, a watchdog on the deadline."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import threading

from ...ocf.command import CommandTimeout, Completed, run
from ...ocf.deadline import Deadline
from ...ocf.errors import GenericError
from . import remote
from .model import SyncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

    from .model import Changes, Peer, SyncConfig

SSH = "/usr/bin/ssh"
RSYNC = "/usr/bin/rsync"
REMOTE_PYTHON = "/usr/bin/python3"


def ssh_argv(cfg: SyncConfig) -> list[str]:
    """ssh and its options, without the destination."""
    argv = [SSH, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={cfg.connect_timeout}"]
    # A peer that vanishes mid-transfer is noticed by ssh itself, not only by our timer.
    argv += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
    if cfg.ssh_config:
        argv += ["-F", cfg.ssh_config]
    if cfg.identity:
        argv += ["-i", cfg.identity, "-o", "IdentitiesOnly=yes"]
    if cfg.user:
        argv += ["-l", cfg.user]
    if cfg.mux_dir:
        # One authenticated connection per peer, kept between monitors: a key exchange
        # costs ~0.2 s here, a multiplexed session ~0.01 s.
        argv += [
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={cfg.mux_dir}/%C",
            "-o",
            f"ControlPersist={cfg.mux_persist}",
        ]
    for option in cfg.ssh_options:
        argv += ["-o", option]
    return argv


def _rsh(cfg: SyncConfig) -> list[str]:
    """rsync's `-e`: the same ssh, as one command line."""
    return ["-e", " ".join(shlex.quote(a) for a in ssh_argv(cfg))]


# --- the helper program ---------------------------------------------------------------------

_BOOT = "import sys;exec(compile(sys.stdin.read(),'confsync-remote','exec'))"
_HELPER_SOURCE: list[str] = []


def _helper_program(request: Mapping[str, Any]) -> bytes:
    """remote.py's own text plus one call: the whole program the peer's python3 runs."""
    if not _HELPER_SOURCE:
        with open(remote.__file__, encoding="utf-8") as handle:
            _HELPER_SOURCE.append(handle.read())
    literal = json.dumps(json.dumps(request))
    call = f"\nimport json as _j\nraise SystemExit(main(_j.loads({literal})))\n"
    return (_HELPER_SOURCE[0] + call).encode("utf-8")


def _ssh_failure(done: Completed) -> str:
    """ssh's or the helper's first lines of complaint (noise dropped), for an exit reason."""
    lines: list[str] = []
    for raw in done.stderr.splitlines():
        line = " ".join(raw.split())
        if line and line not in lines:
            lines.append(line)
    return (" ".join(lines[:2]) or f"exit status {done.returncode}")[:160]


def call_helper(
    cfg: SyncConfig, peer: Peer, request: Mapping[str, Any], deadline: Deadline, timeout: float
) -> dict[str, Any]:
    """Run one remote.py request on `peer`; its answer, or SyncError."""
    command = f"exec {REMOTE_PYTHON} -I -S -c {shlex.quote(_BOOT)}"
    try:
        with _watchdog(cfg, peer, deadline, timeout):
            done = run(
                [*ssh_argv(cfg), peer.address, command],
                deadline=deadline,
                timeout=timeout,
                input=_helper_program(request),
            )
    except CommandTimeout:
        raise SyncError(f"no answer within {deadline.bound(timeout):.0f}s") from None
    if not done.ok:
        raise SyncError(_ssh_failure(done))
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SyncError(f"bad answer from peer helper: {done.stdout[-120:]!r}") from None
    if not answer.get("ok"):
        raise SyncError(str(answer.get("error", "peer helper failed"))[:160])
    return dict(answer["paths"])


# --- rsync ------------------------------------------------------------------------------------


def rsync_tree(
    cfg: SyncConfig, peer: Peer, src: str, dest: str, link_dest: str | None, deadline: Deadline
) -> None:
    """Send the whole tree (or file) `src` into the peer's stage `dest`."""
    is_dir = os.path.isdir(src) and not os.path.islink(src)
    argv = [RSYNC, "-a", "-A", "-X", "--delete", f"--timeout={cfg.io_timeout}"]
    argv += [*cfg.rsync_options, *(f"--exclude={p}" for p in cfg.excludes)]
    if link_dest and is_dir:
        # Unchanged files become hard links to the live tree: nothing travels for them.
        argv.append(f"--link-dest={link_dest}")
    argv += _rsh(cfg)
    argv += [src + "/" if is_dir else src, f"{peer.address}:{dest}" + ("/" if is_dir else "")]
    _transfer(cfg, peer, argv, deadline)


def rsync_names(
    cfg: SyncConfig, peer: Peer, src: str, stage: str, change: Changes, deadline: Deadline
) -> None:
    """Send only the changed names into a stage the peer built from its live tree."""
    names = [n for n in change.changed if n not in change.gone]
    if not names:
        return  # only removals: the stage already lacks them
    argv = [RSYNC, "-a", "-A", "-X", f"--timeout={cfg.io_timeout}", "--from0", "--files-from=-"]
    argv += cfg.rsync_options
    argv += _rsh(cfg)
    argv += [src + "/", f"{peer.address}:{stage}/"]
    listing = b"".join(os.fsencode(n) + b"\0" for n in names)
    _transfer(cfg, peer, argv, deadline, listing)


def _transfer(
    cfg: SyncConfig, peer: Peer, argv: list[str], deadline: Deadline, listing: bytes | None = None
) -> None:
    """Run one rsync into a peer's stage under the watchdog; SyncError when it fails."""
    try:
        with _watchdog(cfg, peer, deadline, None):
            done = run(argv, deadline=deadline, input=listing)
    except CommandTimeout:
        raise SyncError(
            "transfer did not finish in time (stage left, live tree untouched)"
        ) from None
    if not done.ok:
        raise SyncError(f"rsync failed: {_ssh_failure(done)}")


def pull(cfg: SyncConfig, peer: Peer, src: str, stage: str, live: str, deadline: Deadline) -> None:
    """Fetch the peer's tree (or file) `src` into this node's `stage`, linking from `live`."""
    remote._remove_tree(stage)
    argv = [RSYNC, "-a", "-A", "-X", "--delete", f"--timeout={cfg.io_timeout}"]
    if os.path.isdir(live):
        argv.append(f"--link-dest={live}")
    argv += _rsh(cfg)
    # A trailing slash copies a directory's content; a file backup is copied as the file.
    if os.path.isdir(live):
        argv += [f"{peer.address}:{src}/", stage + "/"]
    else:
        argv += [f"{peer.address}:{src}", stage]
    try:
        done = run(argv, deadline=deadline)
    except CommandTimeout:
        raise SyncError("fetching the backup did not finish in time") from None
    if not done.ok:
        raise SyncError(f"fetching the backup failed: {_ssh_failure(done)}")


# --- the shared connection --------------------------------------------------------------------


@contextlib.contextmanager
def _watchdog(
    cfg: SyncConfig, peer: Peer, deadline: Deadline, timeout: float | None
) -> Iterator[None]:
    """Close the peer's shared connection if a command over it outlives its bound.

    A multiplexed ssh client hands its pipes to the master connection: killing the client
    at the deadline is not enough, the pipes stay open (and the runner waiting on them)
    until the master goes. A peer that froze behind a live connection would otherwise hold
    the action until ssh's keep-alives give up.
    """
    if not cfg.mux_dir:
        yield
        return
    delay = deadline.bound(timeout) + 0.3
    timer = threading.Timer(delay, close_connection, args=(cfg, peer, Deadline.after(5)))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def close_connection(cfg: SyncConfig, peer: Peer, deadline: Deadline) -> None:
    """End the multiplexed connection to `peer`, if one is open."""
    if not cfg.mux_dir:
        return
    try:
        run([*ssh_argv(cfg), "-O", "exit", peer.address], deadline=deadline, timeout=3)
    except GenericError:
        pass
