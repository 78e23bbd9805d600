"""bacula-catalog: a health resource that is up only while the Bacula catalog is usable."""

# Over 500 lines on purpose: the agent's whole contract (two servers, replicas, the schema
# each Bacula release expects) reads in one place; the client and its SQL are bacula/catalog.py.

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from ..bacula import catalog as cat
from ..bacula import layout, pgsync, versions
from ..bacula.files import config_sources, refuse_nul, signature
from ..ocf import params
from ..ocf.agent import Agent, Handler
from ..ocf.env import Environment
from ..ocf.errors import ArgsError, GenericError, NotConfiguredError, NotInstalledError
from ..ocf.log import Logger
from ..ocf.metadata import Action, MetaData, Parameter
from ..ocf.state import StateFile
from ..ocf.status import OCFStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from ..ocf.record import dataclass

AGENT_NAME = "bacula-catalog"
DEFAULT_CONFIG = layout.DEBIAN.conf("bacula-dir.conf")
DEFAULT_BINARY = layout.DEBIAN.tool("bacula-dir")
# Start checks the schema and a write, but never fails on slowness alone.
START_DEPTH = 20


def _standby_names(value: str) -> None:
    """The sync_standby_names rule (the value alone; the backend must be postgresql too)."""
    if not pgsync.valid(value):
        raise NotConfiguredError(
            f"sync_standby_names={value[:40]!r}: a list of standby names (or ANY/FIRST n (...)) "
            "without quotes"
        )


_METADATA = MetaData(
    name=AGENT_NAME,
    version="0.1.0",
    shortdesc="Health of the Bacula catalog database",
    longdesc=(
        "Runs between the database and the director (order the database first, then this, "
        "then bacula-dir): it starts only when the catalog is usable and its monitor fails "
        "when the catalog stops being usable. Depth 0: connects and runs a trivial query; the "
        "server must be a primary (PostgreSQL not in recovery, MySQL not read-only). Depth 10: "
        "the Bacula tables exist and table Version holds what the installed director expects. "
        "Depth 20: a write in a rolled-back transaction, and a check slower than "
        "latency_threshold is reported as degraded. Connection settings come from the "
        "director's Catalog resource (read with bdirjson) unless parameters override them. "
        "The tables and the schema version expected are those of the director installed on "
        "this node (binary): Bacula 9.6 (16, with table Filename), 11.0 (1022), 13.0 (1024), "
        "15.0 (1026); bdirjson, the catalog scripts and libraries are found beside it "
        "(/usr/sbin with Debian's packages, /opt/bacula/bin with bacula.org's). "
        "The password reaches the client through a private 0600 file, never argv or the log. "
        "A probe only reports whether this resource was started on this node. Monitors reuse "
        "the settings read at start until the configuration (or a file it includes) changes. "
        "Example: pcs resource create catalog ocf:bacula:bacula-catalog "
        "config=/etc/bacula/bacula-dir.conf op monitor interval=30s "
        "op monitor interval=127s OCF_CHECK_LEVEL=20; then order the database before catalog "
        "and catalog before the director, and colocate them."
    ),
    parameters=(
        Parameter(
            "config",
            "Director configuration file",
            "The bacula-dir configuration whose Catalog resource names the database.",
            default=DEFAULT_CONFIG,
            absolute=True,
        ),
        Parameter(
            "binary",
            "Director binary",
            "The bacula-dir this node runs: its version sets the tables and schema version "
            "expected, and bdirjson, the catalog scripts and libraries are looked for beside "
            "it (bacula.org's layout: /opt/bacula/bin/bacula-dir).",
            default=DEFAULT_BINARY,
            absolute=True,
        ),
        Parameter(
            "catalog",
            "Catalog resource name",
            "Which Catalog resource of the director to check; default: the first one.",
            default="",
        ),
        Parameter(
            "backend",
            "Database backend",
            "Which client to use; auto follows the catalog library of the installed director.",
            default="auto",
            choices=("auto", cat.POSTGRESQL, cat.MYSQL),
        ),
        Parameter("db_name", "Database name", "Overrides the Catalog's DbName.", default=""),
        Parameter("db_user", "Database user", "Overrides the Catalog's User.", default=""),
        Parameter(
            "db_address",
            "Database host",
            "Overrides the Catalog's DB Address: a host name or address, or for PostgreSQL a "
            "socket directory.",
            default="",
        ),
        Parameter(
            "db_port",
            "Database port",
            "Overrides the Catalog's DB Port.",
            "integer",
            default="",
            low=1,
            high=params.PORT_HIGH,
        ),
        Parameter(
            "db_socket",
            "MySQL socket",
            "Overrides the Catalog's DB Socket (MySQL).",
            default="",
            absolute=True,
        ),
        Parameter(
            "password_file",
            "File holding the database password",
            "A file (mode 0600) whose first line is the password; overrides the Catalog's "
            "Password. With db_name and db_user also set, the director configuration is not read.",
            default="",
            absolute=True,
        ),
        Parameter(
            "client",
            "Client binary",
            "Absolute path of psql or mariadb/mysql; default: PostgreSQL's newest psql or "
            "/usr/bin/mariadb.",
            default="",
            absolute=True,
        ),
        Parameter(
            "connect_timeout",
            "Connect timeout (s)",
            "Seconds allowed for connecting and authenticating (PostgreSQL counts at least 2).",
            "integer",
            default="5",
            reloadable=True,
            low=1,
            high=3600,
        ),
        Parameter(
            "query_timeout",
            "Query timeout (s)",
            "Seconds a single statement may run on the server.",
            "integer",
            default="10",
            reloadable=True,
            low=1,
            high=3600,
        ),
        Parameter(
            "latency_threshold",
            "Degraded above (ms)",
            "At depth 20, a whole check (connect and every query) slower than this many "
            "milliseconds is reported as degraded (190) instead of success; 0 disables.",
            "integer",
            default="2000",
            reloadable=True,
        ),
        Parameter(
            "schema_version",
            "Expected catalog version",
            "The Version the catalog must hold; default: what the installed director creates "
            "(from its version, else its make_*_tables script; 16 for Bacula 9.6, 1024 for "
            "13.0). Another version fails "
            "the check with 5, on this node only: during a rolling upgrade another node's "
            "Bacula may expect what the catalog holds.",
            "integer",
            default="",
            reloadable=True,
            low=1,
        ),
        Parameter(
            "sync_standby_names",
            "Synchronous standbys while they can answer",
            "PostgreSQL streaming replication: the synchronous_standby_names the primary "
            "keeps while a standby streams, e.g. 'ANY 1 (node1, node2)'. When no standby "
            "streams and none of the nodes named is in this node's cluster partition (fenced "
            "or gone), start and monitor set it to '' so that commits go on; once a standby "
            "streams again, back to this value. Empty: never touched. The role needs ALTER "
            "SYSTEM on that parameter, EXECUTE on pg_reload_conf() and pg_read_all_stats.",
            default="",
            rule=_standby_names,
        ),
    ),
    actions=(
        Action("start", timeout=30),
        Action("stop", timeout=20),
        Action("monitor", timeout=30, interval=30, depth=0),
        Action("monitor", timeout=30, interval=61, depth=10),
        Action("monitor", timeout=40, interval=127, depth=20),
        Action("reload-agent", timeout=20),
        Action("validate-all", timeout=20),
        Action("meta-data", timeout=5),
    ),
)


