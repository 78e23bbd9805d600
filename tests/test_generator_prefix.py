"""`[bacula] prefix`: bacula.org's /opt/bacula layout in every generated Bacula agent's params."""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacula_ha.generator.cli import generate
from bacula_ha.generator.generate import generate_text
from bacula_ha.site.errors import SiteError

SITE = """\
[site]
name = "p"

[[node]]
name = "n1"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/tmp/n1" } }

[[node]]
name = "n2"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/tmp/n2" } }

[confsync]
params = { targets = "n1 n2", user = "root" }

[[director]]
name = "dir1"
preferred = "n1"
standby = "n2"
vip = { ip = "10.1.0.10", cidr_netmask = 24 }
params = { job_wait = 30 }

[director.catalog]
backend = "postgresql"
vip = { ip = "10.1.0.11", cidr_netmask = 24 }
disk = { type = "shared", device = "/dev/loop7", fstype = "ext4", directory = "/srv/cat" }
database = { agent = "pgsql", params = { pgdata = "/srv/cat/data" } }

[[storage]]
name = "sd1"
preferred = "n1"
standby = "n2"
vip = { ip = "10.1.0.12" }

[[filedaemon]]
name = "fd1"
preferred = "n2"
standby = "n1"
vip = { ip = "10.1.0.13" }
"""

P = "/opt/bacula"
# What the prefix must give each agent (the catalog's `binary` is the director's).
PREFIXED = {
    "dir1-dir": {
        "binary": f"{P}/bin/bacula-dir",
        "config": f"{P}/etc/bacula-dir.conf",
        "bconsole": f"{P}/bin/bconsole",
        "bconsole_config": f"{P}/etc/bconsole.conf",
    },
    "dir1-cat-catalog": {
        "binary": f"{P}/bin/bacula-dir",
        "config": f"{P}/etc/bacula-dir.conf",
    },
    "dir1-confsync": {"paths": f"{P}/etc"},
    "sd1-sd": {"binary": f"{P}/bin/bacula-sd", "config": f"{P}/etc/bacula-sd.conf"},
    "fd1-fd": {"binary": f"{P}/bin/bacula-fd", "config": f"{P}/etc/bacula-fd.conf"},
}
PATH_PARAMS = ("binary", "config", "bconsole", "bconsole_config", "paths")


def with_prefix(text: str, prefix: str = P, *, line: str | None = None) -> str:
    return text + "\n[bacula]\n" + (line or f'prefix = "{prefix}"') + "\n"


def site_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def crm_params(text: str) -> dict[str, dict[str, str]]:
    """The params of every ocf:bacula primitive in crm shell text."""
    out = {}
    for m in re.finditer(r"^primitive (\S+) ocf:bacula:\S+ \\\n    (.*) \\$", text, re.M):
        words = shlex.split(m.group(2))
        params = words[1:] if words[0] == "params" else []
        out[m.group(1)] = dict(w.split("=", 1) for w in params)
    return out


def pcs_params(text: str) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """The params of every ocf:bacula resource in a pcs script: its pcs commands, its CIB XML."""
    commands = {}
    for m in re.finditer(r"^run resource create (\S+) ocf:bacula:\S+ \\\n    (.*) \\$", text, re.M):
        params = [] if m.group(2).startswith("op ") else shlex.split(m.group(2))
        commands[m.group(1)] = dict(w.split("=", 1) for w in params)
    xml = text.split("<<'BACULA_HA_CIB'\n", 1)[1].split("\nBACULA_HA_CIB", 1)[0]
    return commands, cib_params(xml)


def cib_params(xml: str) -> dict[str, dict[str, str]]:
    root = ET.fromstring(xml)
    return {
        prim.get("id", ""): {
            nv.get("name", ""): nv.get("value", "")
            for nv in prim.iterfind("./instance_attributes/nvpair")
        }
        for prim in root.iter("primitive")
        if prim.get("provider") == "bacula"
    }


