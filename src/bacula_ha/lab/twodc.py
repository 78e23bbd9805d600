"""Two data centres in the lab: per-DC bridges behind a delaying WAN, a quorum arbiter, faults.

`bacula-ha lab up --nodes 4 --dcs 2` puts node1 and node2 in dc1 and node3 and node4 in dc2.
Each data centre is a bridge of the switch namespace; a third, "core" bridge (the lab's usual
one) is the third place, with the client and the arbiter (corosync-qnetd). Each DC bridge
reaches the core bridge over a WAN link made by bacula_ha.lab.wan (this kernel has no netem):
LINK_DELAY_MS one way per link, so twice that between the data centres. A partition between the
data centres isolates the core bridge's two DC ports from each other (bridge port isolation):
each DC still reaches the arbiter and the client, as a real inter-DC link cut would leave them.

Every node runs corosync-qdevice (model net, algorithm ffsplit, TLS with the certificates made
here in each machine's private /etc/corosync, never the host's).
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

from bacula_ha.lab import machine, procs
from bacula_ha.lab.config import (
    BRIDGE,
    CLUSTER_BRIDGE,
    CLUSTER_NAME,
    SWITCH_NS,
    LabConfig,
    Machine,
)
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.run import run
from bacula_ha.lab.stack import DIR_VIP

# One way, each DC <-> third place link: 10 ms one way (20 ms round trip) between the DCs.
LINK_DELAY_MS = 5
WAN_MODULE = "bacula_ha.lab.wan"
# The quorum device's section comes from the site's [quorum_device] (bacula_ha.generator.quorum;
# examples/lab-two-dc-site.toml has the lab's timing). One of its heuristics is the lab's own,
# run on every node at each membership change: it passes on the node that holds the director's
# VIP. In a 50:50 split the arbiter gives its vote to the half with the better score (connected
# nodes + passed - failed), so the data centre running the director keeps it and nothing moves;
# with no director anywhere, the tie-breaker (lowest node id) acts.
HEURISTIC = "/etc/corosync/lab-holds-director"
HEURISTIC_SCRIPT = f"""#!/bin/sh
# bacula-ha lab: qdevice heuristics (see corosync.conf quorum.device.heuristics).
PATH=/usr/sbin:/usr/bin:/sbin:/bin
ip -o -4 addr show dev eth0 | grep -q ' {DIR_VIP}/'
"""
DC_FAIL_MODES = ("crash", "partition", "uplink")
ARBITER_FAIL_MODES = ("crash", "partition")


def dcs(cfg: LabConfig) -> tuple[str, ...]:
    return tuple(f"dc{i}" for i in range(1, cfg.dcs + 1))


def dc_nodes(cfg: LabConfig, dc: str) -> tuple[Machine, ...]:
    nodes = tuple(m for i, m in enumerate(cfg.cluster_nodes, 1) if cfg.dc_of(i) == dc)
    if not nodes:
        raise LabError(f"no data centre {dc!r} in this lab (known: {', '.join(dcs(cfg))})")
    return nodes


def dc_of_node(cfg: LabConfig, name: str) -> str:
    for i, m in enumerate(cfg.cluster_nodes, 1):
        if m.name == name:
            return cfg.dc_of(i)
    raise LabError(f"no cluster node {name!r}")


def _arbiter(cfg: LabConfig) -> Machine:
    if cfg.arbiter is None:
        raise LabError("this lab has one data centre and no arbiter (use `lab up --dcs 2`)")
    return cfg.arbiter


# --- network -------------------------------------------------------------------------------


def _core_ports(dc: str) -> tuple[str, str]:
    """The DC's ports on the core bridges, the clients' and the cluster network's (isolated
    from the other DC's on a partition)."""
    return f"{dc}-c", f"{dc}-kc"


def _uplink(dc: str) -> str:
    """The DC's end of its WAN link on the clients' network: down when the DC loses its uplink."""
    return f"{dc}-u"


