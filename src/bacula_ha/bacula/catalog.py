"""The Bacula catalog: settings from the director's configuration, where it listens, its health."""

# Over 500 lines on purpose: one client for two servers (settings, endpoint, sessions, the
# health queries); split by server, both halves would restate the session handling.

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence

from ..ocf.command import CommandTimeout, Completed, run
from ..ocf.deadline import Deadline
from ..ocf.errors import GenericError, NotConfiguredError, NotInstalledError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Any

    from ..ocf.log import Log

else:
    from ..ocf.record import dataclass, field

POSTGRESQL = "postgresql"
MYSQL = "mysql"
BACKENDS = (POSTGRESQL, MYSQL)
_PSQL_CANDIDATES = ("/usr/lib/postgresql/{v}/bin/psql",)
_MYSQL_CANDIDATES = ("/usr/bin/mariadb", "/usr/bin/mysql")


@dataclass(frozen=True)
class CatalogSettings:
    """How the director reaches one catalog (a Catalog resource, possibly overridden)."""

    name: str
    db_name: str
    user: str
    password: str = field(repr=False)
    address: str = ""  # a host name, an address, or (PostgreSQL) a socket directory
    port: int | None = None
    socket: str = ""  # MySQL's socket file

    def where(self) -> str:
        """A description for logs and exit reasons (never the password)."""
        if self.address.startswith("/"):
            # PostgreSQL's socket directory: the port names the socket file in it, as libpq
            # does; "/var/run/postgresql:5432" would read as a host.
            sock = f"{self.address.rstrip('/')}/.s.PGSQL.{self.port or 5432}"
            return f"{self.user}@socket {sock} (database {self.db_name})"
        if not self.address:
            sock = self.socket or "(the client's default)"
            return f"{self.user}@socket {sock} (database {self.db_name})"
        port = f":{self.port}" if self.port else ""
        return f"{self.user}@{self.address}{port}/{self.db_name}"


@dataclass(frozen=True)
class Health:
    """What one check found; raised errors cover the failures, this covers the rest."""

    depth: int
    elapsed: float  # seconds for connecting and every query, client start included
    version: int | None = None


# -- settings --------------------------------------------------------------------------------


def read_catalogs(config: str, *, deadline: Deadline, bdirjson: str) -> list[CatalogSettings]:
    """The Catalog resources of a director configuration, parsed by Bacula's own bdirjson.

    Raises NotInstalledError without bdirjson or when this node lacks the file, and
    NotConfiguredError when Bacula rejects it (the shared rule of `bacula.config.load`).
    The parsed data holds the password in clear: it is never logged.
    """
    from .config import load

    if not os.access(bdirjson, os.X_OK):
        raise NotInstalledError(f"{bdirjson} is not installed (bacula-director)")
    resources = load(bdirjson, config, deadline)
    return [settings_from_json(item) for item in resources.all("Catalog")]


def settings_to_dict(settings: CatalogSettings) -> dict[str, object]:
    return {
        "name": settings.name,
        "db_name": settings.db_name,
        "user": settings.user,
        "password": settings.password,
        "address": settings.address,
        "port": settings.port,
        "socket": settings.socket,
    }


def settings_from_dict(data: Mapping[str, object]) -> CatalogSettings | None:
    """The inverse of settings_to_dict; None for anything malformed."""
    try:
        port = data.get("port")
        return CatalogSettings(
            name=str(data["name"]),
            db_name=str(data["db_name"]),
            user=str(data["user"]),
            password=str(data["password"]),
            address=str(data["address"]),
            port=port if isinstance(port, int) else None,
            socket=str(data["socket"]),
        )
    except (KeyError, TypeError):
        return None


def pick_catalog(catalogs: Sequence[CatalogSettings], name: str, config: str) -> CatalogSettings:
    """The named catalog, or the first one (the one a director uses by default)."""
    if name:
        for catalog in catalogs:
            if catalog.name == name:
                return catalog
        names = ", ".join(c.name for c in catalogs) or "none"
        raise NotConfiguredError(f"no Catalog {name!r} in {config} (found: {names})")
    if not catalogs:
        raise NotConfiguredError(f"no Catalog resource in {config}")
    return catalogs[0]


def installed_backend(libdir: str) -> str:
    """The backend the installed director uses, from its catalog libraries in `libdir`:
    libbaccats.so's symlink chain ends at the selected backend's library (a build with both
    selects one at install); PostgreSQL when that cannot be told."""
    try:
        target = os.path.basename(os.path.realpath(os.path.join(libdir, "libbaccats.so")))
    except OSError:
        target = ""
    if MYSQL in target:
        return MYSQL
    if POSTGRESQL in target:
        return POSTGRESQL
    try:
        names = os.listdir(libdir)
    except OSError:
        names = []
    has_mysql = any(n.startswith("libbaccats-mysql") for n in names)
    has_pgsql = any(n.startswith("libbaccats-postgresql") for n in names)
    return MYSQL if has_mysql and not has_pgsql else POSTGRESQL


