"""Validation of site descriptions: every kind of bad input is named with file, line and field."""
# ruff: noqa: E501  (TOML site text and long parametrised cases read better unwrapped)

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacula_ha.generator.cli import generate
from bacula_ha.generator.plan import build
from bacula_ha.site.errors import SiteError
from bacula_ha.site.parse import parse_site

BASE = """\
[site]
name = "t"

[[node]]
name = "n1"
dc = "a"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/tmp/n1" } }

[[node]]
name = "n2"
dc = "b"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/tmp/n2" } }

[[director]]
name = "dir"
preferred = "n1"
standby = "n2"
vip = { ip = "10.1.0.10", cidr_netmask = 24 }

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
disk = { type = "drbd", drbd_resource = "r1", device = "/dev/drbd1", fstype = "xfs", directory = "/srv/sd1" }
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SiteError) as info:
        build(parse_site(text, "site.toml"))
    return str(info.value).splitlines()


def one(text: str, pattern: str) -> str:
    found = problems(text)
    assert any(re.search(pattern, p) for p in found), found
    return next(p for p in found if re.search(pattern, p))


def test_base_site_is_valid() -> None:
    plan = build(parse_site(BASE))
    assert "dir-group" in plan.ids() and "dir-cat-group" in plan.ids()


def test_unknown_key_names_file_line_and_field() -> None:
    text = BASE.replace('vip = { ip = "10.1.0.12" }', 'vip = { ip = "10.1.0.12" }\ncolour = "red"')
    line = one(text, r"colour")
    number = text.splitlines().index('colour = "red"') + 1
    assert line.startswith(f"site.toml:{number}: storage[0].colour: unknown key"), line


def test_unknown_key_in_catalog_subtable() -> None:
    text = BASE.replace('backend = "postgresql"', 'backend = "postgresql"\nbackedn = 1')
    number = text.splitlines().index("backedn = 1") + 1
    assert one(text, "backedn").startswith(f"site.toml:{number}: director[0].catalog.backedn")


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        (
            'ip = "10.1.0.12"',
            'ip = "10.1.0.300"',
            r"storage\[0\]\.vip\.ip: '10.1.0.300' is not an IP",
        ),
        (
            'ip = "10.1.0.12"',
            'ip = "10.1.0.12", cidr_netmask = 33',
            r"vip\.cidr_netmask: 33 is too long",
        ),
        (
            'ip = "10.1.0.12"',
            'ip = "10.1.0.12", cidr_netmask = "24"',
            r"cidr_netmask: must be an integer",
        ),
        ('name = "sd1"', 'name = "sd 1"', r"storage\[0\]\.name: 'sd 1' is not a valid name"),
        ('name = "sd1"', 'name = "1sd"', r"is not a valid name"),
        ('name = "sd1"', 'name = "dir"', r"the name 'dir' is used twice"),
        ('ip = "10.1.0.12"', 'ip = "10.1.0.10"', r"10\.1\.0\.10 is already used by dir"),
        (
            'preferred = "n1"\nstandby = "n2"\nvip = { ip = "10.1.0.12" }',
            'preferred = "n3"\nstandby = "n2"\nvip = { ip = "10.1.0.12" }',
            r"storage\[0\]\.preferred: there is no node 'n3'",
        ),
        ('device = "/dev/drbd1"', 'device = "/dev/loop7"', r"device /dev/loop7 is already used"),
        ('type = "drbd"', 'type = "iscsi"', r"'iscsi' is not one of: drbd, shared"),
        ('agent = "pgsql"', 'agent = "mysql"', r"'mysql' does not serve postgresql"),
        (
            'agent = "pgsql"',
            'agent = "pgsqlms", replicated = false',
            r"always manages a replicated",
        ),
        ('directory = "/srv/sd1"', 'directory = "srv/sd1"', r"is not an absolute path"),
        (
            "[[storage]]",
            '[[storage]]\nops.storage.monitor = { interval = "soon" }',
            r"'soon' is not a duration",
        ),
        (
            "[[storage]]",
            "[[storage]]\nops.storage.start = { interval = 5 }",
            r"start is not a recurring operation",
        ),
        (
            "[[storage]]",
            "[[storage]]\nops.storage.monitor = { interval = 31 }",
            r"both recur every 31s",
        ),
        (
            "[[storage]]",
            '[[storage]]\nparams = { configfile = "/x" }',
            r"bacula-sd has no parameter 'configfile'",
        ),
        ("[[storage]]", '[[storage]]\nparams = { "bad name" = "/x" }', r"is not a parameter name"),
        (
            'fence = { agent = "fence_dummy", params = { type = "file", status_file = "/tmp/n1" } }',
            "",
            # At the node's header (the key is missing), once: not again as "every node needs one".
            r"node\[0\]: fence is required",
        ),
        (
            'agent = "fence_dummy", params = { type = "file", status_file = "/tmp/n1" }',
            'agent = "rm -rf /"',
            r"is not a fence agent name",
        ),
        (
            'name = "t"',
            'name = "t"\nproperties = { stonith-enabled = "false" }',
            r"is set by the generator",
        ),
    ],
)
def test_bad_input_is_named(old: str, new: str, pattern: str) -> None:
    assert old in BASE
    line = one(BASE.replace(old, new, 1), pattern)
    assert line.startswith("site.toml:"), line


def test_standby_must_be_in_the_other_data_centre() -> None:
    text = BASE.replace(
        "[[director]]",
        '[[node]]\nname = "n3"\ndc = "a"\nfence = { agent = "fence_dummy" }\n\n[[director]]',
        1,
    )
    build(parse_site(text))
    bad = text.replace(
        'preferred = "n1"\nstandby = "n2"\nvip = { ip = "10.1.0.12" }',
        'preferred = "n1"\nstandby = "n3"\nvip = { ip = "10.1.0.12" }',
    )
    one(bad, r"storage\[0\]\.standby: 'n3' is in the same data centre \(a\)")


def test_drbd_resource_used_twice() -> None:
    text = BASE + (
        '\n[[storage]]\nname = "sd2"\npreferred = "n2"\nstandby = "n1"\n'
        'vip = { ip = "10.1.0.13" }\ndisk = { type = "drbd", drbd_resource = "r1", '
        'device = "/dev/drbd2", fstype = "xfs", directory = "/srv/sd2" }\n'
    )
    line = one(text, "DRBD resource r1 is already used by sd1")
    assert line.startswith(f"site.toml:{len(text.splitlines())}: storage[1].disk.drbd_resource")


def test_drbd_device_used_twice() -> None:
    text = BASE + (
        '\n[[storage]]\nname = "sd2"\npreferred = "n2"\nstandby = "n1"\n'
        'vip = { ip = "10.1.0.13" }\ndisk = { type = "drbd", drbd_resource = "r2", '
        'device = "/dev/drbd1", fstype = "xfs", directory = "/srv/sd2" }\n'
    )
    one(text, r"storage\[1\]\.disk\.device: device /dev/drbd1 is already used by sd1")


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = BASE.replace('ip = "10.1.0.12"', 'ip = "nope"').replace('name = "sd1"', 'name = "-x"')
    found = problems(text)
    assert any("nope" in p for p in found) and any("'-x'" in p for p in found), found


def test_with_catalog_requires_the_same_nodes() -> None:
    text = BASE.replace(
        'backend = "postgresql"', 'backend = "postgresql"\npreferred = "n2"\nstandby = "n1"'
    )
    one(text, r"director\[0\]\.with_catalog: .*same preferred and standby")
    build(
        parse_site(text.replace("[director.catalog]", "with_catalog = false\n\n[director.catalog]"))
    )


def test_plan_problems_have_lines_too() -> None:
    text = BASE.replace("[[storage]]", "[[storage]]\nops.storage.monitor = { interval = 31 }")
    number = text.splitlines().index("ops.storage.monitor = { interval = 31 }") + 1
    line = one(text, "both recur every 31s")
    assert line.startswith(f"site.toml:{number}: storage[0].ops.storage: sd1-sd:"), line
    text = BASE.replace("[[storage]]", "[[storage]]\nops.vip.monitor_promoted = { timeout = 5 }")
    number = text.splitlines().index("ops.vip.monitor_promoted = { timeout = 5 }") + 1
    line = one(text, "has no such operation")
    assert line.startswith(f"site.toml:{number}: storage[0].ops.vip.monitor_promoted:"), line


def test_invalid_toml_names_the_line() -> None:
    text = BASE.replace('name = "sd1"', "name = sd1")
    number = text.splitlines().index("name = sd1") + 1
    found = problems(text)
    assert found[0].startswith(f"site.toml:{number}: not valid TOML"), found


@pytest.mark.parametrize("bad", ["a\nb", "a\tb", "a\rb", "\x1b[31m"])
def test_control_characters_are_refused(bad: str) -> None:
    escaped = json.dumps(bad)[1:-1]  # a JSON string escape is a TOML one
    text = BASE.replace('directory = "/srv/sd1"', f'directory = "/srv/{escaped}"')
    one(text, r"storage\[0\]\.disk\.directory: .*contains a control character")


def test_cli_prints_nothing_as_configuration_when_invalid(tmp_path: Path) -> None:
    site = tmp_path / "bad.toml"
    site.write_text(BASE.replace('ip = "10.1.0.12"', 'ip = "10.1.0.999"'))
    out = tmp_path / "out.crm"
    result = CliRunner().invoke(generate, [str(site), "--format", "crm", "-o", str(out)])
    assert result.exit_code == 1
    assert f"{site}:" in result.output and "10.1.0.999" in result.output
    assert not out.exists()
    result = CliRunner().invoke(generate, [str(site), "--format", "pcs"])
    assert result.exit_code == 1
    assert "run " not in result.output and "primitive" not in result.output


def test_cli_missing_file_is_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(generate, [str(tmp_path / "none.toml"), "--format", "crm"])
    assert result.exit_code == 1 and result.stderr == f"{tmp_path / 'none.toml'}: no such file\n"
    assert "Traceback" not in result.output


def test_cli_writes_output_file(tmp_path: Path) -> None:
    site = tmp_path / "ok.toml"
    site.write_text(BASE)
    out = tmp_path / "out.sh"
    result = CliRunner().invoke(generate, [str(site), "--format", "pcs", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("#!/bin/sh\n")


def test_op_overrides_apply_site_then_component() -> None:
    text = BASE.replace(
        "[[node]]", '[ops.storage.monitor]\ninterval = "12s"\ntimeout = 25\n\n[[node]]', 1
    )
    text = text.replace("[[storage]]", '[[storage]]\nops.storage.monitor = { timeout = "40s" }')
    plan = build(parse_site(text))
    sd = next(m for b in plan.blocks for g in b.groups for m in g.members if m.id == "sd1-sd")
    first = next(o for o in sd.ops if o.name == "monitor")
    assert (first.interval, first.timeout) == (12, 40)
    depths = sorted(o.depth or 0 for o in sd.ops if o.name == "monitor")
    assert depths[0] == 0 and depths[-1] > 0, "a shallow and a deep monitor"
    intervals = [o.interval for o in sd.ops if o.name == "monitor"]
    assert len(set(intervals)) == len(intervals)


def test_two_node_site_delays_fencing_of_the_first_node() -> None:
    plan = build(parse_site(BASE))
    fence = {p.id: dict(p.params) for p in plan.blocks[0].primitives}
    assert fence["fence-n1"]["pcmk_delay_base"] == "5s"
    assert "pcmk_delay_base" not in fence["fence-n2"]
    assert fence["fence-n2"]["pcmk_host_list"] == "n2"


def test_sync_standby_names_needs_the_postgresql_backend() -> None:
    # The catalog agent's rule across two parameters, before the CIB (its 6 otherwise).
    text = BASE.replace('backend = "postgresql"', 'backend = "mysql"').replace(
        'agent = "pgsql", params = { pgdata = "/srv/cat/data" }', 'agent = "mysql"'
    )
    text = text.replace(
        'backend = "mysql"', 'backend = "mysql"\nparams = { sync_standby_names = "n2" }'
    )
    number = text.splitlines().index('params = { sync_standby_names = "n2" }') + 1
    assert one(text, "sync_standby_names") == (
        f"site.toml:{number}: director[0].catalog.params.sync_standby_names: "
        "is for the postgresql backend only"
    )
    # The same parameter with the postgresql backend is fine.
    fine = BASE.replace(
        'backend = "postgresql"', 'backend = "postgresql"\nparams = { sync_standby_names = "n2" }'
    )
    assert "dir-cat-group" in build(parse_site(fine)).ids()
