"""`bacula-ha check`: real configurations through Bacula's own parsers, against a site."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bacula_ha.check.engine import run_check
from bacula_ha.check.findings import EXIT_CLEAN, EXIT_FINDINGS
from bacula_ha.cli import main
from bacula_ha.lab import stack
from testkit.sandbox.bacula import BaculaSite

ROOT = Path(__file__).resolve().parents[1]
LAB_SITE = ROOT / "examples" / "lab-site.toml"
CLI = Path(sys.executable).with_name("bacula-ha")
PW = stack.Secrets("d" * 32, "s" * 32, "f" * 32, "c" * 32)

Edit = Callable[[str], str]


def replace(old: str, new: str) -> Edit:
    """An edit of a configuration's text that fails the test if `old` is not there."""

    def edit(text: str) -> str:
        assert old in text, f"{old!r} not in the configuration"
        return text.replace(old, new, 1)

    return edit


def lab_configs(
    where: Path,
    dir_edit: Edit | None = None,
    sd_edit: Edit | None = None,
    fd_edit: Edit | None = None,
) -> list[str]:
    """The lab's Bacula configuration as the lab writes it (lab.stack), edited."""
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text, edit in (
        ("bacula-dir.conf", stack.director_conf(PW), dir_edit),
        ("bacula-sd.conf", stack.storage_conf(PW), sd_edit),
        ("bacula-fd.conf", stack.filedaemon_conf(PW), fd_edit),
    ):
        path = where / name
        path.write_text(edit(text) if edit else text)
        paths.append(str(path))
    return paths


def site_variant(tmp_path: Path, edit: Edit) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(edit(LAB_SITE.read_text()))
    return path


def run(site: Path, configs: list[str], *extra: str) -> tuple[int, dict[str, Any]]:
    """`bacula-ha check --format json` in-process: exit status and the parsed document."""
    argv = ["check", str(site), "--format", "json", *extra]
    for conf in configs:
        argv += ["--config", conf]
    result = CliRunner().invoke(main, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def codes(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["code"], f["severity"], f["directive"]) for f in doc["findings"]}


def test_the_labs_configuration_is_clean(tmp_path: Path) -> None:
    status, doc = run(LAB_SITE, lab_configs(tmp_path))
    assert (status, doc["status"], doc["findings"]) == (EXIT_CLEAN, "clean", [])
    daemons = [c["daemon"] for c in doc["checked"]]
    assert daemons == ["director", "storage", "filedaemon"]


def nodes_only_site(tmp_path: Path) -> Path:
    """A site without Bacula components: it names no VIP, so only loopback is judged."""
    site = tmp_path / "nodes.toml"
    site.write_text(
        '[site]\nname = "s"\n[[node]]\nname = "n1"\nfence = { agent = "fence_dummy" }\n'
    )
    return site


