"""`[quorum_device]`: validation, corosync.conf's section, the pcs and crmsh commands, the CLI."""
# ruff: noqa: E501  (TOML site text reads better unwrapped)

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacula_ha.generator.cli import generate
from bacula_ha.generator.plan import build
from bacula_ha.generator.quorum import (
    QuorumError,
    corosync_quorum_section,
    crm_command,
    heuristics_exec,
    pcs_command,
    with_quorum_device,
)
from bacula_ha.generator.render import render
from bacula_ha.site.errors import SiteError
from bacula_ha.site.model import Site
from bacula_ha.site.parse import parse_site
from tests.test_generator_connectivity import BASE

TARGETS = '\n[connectivity]\ntargets = ["192.0.2.1", "gw.example.org"]\n'
QDEVICE = '\n[quorum_device]\nhost = "10.99.1.200"\n'
FULL = (
    '\n[quorum_device]\nhost = "qnetd.example.org"\nalgorithm = "lms"\nport = 5404\n'
    'tie_breaker = 1\ntimeout = 4000\nsync_timeout = 8000\nheuristics = "on"\n'
)
# corosync.conf as `pcs cluster setup` writes it for two nodes.
PCS_CONF = """\
totem {
    version: 2
    cluster_name: t
    transport: knet
}

nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: HOST
        nodeid: 1
    }
}

quorum {
    provider: corosync_votequorum
    two_node: 1
}

logging {
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
}
"""


def site(*sections: str) -> Site:
    return parse_site(BASE + "".join(sections), "site.toml")


def problems(text: str) -> list[str]:
    with pytest.raises(SiteError) as info:
        build(parse_site(BASE + text, "site.toml"))
    return str(info.value).splitlines()


# ---- validation -------------------------------------------------------------------------------


ERRORS = [
    ('[quorum_device]\nalgorithm = "lms"', "quorum_device", "host is required", "[quorum_device]"),
    (
        '[quorum_device]\nhost = "10.99.1.999"',
        "quorum_device.host",
        "is not an IP address or a host name",
        "host =",
    ),
    ('[quorum_device]\nhost = "10.1.0.1"', "quorum_device.host", "is used by node n1", "host ="),
    (
        '[quorum_device]\nhost = "q"\nalgorithm = "2nodelms"',
        "quorum_device.algorithm",
        "'2nodelms' is not one of: ffsplit, lms",
        "algorithm =",
    ),
    (
        '[quorum_device]\nhost = "q"\nport = 0',
        "quorum_device.port",
        "must be an integer from 1 to 65535",
        "port =",
    ),
    (
        '[quorum_device]\nhost = "q"\ntie_breaker = "middle"',
        "quorum_device.tie_breaker",
        "is not lowest, highest or a node id",
        "tie_breaker =",
    ),
    (
        '[quorum_device]\nhost = "q"\ntie_breaker = 0',
        "quorum_device.tie_breaker",
        "is not lowest, highest or a node id",
        "tie_breaker =",
    ),
    (
        '[quorum_device]\nhost = "q"\ntimeout = 10',
        "quorum_device.timeout",
        "must be an integer from 1000",
        "timeout =",
    ),
    (
        '[quorum_device]\nhost = "q"\nheuristics = "maybe"',
        "quorum_device.heuristics",
        "'maybe' is not one of: off, on, sync",
        "heuristics =",
    ),
    (
        '[quorum_device]\nhost = "q"\nheuristics = "sync"',
        "quorum_device.heuristics",
        "pings connectivity.targets, which the site does not set",
        "heuristics =",
    ),
    ('[quorum_device]\nhost = "q"\nvotes = 2', "quorum_device.votes", "unknown key", "votes ="),
    (
        '[quorum_device]\nhost = "q"\nheuristics = "off"\nheuristics_exec = { a = "/bin/true" }',
        "quorum_device.heuristics_exec",
        'commands that never run with heuristics = "off"',
        "heuristics_exec =",
    ),
    (
        '[quorum_device]\nhost = "q"\nheuristics_exec = { a = "true" }',
        "quorum_device.heuristics_exec.a",
        "must be a command with an absolute path",
        "heuristics_exec =",
    ),
    (
        '[quorum_device]\nhost = "q"\nheuristics_exec = { ping = "/bin/true" }',
        "quorum_device.heuristics_exec.ping",
        "use letters, digits and _ (not ping)",
        "heuristics_exec =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1", "192.0.2.2"]\n[quorum_device]\nhost = "q"\nsync_timeout = 3000',
        "quorum_device.sync_timeout",
        "3000 ms is too short for heuristics that ping 2 targets one after the other (3000 ms)",
        "sync_timeout =",
    ),
]