def create_network(cfg: LabConfig) -> None:
    """DC bridges and their WAN links to the core bridges; the relay that delays them.

    Two networks, each with a bridge per DC and a core bridge: the clients' (br0, with the
    client, the gateway and the arbiter's eth0) and the cluster's own (brk, with the arbiter's
    eth1, where corosync and the quorum device talk); both cross the same delaying relay.
    """
    pairs = []
    for dc in dcs(cfg):
        client_core, cluster_core = _core_ports(dc)
        for bridge, dc_port, core_port, core in (
            (f"br{dc}", _uplink(dc), client_core, BRIDGE),
            (f"brk{dc}", f"{dc}-k", cluster_core, CLUSTER_BRIDGE),
        ):
            machine.add_bridge(bridge)
            # DC side: dc_port on the DC bridge, its peer (+w) is the relay's; core side alike.
            for port, br in ((dc_port, bridge), (core_port, core)):
                peer = port + "w"
                run(["ip", "-n", SWITCH_NS, "link", "add", port, "type", "veth", "peer", "name",
                     peer])  # fmt: skip
                run(["ip", "-n", SWITCH_NS, "link", "set", port, "master", br, "up"])
                run(["ip", "-n", SWITCH_NS, "link", "set", peer, "up"])
            pairs.append(f"{dc_port}w:{core_port}w")
    argv = ["ip", "netns", "exec", SWITCH_NS, sys.executable, "-m", WAN_MODULE, str(LINK_DELAY_MS)]
    machine.supervisor_request(
        cfg, {"op": "spawn", "argv": [*argv, *pairs], "log": str(cfg.log_dir / "wan.log")}
    )


def set_dc_partition(cfg: LabConfig, cut: bool) -> None:
    """Cut (or restore) the path between the data centres; both keep the third place."""
    flag = "on" if cut else "off"
    for dc in dcs(cfg):
        for port in _core_ports(dc):
            run(["ip", "netns", "exec", SWITCH_NS, "bridge", "link", "set", "dev", port,
                 "isolated", flag])  # fmt: skip


def set_dc_uplink(cfg: LabConfig, dc: str, up: bool) -> None:
    """Cut (or restore) a data centre's clients' network: its cluster network stays."""
    dc_nodes(cfg, dc)  # a known data centre
    run(["ip", "-n", SWITCH_NS, "link", "set", _uplink(dc), "up" if up else "down"])


def dc_partitioned(cfg: LabConfig) -> bool:
    out = run(["ip", "netns", "exec", SWITCH_NS, "bridge", "-d", "link", "show"]).stdout
    return "isolated on" in out


# --- quorum device -------------------------------------------------------------------------


def with_qdevice(conf: str, site_text: str | None) -> str:
    """corosync.conf with the quorum device of the site's `[quorum_device]`, as the generator
    writes it (the lab's two-DC site when the lab is bare)."""
    from bacula_ha.generator.errors import GeneratorError
    from bacula_ha.generator.quorum import with_quorum_device
    from bacula_ha.site.errors import SiteModelError
    from bacula_ha.site.parse import parse_site

    source = str(default_site()) if site_text is None else "the applied site"
    text = site_text if site_text is not None else default_site().read_text()
    try:
        site = parse_site(text, source)
        if site.quorum_device is None:
            raise LabError(f"{source} has no [quorum_device]: a two-DC lab needs its arbiter")
        return with_quorum_device(conf, site)
    except (GeneratorError, SiteModelError) as exc:
        raise LabError(str(exc)) from exc


def _in_etc(m: Machine, script: str) -> None:
    """Run a shell script with the machine's private /etc mounted over /etc, on the host.

    In a throwaway mount namespace: the certificate tools write to fixed paths under
    /etc/corosync, and these must be the machine's, never the host's. The script starts only
    once /etc/hostname proves the machine's copy is the one mounted.
    """
    guard = (
        f'test "$(cat /etc/hostname)" = {m.name} || {{ echo "not {m.name}\'s /etc" >&2; exit 1; }}'
    )
    inner = f"set -eu\n{guard}\n{script}\n"
    wrapper = 'mount --bind "$0" /etc && exec sh -c "$1"'
    etc = str(m.dir / "fs" / "etc")
    run(["unshare", "--mount", "--propagation", "private", "sh", "-c", wrapper, etc, inner],
        timeout=120)  # fmt: skip


