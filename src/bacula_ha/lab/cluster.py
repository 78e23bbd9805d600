"""Corosync and Pacemaker in the lab: corosync.conf, authkey, a seeded CIB with fencing, daemons."""

from __future__ import annotations

import os
import re
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from bacula_ha.lab import machine
from bacula_ha.lab.config import CLUSTER_NAME, LabConfig, Machine
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.run import run

HACLUSTER = "hacluster"


def corosync_conf(cfg: LabConfig, work: Path) -> str:
    """corosync.conf as pcs writes it (knet, crypto, two_node for 2), with lab timing.

    Two knet links, as real clusters are built: link0 on the cluster's own network (eth1),
    link1 on the clients' network (eth0), so that losing either alone does not split the
    cluster; a partition cuts both.
    """
    target = work / "corosync.conf"
    target.unlink(missing_ok=True)
    argv = ["pcs", "cluster", "setup", CLUSTER_NAME]
    for m in cfg.cluster_nodes:
        argv += [m.name, f"addr={m.cluster_address}", f"addr={m.address}"]
    argv += ["transport", "knet", "totem", f"token={cfg.token_ms}", "--corosync_conf", str(target)]
    run(argv)
    text = target.read_text()
    # There is no syslog daemon here; corosync logs to its private log file only.
    text, n = re.subn(r"to_syslog: yes", "to_syslog: no", text)
    if n != 1:
        raise LabError("unexpected corosync.conf from pcs: no to_syslog line")
    return text


def _primitive(rid: str, cls: str, typ: str, attrs: dict[str, str], ops: str) -> str:
    root = ET.Element("primitive", {"id": rid, "class": cls, "type": typ})
    ia = ET.SubElement(root, "instance_attributes", id=f"{rid}-ia")
    for key, value in attrs.items():
        ET.SubElement(ia, "nvpair", id=f"{rid}-ia-{key}", name=key, value=value)
    operations = ET.SubElement(root, "operations")
    ET.SubElement(operations, "op", id=f"{rid}-monitor", name="monitor", interval=ops)
    return ET.tostring(root, encoding="unicode")


def seed_cib(cfg: LabConfig, work: Path, fencing: bool = True) -> Path:
    """An initial CIB every node starts from: lab timing, stonith on, one fence_dummy per node.

    Seeding it (rather than setting properties once the cluster runs) matters for speed: the
    first DC election would otherwise wait out the default dc-deadtime of 20 s.
    """
    cib = work / "cib.xml"
    cib.write_text(run(["cibadmin", "--empty"]).stdout)
    env = {**os.environ, "CIB_file": str(cib)}
    props = {
        "stonith-enabled": "true",
        "dc-deadtime": cfg.dc_deadtime,
        "no-quorum-policy": "stop",
        "cluster-recheck-interval": "1min",
        # Every lab node sees the whole machine's load (2 cores shared by all nodes and
        # whatever else runs): Pacemaker's load throttle would otherwise run one action at a
        # time per node, serialising independent groups during a failover.
        "load-threshold": "10000%",
    }
    for name, value in props.items():
        run(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value], env=env)
    defaults = (
        '<rsc_defaults><meta_attributes id="rsc-options">'
        '<nvpair id="rsc-options-resource-stickiness" name="resource-stickiness" value="100"/>'
        '<nvpair id="rsc-options-priority" name="priority" value="1"/>'
        "</meta_attributes></rsc_defaults>"
    )
    run(["cibadmin", "--create", "--scope", "configuration", "--xml-text", defaults], env=env)
    if fencing:
        # The node running resources wins a fence race after a partition (a site sets its own).
        run(
            [
                *("crm_attribute", "--type", "crm_config", "--name", "priority-fencing-delay"),
                *("--update", cfg.priority_fencing_delay),
            ],
            env=env,
        )
    # With a site, its generated configuration brings the fence devices.
    for m in cfg.cluster_nodes if fencing else ():
        rid = f"fence-{m.name}"
        attrs = {
            "type": "file",
            "status_file": str(m.power_file),
            "pcmk_host_list": m.name,
            # Fencing powers the node off; `lab heal` is the one that boots it again.
            "pcmk_reboot_action": "off",
        }
        xml = _primitive(rid, "stonith", "fence_dummy", attrs, "60s")
        run(["cibadmin", "--create", "--scope", "resources", "--xml-text", xml], env=env)
        loc = f'<rsc_location id="loc-{rid}" rsc="{rid}" node="{m.name}" score="-INFINITY"/>'
        run(["cibadmin", "--create", "--scope", "constraints", "--xml-text", loc], env=env)
    return cib


