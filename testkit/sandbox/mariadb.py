"""A throwaway MariaDB server on loopback with Bacula's MySQL catalog, for tests and the lab."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bacula_ha.bacula.layout import DEBIAN, Layout

from .server import (
    CatalogInfo,
    SandboxError,
    SandboxServer,
    catalog_version,
    install_script,
    run_as,
)

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
CLIENT = "/usr/bin/mariadb"
PACKAGE = "bacula-director-mysql"
# bacula-director-mysql conflicts with the -pgsql flavour that is installed: its scripts are
# unpacked (never installed) into this cache, once per machine.
SCRIPT_CACHE = Path("/var/cache/bacula-ha") / PACKAGE
_SCRIPTS = Path("usr/share/bacula-director")
# The schema Debian's postinst loads (through dbconfig-common). make_mysql_tables itself cannot
# be used: it quotes `MinValue` with backquotes inside an unquoted here-document, so /bin/sh
# runs them as commands and table Counters is never created.
_TABLES_SQL = Path("usr/share/dbconfig-common/data/bacula-director-mysql/install/mysql")


def mysql_literal(value: str) -> str:
    """A single-quoted MySQL string literal (backslash escapes on, as by default)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def bacula_mysql_package(cache: Path = SCRIPT_CACHE) -> Path:
    """The root of bacula-director-mysql's files, unpacked with apt-get download + dpkg-deb -x."""
    if (Path("/") / _TABLES_SQL).exists():
        return Path("/")  # installed (a MySQL-flavoured machine)
    if (cache / _TABLES_SQL).exists():
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(Path("/var/cache/apt/archives").glob(f"{PACKAGE}_*.deb"))
    if not debs:
        proc = subprocess.run(
            ["apt-get", "download", PACKAGE],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise SandboxError(f"apt-get download {PACKAGE} failed: {proc.stderr[-400:]}")
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(cache)], check=True, timeout=120)
    if not (cache / _TABLES_SQL).exists():
        raise SandboxError(f"{debs[-1]} holds no {_TABLES_SQL}")
    return cache