def prepare_qdevice(cfg: LabConfig) -> None:
    """The heuristics script on every node, then certificates (prepare_certificates)."""
    for m in cfg.cluster_nodes:
        script = m.dir / "fs" / HEURISTIC.strip("/")
        machine.write_private(script, HEURISTIC_SCRIPT)
        script.chmod(0o755)
    prepare_certificates(cfg)


def prepare_certificates(cfg: LabConfig) -> None:
    """The qnetd CA and server certificate on the arbiter, a cluster certificate on each node.

    What `corosync-qdevice-net-certutil -Q` does over ssh, done with the files: the arbiter's
    CA is imported by every node, node1's request is signed by the arbiter, node1 makes the
    PKCS#12 bundle and every other node imports it.
    """
    arbiter = _arbiter(cfg)
    work = cfg.lab_dir / "qdevice"
    work.mkdir(exist_ok=True)
    qnetd_db = "/etc/corosync/qnetd/nssdb"
    node_db = "/etc/corosync/qdevice/net/nssdb"
    # The copy of the host's /etc may hold the host's own qnetd database: never reuse it.
    _in_etc(arbiter, f"rm -rf {qnetd_db}\ncorosync-qnetd-certutil -i >/dev/null")
    ca = work / "qnetd-cacert.crt"
    shutil.copyfile(arbiter.dir / "fs" / qnetd_db.strip("/") / "qnetd-cacert.crt", ca)
    first, *others = cfg.cluster_nodes
    for m in cfg.cluster_nodes:
        _in_etc(
            m, f"rm -rf /etc/corosync/qdevice\ncorosync-qdevice-net-certutil -i -c {ca} >/dev/null"
        )
    _in_etc(first, f"corosync-qdevice-net-certutil -r -n {CLUSTER_NAME} >/dev/null")
    request = work / "qdevice-net-node.crq"
    shutil.copyfile(first.dir / "fs" / node_db.strip("/") / request.name, request)
    _in_etc(arbiter, f"corosync-qnetd-certutil -s -c {request} -n {CLUSTER_NAME} >/dev/null")
    signed = work / f"cluster-{CLUSTER_NAME}.crt"
    shutil.copyfile(arbiter.dir / "fs" / qnetd_db.strip("/") / signed.name, signed)
    _in_etc(first, f"corosync-qdevice-net-certutil -M -c {signed} >/dev/null")
    bundle = work / "qdevice-net-node.p12"
    shutil.copyfile(first.dir / "fs" / node_db.strip("/") / bundle.name, bundle)
    for m in others:
        _in_etc(m, f"corosync-qdevice-net-certutil -m -c {bundle} >/dev/null")


def boot_arbiter(cfg: LabConfig, timeout: float = 20) -> None:
    """Boot the arbiter machine and start corosync-qnetd in it; wait until it answers."""
    arbiter = _arbiter(cfg)
    machine.boot(cfg, arbiter)
    machine.run_in(cfg, arbiter.name, ["mkdir", "-p", "/run/corosync-qnetd"])
    machine.start_daemon(
        cfg, arbiter.name, ["corosync-qnetd", "-f", "-d"], "/var/log/corosync/qnetd.log"
    )
    deadline = time.monotonic() + timeout
    while machine.run_in(cfg, arbiter.name, ["corosync-qnetd-tool", "-s"], check=False).returncode:
        if time.monotonic() > deadline:
            raise LabError("corosync-qnetd on the arbiter does not answer; see its qnetd.log")
        time.sleep(0.05)


def start_qdevice(cfg: LabConfig, m: Machine) -> None:
    """corosync-qdevice on a node (after corosync): it connects to the arbiter by itself."""
    machine.run_in(cfg, m.name, ["mkdir", "-p", "/run/corosync-qdevice"])
    machine.start_daemon(
        cfg, m.name, ["corosync-qdevice", "-f", "-d"], "/var/log/corosync/qdevice.log"
    )