@pytest.mark.parametrize(
    ("section", "field", "words", "marker"), ERRORS, ids=[e[1] + ":" + e[2][:16] for e in ERRORS]
)
def test_bad_quorum_device_names_file_line_and_field(
    section: str, field: str, words: str, marker: str
) -> None:
    text = BASE + "\n" + section + "\n"
    base_lines = len(BASE.splitlines())
    line = next(
        i for i, x in enumerate(text.splitlines(), start=1) if marker in x and i > base_lines
    )
    found = problems("\n" + section + "\n")
    assert [p for p in found if p.startswith(f"site.toml:{line}: {field}: ") and words in p], (
        line,
        found,
    )


def test_heuristics_default_to_sync_with_site_wide_targets_only() -> None:
    assert site(QDEVICE).quorum_device.heuristics == "off"  # type: ignore[union-attr]
    assert site(TARGETS, QDEVICE).quorum_device.heuristics == "sync"  # type: ignore[union-attr]
    per_dc = '\n[connectivity]\ndc_targets = { a = ["192.0.2.1"], b = ["192.0.2.2"] }\n'
    assert site(per_dc, QDEVICE).quorum_device.heuristics == "off"  # type: ignore[union-attr]


# ---- corosync.conf ----------------------------------------------------------------------------


def test_section_with_heuristics_and_defaults() -> None:
    assert corosync_quorum_section(site(TARGETS, QDEVICE)) == (
        "quorum {\n"
        "    provider: corosync_votequorum\n"
        "\n"
        "    device {\n"
        "        model: net\n"
        "        votes: 1\n"
        "\n"
        "        net {\n"
        "            host: 10.99.1.200\n"
        "            algorithm: ffsplit\n"
        "            tls: on\n"
        "        }\n"
        "\n"
        "        heuristics {\n"
        "            mode: sync\n"
        "            timeout: 3000\n"
        "            sync_timeout: 3000\n"
        '            exec_ping: /bin/sh -c "/usr/bin/ping -q -n -c 1 -W 1 192.0.2.1 || '
        '/usr/bin/ping -q -n -c 1 -W 1 gw.example.org"\n'
        "        }\n"
        "    }\n"
        "}\n"
    )


def test_section_with_every_option() -> None:
    text = corosync_quorum_section(site(TARGETS.replace(', "gw.example.org"', ""), FULL))
    assert text is not None
    assert "votes" not in text  # lms computes its own
    assert (
        "        model: net\n        timeout: 4000\n        sync_timeout: 8000\n\n        net {\n"
        "            host: qnetd.example.org\n            port: 5404\n            algorithm: lms\n"
        "            tie_breaker: 1\n            tls: on\n        }\n"
    ) in text
    assert (
        "            mode: on\n            timeout: 2000\n            sync_timeout: 2000\n" in text
    )
    # One target: no shell needed.
    assert "            exec_ping: /usr/bin/ping -q -n -c 1 -W 1 192.0.2.1\n" in text


def test_no_heuristics_block_when_off_and_no_section_without_a_device() -> None:
    text = corosync_quorum_section(site(TARGETS, QDEVICE, 'heuristics = "off"\n'))
    assert text is not None and "heuristics" not in text and "exec" not in text
    assert corosync_quorum_section(site(TARGETS)) is None


def test_with_quorum_device_replaces_the_plain_section_only() -> None:
    s = site(TARGETS, QDEVICE)
    conf = PCS_CONF.replace("    two_node: 1\n", "")
    out = with_quorum_device(conf, s)
    section = corosync_quorum_section(s)
    assert section is not None
    assert out == conf.replace("quorum {\n    provider: corosync_votequorum\n}\n", section)
    # Two nodes: two_node goes, corosync refuses it next to a quorum device.
    out = with_quorum_device(PCS_CONF, s)
    assert "two_node" not in out and section in out
    assert out.startswith("totem {") and out.endswith(
        "logfile: /var/log/corosync/corosync.log\n}\n"
    )


