"""corosync.conf's quorum section for a site's `[quorum_device]`, and the pcs and crmsh commands."""

from __future__ import annotations

import re

from ..site.model import QDEVICE_PING_MS, Site
from .errors import GeneratorError

# What the heuristics run, as root, on every node at each membership change (and, in mode "on",
# regularly): one probe per target, one second to answer (QDEVICE_PING_MS).
PING = "/usr/bin/ping"
SHELL = "/bin/sh"
_PLAIN = re.compile(r"quorum \{\n    provider: corosync_votequorum\n(?:    two_node: 1\n)?\}")


class QuorumError(GeneratorError):
    """A site or a corosync.conf that cannot be given the quorum device."""


def heuristics_exec(targets: tuple[str, ...]) -> str:
    """The heuristics' one command: it passes when any target answers.

    corosync-qdevice runs each `exec_NAME` without a shell and needs every one of them to pass,
    so one exec per target would demand all targets; a shell `||` chain asks for any one, as
    the ping clone's `pingd gte 1` and fence_heuristics_ping's `ping_maxfail` do. The targets
    are validated addresses or host names: nothing in them needs quoting.
    """
    probes = [f"{PING} -q -n -c 1 -W {QDEVICE_PING_MS // 1000} {t}" for t in targets]
    if len(probes) == 1:
        return probes[0]
    return f'{SHELL} -c "{" || ".join(probes)}"'


def heuristics_timeout(targets: int) -> int:
    """ms the heuristics may take: each target in turn may wait its full second, plus one."""
    return QDEVICE_PING_MS * (targets + 1)


def _options(
    site: Site,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """(device, net, heuristics) options of the site's quorum device, in corosync's words."""
    q = site.quorum_device
    if q is None:
        raise QuorumError(f"{site.source}: the site has no [quorum_device]")
    device: list[tuple[str, str]] = [("model", "net")]
    if q.algorithm == "ffsplit":
        device.append(("votes", "1"))  # ffsplit requires exactly one; lms computes its own
    if q.timeout is not None:
        device.append(("timeout", str(q.timeout)))
    if q.sync_timeout is not None:
        device.append(("sync_timeout", str(q.sync_timeout)))
    net = [("host", q.host)]
    if q.port is not None:
        net.append(("port", str(q.port)))
    net.append(("algorithm", q.algorithm))
    if q.tie_breaker is not None:
        net.append(("tie_breaker", q.tie_breaker))
    heuristics: list[tuple[str, str]] = []
    targets = site.connectivity.targets if site.connectivity is not None else ()
    if q.heuristics != "off" and (targets or q.execs):
        # Explicit: corosync-qdevice's defaults (half the device's timeouts) can be shorter
        # than the probes of several unreachable targets.
        timeout = str(heuristics_timeout(len(targets)))
        heuristics = [("mode", q.heuristics), ("timeout", timeout), ("sync_timeout", timeout)]
        if targets:
            heuristics.append(("exec_ping", heuristics_exec(targets)))
        heuristics += [(f"exec_{name}", command) for name, command in q.execs]
    return device, net, heuristics


def corosync_quorum_section(site: Site) -> str | None:
    """corosync.conf's whole `quorum { ... }` section, indented as pcs writes it; None without
    a `[quorum_device]`."""
    if site.quorum_device is None:
        return None
    device, net, heuristics = _options(site)
    lines = ["quorum {", "    provider: corosync_votequorum", "", "    device {"]
    lines += [f"        {k}: {v}" for k, v in device]
    lines += ["", "        net {"]
    # tls: on is corosync-qdevice's default, written out: pcs and crmsh set up the certificates.
    lines += [f"            {k}: {v}" for k, v in (*net, ("tls", "on"))]
    lines.append("        }")
    if heuristics:
        lines += ["", "        heuristics {"]
        lines += [f"            {k}: {v}" for k, v in heuristics]
        lines.append("        }")
    lines += ["    }", "}"]
    return "\n".join(lines) + "\n"


def with_quorum_device(conf_text: str, site: Site) -> str:
    """corosync.conf (as `pcs cluster setup` writes it) with its plain votequorum section
    replaced by the site's quorum device.

    A `two_node: 1` line in that section goes too: corosync refuses two_node together with a
    quorum device, whose vote breaks the tie instead.
    """
    section = corosync_quorum_section(site)
    if section is None:
        raise QuorumError(f"{site.source}: the site has no [quorum_device]")
    text, count = _PLAIN.subn(section.rstrip("\n"), conf_text)
    if count != 1:
        raise QuorumError(
            "corosync.conf has no plain votequorum section to replace ('quorum {' with only "
            "'provider: corosync_votequorum', and 'two_node: 1' for two nodes); found "
            f"{count}: is a quorum device already configured?"
        )
    return text


def pcs_command(site: Site) -> tuple[str, ...] | None:
    """`pcs quorum device add ...` for the site's quorum device (argv after `pcs`)."""
    if site.quorum_device is None:
        return None
    device, net, heuristics = _options(site)
    # pcs takes the generic options before the model, and writes votes and tls itself.
    argv = ["quorum", "device", "add"]
    argv += [f"{k}={v}" for k, v in device if k in ("timeout", "sync_timeout")]
    argv += ["model", "net", *(f"{k}={v}" for k, v in net)]
    if heuristics:
        argv += ["heuristics", *(f"{k}={v}" for k, v in heuristics)]
    return tuple(argv)


def crm_command(site: Site) -> tuple[str, ...] | None:
    """`crm cluster init qdevice ...` for the site's quorum device (argv after `crm`).

    crmsh 4.4 has no options for the timeouts: those are set in corosync.conf afterwards.
    """
    q = site.quorum_device
    if q is None:
        return None
    _, _, heuristics = _options(site)
    argv = ["cluster", "init", "qdevice", f"--qnetd-hostname={q.host}"]
    if q.port is not None:
        argv.append(f"--qdevice-port={q.port}")
    argv.append(f"--qdevice-algo={q.algorithm}")
    if q.tie_breaker is not None:
        argv.append(f"--qdevice-tie-breaker={q.tie_breaker}")
    if heuristics:
        # crmsh takes the commands as one option, separated by semicolons.
        commands = [v for k, v in heuristics if k.startswith("exec_")]
        argv += [
            f"--qdevice-heuristics={';'.join(commands)}",
            f"--qdevice-heuristics-mode={dict(heuristics)['mode']}",
        ]
    return tuple(argv)