def qdevice_status(cfg: LabConfig, node: str) -> str:
    """`corosync-qdevice-tool -s` on a node: connection to the arbiter and its vote."""
    return machine.run_in(cfg, node, ["corosync-qdevice-tool", "-s"], check=False).stdout


def quorum_status(cfg: LabConfig, node: str) -> str:
    return machine.run_in(cfg, node, ["corosync-quorumtool", "-s"], check=False).stdout


def arbiter_votes(cfg: LabConfig, node: str) -> bool:
    """True if the node's quorum counts the arbiter's vote right now."""
    return votes_in(quorum_status(cfg, node))


def votes_in(out: str) -> bool:
    """True if `corosync-quorumtool -s` output counts the quorum device's vote."""
    # corosync-quorumtool's membership list: "0  1  Qdevice" while its vote counts, "0  0
    # Qdevice (votes 1)" when it does not.
    match = re.search(r"^\s*0\s+(\d+)\s+Qdevice", out, re.MULTILINE)
    return match is not None and int(match.group(1)) > 0


def status_lines(cfg: LabConfig, via: str | None) -> list[str]:
    """What `lab status` adds for two data centres: who is where, the link, the arbiter's vote."""
    lines = [f"{dc}: {', '.join(sorted(_names(cfg, dc)))}" for dc in dcs(cfg)]
    link = "CUT (partition)" if dc_partitioned(cfg) else f"{2 * LINK_DELAY_MS} ms one way"
    lines.append(f"between the data centres: {link}; arbiter {_arbiter(cfg).address}")
    if via is not None:
        counted = "counted" if arbiter_votes(cfg, via) else "NOT counted"
        lines.append(f"arbiter's vote as {via} sees it: {counted}")
    return lines


def _names(cfg: LabConfig, dc: str) -> set[str]:
    return {m.name for m in dc_nodes(cfg, dc)}


# --- faults --------------------------------------------------------------------------------


def is_target(cfg: LabConfig, name: str) -> bool:
    return cfg.dcs > 1 and (name in dcs(cfg) or name == "arbiter")


def fail(cfg: LabConfig, target: str, mode: str) -> None:
    """Fail a whole data centre (crash: every node powered off at once; partition: the path
    between the data centres cut) or the arbiter (crash or partition)."""
    if target == "arbiter":
        if mode not in ARBITER_FAIL_MODES:
            raise LabError(f"the arbiter fails by {' or '.join(ARBITER_FAIL_MODES)}, not {mode!r}")
        arbiter = _arbiter(cfg)
        if mode == "crash":
            machine.power_off(cfg.lab_dir, arbiter.name)
        else:
            machine.set_port(arbiter.name, up=False)
        return
    nodes = dc_nodes(cfg, target)
    if mode not in DC_FAIL_MODES:
        raise LabError(f"a data centre fails by {' or '.join(DC_FAIL_MODES)}, not {mode!r}")
    if mode == "partition":
        set_dc_partition(cfg, cut=True)
        return
    if mode == "uplink":
        set_dc_uplink(cfg, target, up=False)
        return
    # All links first, then the machines: the data centre drops off the network in one go.
    for m in nodes:
        machine.set_port(m.name, up=False)
    for m in nodes:
        machine.power_off(cfg.lab_dir, m.name)


def heal_network(cfg: LabConfig) -> None:
    """Undo the DC partition and bring the arbiter back (booted, qnetd running, connected)."""
    set_dc_partition(cfg, cut=False)
    for dc in dcs(cfg):
        set_dc_uplink(cfg, dc, up=True)
    arbiter = _arbiter(cfg)
    if arbiter.name not in procs.machine_inits(cfg.lab_dir):
        boot_arbiter(cfg)
    machine.set_port(arbiter.name, up=True)


def default_site() -> Path:
    """examples/lab-two-dc-site.toml, as shipped with the package (or of this source tree)."""
    from ..data import data_path

    return data_path("examples", "lab-two-dc-site.toml")