def test_with_quorum_device_refuses_what_it_cannot_replace() -> None:
    s = site(TARGETS, QDEVICE)
    done = with_quorum_device(PCS_CONF, s)
    with pytest.raises(QuorumError, match=r"no plain votequorum section to replace .* found 0"):
        with_quorum_device(done, s)
    with pytest.raises(QuorumError, match=r"site.toml: the site has no \[quorum_device\]"):
        with_quorum_device(PCS_CONF, site(TARGETS))


def test_pcs_and_crm_commands() -> None:
    s = site(TARGETS, QDEVICE)
    exec_ping = (
        '/bin/sh -c "/usr/bin/ping -q -n -c 1 -W 1 192.0.2.1 || '
        '/usr/bin/ping -q -n -c 1 -W 1 gw.example.org"'
    )
    assert pcs_command(s) == (
        "quorum", "device", "add", "model", "net", "host=10.99.1.200", "algorithm=ffsplit",
        "heuristics", "mode=sync", "timeout=3000", "sync_timeout=3000", f"exec_ping={exec_ping}",
    )  # fmt: skip
    assert crm_command(s) == (
        "cluster", "init", "qdevice", "--qnetd-hostname=10.99.1.200", "--qdevice-algo=ffsplit",
        f"--qdevice-heuristics={exec_ping}", "--qdevice-heuristics-mode=sync",
    )  # fmt: skip
    full = site(TARGETS, FULL)
    assert pcs_command(full)[:7] == (  # type: ignore[index]
        "quorum", "device", "add", "timeout=4000", "sync_timeout=8000", "model", "net",
    )  # fmt: skip
    assert {"--qdevice-port=5404", "--qdevice-tie-breaker=1", "--qdevice-algo=lms"} <= set(
        crm_command(full) or ()
    )
    assert pcs_command(site(TARGETS)) is None and crm_command(site(TARGETS)) is None


def test_outputs_show_the_quorum_device_without_applying_it() -> None:
    s = site(TARGETS, QDEVICE)
    plan = build(s)
    crm, pcs = render(plan, "crm"), render(plan, "pcs")
    section = corosync_quorum_section(s)
    assert section is not None
    for text in (crm, pcs):
        lines = text.split("# === Quorum device")[1].splitlines()
        # Every line of the block is a comment; the section is shown whole.
        assert all(line.startswith("#") for line in lines[1:]), lines
        shown = "\n".join(line[4:] if line.startswith("#   ") else "" for line in lines)
        assert "\n".join(section.splitlines()) in shown
    assert (
        "#   pcs quorum device add model net host=10.99.1.200 algorithm=ffsplit heuristics" in pcs
    )
    assert "pcs qdevice setup model net --enable --start" in pcs
    assert "#   crm cluster init qdevice --qnetd-hostname=10.99.1.200 --qdevice-algo=ffsplit" in crm
    assert "crmsh has no options for the timeouts" in crm
    # The block comes after every configuration statement: crmsh drops trailing comments, and
    # keeps (as XML comments, which may not hold "--") those before a statement.
    tail = crm.split("# === Quorum device")[1].splitlines()[1:]
    assert tail and not [line for line in tail if line and not line.startswith("#")]
    assert "Quorum device" not in render(build(site(TARGETS)), "crm")


