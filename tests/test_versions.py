"""Bacula versions and install layouts (bacula.versions, bacula.layout): pure logic, and the
version read from a stand-in binary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bacula_ha.bacula import layout, versions
from bacula_ha.bacula.versions import Version
from bacula_ha.ocf.deadline import Deadline


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Version: 9.6.7 (10 December 2020)", Version(9, 6, 7)),
        ("13.0.3", Version(13, 0, 3)),
        ("  Version: 15.0.2 (21 March 2024) ", Version(15, 0, 2)),
        ("Version: 13.0", None),
        ("Version: x.y.z", None),
        ("", None),
        ("Version: ١٣.0.3", None),  # digits, but not ASCII ones
    ],
)
def test_version_parse(text: str, expected: Version | None) -> None:
    assert Version.parse(text) == expected


def test_lines_know_the_schema_and_the_filename_table() -> None:
    old = versions.line_of(Version(9, 6, 7))
    new = versions.line_of(Version(13, 0, 3))
    assert old is not None and old.schema == 16 and "Filename" in old.tables and old.tested
    assert new is not None and new.schema == 1024 and "Filename" not in new.tables
    assert new.tested and new.tls_psk and not old.tls_psk
    assert versions.line_of(Version(11, 0, 6)).schema == 1022  # type: ignore[union-attr]
    assert versions.line_of(Version(15, 0, 2)).schema == 1026  # type: ignore[union-attr]
    assert versions.line_of(Version(7, 4, 7)) is None
    assert versions.expected_tables(Version(7, 4, 7)) == versions.UNKNOWN_TABLES
    assert "Filename" not in versions.expected_tables(None)


def test_caveats() -> None:
    assert versions.caveat(Version(13, 0, 3), "/b") == ""
    assert versions.caveat(Version(9, 6, 7), "/b") == ""
    assert "sources only" in versions.caveat(Version(15, 0, 2), "/b")
    assert "not a version bacula-ha knows" in versions.caveat(Version(17, 0, 1), "/b")
    assert "cannot tell" in versions.caveat(None, "/b")


def _standin(path: Path, version: str, stream: str = ">&2") -> None:
    path.write_text(
        f"#!/bin/sh\necho 'Copyright (C) 2000-2023 Kern Sibbald.' {stream}\n"
        f"echo '' {stream}\necho 'Version: {version} (02 May 2023)' {stream}\n"
        f"echo called >> {path}.calls\nexit 1\n"
    )
    path.chmod(0o755)


def test_daemon_version_is_read_once_and_cached_by_inode_size_mtime(tmp_path: Path) -> None:
    binary = tmp_path / "bacula-dir"
    _standin(binary, "13.0.3")
    cache = tmp_path / "cache"
    cache.mkdir()
    for _ in range(3):
        found = versions.daemon_version(
            str(binary), deadline=Deadline.after(10), cache_dir=str(cache)
        )
        assert found == Version(13, 0, 3)
    assert (tmp_path / "bacula-dir.calls").read_text().count("called") == 1
    # Another process (an empty memo) reads the file cache, not the binary.
    versions._SEEN.clear()
    assert versions.daemon_version(
        str(binary), deadline=Deadline.after(10), cache_dir=str(cache)
    ) == Version(13, 0, 3)
    assert (tmp_path / "bacula-dir.calls").read_text().count("called") == 1
    # An upgrade changes the binary: read again.
    _standin(binary, "15.0.2", stream="")
    os.utime(binary, ns=(1, 1))
    found = versions.daemon_version(str(binary), deadline=Deadline.after(10), cache_dir=str(cache))
    assert found == Version(15, 0, 2)
    assert versions.daemon_version(str(tmp_path / "none"), deadline=Deadline.after(5)) is None


def test_daemon_version_of_something_else(tmp_path: Path) -> None:
    binary = tmp_path / "bacula-dir"
    binary.write_text("#!/bin/sh\necho hello\n")
    binary.chmod(0o755)
    assert versions.daemon_version(str(binary), deadline=Deadline.after(5)) is None


def test_layouts(tmp_path: Path) -> None:
    assert layout.of_binary("/usr/sbin/bacula-dir") == layout.DEBIAN
    prefix = tmp_path / "opt" / "bacula"
    for sub in ("bin", "etc", "scripts"):
        (prefix / sub).mkdir(parents=True)
    found = layout.of_binary(str(prefix / "bin" / "bacula-dir"))
    assert found == layout.under(str(prefix))
    assert found.scripts == str(prefix / "scripts") and found.libdir == str(prefix / "lib")
    assert found.conf("bconsole.conf") == str(prefix / "etc" / "bconsole.conf")
    # A binary elsewhere: its own directory for the tools, Debian's for the rest.
    odd = layout.of_binary("/usr/local/bin/bacula-dir")
    assert odd.bindir == "/usr/local/bin" and odd.scripts == layout.DEBIAN.scripts
    tool = prefix / "bin" / "bdirjson"
    assert (
        layout.tool_beside(str(prefix / "bin" / "bacula-dir"), "bdirjson") == "/usr/sbin/bdirjson"
    )
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert layout.tool_beside(str(prefix / "bin" / "bacula-dir"), "bdirjson") == str(tool)


def test_layout_of_a_configuration_directory(tmp_path: Path) -> None:
    prefix = tmp_path / "opt" / "bacula"
    (prefix / "etc").mkdir(parents=True)
    # Without bin/ beside it, an etc/ is not an install of its own.
    assert layout.of_config_dir(str(prefix / "etc")) == layout.DEBIAN
    (prefix / "bin").mkdir()
    assert layout.of_config_dir(str(prefix / "etc") + "/") == layout.under(str(prefix))
    assert layout.of_config_dir("/etc/bacula") == layout.DEBIAN
    assert layout.of_config_dir("/usr/etc") == layout.DEBIAN


def test_the_13_builds_selected_backend() -> None:
    # scripts/build-bacula's build has both catalog libraries; libbaccats.so's chain of links
    # ends at the one its install selected (PostgreSQL, configure's first).
    from bacula_ha.bacula import catalog

    from .fixtures_agents import bacula13_prefix

    prefix = bacula13_prefix()
    if prefix is None:
        pytest.skip("Bacula 13.0.3 is not built")
    lib = layout.under(prefix).libdir
    assert os.path.exists(os.path.join(lib, "libbaccats-mysql-13.0.3.so"))
    assert catalog.installed_backend(lib) == catalog.POSTGRESQL