class MariaDBServer(SandboxServer):
    """One private MariaDB: data, socket, pid file and log under `basedir`, run by `os_user`.

    Administration runs as root over the socket (unix_socket authentication of root@localhost,
    as mariadb-install-db sets it up); Bacula's user authenticates with its password.
    """

    name = "mariadb"  # stop_signal SIGTERM: a clean shutdown
    start_timeout = 60.0
    stop_timeout = 30.0
    poll_interval = 0.1

    def __init__(
        self,
        basedir: Path | str,
        port: int | None = None,
        *,
        os_user: str = "mysql",
        listen: str = "127.0.0.1",
    ) -> None:
        super().__init__(basedir, port, os_user, listen)
        self.socket = self.socket_dir / "mysqld.sock"
        self.pidfile = self.socket_dir / "mysqld.pid"

    def init(self) -> MariaDBServer:
        """mariadb-install-db (once); idempotent."""
        self._make_dirs()
        if (self.datadir / "mysql").is_dir():
            return self
        run_as(
            self.os_user,
            [
                INSTALL_DB,
                "--no-defaults",  # never the host's /etc/mysql (port 3306, its datadir)
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            timeout=180,
        )
        return self

    def _command(self) -> list[str]:
        return [
            MARIADBD,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--pid-file={self.pidfile}",
            f"--port={self.port}",
            f"--bind-address={self.listen}",
            "--skip-name-resolve",
            "--skip-log-bin",
            # Throwaway data: no durability, small memory.
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--performance-schema=OFF",
            "--max-connections=40",
        ]

    def _ready(self) -> bool:
        """mariadbd answers on its socket."""
        if not self.socket.exists():
            return False
        return self.sql("SELECT 1", check=False, timeout=5) == "1"

    def client_args(self) -> list[str]:
        """The client's arguments for root over this server's socket (no option files)."""
        return [CLIENT, "--no-defaults", f"--socket={self.socket}", "--user=root"]

    def sql(self, sql: str, *, db: str = "", check: bool = True, timeout: float = 60.0) -> str:
        """Run SQL as root; returns the batch output without column names."""
        argv = [*self.client_args(), "--batch", "--skip-column-names"]
        if db:
            argv.append(f"--database={db}")
        proc = run_as("root", argv, input=sql, timeout=timeout, check=check)
        return proc.stdout.strip()

    def set_global(self, name: str, value: str) -> None:
        self.sql(f"SET GLOBAL {name} = {value}")

    def create_bacula_catalog(
        self,
        db_name: str = "bacula",
        db_user: str = "bacula",
        db_password: str = "bacula-pw",
        *,
        install: Layout = DEBIAN,
    ) -> CatalogInfo:
        """Database, tables and grants as Debian's bacula-director-mysql makes them, or with
        the MySQL scripts of another `install` (bacula.org's layout)."""
        # The scripts paste the password into SQL unquoted: they get a placeholder.
        env = {"db_name": db_name, "db_user": db_user, "db_password": "placeholder"}
        # The scripts hand their arguments ($*) to the client: our socket, no option files.
        options = self.client_args()[1:3]
        if install == DEBIAN:
            self._debian_tables(db_name, env, options)
        else:
            self._install_tables(install, db_name, env, options)
        literal = mysql_literal(db_password)
        # grant_mysql_privileges grants to user@localhost, which MariaDB's default sql_mode
        # (NO_AUTO_CREATE_USER) refuses to create: create both accounts explicitly.
        self.sql(
            f"CREATE USER IF NOT EXISTS '{db_user}'@'localhost' IDENTIFIED BY {literal};"
            f" CREATE USER IF NOT EXISTS '{db_user}'@'%' IDENTIFIED BY {literal};"
            f" ALTER USER '{db_user}'@'localhost' IDENTIFIED BY {literal};"
            f" ALTER USER '{db_user}'@'%' IDENTIFIED BY {literal};"
            f" GRANT ALL PRIVILEGES ON `{db_name}`.* TO '{db_user}'@'localhost';"
            f" GRANT ALL PRIVILEGES ON `{db_name}`.* TO '{db_user}'@'%';"
            " FLUSH PRIVILEGES;"
        )
        version = self.sql("SELECT VersionId FROM Version", db=db_name, check=False)
        if version != str(catalog_version(install)):
            raise SandboxError(f"catalog {db_name} has version {version!r} after the scripts")
        return CatalogInfo(
            db_name, db_user, db_password, self.listen, self.port, socket=str(self.socket)
        )

    def _debian_tables(self, db_name: str, env: dict[str, str], options: list[str]) -> None:
        package = bacula_mysql_package()
        scripts = package / _SCRIPTS
        run_as("root", ["/bin/sh", str(scripts / "create_mysql_database"), *options], env=env)
        tables = (package / _TABLES_SQL).read_text()
        self.sql(tables, db=db_name, timeout=180)
        self._grant_script(scripts / "grant_mysql_privileges", env, options)

    def _install_tables(
        self, install: Layout, db_name: str, env: dict[str, str], options: list[str]
    ) -> None:
        """bacula.org's scripts (13.0 and later), whose make_mysql_tables works as shipped."""

        def script(name: str) -> str:
            return str(install_script(install, name, "root", self.basedir))

        if db_name == "bacula":
            run_as("root", ["/bin/sh", script("create_mysql_database"), *options], env=env)
        else:  # its create_mysql_database always creates `bacula`, whatever db_name says
            self.sql(f"CREATE DATABASE IF NOT EXISTS `{db_name}`")
        # It says "failed" on stdout and exits 0: the version check below tells.
        run_as("root", ["/bin/sh", script("make_mysql_tables"), *options], env=env, timeout=180)
        self._grant_script(Path(script("grant_mysql_privileges")), env, options)

    @staticmethod
    def _grant_script(script: Path, env: dict[str, str], options: list[str]) -> None:
        run_as(
            "root",
            ["/bin/sh", str(script), *options],
            env=env,
            timeout=60,
            check=False,  # it fails on user@localhost (see below) after granting user@'%'
        )

    def make_read_only(self, on: bool = True) -> None:
        self.set_global("read_only", "1" if on else "0")
