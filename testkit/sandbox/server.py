"""What the throwaway database servers share: process handling as a user, and a base class."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

from bacula_ha.bacula.layout import DEBIAN, Layout

# Never hand out the host's own service ports, even by accident.
_RESERVED_PORTS = frozenset({3306, 5432, 9101, 9102, 9103})


class SandboxError(RuntimeError):
    """A throwaway server could not be set up, started or stopped."""


@dataclass(frozen=True)
class CatalogInfo:
    """How to reach a Bacula catalog created in a sandbox server."""

    db_name: str
    db_user: str
    db_password: str
    host: str  # a socket directory (PostgreSQL) or an address
    port: int
    socket: str = ""  # MariaDB's socket file; empty for PostgreSQL (host is the directory)


# The schema version Debian's bacula-director 9.6 creates and expects (table Version).
DEBIAN_CATALOG_VERSION = 16


def catalog_version(install: Layout) -> int:
    """The schema version (table Version) the catalog scripts of `install` create, which is
    the one its director expects: 16 for Debian's 9.6, else by the director's own release."""
    if install == DEBIAN:
        return DEBIAN_CATALOG_VERSION
    from bacula_ha.bacula.versions import daemon_version, line_of
    from bacula_ha.ocf.deadline import Deadline

    director = install.tool("bacula-dir")
    line = line_of(daemon_version(director, deadline=Deadline.after(30)))
    if line is None:
        raise SandboxError(f"{director}: not a Bacula release bacula_ha.bacula.versions knows")
    return line.schema


def install_script(install: Layout, name: str, user: str, into: Path) -> Path:
    """Bacula's catalog script `name` of `install`, as a path `user` can read: the script
    itself, or a copy in `into` (bacula.org's scripts directory is for root and bacula only)."""
    script = Path(install.scripts) / name
    if not script.exists():
        raise SandboxError(f"{script} is missing")
    if user == "root" or script.stat().st_mode & 0o004:
        return script
    copy = into / name
    shutil.copyfile(script, copy)
    copy.chmod(0o755)
    return copy


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice, never a default port)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _RESERVED_PORTS:
            return port


def make_basedir(owner: str, prefix: str = "bacula-ha-db-", parent: str = "/tmp") -> Path:
    """A fresh directory owned by `owner` under a parent that user can traverse.

    pytest's tmp_path lives under a root-only 0700 directory, which an unprivileged server
    user cannot enter, hence a directory of our own under /tmp.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o755)
    entry = pwd.getpwnam(owner)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def ensure_owned_dir(path: Path, owner: str, mode: int = 0o755) -> None:
    """Create `path` if needed and give it to `owner`, checking that the owner can reach it."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    entry = pwd.getpwnam(owner)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.resolve().parents:
        st = parent.stat()
        # Traversal needs x for "other" unless the owner (or its group) owns the directory.
        if st.st_uid == entry.pw_uid or st.st_mode & 0o001:
            continue
        if st.st_gid == entry.pw_gid and st.st_mode & 0o010:
            continue
        raise SandboxError(f"user {owner} cannot traverse {parent} (mode {st.st_mode & 0o777:o})")


def run_as(
    user: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 60.0,
    check: bool = True,
    cwd: Path | str = "/",
) -> subprocess.CompletedProcess[str]:
    """Run argv as `user` (root drops privileges) in `cwd`, capturing text output."""
    uid, gid, groups, child_env = _identity(user, env)
    proc = subprocess.run(
        list(argv),
        env=child_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
        user=uid,
        group=gid,
        extra_groups=groups,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout)[-800:]
        raise SandboxError(f"{Path(argv[0]).name} failed ({proc.returncode}): {detail}")
    return proc


def _identity(
    user: str, env: Mapping[str, str] | None
) -> tuple[int | None, int | None, list[int] | None, dict[str, str]]:
    """uid, gid, supplementary groups to switch to (None: stay), and a clean environment."""
    entry = pwd.getpwnam(user)
    child_env = {"PATH": "/usr/bin:/bin", "HOME": entry.pw_dir, "LANG": "C.UTF-8", "LC_ALL": "C"}
    child_env.update(env or {})
    if os.geteuid() == 0 and entry.pw_uid != 0:
        return entry.pw_uid, entry.pw_gid, [], child_env
    return None, None, None, child_env


