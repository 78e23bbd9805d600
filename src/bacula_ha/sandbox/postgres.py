"""A throwaway PostgreSQL server on loopback with a Bacula catalog, for tests and the lab."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PG_BINDIR = Path("/usr/lib/postgresql/15/bin")
BACULA_SCRIPTS = Path("/usr/share/bacula-director")
# The schema version Debian's bacula-director 9.6 creates and expects (table Version).
BACULA_CATALOG_VERSION = 16
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


# -- helpers shared with the MariaDB sandbox -------------------------------------------------


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
) -> subprocess.CompletedProcess[str]:
    """Run argv as `user` (root drops privileges), capturing text output."""
    uid, gid, groups, child_env = _identity(user, env)
    proc = subprocess.run(
        list(argv),
        env=child_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
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


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal (standard_conforming_strings on, as by default)."""
    return "'" + value.replace("'", "''") + "'"


# -- the PostgreSQL server -------------------------------------------------------------------


class PostgresServer:
    """One private PostgreSQL cluster: data, socket and log under `basedir`, owned by `os_user`.

    Administration runs as `os_user` over the socket with peer authentication (that user is
    the superuser); every other role authenticates with scram passwords, locally and over TCP,
    so a wrong password really fails.
    """

    def __init__(
        self,
        basedir: Path | str,
        port: int | None = None,
        *,
        os_user: str = "postgres",
        listen: str = "127.0.0.1",
        bindir: Path = PG_BINDIR,
        allowed: Sequence[str] = ("127.0.0.0/8",),
    ) -> None:
        self.basedir = Path(basedir)
        self.allowed = tuple(allowed)  # networks that may connect over TCP (with a password)
        self.port = port if port is not None else free_port()
        self.os_user = os_user
        self.listen = listen
        self.bindir = bindir
        self.datadir = self.basedir / "data"
        self.socket_dir = self.basedir / "sock"
        self.logfile = self.basedir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # The superuser is named after the OS user, which is what peer authentication matches.
    @property
    def superuser(self) -> str:
        return self.os_user

    @property
    def pid(self) -> int | None:
        """The postmaster's PID while we run it."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def env(self) -> dict[str, str]:
        """libpq variables that point a client at this server's socket."""
        return {"PGHOST": str(self.socket_dir), "PGPORT": str(self.port)}

    def init(self) -> PostgresServer:
        """Run initdb (once) and write our configuration; idempotent."""
        ensure_owned_dir(self.basedir, self.os_user)
        ensure_owned_dir(self.socket_dir, self.os_user)
        if (self.datadir / "PG_VERSION").exists():
            return self
        run_as(
            self.os_user,
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                self.superuser,
                "--no-sync",  # throwaway data: durability buys nothing, and costs seconds
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )
        self._write_hba()
        self._append_conf(
            {
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "shared_buffers": "16MB",
                "max_connections": "30",
                "wal_level": "replica",
                "max_wal_senders": "4",
                "hot_standby": "on",
                "password_encryption": "scram-sha-256",
                "log_min_messages": "warning",
                "logging_collector": "off",
            }
        )
        return self

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """Start the postmaster (init first if needed) and wait until it accepts connections."""
        if self.pid is not None:
            return self
        self.init()
        pidfile = self.datadir / "postmaster.pid"
        if pidfile.exists():
            pidfile.unlink()  # stale: we only get here when our own process is gone
        self._proc = spawn_as(
            self.os_user,
            [str(self.bindir / "postgres"), "-D", str(self.datadir)],
            self.logfile,
        )

        def ready() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise SandboxError(f"postgres exited at start, see {self.logfile}: {self._tail()}")
            return _postmaster_status(pidfile) == "ready"

        try:
            wait_until(ready, timeout, f"postgres on port {self.port}")
        except SandboxError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT), escalating to SIGKILL of the process group; idempotent."""
        if self._proc is not None:
            stop_process(self._proc, signal.SIGINT, timeout)
            self._proc = None

    def pause(self) -> None:
        """SIGSTOP the postmaster and all its backends: connections hang, nothing answers."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def reload(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGHUP)

    def cleanup(self) -> None:
        """Stop and delete everything under basedir."""
        import shutil

        self.stop()
        shutil.rmtree(self.basedir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def psql(
        self,
        sql: str,
        *,
        db: str = "postgres",
        check: bool = True,
        timeout: float = 60.0,
    ) -> str:
        """Run SQL as the superuser; returns unaligned, tuples-only output."""
        proc = run_as(
            self.os_user,
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                db,
                "-f",
                "-",
            ],
            env=self.env,
            input=sql,
            timeout=timeout,
            check=check,
        )
        return proc.stdout.strip()

    def set_config(self, name: str, value: str, *, db: str | None = None) -> None:
        """ALTER SYSTEM (or ALTER DATABASE when `db` is given) and reload."""
        if db is None:
            self.psql(f"ALTER SYSTEM SET {name} = {sql_literal(value)}; SELECT pg_reload_conf();")
        else:
            self.psql(f"ALTER DATABASE {db} SET {name} = {sql_literal(value)};")

    def reset_config(self, name: str, *, db: str | None = None) -> None:
        if db is None:
            self.psql(f"ALTER SYSTEM RESET {name}; SELECT pg_reload_conf();")
        else:
            self.psql(f"ALTER DATABASE {db} RESET {name};")

    def create_bacula_catalog(
        self, db_name: str = "bacula", db_user: str = "bacula", db_password: str = "bacula-pw"
    ) -> CatalogInfo:
        """Create database, tables and grants with Debian's own scripts, as the director's
        postinst would; the role is created once and reused by later catalogs."""
        env = dict(self.env)
        # The scripts paste db_password into SQL unquoted: they get a harmless placeholder
        # and the real password is set afterwards as a proper literal.
        env.update({"db_name": db_name, "db_user": db_user, "db_password": "placeholder"})
        steps = ["create_postgresql_database", "make_postgresql_tables"]
        role_exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = {sql_literal(db_user)}")
        for step in steps:
            self._bacula_script(step, env)
        if role_exists:
            # grant_postgresql_privileges starts with CREATE USER and would stop there; the
            # grants themselves are what a second catalog needs.
            self.psql(
                f"ALTER DATABASE {db_name} OWNER TO {db_user};"
                f" GRANT ALL ON ALL TABLES IN SCHEMA public TO {db_user};"
                f" GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {db_user};",
                db=db_name,
            )
        else:
            self._bacula_script("grant_postgresql_privileges", env)
        self.psql(f"ALTER ROLE {db_user} PASSWORD {sql_literal(db_password)};")
        version = self.psql("SELECT versionid FROM version", db=db_name)
        if version != str(BACULA_CATALOG_VERSION):
            raise SandboxError(f"catalog {db_name} has version {version!r}")
        return CatalogInfo(db_name, db_user, db_password, str(self.socket_dir), self.port)

    def make_replica(
        self, basedir: Path | str, port: int | None = None, *, start: bool = True
    ) -> PostgresServer:
        """A streaming replica (pg_basebackup -R) of this running server: in recovery, read-only."""
        replica = PostgresServer(
            basedir,
            port,
            os_user=self.os_user,
            listen=self.listen,
            bindir=self.bindir,
            allowed=self.allowed,
        )
        ensure_owned_dir(replica.basedir, self.os_user)
        ensure_owned_dir(replica.socket_dir, self.os_user)
        run_as(
            self.os_user,
            [
                str(self.bindir / "pg_basebackup"),
                "-D",
                str(replica.datadir),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
                "-U",
                self.superuser,
            ],
            env=self.env,
            timeout=120,
        )
        (replica.datadir).chmod(0o700)
        replica._append_conf({"port": str(replica.port)}, socket_dir=replica.socket_dir)
        if start:
            replica.start()
        return replica

    def promote(self, timeout: float = 30.0) -> None:
        """Turn a replica into a primary and wait until it leaves recovery."""
        self.psql(f"SELECT pg_promote(true, {int(timeout)})")
        wait_until(lambda: not self.is_in_recovery(), timeout, "the promotion")

    def is_in_recovery(self) -> bool:
        return self.psql("SELECT pg_is_in_recovery()") == "t"

    def _bacula_script(self, name: str, env: Mapping[str, str]) -> None:
        script = BACULA_SCRIPTS / name
        if not script.exists():
            raise SandboxError(f"{script} is missing: install bacula-director-pgsql")
        proc = run_as(self.os_user, ["/bin/sh", str(script)], env=env, timeout=120, check=False)
        # The scripts do not all fail with a status (make_postgresql_tables never does).
        if proc.returncode != 0 or "ERROR:" in proc.stderr:
            raise SandboxError(f"{name} failed: {proc.stderr[-800:] or proc.stdout[-800:]}")

    def _write_hba(self) -> None:
        lines = [
            "# written by bacula_ha.sandbox.postgres",
            f"local all {self.superuser} peer",
            f"local replication {self.superuser} peer",
            "local all all scram-sha-256",
        ]
        for net in self.allowed:
            lines += [
                f"host all all {net} scram-sha-256",
                f"host replication all {net} scram-sha-256",
            ]
        lines.append("")
        hba = self.datadir / "pg_hba.conf"
        hba.write_text("\n".join(lines))
        self._give(hba)

    def _append_conf(self, settings: Mapping[str, str], socket_dir: Path | None = None) -> None:
        # Appended lines win over earlier ones, so a replica copied from a primary only
        # needs its own port and socket directory added.
        conf = self.datadir / "postgresql.conf"
        values = dict(settings)
        values.setdefault("port", str(self.port))
        values["listen_addresses"] = self.listen
        values["unix_socket_directories"] = str(socket_dir or self.socket_dir)
        with open(conf, "a", encoding="utf-8") as handle:
            handle.write("\n# bacula_ha.sandbox.postgres\n")
            for key, value in values.items():
                handle.write(f"{key} = {sql_literal(value)}\n")
        self._give(conf)

    def _give(self, path: Path) -> None:
        entry = pwd.getpwnam(self.os_user)
        if os.geteuid() == 0:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _tail(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-600:]
        except OSError:
            return ""


def _postmaster_status(pidfile: Path) -> str:
    """Line 8 of postmaster.pid: 'starting', 'ready', 'stopping' (PostgreSQL 10 and later)."""
    try:
        lines = pidfile.read_text().splitlines()
    except OSError:
        return ""
    return lines[7].strip() if len(lines) >= 8 else ""