def lint(configs: list[str], *extra: str) -> tuple[int, dict[str, Any]]:
    """`bacula-ha check --format json --config ...` without a site, in-process."""
    argv = ["check", "--format", "json", *extra]
    for conf in configs:
        argv += ["--config", conf]
    result = CliRunner().invoke(main, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def test_the_sandbox_writer_has_what_failover_needs(tmp_path: Path) -> None:
    # The jobs, heartbeats and directories are right; the sandbox's daemons listen on loopback,
    # which is flagged with a site and without one, and nothing else.
    bacula = BaculaSite(tmp_path / "sandbox", sd_ports=(19103, 19104)).write(owner=None)
    configs = [str(c) for c in (bacula.dir_conf, bacula.sd_conf(0), bacula.sd_conf(1))]
    configs.append(str(bacula.fd_conf))
    loopback = {
        ("director-address-not-vip", "error", "DirAddress"),
        ("storage-address-not-vip", "error", "Address"),
        ("sd-address-not-vip", "error", "SDAddress"),
        ("client-address-loopback", "warning", "Address"),
        ("catalog-address-local", "warning", "DB Address"),
        ("fd-address-loopback", "warning", "FDAddress"),
    }
    for status, doc in (run(nodes_only_site(tmp_path), configs), lint(configs)):
        assert status == EXIT_FINDINGS
        assert codes(doc) == loopback
        assert {f["value"] for f in doc["findings"]} == {"127.0.0.1"}


ERRORS = [
    pytest.param(
        replace("Address = 10.99.0.22", "Address = 10.99.0.1"),
        None,
        ("storage-address-not-vip", "Storage", "sd1", "Address", "10.99.0.1"),
        id="storage-address-node",
    ),
    pytest.param(
        replace("Address = 10.99.0.22", "Address = localhost"),
        None,
        ("storage-address-not-vip", "Storage", "sd1", "Address", "localhost"),
        id="storage-address-localhost",
    ),
    pytest.param(
        replace("Address = 10.99.0.22", "Address = 10.99.0.21"),
        None,
        ("storage-address-not-vip", "Storage", "sd1", "Address", "10.99.0.21"),
        id="storage-address-director-vip",
    ),
    pytest.param(
        replace("Address = 10.99.0.22", "Address = node2"),
        None,
        ("storage-address-not-vip", "Storage", "sd1", "Address", "node2"),
        id="storage-address-node-name",
    ),
    pytest.param(
        replace("DirAddress = 10.99.0.21", "DirAddress = 10.99.0.1"),
        None,
        ("director-address-not-vip", "Director", "lab-dir", "DirAddress", "10.99.0.1"),
        id="diraddress-node",
    ),
    pytest.param(
        replace("DirAddress = 10.99.0.21", "DirAddress = 127.0.0.1"),
        None,
        ("director-address-not-vip", "Director", "lab-dir", "DirAddress", "127.0.0.1"),
        id="diraddress-loopback",
    ),
    pytest.param(
        replace("DB Address = 10.99.0.20", "DB Address = 10.99.0.2"),
        None,
        ("catalog-address-not-vip", "Catalog", "MyCatalog", "DB Address", "10.99.0.2"),
        id="catalog-node-address",
    ),
    pytest.param(
        None,
        replace("SDAddress = 10.99.0.22", "SDAddress = 10.99.0.2"),
        ("sd-address-not-vip", "Storage", "sd1", "SDAddress", "10.99.0.2"),
        id="sdaddress-node",
    ),
    pytest.param(
        None,
        replace("Archive Device = /srv/bacula/volumes", "Archive Device = /var/lib/bacula/vol"),
        ("archive-device-not-on-disk", "Device", "FileStorage", "Archive Device", None),
        id="archive-device-off-disk",
    ),
    pytest.param(
        None,
        replace(
            'WorkingDirectory = "/var/lib/bacula"', 'WorkingDirectory = "/var/lib/postgresql/x"'
        ),
        ("working-directory-on-other-disk", "Storage", "sd1", "WorkingDirectory", None),
        id="sd-workdir-on-catalog-disk",
    ),
]


@pytest.mark.parametrize(("dir_edit", "sd_edit", "expected"), ERRORS)
def test_errors(
    tmp_path: Path, dir_edit: Edit | None, sd_edit: Edit | None, expected: tuple[Any, ...]
) -> None:
    status, doc = run(LAB_SITE, lab_configs(tmp_path, dir_edit, sd_edit))
    assert status == EXIT_FINDINGS
    code, res_type, res_name, directive, value = expected
    found = [f for f in doc["findings"] if f["code"] == code]
    assert len(found) == 1, doc["findings"]
    f = found[0]
    assert (f["severity"], f["resource_type"], f["resource_name"], f["directive"]) == (
        "error",
        res_type,
        res_name,
        directive,
    )
    if value is not None:
        assert f["value"] == value
    assert f["message"] and f["fix"] and f["file"].endswith(".conf")


WARNINGS = [
    pytest.param(
        replace("Messages = Daemon\n  Heartbeat Interval = 10 seconds", "Messages = Daemon"),
        None,
        None,
        ("heartbeat-interval-missing", "Director", "Heartbeat Interval"),
        id="director-heartbeat-missing",
    ),
    pytest.param(
        replace(
            "Media Type = File\n  Maximum Concurrent Jobs = 10\n  Heartbeat Interval = 10 seconds",
            "Media Type = File\n  Maximum Concurrent Jobs = 10",
        ),
        None,
        None,
        ("heartbeat-interval-missing", "Storage", "Heartbeat Interval"),
        id="storage-resource-heartbeat-missing",
    ),
    pytest.param(
        replace("AutoPrune = yes\n  Heartbeat Interval = 10 seconds", "AutoPrune = yes"),
        None,
        None,
        ("heartbeat-interval-missing", "Client", "Heartbeat Interval"),
        id="client-heartbeat-missing",
    ),
    pytest.param(
        None,
        replace("Heartbeat Interval = 10 seconds", "Heartbeat Interval = 0"),
        None,
        ("heartbeat-interval-disabled", "Storage", "Heartbeat Interval"),
        id="sd-heartbeat-off",
    ),
    pytest.param(
        None,
        None,
        replace("Heartbeat Interval = 10 seconds", "Heartbeat Interval = 15 min"),
        ("heartbeat-interval-long", "FileDaemon", "Heartbeat Interval"),
        id="fd-heartbeat-long",
    ),
    pytest.param(
        replace("Reschedule On Error = yes", "Reschedule On Error = no"),
        None,
        None,
        ("reschedule-on-error-missing", "Job", "Reschedule On Error"),
        id="no-reschedule",
    ),
    pytest.param(
        replace("Reschedule Interval = 30 seconds", "Reschedule Interval = 1 hour"),
        None,
        None,
        ("reschedule-interval-long", "Job", "Reschedule Interval"),
        id="reschedule-interval-long",
    ),
    pytest.param(
        replace("  Reschedule Interval = 30 seconds\n", ""),
        None,
        None,
        ("reschedule-interval-long", "Job", "Reschedule Interval"),
        id="reschedule-interval-default",
    ),
    pytest.param(
        replace("Reschedule Interval = 30 seconds", "Reschedule Interval = 5 seconds"),
        None,
        None,
        ("reschedule-interval-short", "Job", "Reschedule Interval"),
        id="reschedule-interval-short",
    ),
    pytest.param(
        replace("Reschedule Times = 3", "Reschedule Times = 0"),
        None,
        None,
        ("reschedule-times-unlimited", "Job", "Reschedule Times"),
        id="reschedule-unlimited",
    ),
    pytest.param(
        replace("Spool Attributes = yes", "Spool Attributes = no"),
        None,
        None,
        ("spool-attributes-off", "Job", "Spool Attributes"),
        id="no-spool-attributes",
    ),
    pytest.param(
        replace("DB Address = 10.99.0.20", "DB Address = localhost"),
        None,
        None,
        ("catalog-address-local", "Catalog", "DB Address"),
        id="catalog-localhost-beside-director",
    ),
    pytest.param(
        replace("Address = 10.99.0.100", "Address = localhost"),
        None,
        None,
        ("client-address-loopback", "Client", "Address"),
        id="client-localhost",
    ),
    pytest.param(
        None,
        replace('Pid Directory = "/run/bacula"', 'Pid Directory = "/srv/bacula/run"'),
        None,
        ("pid-directory-on-shared-disk", "Storage", "PidDirectory"),
        id="sd-pid-on-its-disk",
    ),
]


@pytest.mark.parametrize(("dir_edit", "sd_edit", "fd_edit", "expected"), WARNINGS)
def test_warnings(
    tmp_path: Path,
    dir_edit: Edit | None,
    sd_edit: Edit | None,
    fd_edit: Edit | None,
    expected: tuple[str, str, str],
) -> None:
    status, doc = run(LAB_SITE, lab_configs(tmp_path, dir_edit, sd_edit, fd_edit))
    code, res_type, directive = expected
    assert status == EXIT_FINDINGS, doc["findings"]
    assert [(f["code"], f["resource_type"], f["directive"]) for f in doc["findings"]] == [
        (code, res_type, directive)
    ]
    assert doc["findings"][0]["severity"] == "warning"


def test_catalog_localhost_is_an_error_when_the_director_runs_apart(tmp_path: Path) -> None:
    site = site_variant(tmp_path, replace("with_catalog = true", "with_catalog = false"))
    for address in ("localhost", "127.0.0.1", '"/run/postgresql"'):
        configs = lab_configs(
            tmp_path / address.strip('"/').replace("/", "_"),
            replace("DB Address = 10.99.0.20", f"DB Address = {address}"),
        )
        status, doc = run(site, configs)
        assert status == EXIT_FINDINGS
        assert codes(doc) == {("catalog-address-not-vip", "error", "DB Address")}


def test_no_db_address_outside_the_site_is_the_local_socket(tmp_path: Path) -> None:
    # Without [director.catalog] the site does not move the database: the local socket is wrong.
    text = LAB_SITE.read_text()
    site = site_variant(tmp_path, replace(text[text.index("[director.catalog]") :], ""))
    configs = lab_configs(tmp_path, replace("  DB Address = 10.99.0.20\n", ""))
    status, doc = run(site, configs)
    assert status == EXIT_FINDINGS
    assert codes(doc) == {("catalog-address-local", "error", "DB Address")}


def test_a_catalog_outside_the_site_on_a_node(tmp_path: Path) -> None:
    text = LAB_SITE.read_text()
    site = site_variant(tmp_path, replace(text[text.index("[director.catalog]") :], ""))
    configs = lab_configs(tmp_path, replace("DB Address = 10.99.0.20", "DB Address = 10.99.0.2"))
    status, doc = run(site, configs)
    assert status == EXIT_FINDINGS
    assert codes(doc) == {("catalog-address-node", "error", "DB Address")}
    assert "node2" in doc["findings"][0]["message"]


def test_source_addresses_must_move_too(tmp_path: Path) -> None:
    site = site_variant(
        tmp_path,
        lambda text: (
            text + '\n[[filedaemon]]\nname = "client-fd"\npreferred = "node1"\nstandby = "node2"\n'
            'vip = { ip = "10.99.0.100", cidr_netmask = 24, nic = "eth0" }\n'
        ),
    )
    configs = lab_configs(
        tmp_path,
        replace("DIRport = 9101", "DIRport = 9101\n  DirSourceAddress = 10.99.0.1"),
        fd_edit=replace("FDport = 9102", "FDport = 9102\n  FDSourceAddress = 10.99.0.2"),
    )
    status, doc = run(site, configs)
    assert status == EXIT_FINDINGS
    assert codes(doc) == {
        ("director-source-address-not-vip", "error", "DirSourceAddress"),
        ("fd-source-address-not-vip", "error", "FDSourceAddress"),
    }


def test_any_address_and_hosts_names_of_the_vip_are_fine(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    # (Bacula's own parser resolves DirAddress & co. itself; a Storage's Address it does not.)
    hosts.write_text("127.0.0.1 localhost\n10.99.0.22 sd-vip.lab\n10.99.0.1 node1.lab\n")
    any_address = replace("DirAddress = 10.99.0.21", "DirAddress = 0.0.0.0")
    by_name = replace("Address = 10.99.0.22", "Address = sd-vip.lab")
    configs = lab_configs(tmp_path, lambda text: by_name(any_address(text)))
    assert run_check(LAB_SITE, configs, hosts_file=str(hosts)).findings == ()
    configs = lab_configs(tmp_path / "node", replace("Address = 10.99.0.22", "Address = node1.lab"))
    found = run_check(LAB_SITE, configs, hosts_file=str(hosts)).findings
    assert [(f.code, f.value) for f in found] == [("storage-address-not-vip", "node1.lab")]
    assert "node1" in found[0].message


def test_a_floating_file_daemon_must_use_its_vip(tmp_path: Path) -> None:
    site = site_variant(
        tmp_path,
        lambda text: (
            text + '\n[[filedaemon]]\nname = "client-fd"\npreferred = "node1"\nstandby = "node2"\n'
            'vip = { ip = "10.99.0.23", cidr_netmask = 24, nic = "eth0" }\n'
        ),
    )
    status, doc = run(site, lab_configs(tmp_path))
    assert status == EXIT_FINDINGS
    assert codes(doc) == {
        ("fd-address-not-vip", "error", "FDAddress"),
        ("client-address-not-vip", "error", "Address"),
    }
    fixed = lab_configs(
        tmp_path / "fixed",
        replace("Address = 10.99.0.100", "Address = 10.99.0.23"),
        fd_edit=replace("FDAddress = 10.99.0.100", "FDAddress = 10.99.0.23"),
    )
    assert run(site, fixed)[0] == EXIT_CLEAN


def test_a_storage_outside_the_site_is_a_warning(tmp_path: Path) -> None:
    extra = (
        "Storage {\n  Name = offsite\n  Address = tape.example.org\n  Password = x\n"
        "  Device = T\n  Media Type = LTO\n  Heartbeat Interval = 10\n}\n"
    )
    status, doc = run(LAB_SITE, lab_configs(tmp_path, lambda t: t + extra))
    assert status == EXIT_FINDINGS
    assert codes(doc) == {("storage-address-unknown", "warning", "Address")}


def test_jobdefs_are_applied_by_bacula(tmp_path: Path) -> None:
    jobdefs = (
        "JobDefs {\n  Name = Defaults\n  Type = Backup\n  Client = client-fd\n"
        "  FileSet = LabSet\n  Storage = sd1\n  Pool = File\n  Messages = Standard\n"
        "  Spool Attributes = no\n}\n"
        "Job {\n  Name = Inherits\n  JobDefs = Defaults\n  Reschedule On Error = yes\n"
        "  Reschedule Interval = 1 min\n  Reschedule Times = 2\n}\n"
    )
    status, doc = run(LAB_SITE, lab_configs(tmp_path, lambda t: t + jobdefs))
    assert status == EXIT_FINDINGS
    assert [(f["code"], f["resource_name"]) for f in doc["findings"]] == [
        ("spool-attributes-off", "Inherits")
    ]


def test_the_parser_that_accepts_a_file_decides_its_daemon(tmp_path: Path) -> None:
    configs = lab_configs(tmp_path)
    renamed = []
    for index, path in enumerate(configs):
        target = tmp_path / f"config{index}.txt"
        target.write_text(Path(path).read_text())
        renamed.append(str(target))
    status, doc = run(LAB_SITE, list(reversed(renamed)))
    assert status == EXIT_CLEAN
    assert [c["daemon"] for c in doc["checked"]] == ["filedaemon", "storage", "director"]


def test_the_sites_config_paths_are_the_default(tmp_path: Path) -> None:
    dir_conf, sd_conf, _ = lab_configs(tmp_path)
    site = site_variant(
        tmp_path,
        lambda text: text.replace('"/etc/bacula/bacula-dir.conf"', f'"{dir_conf}"').replace(
            '"/etc/bacula/bacula-sd.conf"', f'"{sd_conf}"'
        ),
    )
    status, doc = run(site, [])
    assert status == EXIT_CLEAN
    assert [c["file"] for c in doc["checked"]] == [dir_conf, sd_conf]
    Path(sd_conf).unlink()
    result = CliRunner().invoke(main, ["check", str(site)])
    assert result.exit_code == EXIT_FINDINGS
    line = next(n for n, text in enumerate(site.read_text().splitlines(), 1) if sd_conf in text)
    assert f"{site}:{line}: storage[0].params.config: {sd_conf} does not exist" in result.stderr


# -- unreadable input: exit 1, a message naming file/line/field, never a traceback ------------


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), "check", *argv], capture_output=True, text=True, timeout=120)