def test_cli_prints_the_section(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(BASE + TARGETS + QDEVICE)
    result = CliRunner().invoke(generate, [str(path), "--format", "corosync-quorum"])
    assert result.exit_code == 0, result.output
    assert result.output == corosync_quorum_section(site(TARGETS, QDEVICE))
    path.write_text(BASE + TARGETS)
    result = CliRunner().invoke(generate, [str(path), "--format", "corosync-quorum"])
    assert result.exit_code == 1
    assert f"{path}: --format corosync-quorum needs a [quorum_device] section" in result.output
    assert "Traceback" not in result.output


# ---- with the real tools ------------------------------------------------------------------------


# Run inside a network namespace of its own with only loopback up: 127.0.0.1 answers, and an
# address outside it has no route, so no probe ever leaves the namespace.
_ISOLATED = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
# Lab-style addresses, unroutable in that namespace: silent.
SILENT = ("10.99.3.1", "10.99.3.2")


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")
def test_heuristics_command_passes_when_any_target_answers() -> None:
    """Split as corosync-qdevice splits it (like a Bourne shell, no expansion), then run."""
    for targets, passes in (
        (("127.0.0.1",), True),
        ((SILENT[0], "127.0.0.1"), True),
        (("127.0.0.1", SILENT[0]), True),
        ((SILENT[0],), False),
        (SILENT, False),
    ):
        argv = shlex.split(heuristics_exec(targets))
        assert argv[0] in ("/usr/bin/ping", "/bin/sh")
        done = subprocess.run([*_ISOLATED, *argv], capture_output=True, timeout=30, check=False)
        assert (done.returncode == 0) == passes, (targets, done)


def _parse(conf: str) -> dict[str, object]:
    """corosync.conf's sections and keys as nested dicts (the order of keys does not matter)."""
    root: dict[str, object] = {}
    stack = [root]
    for raw in conf.splitlines():
        line = raw.strip()
        if line.endswith("{"):
            child: dict[str, object] = {}
            stack[-1][line[:-1].strip()] = child
            stack.append(child)
        elif line == "}":
            stack.pop()
        elif line:
            key, value = line.split(":", 1)
            stack[-1][key.strip()] = value.strip()
    return root


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pcs") is None, reason="pcs is not installed")
@pytest.mark.parametrize(
    "sections",
    [(TARGETS, QDEVICE), (TARGETS, FULL), (QDEVICE,)],
    ids=["sync", "every-option", "no-heuristics"],
)
def test_pcs_writes_the_same_section(tmp_path: Path, sections: tuple[str, ...]) -> None:
    """The generated pcs command, run on a copy of corosync.conf, gives our section."""
    s = site(*sections)
    conf = tmp_path / "corosync.conf"
    conf.write_text(PCS_CONF)
    argv = pcs_command(s)
    assert argv is not None
    done = subprocess.run(
        ["pcs", f"--corosync_conf={conf}", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    by_pcs = _parse(conf.read_text())
    ours = _parse(with_quorum_device(PCS_CONF, s))
    # pcs leaves tls at corosync-qdevice's default (on), which we write out.
    net = ours["quorum"]["device"]["net"]  # type: ignore[index]
    assert net.pop("tls") == "on"  # type: ignore[union-attr]
    assert by_pcs == ours


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("corosync") is None, reason="corosync is not installed")
def test_corosync_accepts_the_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "corosync.conf"
    text = with_quorum_device(PCS_CONF.replace("HOST", socket.gethostname()), site(TARGETS, FULL))
    conf.write_text(text)
    done = subprocess.run(
        ["corosync", "-t", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Not vacuous: corosync -t does check the device's values.
    conf.write_text(text.replace("timeout: 4000", "timeout: soon"))
    done = subprocess.run(
        ["corosync", "-t", "-c", str(conf)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0 and "quorum.device.timeout" in done.stdout + done.stderr


def test_heuristics_exec_commands_beside_the_ping() -> None:
    extra = 'heuristics_exec = { holds_director = "/etc/corosync/lab-holds-director" }\n'
    with_ping = corosync_quorum_section(site(TARGETS, QDEVICE, extra))
    assert with_ping is not None
    assert "            exec_ping: /bin/sh -c " in with_ping
    assert "            exec_holds_director: /etc/corosync/lab-holds-director\n" in with_ping
    # Without targets the commands alone make the heuristics (mode sync by default).
    alone = site(QDEVICE, extra)
    assert alone.quorum_device is not None and alone.quorum_device.heuristics == "sync"
    text = corosync_quorum_section(alone)
    assert text is not None and "exec_ping" not in text and "mode: sync" in text
    crm = crm_command(site(TARGETS, QDEVICE, extra))
    assert crm is not None
    joined = [a for a in crm if a.startswith("--qdevice-heuristics=")]
    assert joined and joined[0].endswith(";/etc/corosync/lab-holds-director"), crm
