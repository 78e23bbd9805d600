"""import-haresources: Heartbeat v1 lines from the Bacula HA guide become a site description."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacula_ha.generator.cli import import_haresources
from bacula_ha.generator.errors import HaresourcesError
from bacula_ha.generator.haresources import convert
from bacula_ha.generator.plan import build
from bacula_ha.generator.render import render
from bacula_ha.site.parse import parse_site

GUIDE = """\
# haresources as in the Bacula HA guide
bacula-dir1 IPAddr::10.0.0.2/24 bacula-dir httpd
bacula-sql1 IPAddr::10.0.0.1/24 drbddisk::postgres \\
    Filesystem::/dev/drbd0::/pgdata::ext3 postgresql
"""

FENCE = 'fence = { agent = "fence_dummy", params = { type = "file", status_file = "/tmp/x" } }'


def with_fencing(text: str) -> str:
    return "\n".join(FENCE if line.startswith("# fence = ") else line for line in text.splitlines())


def test_guide_example_maps_every_resource() -> None:
    text, warnings = convert(GUIDE, "haresources", [], "guide")
    site = tomllib.loads(text)
    assert [n["name"] for n in site["node"]] == ["bacula-dir1", "bacula-sql1"]
    (director,) = site["director"]
    assert director["preferred"] == "bacula-dir1" and director["standby"] == "bacula-sql1"
    assert director["vip"] == {"ip": "10.0.0.2", "cidr_netmask": 24}
    assert director["extra"] == [{"agent": "lsb:httpd"}]
    assert director["with_catalog"] is False
    catalog = director["catalog"]
    assert catalog["preferred"] == "bacula-sql1" and catalog["standby"] == "bacula-dir1"
    assert catalog["vip"]["ip"] == "10.0.0.1"
    assert catalog["disk"] == {
        "type": "drbd",
        "drbd_resource": "postgres",
        "device": "/dev/drbd0",
        "directory": "/pgdata",
        "fstype": "ext3",
    }
    assert catalog["database"] == {"agent": "pgsql"} and catalog["backend"] == "postgresql"
    assert any("httpd" in w and "lsb:httpd" in w for w in warnings)
    assert any("fencing" in w for w in warnings)


def test_imported_site_generates_once_fencing_is_added() -> None:
    text, _ = convert(GUIDE, "haresources", [], "guide")
    with pytest.raises(Exception, match="fence is required"):
        build(parse_site(text))
    plan = build(parse_site(with_fencing(text)))
    crm = render(plan, "crm")
    assert "primitive cat1-drbd ocf:linbit:drbd" in crm
    assert "clone cat1-drbd-clone cat1-drbd" in crm
    assert "primitive dir1-httpd lsb:httpd" in crm
    assert "primitive cat1-db ocf:heartbeat:pgsql" in crm
    assert "group dir1-group dir1-ip dir1-dir dir1-confsync dir1-httpd" in crm


def test_storage_and_file_daemons_and_shared_disks() -> None:
    text, _ = convert(
        "n1 10.0.0.5 Filesystem::/dev/sdb1::/srv/bacula::xfs::noatime bacula-sd\n"
        "n2 IPaddr2::10.0.0.6/16/eth1 bacula-fd\n",
        "h",
        [],
        "s",
    )
    site = tomllib.loads(text)
    assert site["storage"][0]["disk"] == {
        "type": "shared",
        "device": "/dev/sdb1",
        "directory": "/srv/bacula",
        "fstype": "xfs",
        "options": "noatime",
    }
    assert site["filedaemon"][0]["vip"] == {"ip": "10.0.0.6", "cidr_netmask": 16, "nic": "eth1"}
    assert site["filedaemon"][0]["standby"] == "n1"
    build(parse_site(with_fencing(text)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n1 IPAddr::10.0.0.2/24 bacula-dir\n", "give the standby with --node"),
        ("n1 IPAddr::10.0.0.999/24 bacula-dir\n", "is not an IP address"),
        ("n1 bacula-dir\n", "every component needs its own virtual IP"),
        ("n1 IPAddr::10.0.0.2 httpd\n", "no Bacula daemon"),
        ("n1 10.0.0.2 drbddisk bacula-sd\n", "drbddisk needs a DRBD resource name"),
        ("n1 10.0.0.2 Filesystem::/dev/x bacula-sd\n", "Filesystem needs DEVICE::MOUNTPOINT"),
        ("n$(x) 10.0.0.2 bacula-sd\n", "not usable as a cluster node name"),
        ("# only a comment\n", "no resource groups"),
    ],
)
def test_bad_lines_get_a_message_with_the_line(text: str, message: str) -> None:
    with pytest.raises(HaresourcesError, match=message.replace("(", r"\(")):
        convert(text, "ha", ["n2"] if "standby" not in message else [], "s")


def test_unknown_scripts_with_arguments_are_dropped_with_a_warning() -> None:
    text, warnings = convert("n1 10.0.0.2 MailTo::root@example.org bacula-sd\n", "ha", ["n2"], "s")
    assert "MailTo" not in text
    assert any("MailTo::root@example.org" in w and "dropped" in w for w in warnings), warnings


def test_cli_writes_file_and_warns(tmp_path: Path) -> None:
    source = tmp_path / "haresources"
    source.write_text(GUIDE)
    out = tmp_path / "site.toml"
    result = CliRunner().invoke(import_haresources, [str(source), "-o", str(out), "--name", "x"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "lsb:httpd" in result.output
    assert tomllib.loads(out.read_text())["site"]["name"] == "x"
    missing = CliRunner().invoke(import_haresources, [str(tmp_path / "none")])
    assert missing.exit_code == 1 and missing.stderr == f"{tmp_path / 'none'}: no such file\n"


REMOTE_LINES = """\
bacula-dir1 IPAddr::10.0.0.2/24 bacula-dir
sd-host1 IPAddr::10.0.0.11/24 bacula-sd
sd-host2 IPAddr::10.0.0.12/24 bacula-sd
"""


def test_remote_nodes_become_remote_sections_for_storage_daemons(tmp_path: Path) -> None:
    source = tmp_path / "haresources"
    source.write_text(REMOTE_LINES)
    out = tmp_path / "site.toml"
    argv = [str(source), "--node", "bacula-dir2", "--remote", "sd-host1", "--remote", "sd-host2"]
    result = CliRunner().invoke(import_haresources, [*argv, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "give every [[remote]] its address and a fence device" in result.output
    site = tomllib.loads(out.read_text())
    assert [n["name"] for n in site["node"]] == ["bacula-dir2", "bacula-dir1"]
    assert [n["name"] for n in site["remote"]] == ["sd-host1", "sd-host2"]
    (director,) = site["director"]
    # The director's standby is the next full node, never a remote one.
    assert (director["preferred"], director["standby"]) == ("bacula-dir1", "bacula-dir2")
    assert [(s["preferred"], s["standby"]) for s in site["storage"]] == [
        ("sd-host1", "sd-host2"),
        ("sd-host2", "bacula-dir2"),
    ]
    text = with_fencing(out.read_text())
    text = text.replace('name = "sd-host1"', 'name = "sd-host1"\naddress = "10.0.1.1"')
    plan = build(parse_site(text))
    assert "primitive sd-host1 ocf:pacemaker:remote" in render(plan, "crm")


def test_director_on_a_remote_node_is_refused() -> None:
    with pytest.raises(HaresourcesError, match=r"h:1: bacula-dir1 is given as a remote node"):
        convert(REMOTE_LINES, "h", [], "s", remotes=["bacula-dir1"])


# The Bacula white paper's shape: the catalog and the director on one line, one IPaddr.
WHITE_PAPER = (
    "node1 IPaddr::192.168.0.10/24/eth0 drbddisk::r0 "
    "Filesystem::/dev/drbd0::/var/lib/postgresql::ext4 postgresql bacula-dir\n"
)


def test_a_line_short_of_ips_says_exactly_what_to_add() -> None:
    with pytest.raises(HaresourcesError) as caught:
        convert(WHITE_PAPER, "haresources", ["node2"], "s")
    message = str(caught.value)
    assert message.startswith(
        "haresources:1: 2 components (catalog, director) but 1 IP address: every component "
        "needs its own virtual IP. The IP addresses of a line go to its components in the "
        "order both are written (the catalog keeps IPaddr::192.168.0.10/24/eth0): add an IP "
        "address for the director after IPaddr::192.168.0.10/24/eth0, e.g.\n"
    )
    suggested = message.splitlines()[-1].strip()
    assert suggested == (
        "node1 IPaddr::192.168.0.10/24/eth0 IPaddr::<ip-for-director>/24/eth0 drbddisk::r0 "
        "Filesystem::/dev/drbd0::/var/lib/postgresql::ext4 postgresql bacula-dir"
    )
    # The suggestion, filled in, is imported as the message says.
    text, _ = convert(suggested.replace("<ip-for-director>", "192.168.0.11"), "h", ["node2"], "s")
    (director,) = tomllib.loads(text)["director"]
    assert director["vip"] == {"ip": "192.168.0.11", "cidr_netmask": 24, "nic": "eth0"}
    assert director["catalog"]["vip"]["ip"] == "192.168.0.10"
    assert director["with_catalog"] is True  # one line: the director runs beside its catalog


@pytest.mark.parametrize(
    ("line", "suggested"),
    [
        ("n1 bacula-dir", "n1 IPaddr::<ip-for-director> bacula-dir"),
        (
            "n1 10.0.0.1 bacula-sd bacula-sd bacula-fd",
            "n1 10.0.0.1 IPaddr::<ip-for-2nd-storage-daemon> IPaddr::<ip-for-file-daemon> "
            "bacula-sd bacula-sd bacula-fd",
        ),
    ],
)
def test_every_missing_ip_is_named(line: str, suggested: str) -> None:
    with pytest.raises(HaresourcesError) as caught:
        convert(line + "\n", "h", ["n2"], "s")
    assert str(caught.value).splitlines()[-1].strip() == suggested


def test_the_cli_refuses_with_what_to_add(tmp_path: Path) -> None:
    source = tmp_path / "haresources"
    source.write_text(WHITE_PAPER)
    result = CliRunner().invoke(import_haresources, [str(source), "--node", "node2"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "add an IP address for the director" in result.output
    assert "IPaddr::<ip-for-director>/24/eth0" in result.output


def test_extra_ips_are_named_when_dropped() -> None:
    _, warnings = convert("n1 10.0.0.1 10.0.0.2 bacula-sd\n", "h", ["n2"], "s")
    assert any("10.0.0.2 dropped" in w and "(storage)" in w for w in warnings), warnings