def install_cluster_files(cfg: LabConfig, m: Machine, conf: str, authkey: Path, cib: Path) -> None:
    """Put corosync.conf, the authkey and the seed CIB into the node's private directories."""
    fs = m.dir / "fs"
    machine.prepare_root(m)
    (fs / "etc/corosync").mkdir(parents=True, exist_ok=True)
    machine.write_private(fs / "etc/corosync/corosync.conf", conf)
    key = fs / "etc/corosync/authkey"
    key.unlink(missing_ok=True)
    shutil.copyfile(authkey, key)
    key.chmod(0o400)
    cib_dir = fs / "var/lib/pacemaker/cib"
    cib_dir.mkdir(parents=True, exist_ok=True)
    target = cib_dir / "cib.xml"
    shutil.copyfile(cib, target)
    shutil.chown(cib_dir, HACLUSTER, "haclient")
    shutil.chown(target, HACLUSTER, "haclient")
    target.chmod(0o600)


def start_node(cfg: LabConfig, m: Machine, timeout: float = 20.0) -> None:
    """Start corosync, wait until it answers, then pacemakerd."""
    machine.start_daemon(cfg, m.name, ["corosync", "-f"], "/var/log/corosync/stdout.log")
    deadline = time.monotonic() + timeout
    while True:
        if machine.run_in(cfg, m.name, ["corosync-cfgtool", "-s"], check=False).returncode == 0:
            break
        if time.monotonic() > deadline:
            raise LabError(f"corosync on {m.name} does not answer; see its corosync.log")
        time.sleep(0.05)
    env = {"PCMK_logfacility": "none", "PCMK_logfile": "/var/log/pacemaker/pacemaker.log"}
    machine.start_daemon(
        cfg, m.name, ["pacemakerd", "-f"], "/var/log/pacemaker/stdout.log", env=env
    )


@dataclass(frozen=True)
class ClusterView:
    """What crm_mon reports, reduced to what the lab waits on."""

    dc: str | None
    quorate: bool
    online: tuple[str, ...]
    resources: dict[str, tuple[str, tuple[str, ...]]]  # id -> (role, nodes)
    failed_actions: tuple[str, ...]


def view(cfg: LabConfig, via: str) -> ClusterView:
    out = machine.run_in(cfg, via, ["crm_mon", "-1", "--output-as=xml"], timeout=20).stdout
    root = ET.fromstring(out)
    dc_el = root.find("summary/current_dc")
    dc = None
    quorate = False
    if dc_el is not None and dc_el.get("present") == "true":
        dc = dc_el.get("name")
        quorate = dc_el.get("with_quorum") == "true"
    online = tuple(
        n.get("name", "")
        for n in root.iterfind("nodes/node")
        if n.get("online") == "true" and n.get("unclean") != "true"
    )
    resources: dict[str, tuple[str, tuple[str, ...]]] = {}
    for r in root.iter("resource"):
        nodes = tuple(n.get("name", "") for n in r.iterfind("node"))
        resources[r.get("id", "")] = (r.get("role", ""), nodes)
    failed = tuple(
        f"{f.get('op_key')} on {f.get('node')}: {f.get('status')} {f.get('exitreason', '')}"
        for f in root.iterfind("failures/failure")
    )
    return ClusterView(dc, quorate, online, resources, failed)


def any_live_node(cfg: LabConfig) -> str:
    from bacula_ha.lab import procs

    inits = procs.machine_inits(cfg.lab_dir)
    for m in cfg.cluster_nodes:
        if m.name in inits:
            return m.name
    raise LabError("no cluster node is running")


def wait_for(cfg: LabConfig, via: str, what: str, predicate: object, timeout: float) -> ClusterView:
    """Poll crm_mon on `via` until predicate(view) holds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    last: ClusterView | None = None
    while True:
        try:
            last = view(cfg, via)
            if predicate(last):
                return last
        except (LabError, ET.ParseError):
            pass
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last}")
        time.sleep(0.1)