@dataclass(frozen=True)
class Config:
    """The parameters, parsed; connection settings are resolved per action (`_settings`)."""

    config: str
    binary: str  # the director this node runs
    bdirjson: str  # beside it, else Debian's
    scripts: str  # its install's catalog scripts (make_*_tables)
    catalog: str
    backend: str  # postgresql | mysql (auto resolved)
    db_name: str
    db_user: str
    db_address: str
    db_port: int | None
    db_socket: str
    password_file: str
    client: str
    connect_timeout: int
    query_timeout: int
    latency_threshold_ms: int
    schema_version: int | None
    sync_standby_names: str

    @property
    def needs_director_config(self) -> bool:
        """Everything given explicitly: the director's file is not needed (nor read)."""
        return not (self.db_name and self.db_user and self.password_file)


class CatalogAgent(Agent[Config]):
    """The bacula-catalog agent."""

    metadata = _METADATA
    depths = (0, 10, 20)

    def configure(self, env: Environment, log: Logger) -> Config:
        # Every value was checked against the meta-data's rules already (the runner's
        # ocf.params.check_all): types, bounds, choices, absolute paths, standby names.
        backend = env.param("backend", "auto")
        binary = env.param("binary", DEFAULT_BINARY)
        install = layout.of_binary(binary)
        if backend == "auto":
            backend = cat.installed_backend(install.libdir)
        client = env.param("client") or cat.default_client(backend)
        sync_names = env.param("sync_standby_names")
        if sync_names and backend != cat.POSTGRESQL:
            raise NotConfiguredError("sync_standby_names is for the postgresql backend only")
        return Config(
            config=env.param("config", DEFAULT_CONFIG),
            binary=binary,
            bdirjson=layout.tool_beside(binary, "bdirjson"),
            scripts=install.scripts,
            catalog=env.param("catalog"),
            backend=backend,
            db_name=env.param("db_name"),
            db_user=env.param("db_user"),
            db_address=env.param("db_address"),
            db_port=_integer(env, "db_port"),
            db_socket=env.param("db_socket"),
            password_file=env.param("password_file"),
            client=client,
            connect_timeout=_integer(env, "connect_timeout") or 5,
            query_timeout=_integer(env, "query_timeout") or 10,
            latency_threshold_ms=_integer(env, "latency_threshold") or 0,
            schema_version=_integer(env, "schema_version"),
            sync_standby_names=sync_names,
        )

    def validate(self, config: Config, env: Environment, log: Logger) -> None:
        if not os.access(config.client, os.X_OK):
            raise NotInstalledError(f"database client {config.client} is not installed")
        if config.needs_director_config and not os.access(config.bdirjson, os.X_OK):
            raise NotInstalledError(f"{config.bdirjson} is not installed (bacula-director)")

    def validate_all(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        _settings(config, env)  # reads the director's file and the password file, no network
        _warn_untested(config, env, log)
        return None

    def start(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        _warn_untested(config, env, log)
        settings, cache = _fresh_settings(config, env, log)
        health = _check(config, env, log, START_DEPTH, settings)
        _reconcile_sync(config, env, log, settings)
        state = {"started": time.time(), "version": health.version, "cache": cache}
        try:
            _state(env).write(state)
        except OSError as exc:
            raise GenericError(f"cannot record the start under {env.rsctmp}: {exc}") from None
        log.info(f"catalog usable (schema {health.version}, {health.elapsed * 1000:.0f} ms)")
        return None

    def stop(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        _state(env).remove()
        return None

    def stop_unconfigured(self, env: Environment, log: Logger, reason: str) -> OCFStatus | None:
        # Nothing runs on behalf of this resource but its state file: removing it is the stop.
        _state(env).remove()
        return None

    def reload_agent(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        # Nothing holds the old values: every action reads its parameters afresh, and the
        # settings cache is keyed on the connection parameters only. So bounds and
        # thresholds change without a restart of this resource (and of the director
        # ordered after it).
        log.info("parameters reloaded; the next monitor uses them")
        return None

    def extra_actions(self) -> Mapping[str, Handler[Config]]:
        return {"reload-agent": self.reload_agent}

    def monitor(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        state = _state(env).read()
        if state is None:
            return OCFStatus.NOT_RUNNING
        if env.is_probe:
            # A probe asks whether the resource is active here, not whether the database is
            # healthy: a database error must not make Pacemaker think it runs elsewhere.
            return OCFStatus.SUCCESS
        settings = _cached_settings(config, state.get("cache"))
        if settings is None:
            settings, state["cache"] = _fresh_settings(config, env, log)
            try:
                _state(env).write(state)
            except OSError as exc:
                log.warning(f"cannot cache the catalog settings: {exc}")
        health = _check(config, env, log, env.depth, settings)
        _reconcile_sync(config, env, log, settings)
        threshold = config.latency_threshold_ms
        if env.depth >= 20 and threshold and health.elapsed * 1000 > threshold:
            log.warning(
                f"catalog is slow: check took {health.elapsed * 1000:.0f} ms"
                f" (latency_threshold {threshold} ms)"
            )
            return OCFStatus.DEGRADED
        return None


AGENT = CatalogAgent()


def _director_version(config: Config, env: Environment) -> versions.Version | None:
    return versions.daemon_version(
        config.binary, deadline=env.deadline, cache_dir=_private_tmpdir(env)
    )


def _warn_untested(config: Config, env: Environment, log: Logger) -> None:
    """A release this project has not tested is checked as well as it can be, with a warning."""
    caveat = versions.caveat(_director_version(config, env), config.binary)
    if caveat:
        log.warning(caveat)


def _expectations(config: Config, env: Environment) -> tuple[int | None, tuple[str, ...]]:
    """The schema version and tables this node's director needs: the parameter, else its
    version line, else its install's make_*_tables script, else any version."""
    version = _director_version(config, env)
    line = versions.line_of(version)
    if config.schema_version is not None:
        schema: int | None = config.schema_version
    elif line is not None:
        schema = line.schema
    else:
        schema = cat.scripted_schema_version(config.backend, config.scripts)
    return schema, versions.expected_tables(version)


def _check(
    config: Config, env: Environment, log: Logger, depth: int, settings: cat.CatalogSettings
) -> cat.Health:
    # Depth 0 looks at neither tables nor version: no need to ask the director's binary.
    schema, tables = _expectations(config, env) if depth >= 10 else (None, ())
    options = cat.CheckOptions(
        depth=depth,
        connect_timeout=config.connect_timeout,
        query_timeout=config.query_timeout,
        schema_version=schema,
        tables=tables,
        tmpdir=_private_tmpdir(env),
    )
    return cat.check(
        config.backend, config.client, settings, options, deadline=env.deadline, log=log
    )


def _reconcile_sync(
    config: Config, env: Environment, log: Logger, settings: cat.CatalogSettings
) -> None:
    """Synchronous replication only while a standby can answer (bacula.pgsync): the catalog
    is checked healthy, so this runs on a primary."""
    if not config.sync_standby_names:
        return
    options = cat.CheckOptions(
        depth=0,
        connect_timeout=config.connect_timeout,
        query_timeout=config.query_timeout,
        tmpdir=_private_tmpdir(env),
    )
    changed = pgsync.reconcile(
        config.client,
        settings,
        config.sync_standby_names,
        options,
        deadline=env.deadline,
        this_node=pgsync.node_name(env.meta),
        log=log,
    )
    if changed == pgsync.RELAXED:
        log.warning(
            "no standby streams and no standby node is in the cluster: commits no longer "
            "wait for a standby (synchronous_standby_names = '')"
        )
    elif changed == pgsync.RESTORED:
        log.info(f"a standby streams: synchronous_standby_names = {config.sync_standby_names}")


def _fresh_settings(
    config: Config, env: Environment, log: Logger
) -> tuple[cat.CatalogSettings, dict[str, object] | None]:
    """Settings read now, and what lets a monitor reuse them without running bdirjson.

    A monitor every few seconds would otherwise pay for bdirjson (and its parse of the whole
    configuration) each time. The cache lives in the state file (0600, in HA_RSCTMP, a root
    tmpfs) and is keyed on the parameters and on the inode, size and mtime of every file the
    settings came from; an include that cannot be enumerated disables it.
    """
    if config.needs_director_config:
        log.debug(f"reading the Catalog resource of {config.config} with bdirjson")
    settings = _settings(config, env)
    paths: list[str] | None = []
    if config.needs_director_config:
        paths = config_sources(config.config)
    if paths is not None and config.password_file:
        paths.append(config.password_file)
    sig = signature(paths) if paths is not None else None
    if sig is None:
        return settings, None
    cache: dict[str, object] = {
        "params": _params_key(config),
        "sources": sig,
        "settings": cat.settings_to_dict(settings),
    }
    return settings, cache


def _cached_settings(config: Config, cache: object) -> cat.CatalogSettings | None:
    """The cached settings if nothing they came from has changed, else None."""
    if not isinstance(cache, dict) or cache.get("params") != _params_key(config):
        return None
    sources = cache.get("sources")
    if not isinstance(sources, dict) or signature(list(sources)) != sources:
        return None
    data = cache.get("settings")
    return cat.settings_from_dict(data) if isinstance(data, dict) else None


def _params_key(config: Config) -> str:
    fields = (config.config, config.bdirjson, config.catalog, config.db_name, config.db_user)
    where = (config.db_address, config.db_port, config.db_socket, config.password_file)
    return repr((*fields, *where))


def _settings(config: Config, env: Environment) -> cat.CatalogSettings:
    """The director's Catalog resource with the explicit parameters laid over it."""
    if config.needs_director_config:
        refuse_nul(config.config)
        found = cat.read_catalogs(config.config, deadline=env.deadline, bdirjson=config.bdirjson)
        base = cat.pick_catalog(found, config.catalog, config.config)
    else:
        base = cat.CatalogSettings(name=config.catalog, db_name="", user="", password="")
    password = _read_password(config.password_file) if config.password_file else base.password
    settings = cat.CatalogSettings(
        name=base.name,
        db_name=config.db_name or base.db_name,
        user=config.db_user or base.user,
        password=password,
        address=config.db_address or base.address,
        port=config.db_port or base.port,
        socket=config.db_socket or base.socket,
    )
    if not settings.db_name or not settings.user:
        raise NotConfiguredError("no database name or user: set them in the Catalog or here")
    return settings


def _read_password(path: str) -> str:
    from ..bacula.files import read_text

    if not os.path.exists(path):
        raise ArgsError(f"password_file {path} does not exist")
    # Read as a regular file only (a FIFO would block the action), at most a page.
    text = read_text(path, 4096)
    if text is None:
        raise ArgsError(f"password_file {path} is not a readable regular file")
    line = text.split("\n", 1)[0].rstrip("\r")
    if "\ufffd" in line or not line.isprintable():
        raise ArgsError(f"password_file {path}: the password is not printable UTF-8")
    return line


def _private_tmpdir(env: Environment) -> str | None:
    """HA_RSCTMP if it exists (a root-only tmpfs under Pacemaker), else the system default."""
    return env.rsctmp if os.path.isdir(env.rsctmp) else None


def _integer(env: Environment, name: str) -> int | None:
    """An integer parameter by the one rule of its meta-data (bounds and default there)."""
    return params.integer_of(_METADATA.parameter(name), env.param(name))


def _state(env: Environment) -> StateFile:
    """The mark of a started resource on this node: the only thing a probe looks at."""
    return StateFile(env, AGENT_NAME)
