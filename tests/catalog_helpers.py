"""Helpers for the bacula-catalog tests: a minimal director configuration and agent runs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacula_ha.bacula.layout import DEBIAN, Layout
from testkit.sandbox.postgres import CatalogInfo
from testkit.sandbox.server import SandboxServer
from tests.fixtures_agents import AgentRun
from tests.fixtures_db import MARIADB_PASSWORD, PG_PASSWORD

AGENT = Path(__file__).resolve().parent.parent / "agents" / "bacula-catalog"


@dataclass(frozen=True)
class CatalogEntry:
    """One Catalog resource to write into a director configuration."""

    name: str
    db_name: str
    user: str
    password: str
    address: str = ""
    port: int | None = None
    socket: str = ""


def write_director_conf(path: Path, catalogs: Sequence[CatalogEntry]) -> Path:
    """A director configuration that bdirjson accepts, holding the given Catalog resources."""
    work = path.parent
    blocks = []
    for c in catalogs:
        quoted = c.password.replace("\\", "\\\\").replace('"', '\\"')
        lines = [f"  Name = {c.name}", f'  dbname = "{c.db_name}"', f'  dbuser = "{c.user}"']
        lines.append(f'  dbpassword = "{quoted}"')
        if c.address:
            lines.append(f'  DB Address = "{c.address}"')
        if c.port:
            lines.append(f"  DB Port = {c.port}")
        if c.socket:
            lines.append(f'  DB Socket = "{c.socket}"')
        blocks.append("Catalog {\n" + "\n".join(lines) + "\n}\n")
    first = catalogs[0].name if catalogs else "none"
    path.write_text(
        f"""Director {{
  Name = test-dir
  DIRport = 19101
  QueryFile = "/etc/bacula/scripts/query.sql"
  WorkingDirectory = "{work}"
  PidDirectory = "{work}"
  Password = "dirpw"
  Messages = Standard
}}
{"".join(blocks)}Messages {{
  Name = Standard
}}
Client {{
  Name = test-fd
  Address = 127.0.0.1
  Password = "fdpw"
  Catalog = {first}
}}
Storage {{
  Name = test-sd
  Address = 127.0.0.1
  Password = "sdpw"
  Device = dev
  Media Type = File
}}
Pool {{
  Name = Default
  Pool Type = Backup
}}
FileSet {{
  Name = Set
  Include {{
    File = /etc/hostname
  }}
}}
Job {{
  Name = Backup
  Type = Backup
  Client = test-fd
  FileSet = Set
  Storage = test-sd
  Pool = Default
  Messages = Standard
}}
"""
    )
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Outcome(AgentRun):
    """One agent run (its exit reason as AgentRun reads it), and how long it took."""

    seconds: float


def run_agent(
    action: str,
    params: Mapping[str, str],
    rsctmp: Path,
    *,
    depth: int = 0,
    interval_ms: int | None = 10_000,
    timeout_ms: int = 20_000,
    instance: str = "cat",
    extra_env: Mapping[str, str] | None = None,
) -> Outcome:
    """Run the agent as Pacemaker would (a recurring monitor unless interval_ms is None/0)."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESOURCE_INSTANCE": instance,
        "OCF_RESOURCE_TYPE": "bacula-catalog",
        "OCF_RESOURCE_PROVIDER": "bacula",
        "HA_RSCTMP": str(rsctmp),
        "OCF_CHECK_LEVEL": str(depth),
        "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms),
    }
    if interval_ms:
        env["OCF_RESKEY_CRM_meta_interval"] = str(interval_ms)
    env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    env.update(extra_env or {})
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(AGENT), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_ms / 1000 + 30,
        check=False,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def director_params(
    directory: Path, info: CatalogInfo, *, tcp: bool = True, **extra: str
) -> dict[str, str]:
    """Agent parameters reaching `info` through a director configuration (TCP or socket)."""
    conf = directory / f"bacula-dir-{info.db_name}.conf"
    if tcp:
        entry = CatalogEntry(
            "MyCatalog", info.db_name, info.db_user, info.db_password, "127.0.0.1", info.port
        )
    elif info.socket:  # MariaDB: the socket file
        entry = CatalogEntry(
            "MyCatalog", info.db_name, info.db_user, info.db_password, socket=info.socket
        )
    else:  # PostgreSQL: the socket directory as the address
        entry = CatalogEntry(
            "MyCatalog", info.db_name, info.db_user, info.db_password, info.host, info.port
        )
    write_director_conf(conf, [entry])
    return {"config": str(conf), **extra}