def scripted_schema_version(backend: str, scripts: str) -> int | None:
    """The Version the install's make_*_tables script writes into a new catalog, None when
    the script is not there or says nothing readable."""
    import re

    path = os.path.join(scripts, f"make_{backend}_tables")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    found = re.search(r"INSERT INTO Version\s*\(VersionId\)\s*VALUES\s*\((\d+)\)", text, re.I)
    return int(found.group(1)) if found else None


def default_client(backend: str) -> str:
    """The client binary: PostgreSQL's own psql (not Debian's slower pg_wrapper), or mariadb."""
    if backend == POSTGRESQL:
        try:
            versions = os.listdir("/usr/lib/postgresql")
        except OSError:
            versions = []
        for version in sorted(versions, key=_version_key, reverse=True):
            path = f"/usr/lib/postgresql/{version}/bin/psql"
            if os.access(path, os.X_OK):
                return path
        return "/usr/bin/psql"
    return next((p for p in _MYSQL_CANDIDATES if os.path.exists(p)), _MYSQL_CANDIDATES[0])


# -- checks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckOptions:
    """Bounds and expectations of one check."""

    depth: int
    connect_timeout: int = 5  # seconds (libpq counts whole seconds, at least 2)
    query_timeout: int = 10  # seconds, per statement on the server
    schema_version: int | None = None  # None: any Version row will do
    tables: tuple[str, ...] = ()  # what depth 10 requires (bacula.versions.expected_tables)
    tmpdir: str | None = None  # where the 0600 password file lives while the client runs