def test_a_bad_site_names_file_line_and_field(tmp_path: Path) -> None:
    site = site_variant(tmp_path, replace('nic = "eth0" }', 'nic = "eth0", port = 1 }'))
    proc = cli(str(site), "--config", lab_configs(tmp_path)[0])
    assert proc.returncode == EXIT_FINDINGS and "Traceback" not in proc.stderr
    assert f"{site}:" in proc.stderr and "vip.port: unknown key" in proc.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[site\nname = 1\n")
    proc = cli(str(broken), "--format", "json")
    assert proc.returncode == EXIT_FINDINGS and "Traceback" not in proc.stderr
    assert f"{broken}:1: not valid TOML" in proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["format"], doc["version"], doc["command"]) == ("bacula-ha-error", 1, "check")
    assert doc["errors"][0]["file"] == str(broken) and doc["errors"][0]["line"] == 1


def test_missing_and_unparsable_configs(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.conf"
    proc = cli(str(LAB_SITE), "--config", str(missing))
    assert proc.returncode == EXIT_FINDINGS and "Traceback" not in proc.stderr
    assert f"{missing}: no such configuration file" in proc.stderr
    dir_conf = lab_configs(tmp_path, replace("DIRport = 9101", "DIRport = 9101\n  Bogus = 1"))[0]
    proc = cli(str(LAB_SITE), "--config", dir_conf, "--format", "json")
    assert proc.returncode == EXIT_FINDINGS and "Traceback" not in proc.stderr
    assert dir_conf in proc.stderr and 'Keyword "Bogus"' in proc.stderr
    assert "line 5" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["format"] == "bacula-ha-error" and doc["errors"][0]["file"] == dir_conf
    assert doc["errors"][0]["line"] == 5 and 'Keyword "Bogus"' in doc["errors"][0]["message"]
    console = tmp_path / "bconsole.conf"
    console.write_text(stack.console_conf(PW))
    proc = cli(str(LAB_SITE), "--config", str(console))
    assert proc.returncode == EXIT_FINDINGS and "Traceback" not in proc.stderr
    assert "not a director, storage daemon or file daemon configuration" in proc.stderr


def test_text_and_json_agree(tmp_path: Path) -> None:
    configs = lab_configs(
        tmp_path,
        replace("Address = 10.99.0.22", "Address = 10.99.0.1"),
    )
    args = [str(LAB_SITE)] + [a for c in configs for a in ("--config", c)]
    text = cli(*args)
    as_json = cli(*args, "--format", "json")
    assert text.returncode == as_json.returncode == EXIT_FINDINGS
    doc = json.loads(as_json.stdout)
    assert doc["version"] == 1 and doc["exit_status"] == EXIT_FINDINGS
    for f in doc["findings"]:
        assert f"[{f['code']}]" in text.stdout and f["fix"] in text.stdout
    assert text.stdout.splitlines()[-1].startswith("1 error, 0 warnings in ")


def _without_connectivity(text: str) -> str:
    """The lab site without its [connectivity] table (up to the next blank line), if it has one."""
    return re.sub(r"(?m)^\[connectivity\]\n(?:.+\n)*", "", text)


def test_a_two_node_site_without_connectivity_or_quorum_device_is_warned(tmp_path: Path) -> None:
    site = site_variant(tmp_path, _without_connectivity)
    assert "[connectivity]" not in site.read_text()
    status, doc = run(site, lab_configs(tmp_path))
    assert status == EXIT_FINDINGS, doc["findings"]
    (finding,) = doc["findings"]
    assert finding["code"] == "two-node-without-connectivity"
    assert (finding["severity"], finding["file"], finding["resource_type"]) == (
        "warning",
        str(site),
        "site",
    )
    assert (finding["directive"], finding["value"]) == ("[connectivity]", None)
    assert "race to fence" in finding["message"] and "[quorum_device]" in finding["fix"]
    text = cli(str(site), *(a for c in lab_configs(tmp_path) for a in ("--config", c)))
    assert text.returncode == EXIT_FINDINGS
    assert (
        "site 'bacula-lab': [connectivity] = (not set): warning [two-node-without-connectivity]"
        in (text.stdout)
    )
    # Either answer to the race silences it: connectivity (the lab site's own), or an arbiter.
    arbiter = site_variant(
        tmp_path,
        lambda t: _without_connectivity(t) + '\n[quorum_device]\nhost = "10.99.1.200"\n',
    )
    assert run(arbiter, lab_configs(tmp_path))[0] == EXIT_CLEAN


# -- bacula.org's layout: [bacula] prefix or --prefix -----------------------------------------


def bacula_org_prefix(where: Path, log: Path) -> Path:
    """A bacula.org-style install under `where`: bin/ holds b*json (Debian's, run through a
    wrapper that logs its arguments to `log`), etc/ the lab's configuration."""
    (where / "bin").mkdir(parents=True)
    for tool in ("bdirjson", "bsdjson", "bfdjson"):
        wrapper = where / "bin" / tool
        wrapper.write_text(f'#!/bin/sh\necho "$0 $*" >> {log}\nexec /usr/sbin/{tool} "$@"\n')
        wrapper.chmod(0o755)
    lab_configs(where / "etc")
    return where


def _without_config_params(text: str) -> str:
    """The lab site with no component naming its configuration file (the install's decide)."""
    out = re.sub(r'(?m)^params = \{ config = "/etc/bacula/bacula-dir.conf" \}\n', "", text)
    out = re.sub(r'config = "/etc/bacula/bacula-(dir|sd).conf", ', "", out)
    assert "/etc/bacula/bacula-" not in out
    return out


def test_a_prefix_reads_its_parsers_and_configurations(tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    prefix = bacula_org_prefix(tmp_path / "opt" / "bacula", log)
    site = site_variant(
        tmp_path, lambda t: _without_config_params(t) + f'\n[bacula]\nprefix = "{prefix}"\n'
    )
    status, doc = run(site, [])
    assert (status, doc["findings"]) == (EXIT_CLEAN, [])
    checked = [(c["file"], c["daemon"]) for c in doc["checked"]]
    assert checked == [
        (f"{prefix}/etc/bacula-dir.conf", "director"),
        (f"{prefix}/etc/bacula-sd.conf", "storage"),
    ]
    ran = log.read_text().splitlines()
    assert any(r.startswith(f"{prefix}/bin/bdirjson ") and "bacula-dir.conf" in r for r in ran)
    assert any(r.startswith(f"{prefix}/bin/bsdjson ") and "bacula-sd.conf" in r for r in ran)
    # --config files are read with the prefix's parsers too.
    log.unlink()
    status, doc = run(site, [f"{prefix}/etc/bacula-sd.conf"])
    assert status == EXIT_CLEAN and doc["checked"][0]["daemon"] == "storage"
    assert log.read_text().startswith(f"{prefix}/bin/bsdjson ")


def test_prefix_option_without_the_sites_prefix(tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    prefix = bacula_org_prefix(tmp_path / "bacula-13", log)
    site = site_variant(tmp_path, _without_config_params)
    status, doc = run(site, [], "--prefix", str(prefix))
    assert status == EXIT_CLEAN
    assert [c["file"] for c in doc["checked"]] == [
        f"{prefix}/etc/bacula-dir.conf",
        f"{prefix}/etc/bacula-sd.conf",
    ]
    assert f"{prefix}/bin/bdirjson " in log.read_text()
    # --prefix wins over the site's; an install without configurations names what it looked for.
    other = site_variant(
        tmp_path, lambda t: _without_config_params(t) + '\n[bacula]\nprefix = "/nonexistent"\n'
    )
    status, doc = run(other, [], "--prefix", str(prefix))
    assert status == EXIT_CLEAN and doc["checked"][0]["file"].startswith(str(prefix))
    result = CliRunner().invoke(main, ["check", str(other)])
    assert result.exit_code == EXIT_FINDINGS
    assert "none of /nonexistent/etc/bacula-dir.conf, /nonexistent/etc/bacula-sd.conf" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("opt/bacula", "'opt/bacula' is not an absolute path"),
        ("/opt/bacula/", "'/opt/bacula/' is not normalised (write '/opt/bacula')"),
    ],
)
def test_a_bad_prefix_option(value: str, message: str) -> None:
    result = CliRunner().invoke(main, ["check", str(LAB_SITE), "--prefix", value])
    assert result.exit_code == 2 and "Invalid value for '--prefix'" in result.stderr
    assert message in result.stderr


def test_a_components_binary_names_its_parser(tmp_path: Path) -> None:
    log, own_log = tmp_path / "ran.log", tmp_path / "own.log"
    prefix = bacula_org_prefix(tmp_path / "opt" / "bacula", log)
    own = bacula_org_prefix(tmp_path / "sd-13", own_log)
    site = site_variant(
        tmp_path,
        lambda t: (
            _without_config_params(t).replace(
                'params = { archive_mounts = "/srv/bacula" }',
                f'params = {{ archive_mounts = "/srv/bacula", binary = "{own}/bin/bacula-sd" }}',
            )
            + f'\n[bacula]\nprefix = "{prefix}"\n'
        ),
    )
    status, _ = run(site, [])
    assert status == EXIT_CLEAN
    assert own_log.read_text().startswith(f"{own}/bin/bsdjson ")
    assert "bsdjson" not in log.read_text() and "bdirjson" in log.read_text()


# -- without a site: a lint of Bacula's configuration alone -----------------------------------

# (which of the lab's files, the edit, the one finding: code, severity, type, directive)
LOOPBACK = [
    pytest.param(
        0,
        replace("DirAddress = 10.99.0.21", "DirAddress = 127.0.0.1"),
        ("director-address-not-vip", "error", "Director", "DirAddress"),
        id="diraddress",
    ),
    pytest.param(
        0,
        replace("Address = 10.99.0.22", "Address = localhost"),
        ("storage-address-not-vip", "error", "Storage", "Address"),
        id="storage-address",
    ),
    pytest.param(
        0,
        replace("Address = 10.99.0.100", "Address = ::1"),
        ("client-address-loopback", "warning", "Client", "Address"),
        id="client-address",
    ),
    pytest.param(
        0,
        replace("DB Address = 10.99.0.20", "DB Address = localhost"),
        ("catalog-address-local", "warning", "Catalog", "DB Address"),
        id="catalog-address",
    ),
    pytest.param(
        1,
        replace("SDAddress = 10.99.0.22", "SDAddress = 127.0.0.2"),
        ("sd-address-not-vip", "error", "Storage", "SDAddress"),
        id="sdaddress",
    ),
    pytest.param(
        2,
        replace("FDAddress = 10.99.0.100", "FDAddress = 127.0.0.1"),
        ("fd-address-loopback", "warning", "FileDaemon", "FDAddress"),
        id="fdaddress",
    ),
]


def test_the_labs_configuration_alone_is_clean(tmp_path: Path) -> None:
    status, doc = lint(lab_configs(tmp_path))
    assert (status, doc["findings"]) == (EXIT_CLEAN, [])
    assert [c["daemon"] for c in doc["checked"]] == ["director", "storage", "filedaemon"]


@pytest.mark.parametrize(("index", "edit", "expected"), LOOPBACK)
def test_loopback_is_flagged_without_a_site_and_with_a_site_without_components(
    tmp_path: Path, index: int, edit: Edit, expected: tuple[str, str, str, str]
) -> None:
    edits: list[Edit | None] = [None, None, None]
    edits[index] = edit
    configs = lab_configs(tmp_path, *edits)
    for status, doc in (lint(configs), run(nodes_only_site(tmp_path), configs)):
        # One exit status for findings; the document tells errors from warnings.
        assert status == EXIT_FINDINGS
        assert doc["status"] == ("errors" if expected[1] == "error" else "warnings")
        found = [
            (f["code"], f["severity"], f["resource_type"], f["directive"]) for f in doc["findings"]
        ]
        assert found == [expected]
        assert doc["findings"][0]["file"] == configs[index]


def test_check_without_a_site(tmp_path: Path) -> None:
    configs = lab_configs(tmp_path, replace("Address = 10.99.0.100", "Address = localhost"))
    proc = cli(*(a for c in configs for a in ("--config", c)))
    assert proc.returncode == EXIT_FINDINGS, proc.stderr
    assert f"{configs[0]}: Client 'client-fd': Address = localhost: warning" in proc.stdout
    # No --config either: the install's defaults that exist (here bacula.org's, --prefix).
    prefix = bacula_org_prefix(tmp_path / "opt" / "bacula", tmp_path / "ran.log")
    status, doc = lint([], "--prefix", str(prefix))
    assert status == EXIT_CLEAN
    assert [c["file"] for c in doc["checked"]] == [
        f"{prefix}/etc/bacula-{d}.conf" for d in ("dir", "sd", "fd")
    ]
    result = CliRunner().invoke(main, ["check", "--prefix", str(tmp_path / "none")])
    assert result.exit_code == EXIT_FINDINGS
    assert "no Bacula configuration to check: none of " in result.stderr


def test_bacula_s_own_reason_for_a_file_it_rejects(tmp_path: Path) -> None:
    # It parses, but a director needs a Director resource: Bacula says so in "Fatal error:"
    # lines and ends with "Please correct configuration file", which says nothing.
    conf = tmp_path / "nodir-dir.conf"
    conf.write_text('Catalog {\n  Name = c\n  dbname = bacula\n  DB Password = "Pw-S3cret"\n}\n')
    for argv in (["--config", str(conf)], [str(LAB_SITE), "--config", str(conf)]):
        proc = cli(*argv, "--format", "json")
        assert proc.returncode == EXIT_FINDINGS and "Traceback" not in proc.stderr
        reason = "Fatal error: No Director resource defined; No Job records defined"
        assert f"{conf}: {reason}\n" == proc.stderr
        assert json.loads(proc.stdout)["errors"][0] == {
            "file": str(conf),
            "line": None,
            "field": None,
            "message": reason,
        }
        assert "Pw-S3cret" not in proc.stdout + proc.stderr