def started(params: Mapping[str, str], rsctmp: Path) -> dict[str, str]:
    """Start the resource (asserting success) so that monitors run the checks."""
    out = run_agent("start", params, rsctmp, interval_ms=None)
    assert out.code == 0, out.stderr
    return dict(params)


def assert_clean(out: Outcome) -> None:
    """No traceback, no internal error: a reason the admin can act on."""
    assert "Traceback" not in out.stderr
    assert "internal error" not in out.reason
    assert out.reason or out.code in (0, 7, 190)


def processes_mentioning(secret: str) -> list[str]:
    """Every process whose command line or environment holds `secret`."""
    hits = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for part in ("cmdline", "environ"):
            try:
                data = Path(f"/proc/{pid}/{part}").read_bytes()
            except OSError:
                continue
            if secret.encode() in data:
                hits.append(f"{pid}/{part}")
    return hits


# -- the backends ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Backend:
    """One database server as the tests see it: its fixtures, parameters and wording."""

    name: str  # the pytest id and the prefix of its fixtures in tests/fixtures_db.py
    password: str  # the shared catalog's: a string to look for in ps and logs
    params: Mapping[str, str]  # the agent parameters that select this backend
    client: str  # what the agent's client shows on its command line and in the debug log
    refused: str  # words of the reason when nothing listens
    auth_failed: str  # ... when the password is wrong
    no_database: str  # ... when database "nosuchdb" does not exist
    table: str  # a table the depth-10 check needs (dropped: the reason names it)
    slow_insert: str  # SQL: every insert into Counters sleeps 0.5 s, as on a slow disk
    drop_database: str  # SQL with {name}

    def fixture(self, request: pytest.FixtureRequest, what: str) -> object:
        """This backend's `server`, `catalog` or `spare` fixture of tests/fixtures_db.py."""
        return request.getfixturevalue(f"{self.name}_{what}")


POSTGRES = Backend(
    name="pg",
    password=PG_PASSWORD,
    params={},
    client="psql",
    refused="refused",
    auth_failed="password authentication failed",
    no_database='database "nosuchdb" does not exist',
    table="JobMedia",
    slow_insert=(
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END$$;"
        " CREATE TRIGGER slow BEFORE INSERT ON counters FOR EACH ROW EXECUTE FUNCTION slow();"
    ),
    drop_database="DROP DATABASE IF EXISTS {name} WITH (FORCE)",
)
MARIADB = Backend(
    name="mariadb",
    password=MARIADB_PASSWORD,
    params={"backend": "mysql"},
    client="--defaults-extra-file",  # the client reads its password from a file, never argv
    refused="Can't connect",
    auth_failed="Access denied",
    no_database="nosuchdb",
    table="Media",
    slow_insert=(
        "CREATE TRIGGER slow BEFORE INSERT ON Counters FOR EACH ROW SET @slept = SLEEP(0.5)"
    ),
    drop_database="DROP DATABASE IF EXISTS {name}",
)


@contextlib.contextmanager
def scratch_catalog_on(
    server: SandboxServer, backend: Backend, install: Layout = DEBIAN
) -> Iterator[CatalogInfo]:
    """A catalog of its own on a shared server, for a test that breaks it; dropped after.
    Made by the catalog scripts of `install` (Debian's 9.6 by default)."""
    name = f"scratch_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    info = server.create_bacula_catalog(name, "bacula", backend.password, install=install)
    try:
        yield info
    finally:
        server.sql(backend.drop_database.format(name=name))
