"""pacemaker_remote nodes in the lab (`lab up --remote N`): authkey, pacemaker_remoted, site.

A remote node is a machine like the cluster nodes (own namespaces, private /etc, the lab's
agents and Bacula files) that runs `pacemaker_remoted` instead of corosync and pacemakerd. The
cluster reaches it through an `ocf:pacemaker:remote` connection resource on a full node, which
authenticates with /etc/pacemaker/authkey: the same key on every full and remote node.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bacula_ha.lab import machine
from bacula_ha.lab.config import LabConfig, Machine
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.run import run

AUTHKEY = "/etc/pacemaker/authkey"
PORT = 3121
# A dead remote node is noticed by its connection's monitor (its TCP peer vanished without a
# word): every 3 s, failed after 6 s, rather than the generator's 30 s + 30 s.
MONITOR = {"interval": "3s", "timeout": "6s"}
# After fencing, the connection tries again on its own every 5 s: `lab heal` only boots it.
RECONNECT = "5s"
_LOG_ENV = {"PCMK_logfacility": "none", "PCMK_logfile": "/var/log/pacemaker/pacemaker.log"}


def remoted_binary() -> str:
    """pacemaker-remoted: the host's, else the copy scripts/bootstrap put in the virtualenv.

    Debian's pacemaker-remote package Conflicts with pacemaker (installing it removes the
    full node's daemons), so on this host the program comes out of the package, not from it.
    """
    found = shutil.which("pacemaker-remoted")
    if found:
        return found
    bundled = Path(sys.prefix) / "libexec" / "pacemaker-remoted"
    if os.access(bundled, os.X_OK):
        return str(bundled)
    raise LabError(
        "pacemaker-remoted not found (neither on PATH nor in "
        f"{bundled.parent}): run scripts/bootstrap, which takes it out of the "
        "pacemaker-remote package (that package conflicts with pacemaker)"
    )


def make_authkey(cfg: LabConfig) -> Path:
    """The Pacemaker authkey the lab's full and remote nodes share (4 KiB of random data)."""
    key = cfg.lab_dir / "pacemaker-authkey"
    key.write_bytes(os.urandom(4096))
    key.chmod(0o400)
    return key


def install_authkey(m: Machine, key: Path) -> None:
    """Put the key into the machine's private /etc, readable by the cluster daemons' group."""
    machine.prepare_root(m)
    target = m.dir / "fs" / AUTHKEY.strip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    shutil.copyfile(key, target)
    shutil.chown(target, "root", "haclient")
    target.chmod(0o640)


def listening(cfg: LabConfig, m: Machine) -> bool:
    argv = ["ss", "-Hltn", f"sport = :{PORT}"]
    return bool(machine.run_in(cfg, m.name, argv, check=False).stdout.strip())


def start(cfg: LabConfig, m: Machine, timeout: float = 20.0) -> None:
    """Start pacemaker_remoted in the machine and wait until it listens."""
    machine.start_daemon(
        cfg, m.name, [remoted_binary()], "/var/log/pacemaker/stdout.log", env=dict(_LOG_ENV)
    )
    deadline = time.monotonic() + timeout
    while not listening(cfg, m):
        if time.monotonic() > deadline:
            raise LabError(
                f"pacemaker_remoted on {m.name} does not listen on {PORT}; see "
                f"{m.dir / 'fs/var/log/pacemaker'}"
            )
        time.sleep(0.05)


def boot(cfg: LabConfig, m: Machine) -> None:
    """Boot a remote node: power on, its PID-1, pacemaker_remoted."""
    m.power_file.write_text("on")  # exactly "on", no newline: fence_dummy compares it
    machine.boot(cfg, m)
    start(cfg, m)


def fence_params(m: Machine) -> dict[str, str]:
    return {"type": "file", "status_file": str(m.power_file), "pcmk_reboot_action": "off"}


def site_additions(cfg: LabConfig, data: dict[str, Any], site: Path) -> str:
    """Check the site's [[remote]] nodes against the lab's; the TOML for those it leaves out.

    The site must name the lab's first remote nodes (remote1, ...) and no more than the lab
    has; the lab's further remote nodes join the site idle, with their fence devices, since
    the cluster fences and watches every node it knows.
    """
    names = [r.get("name", "") for r in data.get("remote", []) if isinstance(r, dict)]
    wanted = [m.name for m in cfg.remote_nodes]
    if names != wanted[: len(names)]:
        raise LabError(
            f"site {site} describes remote nodes {', '.join(names)}, the lab has "
            f"{', '.join(wanted) or 'none'}: use `--remote {len(names)}` (remote1, remote2, "
            "...) or another site"
        )
    text = ""
    for m in cfg.remote_nodes[len(names) :]:
        params = ", ".join(f'{k} = "{v}"' for k, v in fence_params(m).items())
        text += (
            f"\n# Added by `bacula-ha lab up --remote {cfg.remotes}`: an idle remote node.\n"
            f'[[remote]]\nname = "{m.name}"\naddress = "{m.address}"\n'
            f'reconnect_interval = "{RECONNECT}"\n'
            f'fence = {{ agent = "fence_dummy", params = {{ {params} }} }}\n'
        )
    return text


def _nvpairs(parent: ET.Element, tag: str, rid: str, values: dict[str, str]) -> None:
    block = ET.SubElement(parent, tag, id=f"{rid}-{tag}")
    for key, value in values.items():
        ET.SubElement(block, "nvpair", id=f"{rid}-{tag}-{key}", name=key, value=value)


def _create(env: dict[str, str], scope: str, xml: str) -> None:
    run(["cibadmin", "--create", "--scope", scope, "--xml-text", xml], env=env)


def seed(cfg: LabConfig, cib: Path) -> None:
    """The bare lab (no site): each remote node's connection and fence device in the seed CIB."""
    env = {**os.environ, "CIB_file": str(cib)}
    for m in cfg.remote_nodes:
        fence = ET.Element("primitive", {"id": f"fence-{m.name}", "class": "stonith"})
        fence.set("type", "fence_dummy")
        _nvpairs(fence, "instance_attributes", fence.get("id", ""), {
            **fence_params(m), "pcmk_host_list": m.name,
        })  # fmt: skip
        _create(env, "resources", ET.tostring(fence, encoding="unicode"))
        loc = f'<rsc_location id="loc-fence-{m.name}" rsc="fence-{m.name}" node="{m.name}" '
        _create(env, "constraints", loc + 'score="-INFINITY"/>')
        conn = ET.Element("primitive", {"id": m.name, "class": "ocf", "provider": "pacemaker"})
        conn.set("type", "remote")
        _nvpairs(conn, "instance_attributes", m.name, {
            "server": m.address, "reconnect_interval": RECONNECT,
        })  # fmt: skip
        ops = ET.SubElement(conn, "operations")
        ET.SubElement(ops, "op", {"id": f"{m.name}-monitor", "name": "monitor", **MONITOR})
        _create(env, "resources", ET.tostring(conn, encoding="unicode"))


def default_site() -> Path:
    """examples/lab-remote-site.toml: the storage daemon on remote1, standby remote2."""
    from ..data import data_path

    return data_path("examples", "lab-remote-site.toml")