def all_formats(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    commands, xml = pcs_params(generate_text(path, "pcs"))
    return {
        "crm": crm_params(generate_text(path, "crm")),
        "pcs": commands,
        "pcs-xml": xml,
        "cib": cib_params(generate_text(path, "cib")),
    }


def test_the_prefix_sets_every_agents_paths_in_every_format(tmp_path: Path) -> None:
    formats = all_formats(site_file(tmp_path, with_prefix(SITE)))
    for fmt, found in formats.items():
        assert set(found) == set(PREFIXED), fmt
        for rid, wanted in PREFIXED.items():
            paths = {k: v for k, v in found[rid].items() if k in PATH_PARAMS}
            assert paths == wanted, (fmt, rid)
        # The component's other params are still there.
        assert found["dir1-dir"]["job_wait"] == "30", fmt
        assert found["dir1-confsync"]["targets"] == "n1 n2", fmt
        assert found["dir1-cat-catalog"]["backend"] == "postgresql", fmt


def test_without_the_prefix_the_agents_keep_their_own_defaults(tmp_path: Path) -> None:
    plain = site_file(tmp_path, SITE)
    for fmt, found in all_formats(plain).items():
        for rid in PREFIXED:
            assert not set(found[rid]) & set(PATH_PARAMS), (fmt, rid)
    # An empty [bacula] table is Debian's layout too: the very same output.
    empty = tmp_path / "empty.toml"
    empty.write_text(SITE + "\n[bacula]\n")
    for fmt in ("crm", "pcs", "cib"):
        assert generate_text(empty, fmt) == generate_text(plain, fmt).replace(
            str(plain), str(empty)
        ), fmt


def test_the_components_own_params_win(tmp_path: Path) -> None:
    text = (
        SITE.replace("params = { job_wait = 30 }", 'params = { config = "/srv/dir.conf" }')
        .replace('targets = "n1 n2"', 'targets = "n1 n2", paths = "/srv/etc /srv/more"')
        .replace(
            'vip = { ip = "10.1.0.12" }',
            'vip = { ip = "10.1.0.12" }\nparams = { binary = "/usr/local/sbin/bacula-sd" }',
        )
        .replace(
            'database = { agent = "pgsql"',
            'params = { binary = "/srv/13/bin/bacula-dir" }\ndatabase = { agent = "pgsql"',
        )
    )
    for fmt, found in all_formats(site_file(tmp_path, with_prefix(text))).items():
        assert found["dir1-dir"]["config"] == "/srv/dir.conf", fmt
        assert found["dir1-dir"]["binary"] == f"{P}/bin/bacula-dir", fmt
        assert found["dir1-dir"]["bconsole_config"] == f"{P}/etc/bconsole.conf", fmt
        assert found["dir1-confsync"]["paths"] == "/srv/etc /srv/more", fmt
        assert found["sd1-sd"]["binary"] == "/usr/local/sbin/bacula-sd", fmt
        assert found["sd1-sd"]["config"] == f"{P}/etc/bacula-sd.conf", fmt
        assert found["dir1-cat-catalog"]["binary"] == "/srv/13/bin/bacula-dir", fmt
        assert found["dir1-cat-catalog"]["config"] == f"{P}/etc/bacula-dir.conf", fmt
    # Each name once: the prefix adds only what is missing.
    crm = generate_text(tmp_path / "site.toml", "crm")
    line = next(x for x in crm.splitlines() if x.startswith('    params config="/srv/dir.conf"'))
    assert line.count(" config=") == 1 and line.count(" binary=") == 1


def test_another_prefix(tmp_path: Path) -> None:
    found = all_formats(site_file(tmp_path, with_prefix(SITE, "/srv/bacula-13.0.3")))["cib"]
    assert found["dir1-confsync"]["paths"] == "/srv/bacula-13.0.3/etc"
    assert found["fd1-fd"]["binary"] == "/srv/bacula-13.0.3/bin/bacula-fd"


BAD = [
    pytest.param('prefix = "opt/bacula"', "'opt/bacula' is not an absolute path", id="relative"),
    pytest.param(
        'prefix = "/opt/bacula/"', "is not normalised (write '/opt/bacula')", id="trailing-slash"
    ),
    pytest.param('prefix = "/opt/../bacula"', "(write '/bacula')", id="dotdot"),
    pytest.param('prefix = "/opt//bacula"', "(write '/opt/bacula')", id="double-slash"),
    pytest.param('prefix = "//opt/bacula"', "(write '/opt/bacula')", id="leading-double"),
    pytest.param('prefix = "/opt/my bacula"', "holds a character other than", id="blank"),
    pytest.param('prefix = "/"', "cannot be a prefix", id="root"),
    pytest.param('prefix = ""', "must not be empty", id="empty"),
    pytest.param("prefix = 13", "must be a string, not int", id="number"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_a_bad_prefix_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = site_file(tmp_path, with_prefix(SITE, line=line))
    number = path.read_text().splitlines().index(line) + 1
    with pytest.raises(SiteError) as info:
        generate_text(path, "crm")
    (problem,) = str(info.value).splitlines()
    assert problem.startswith(f"{path}:{number}: bacula.prefix: "), problem
    assert message in problem
    # The command line prints it and writes nothing.
    out = tmp_path / "out.crm"
    result = CliRunner().invoke(generate, [str(path), "--format", "pcs", "-o", str(out)])
    assert result.exit_code == 1 and f"{path}:{number}: bacula.prefix: " in result.output
    assert not out.exists()


def test_unknown_keys_in_the_bacula_section(tmp_path: Path) -> None:
    path = site_file(tmp_path, with_prefix(SITE, line='prefx = "/opt/bacula"'))
    number = len(path.read_text().splitlines())
    with pytest.raises(SiteError) as info:
        generate_text(path, "crm")
    assert f"{path}:{number}: bacula.prefx: unknown key (allowed: prefix)" in str(info.value)
    path.write_text('bacula = "/opt/bacula"\n' + SITE)
    with pytest.raises(SiteError) as info:
        generate_text(path, "crm")
    assert "bacula: must be a table, not a string" in str(info.value)