def run_client(
    backend: str,
    client: str,
    settings: CatalogSettings,
    options: CheckOptions,
    script: str,
    *,
    deadline: Deadline,
    timeout: float,
    log: Log | None,
    late: str,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> Completed:
    """Run `script` with the database's own client, the password in a private file that is
    gone afterwards, never in argv or a log line. A client that takes longer than `timeout`
    is GenericError "catalog <where> <late>". `extra_args` go right after the client's name
    (psql options: MySQL's client wants its --defaults-extra-file first)."""
    with _password_file(backend, settings.password, options.tmpdir) as passfile:
        argv, env = _client_call(backend, client, settings, options, passfile)
        argv[1:1] = extra_args
        env.update(extra_env or {})
        try:
            return run(
                argv,
                deadline=deadline,
                timeout=timeout,
                env=env,
                input=script.encode(),
                secrets=[settings.password],
                log=log,
            )
        except CommandTimeout:
            raise GenericError(f"catalog {settings.where()} {late}") from None


def check(
    backend: str,
    client: str,
    settings: CatalogSettings,
    options: CheckOptions,
    *,
    deadline: Deadline,
    log: Log | None = None,
) -> Health:
    """Connect and check the catalog at `options.depth`; raise the OCF error for a failure.

    One client process runs one script: a trivial query and the primary test (depth 0), the
    schema (10), a rolled-back write (20). The script stops at the first error, so the
    lines printed before it say which step failed.
    """
    script = _script(backend, options)
    started = time.monotonic()
    result = run_client(
        backend,
        client,
        settings,
        options,
        script,
        deadline=deadline,
        timeout=options.connect_timeout + options.query_timeout + 2,
        log=log,
        late="did not answer within the time allowed",
    )
    elapsed = time.monotonic() - started
    found = parse_answer(result.stdout)
    error = client_error(result.stderr, settings.password) or f"exit status {result.returncode}"
    where = settings.where()

    if "ready" not in found:
        raise GenericError(f"catalog unreachable: {error} ({where})")
    if found.get("recovery") in ("t", "1", "true"):
        raise GenericError(f"catalog {where} is in recovery (a standby): not writable")
    if found.get("read_only") in ("on", "1", "true", "ON"):
        raise GenericError(f"catalog {where} is read-only")
    if "read_only" not in found:
        raise GenericError(f"catalog primary check failed: {error} ({where})")
    version: int | None = None
    if options.depth >= 10:
        raw = found.get("version")
        if raw is not None and raw.isascii() and raw.isdigit():
            version = int(raw)
            if options.schema_version is not None and version != options.schema_version:
                # 5, not 6: the expectation comes from this node's installed Bacula. During a
                # rolling upgrade the other node's may match, so only this node is ruled out.
                # Checked before the tables: another release's tables differ (Filename).
                raise NotInstalledError(
                    f"catalog {settings.db_name} has schema version {version},"
                    f" the director installed on this node expects {options.schema_version}"
                )
        present = {t.lower() for t in found.get("tables", "").split(",") if t}
        missing = [t for t in options.tables if t.lower() not in present]
        if missing:
            raise GenericError(f"catalog lacks tables {', '.join(missing)} ({where})")
        if raw is None:
            raise GenericError(f"catalog table Version unreadable: {error} ({where})")
        if version is None:
            raise NotConfiguredError(f"catalog {where} has no Version row")
    if options.depth >= 20 and found.get("write") != "ok":
        raise GenericError(f"catalog write check failed: {error} ({where})")
    if not result.ok:
        raise GenericError(f"catalog check failed: {error} ({where})")
    return Health(depth=options.depth, elapsed=elapsed, version=version)


def _script(backend: str, options: CheckOptions) -> str:
    depth, query_timeout = options.depth, options.query_timeout
    probe = f"bacula-ha-probe-{os.getpid()}"
    # Table names come from bacula.versions, never from input; '' keeps the IN list valid.
    tables = options.tables or ("",)
    if backend == POSTGRESQL:
        names = ", ".join(f"'{t.lower()}'" for t in tables)
        lines = [
            "SELECT 'ready=1';",
            "SELECT 'recovery=' || pg_is_in_recovery();",
            "SELECT 'read_only=' || current_setting('transaction_read_only');",
        ]
        if depth >= 10:
            lines += [
                "SELECT 'tables=' || coalesce(string_agg(relname, ','), '') FROM pg_class"
                f" WHERE relname IN ({names}) AND relkind IN ('r', 'p')"
                " AND pg_table_is_visible(oid);",
                "SELECT 'version=' || coalesce(max(versionid)::text, 'none') FROM version;",
            ]
        if depth >= 20:
            # Into a real catalog table, so that privileges and the table itself are tested;
            # rolled back, so nothing is left behind.
            lines += [
                "BEGIN;",
                f"INSERT INTO counters (counter, wrapcounter) VALUES ('{probe}', '');",
                "ROLLBACK;",
                "SELECT 'write=ok';",
            ]
        return "\n".join(lines) + "\n"
    names = ", ".join(f"'{t}'" for t in tables)
    lines = [
        # MariaDB only (an executable comment MySQL skips): a server-side bound per statement.
        f"/*M!100100 SET SESSION max_statement_time = {query_timeout} */;",
        "SELECT 'ready=1';",
        "SELECT 'recovery=0';",
        # SHOW VARIABLES works on MariaDB and MySQL alike, whatever the session variable is
        # called (tx_read_only, transaction_read_only) and with super_read_only where it exists.
        "SHOW VARIABLES LIKE '%read\\_only';",
        "SELECT 'read_only=shown';",
    ]
    if depth >= 10:
        lines += [
            "SELECT CONCAT('tables=', IFNULL(GROUP_CONCAT(TABLE_NAME), ''))"
            " FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            f" AND TABLE_NAME IN ({names});",
            "SELECT CONCAT('version=', IFNULL(MAX(VersionId), 'none')) FROM Version;",
        ]
    if depth >= 20:
        lines += [
            "START TRANSACTION;",
            f"INSERT INTO Counters (Counter, WrapCounter) VALUES ('{probe}', '');",
            "ROLLBACK;",
            "SELECT 'write=ok';",
        ]
    return "\n".join(lines) + "\n"


def _client_call(
    backend: str,
    client: str,
    settings: CatalogSettings,
    options: CheckOptions,
    passfile: str,
) -> tuple[list[str], dict[str, str]]:
    if backend == POSTGRESQL:
        env = {
            "PGPASSFILE": passfile,
            "PGCONNECT_TIMEOUT": str(max(2, options.connect_timeout)),
            "PGOPTIONS": f"-c statement_timeout={options.query_timeout * 1000}",
            "PGAPPNAME": "bacula-ha-catalog",
            "PGDATABASE": settings.db_name,
            "PGUSER": settings.user,
        }
        host = settings.address or settings.socket
        if host:
            env["PGHOST"] = host
        if settings.port:
            env["PGPORT"] = str(settings.port)
        argv = [client, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"]
        return argv, env
    # --defaults-extra-file must come first; it carries the password, never argv.
    argv = [
        client,
        f"--defaults-extra-file={passfile}",
        "--batch",
        "--skip-column-names",
        "--raw",
        "--no-auto-rehash",
        f"--connect-timeout={options.connect_timeout}",
        f"--user={settings.user}",
        f"--database={settings.db_name}",
    ]
    if settings.address:
        argv.append(f"--host={settings.address}")
    if settings.socket:
        argv.append(f"--socket={settings.socket}")
    if settings.port:
        argv.append(f"--port={settings.port}")
    return argv, {"HOME": "/nonexistent"}


@contextlib.contextmanager
def _password_file(backend: str, password: str, tmpdir: str | None) -> Iterator[str]:
    """A 0600 file holding only the password in the client's format, removed afterwards."""
    if backend == POSTGRESQL:
        escaped = password.replace("\\", "\\\\").replace(":", "\\:")
        text = f"*:*:*:*:{escaped}\n"
    else:
        escaped = password.replace("\\", "\\\\").replace('"', '\\"')
        text = f'[client]\npassword="{escaped}"\n'
    directory = tmpdir if tmpdir and os.path.isdir(tmpdir) else "/tmp"
    # Created 0600 with O_EXCL|O_NOFOLLOW under a random name: nobody else can open it,
    # pre-create it or plant a link there (what tempfile.mkstemp does, without its imports).
    path = os.path.join(directory, f".bacula-catalog-{os.getpid()}-{os.urandom(6).hex()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


# The client's preamble before the cause (re is imported only when there is an error).
_NOISE = (
    r"^(psql: error: |psql:<stdin>:\d+: |mariadb: |mysql: )?"
    r"(connection to server (at|on socket) .*? failed: )?"
    r"((FATAL|ERROR): +|ERROR \d+ \(\w+\)( at line \d+)?: )?"
)


# Any of these ON makes a MySQL/MariaDB server refuse the director's writes.
_MYSQL_READ_ONLY = ("read_only", "super_read_only", "tx_read_only", "transaction_read_only")


def parse_answer(stdout: str) -> dict[str, str]:
    """`key=value` lines, plus MySQL's `name<TAB>value` rows of SHOW VARIABLES as var:name."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        name, tab, setting = line.strip().partition("\t")
        if tab:
            found[f"var:{name}"] = setting
            continue
        key, sep, value = line.strip().partition("=")
        if sep:
            found[key] = value
    if found.get("read_only") == "shown":
        on = any(found.get(f"var:{n}", "").upper() in ("ON", "1") for n in _MYSQL_READ_ONLY)
        found["read_only"] = "1" if on else "0"
    return found


def client_error(stderr: str, password: str) -> str:
    """The client's first error line, without its program prefix (and never the password)."""
    if not stderr:
        return ""
    import re

    for raw in stderr.splitlines():
        line = raw.strip()
        if not line or line.startswith(("DETAIL:", "HINT:", "LINE ", "CONTEXT:", "WARNING:")):
            continue
        # Exit reasons are cut at 128 characters: keep the cause, drop the client's preamble.
        line = re.sub(_NOISE, "", line)
        if password:
            line = line.replace(password, "***")
        return line[:200]
    return ""


def settings_from_json(item: Mapping[str, object]) -> CatalogSettings:
    port = item.get("DbPort")
    return CatalogSettings(
        name=str(item.get("Name", "")),
        db_name=str(item.get("DbName", "")),
        user=str(item.get("User", "")),
        password=str(item.get("Password", "")),
        address=str(item.get("Address", "")),
        port=int(port)
        if isinstance(port, int | str) and str(port).isascii() and str(port).isdigit()
        else None,
        socket=str(item.get("DbSocket", "")),
    )


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


# -- where a director's catalog listens, and a bounded connect to it (no SQL, no password) --

_DEFAULT_PORTS = {POSTGRESQL: 5432, MYSQL: 3306}


def catalog_backend(catalog: Mapping[str, Any]) -> str:
    """postgresql or mysql: the driver a Catalog resource (as bdirjson prints it) names."""
    driver = str(catalog.get("DbDriver", "") or "").lower()
    return MYSQL if "mysql" in driver or "maria" in driver else POSTGRESQL


def catalog_endpoint(catalog: Mapping[str, Any]) -> tuple[str, int]:
    """(host or socket path, port) of a Catalog resource as bdirjson prints it (`Address`)."""
    backend = catalog_backend(catalog)
    port = int(catalog.get("DbPort") or _DEFAULT_PORTS[backend])
    socket_path = str(catalog.get("DbSocket", "") or "")
    host = str(catalog.get("Address", "") or catalog.get("DbAddress", "") or "")
    if socket_path:
        return socket_path, port
    if host.startswith("/"):  # libpq: a directory holding the socket
        return os.path.join(host, f".s.PGSQL.{port}"), port
    if not host:
        # Both clients default to their local socket.
        default = "/run/postgresql" if backend == "postgresql" else "/run/mysqld/mysqld.sock"
        return (
            os.path.join(default, f".s.PGSQL.{port}") if backend == "postgresql" else default
        ), port
    return host, port


def try_connect(where: tuple[str, int], timeout: float) -> str:
    """Connect and close at once; an error text, or "" when something accepted."""
    import socket

    host, port = where
    try:
        if host.startswith("/"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(host)
        else:
            with socket.create_connection((host, port), timeout=timeout):
                pass
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return ""
