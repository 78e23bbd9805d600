"""Pure logic of bacula-catalog: parsing, error text, password files, settings, parameters."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bacula_ha.agents.catalog import AGENT, Config
from bacula_ha.bacula import catalog as cat
from bacula_ha.bacula.files import config_sources, signature
from bacula_ha.ocf import params as P
from bacula_ha.ocf.env import Environment
from bacula_ha.ocf.errors import NotConfiguredError
from bacula_ha.ocf.log import Logger


def test_parse_keeps_key_value_lines_only() -> None:
    assert cat.parse_answer("ready=1\nnoise\nrecovery=f\ntables=a,b\n") == {
        "ready": "1",
        "recovery": "f",
        "tables": "a,b",
    }


@pytest.mark.parametrize(
    ("rows", "read_only"),
    [
        ("read_only\tOFF\ntx_read_only\tOFF\n", "0"),
        ("read_only\tON\ntx_read_only\tOFF\n", "1"),
        ("innodb_read_only\tOFF\ntransaction_read_only\tON\n", "1"),
        ("read_only\tOFF\nsuper_read_only\tON\n", "1"),
    ],
)
def test_parse_mysql_read_only_variables(rows: str, read_only: str) -> None:
    found = cat.parse_answer(f"ready=1\nrecovery=0\n{rows}read_only=shown\n")
    assert found["read_only"] == read_only


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            'psql: error: connection to server at "127.0.0.1", port 5999 failed: FATAL:  '
            'password authentication failed for user "bacula"',
            'password authentication failed for user "bacula"',
        ),
        (
            "psql:<stdin>:5: ERROR:  permission denied for table counters",
            "permission denied for table counters",
        ),
        (
            "ERROR 1045 (28000): Access denied for user 'bacula'@'localhost' (using password: YES)",
            "Access denied for user 'bacula'@'localhost' (using password: YES)",
        ),
        (
            "ERROR 1146 (42S02) at line 7: Table 'b.Version' doesn't exist",
            "Table 'b.Version' doesn't exist",
        ),
        ("", ""),
    ],
)
def test_client_error_keeps_the_cause(stderr: str, expected: str) -> None:
    assert cat.client_error(stderr, "pw") == expected


def test_client_error_never_returns_the_password() -> None:
    assert "s3cret" not in cat.client_error("ERROR: role s3cret is odd", "s3cret")


@pytest.mark.parametrize(
    ("backend", "password", "expected"),
    [
        (cat.POSTGRESQL, "a:b\\c", "*:*:*:*:a\\:b\\\\c\n"),
        (cat.MYSQL, 'a"b\\c', '[client]\npassword="a\\"b\\\\c"\n'),
    ],
)
def test_password_file_is_private_escaped_and_removed(
    tmp_path: Path, backend: str, password: str, expected: str
) -> None:
    with cat._password_file(backend, password, str(tmp_path)) as path:
        assert Path(path).parent == tmp_path
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert Path(path).read_text() == expected
    assert not os.path.exists(path)


def test_password_file_removed_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), cat._password_file(cat.POSTGRESQL, "x", str(tmp_path)):
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_schema_version_from_the_table_script(tmp_path: Path) -> None:
    (tmp_path / "make_postgresql_tables").write_text(
        "INSERT INTO Version (VersionId) VALUES (1022);"
    )
    assert cat.scripted_schema_version(cat.POSTGRESQL, str(tmp_path)) == 1022
    assert cat.scripted_schema_version(cat.MYSQL, str(tmp_path)) is None
    (tmp_path / "make_mysql_tables").write_text("no version here")
    assert cat.scripted_schema_version(cat.MYSQL, str(tmp_path)) is None


def test_the_checks_script_asks_for_the_tables_it_is_given() -> None:
    for backend in cat.BACKENDS:
        options = cat.CheckOptions(depth=10, tables=("Job", "Filename"))
        script = cat._script(backend, options)
        assert ("'filename'" if backend == cat.POSTGRESQL else "'Filename'") in script
        without = cat._script(backend, cat.CheckOptions(depth=10, tables=("Job",)))
        assert "ilename'" not in without
        # No tables asked: still a valid IN list.
        assert "IN ('')" in cat._script(backend, cat.CheckOptions(depth=10))


def test_installed_backend(tmp_path: Path) -> None:
    (tmp_path / "libbaccats-mysql-9.6.7.so").write_text("")
    os.symlink("libbaccats-mysql-9.6.7.so", tmp_path / "libbaccats.so")
    assert cat.installed_backend(str(tmp_path)) == cat.MYSQL
    assert cat.installed_backend("/nonexistent") == cat.POSTGRESQL
    # bacula.org's builds carry both backends behind a generic libbaccats.so.
    both = tmp_path / "both"
    both.mkdir()
    for name in ("libbaccats-13.0.3.so", "libbaccats-mysql-13.0.3.so", "libbaccats-postgresql.so"):
        (both / name).write_text("")
    os.symlink("libbaccats-13.0.3.so", both / "libbaccats.so")
    assert cat.installed_backend(str(both)) == cat.POSTGRESQL


def test_pick_catalog() -> None:
    a = cat.CatalogSettings("A", "da", "u", "p")
    b = cat.CatalogSettings("B", "db", "u", "p")
    assert cat.pick_catalog([a, b], "", "f") is a
    assert cat.pick_catalog([a, b], "B", "f") is b
    with pytest.raises(NotConfiguredError, match="found: A, B"):
        cat.pick_catalog([a, b], "C", "f")
    with pytest.raises(NotConfiguredError):
        cat.pick_catalog([], "", "f")


def test_settings_repr_and_where_hide_the_password() -> None:
    s = cat.CatalogSettings("C", "bacula", "bacula", "TopSecret", "10.0.0.1", 5433)
    assert "TopSecret" not in repr(s) and "TopSecret" not in s.where()
    assert s.where() == "bacula@10.0.0.1:5433/bacula"
    # A socket directory (PostgreSQL) or file (MySQL) is said as a socket, never "dir:5432".
    pg = cat.CatalogSettings("c", "bacula", "bacula", "x", "/var/run/postgresql/", 5432)
    assert pg.where() == "bacula@socket /var/run/postgresql/.s.PGSQL.5432 (database bacula)"
    pg_default = cat.CatalogSettings("c", "db", "u", "x", "/run/pg")
    assert pg_default.where() == "u@socket /run/pg/.s.PGSQL.5432 (database db)"
    my = cat.CatalogSettings("c", "db", "u", "x", socket="/run/mysqld/mysqld.sock")
    assert my.where() == "u@socket /run/mysqld/mysqld.sock (database db)"
    assert cat.settings_from_dict(cat.settings_to_dict(s)) == s
    assert cat.settings_from_dict({"name": "x"}) is None


def test_config_sources_follow_includes(tmp_path: Path) -> None:
    inc = tmp_path / "catalog.conf"
    inc.write_text("Catalog { Name = C }\n")
    nested = tmp_path / "nested.conf"
    nested.write_text(f'@"{inc}"\n')
    main = tmp_path / "dir.conf"
    main.write_text(f"Director {{ Name = d }}\n@{nested}\nx = 1 # mail@example.org\n")
    assert config_sources(str(main)) == [str(main), str(nested), str(inc)]
    main.write_text("@/etc/bacula/conf.d/*.conf\n")
    assert config_sources(str(main)) is None  # a wildcard: cannot be cached
    main.write_text('@|"sh -c cat /x"\n')
    assert config_sources(str(main)) is None
    sig = signature([str(inc)])
    assert sig is not None and sig[str(inc)][1] == inc.stat().st_size
    assert signature([str(tmp_path / "missing")]) is None


def _configure(params: dict[str, str]) -> Config:
    environ = {f"OCF_RESKEY_{k}": v for k, v in params.items()}
    env = Environment.from_mapping(["x", "start"], environ, depths=AGENT.depths)
    # What the runner does first: the rules the meta-data declares (ocf.params.check_all).
    P.check_all(AGENT.metadata.parameters, env.params)
    return AGENT.configure(env, Logger.from_environ("t", {"HA_LOGFACILITY": "none"}))


def test_configure_defaults() -> None:
    config = _configure({})
    assert config.config == "/etc/bacula/bacula-dir.conf"
    assert config.backend == cat.POSTGRESQL
    assert config.client.endswith("/bin/psql") and config.client.startswith("/usr/lib/postgresql/")
    assert (config.connect_timeout, config.query_timeout, config.latency_threshold_ms) == (
        5,
        10,
        2000,
    )
    assert config.needs_director_config
    assert _configure({"backend": "mysql"}).client in ("/usr/bin/mariadb", "/usr/bin/mysql")


@pytest.mark.parametrize(
    "params",
    [
        {"backend": "sqlite"},
        {"db_port": "0"},
        {"db_port": "x"},
        {"connect_timeout": "0"},
        {"query_timeout": "-1"},
        {"latency_threshold": "fast"},
        {"schema_version": "sixteen"},
        {"client": "bin/psql"},
        {"password_file": "pw.txt"},
    ],
)
def test_configure_rejects_bad_parameters(params: dict[str, str]) -> None:
    with pytest.raises(NotConfiguredError):
        _configure(params)


def test_explicit_everything_skips_the_director_config() -> None:
    config = _configure({"db_name": "b", "db_user": "u", "password_file": "/etc/pw"})
    assert not config.needs_director_config