def spawn_as(
    user: str, argv: Sequence[str], logfile: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-running server as `user` in its own session, output to `logfile`."""
    uid, gid, groups, child_env = _identity(user, env)
    with open(logfile, "ab") as log:
        return subprocess.Popen(
            list(argv),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",
            # Own session: a stray SIGINT to the test runner does not reach it, and stop()
            # can kill the whole group (backends included) if the server ignores TERM.
            start_new_session=True,
            user=uid,
            group=gid,
            extra_groups=groups,
        )


def stop_process(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Signal a server we started, wait, and escalate to SIGKILL on its whole process group."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGCONT)  # a paused server cannot act on TERM
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll a zero-argument callable until it returns true, or raise SandboxError."""
    assert callable(predicate)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(interval)
    raise SandboxError(f"timed out after {timeout:.0f}s waiting for {what}")


class SandboxServer:
    """One private server process: data, socket directory and log under `basedir`, run as
    `os_user` in a session of its own. Subclasses say how to initialise, run and probe it."""

    # The program's name in messages, the signal for a clean shutdown, the default timeouts
    # of start() and stop(), and how often start() asks whether the server is ready.
    name: ClassVar[str]
    stop_signal: ClassVar[int] = signal.SIGTERM
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 30.0
    poll_interval: ClassVar[float] = 0.05

    def __init__(self, basedir: Path | str, port: int | None, os_user: str, listen: str) -> None:
        self.basedir = Path(basedir)
        self.port = port if port is not None else free_port()
        self.os_user = os_user
        self.listen = listen
        self.datadir = self.basedir / "data"
        self.socket_dir = self.basedir / "sock"
        self.logfile = self.basedir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's PID while we run it."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    # -- what each server does its own way ---------------------------------------------------

    def init(self) -> Self:
        """Create the data directory (once); idempotent."""
        raise NotImplementedError

    def _command(self) -> list[str]:
        """The server's command line, run in the foreground."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """Whether the server (known to be still running) accepts clients yet."""
        raise NotImplementedError

    def _before_spawn(self) -> None:
        """Clear what a previous run of ours left behind (nothing by default)."""

    def sql(self, sql: str, *, db: str = "", check: bool = True, timeout: float = 60.0) -> str:
        """Run SQL as the administrator, in `db` (the server's default when empty)."""
        raise NotImplementedError

    def create_bacula_catalog(
        self,
        db_name: str = "bacula",
        db_user: str = "bacula",
        db_password: str = "bacula-pw",
        *,
        install: Layout = DEBIAN,
    ) -> CatalogInfo:
        """Database, tables, user and grants made with the catalog scripts of `install`
        (Debian's bacula-director package by default), of the schema its director expects."""
        raise NotImplementedError

    # -- the process, the same for every server ----------------------------------------------

    def _make_dirs(self) -> None:
        ensure_owned_dir(self.basedir, self.os_user)
        ensure_owned_dir(self.socket_dir, self.os_user)

    def start(self, timeout: float | None = None) -> Self:
        """Start the server (init first if needed) and wait until it accepts clients."""
        if self.pid is not None:
            return self
        self.init()
        self._before_spawn()
        self._proc = spawn_as(self.os_user, self._command(), self.logfile)

        def ready() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise SandboxError(
                    f"{self.name} exited at start, see {self.logfile}: {self._tail()}"
                )
            return self._ready()

        what = f"{self.name} on port {self.port}"
        try:
            wait_until(ready, timeout or self.start_timeout, what, interval=self.poll_interval)
        except SandboxError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Clean shutdown (stop_signal), escalating to SIGKILL of the process group; idempotent."""
        if self._proc is not None:
            stop_process(self._proc, self.stop_signal, timeout or self.stop_timeout)
            self._proc = None

    def pause(self) -> None:
        """SIGSTOP the server and its children: connections are accepted by the kernel and
        never answered."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def cleanup(self) -> None:
        """Stop and delete everything under basedir."""
        self.stop()
        shutil.rmtree(self.basedir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tail(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-600:]
        except OSError:
            return ""
