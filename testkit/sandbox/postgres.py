"""A throwaway PostgreSQL server on loopback with a Bacula catalog, for tests and the lab."""

from __future__ import annotations

import os
import pwd
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from bacula_ha.bacula.layout import DEBIAN, Layout

# The helpers moved to .server; they stay importable from here (the lab, tests and benches
# import them from this module).
from .server import DEBIAN_CATALOG_VERSION, SandboxServer, catalog_version, install_script
from .server import CatalogInfo as CatalogInfo
from .server import SandboxError as SandboxError
from .server import ensure_owned_dir as ensure_owned_dir
from .server import free_port as free_port
from .server import make_basedir as make_basedir
from .server import run_as as run_as
from .server import spawn_as as spawn_as
from .server import stop_process as stop_process
from .server import wait_until as wait_until

PG_BINDIR = Path("/usr/lib/postgresql/15/bin")
BACULA_SCRIPTS = Path(DEBIAN.scripts)
# The schema version Debian's bacula-director 9.6 creates and expects (table Version).
BACULA_CATALOG_VERSION = DEBIAN_CATALOG_VERSION


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal (standard_conforming_strings on, as by default)."""
    return "'" + value.replace("'", "''") + "'"


# -- the PostgreSQL server -------------------------------------------------------------------


class PostgresServer(SandboxServer):
    """One private PostgreSQL cluster: data, socket and log under `basedir`, owned by `os_user`.

    Administration runs as `os_user` over the socket with peer authentication (that user is
    the superuser); every other role authenticates with scram passwords, locally and over TCP,
    so a wrong password really fails.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown: TERM would wait for the clients to leave
    start_timeout = 30.0
    stop_timeout = 15.0

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
        super().__init__(basedir, port, os_user, listen)
        self.allowed = tuple(allowed)  # networks that may connect over TCP (with a password)
        self.bindir = bindir

    # The superuser is named after the OS user, which is what peer authentication matches.
    @property
    def superuser(self) -> str:
        return self.os_user

    @property
    def env(self) -> dict[str, str]:
        """libpq variables that point a client at this server's socket."""
        return {"PGHOST": str(self.socket_dir), "PGPORT": str(self.port)}

    def init(self) -> PostgresServer:
        """Run initdb (once) and write our configuration; idempotent."""
        self._make_dirs()
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

    def _before_spawn(self) -> None:
        pidfile = self.datadir / "postmaster.pid"
        if pidfile.exists():
            pidfile.unlink()  # stale: we only get here when our own process is gone

    def _command(self) -> list[str]:
        return [str(self.bindir / "postgres"), "-D", str(self.datadir)]

    def _ready(self) -> bool:
        return _postmaster_status(self.datadir / "postmaster.pid") == "ready"

    def reload(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGHUP)

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

    def sql(self, sql: str, *, db: str = "", check: bool = True, timeout: float = 60.0) -> str:
        """psql() under the name every sandbox server answers to."""
        return self.psql(sql, db=db or "postgres", check=check, timeout=timeout)

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
        self,
        db_name: str = "bacula",
        db_user: str = "bacula",
        db_password: str = "bacula-pw",
        *,
        install: Layout = DEBIAN,
    ) -> CatalogInfo:
        """Create database, tables and grants with the install's own scripts (Debian's, as
        the director's postinst would, by default); the role is created once and reused by
        later catalogs."""
        env = dict(self.env)
        # The scripts paste db_password into SQL unquoted: they get a harmless placeholder
        # and the real password is set afterwards as a proper literal.
        env.update({"db_name": db_name, "db_user": db_user, "db_password": "placeholder"})
        steps = ["create_postgresql_database", "make_postgresql_tables"]
        role_exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = {sql_literal(db_user)}")
        for step in steps:
            self._bacula_script(step, env, install)
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
            self._bacula_script("grant_postgresql_privileges", env, install)
        self.psql(f"ALTER ROLE {db_user} PASSWORD {sql_literal(db_password)};")
        version = self.psql("SELECT versionid FROM version", db=db_name)
        if version != str(catalog_version(install)):
            raise SandboxError(f"catalog {db_name} has version {version!r}")
        return CatalogInfo(db_name, db_user, db_password, str(self.socket_dir), self.port)

    def update_bacula_catalog(self, info: CatalogInfo, *, install: Layout) -> str:
        """Bring a catalog up to `install`'s schema with its own update_postgresql_tables
        script (an upgrade: 16 to 1024 for 9.6 to 13.0), as the database's superuser, then
        grant the new tables to the catalog's role; the new Version."""
        # The script names the database it was configured for (bacula) and ignores db_name;
        # its arguments go to every psql it runs, where a second -d wins.
        self._bacula_script("update_postgresql_tables", self.env, install, "-d", info.db_name)
        self.psql(
            f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {info.db_user};"
            f" GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {info.db_user};",
            db=info.db_name,
        )
        return self.psql("SELECT versionid FROM version", db=info.db_name)

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
        replica._make_dirs()
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

    def _bacula_script(
        self, name: str, env: Mapping[str, str], install: Layout, *args: str
    ) -> None:
        if install == DEBIAN and not (BACULA_SCRIPTS / name).exists():
            raise SandboxError(f"{BACULA_SCRIPTS / name} is missing: install bacula-director-pgsql")
        script = install_script(install, name, self.os_user, self.basedir)
        argv = ["/bin/sh", str(script), *args]
        # update_postgresql_tables writes scratch files into its working directory.
        cwd = self.basedir
        proc = run_as(self.os_user, argv, env=env, timeout=120, check=False, cwd=cwd)
        # The scripts do not all fail with a status (make_postgresql_tables never does).
        if proc.returncode != 0 or "ERROR:" in proc.stderr:
            raise SandboxError(f"{name} failed: {proc.stderr[-800:] or proc.stdout[-800:]}")

    def _write_hba(self) -> None:
        lines = [
            "# written by testkit.sandbox.postgres",
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
            handle.write("\n# testkit.sandbox.postgres\n")
            for key, value in values.items():
                handle.write(f"{key} = {sql_literal(value)}\n")
        self._give(conf)

    def _give(self, path: Path) -> None:
        entry = pwd.getpwnam(self.os_user)
        if os.geteuid() == 0:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _postmaster_status(pidfile: Path) -> str:
    """Line 8 of postmaster.pid: 'starting', 'ready', 'stopping' (PostgreSQL 10 and later)."""
    try:
        lines = pidfile.read_text().splitlines()
    except OSError:
        return ""
    return lines[7].strip() if len(lines) >= 8 else ""
