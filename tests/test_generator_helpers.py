"""Generator test helpers: empty CIBs, applying crm/pcs output, normalising, simulating."""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacula_ha import install
from tests.tiers import slow_fixture

OCF_BACULA = Path("/usr/lib/ocf/resource.d/bacula")
ROOT = Path(__file__).resolve().parents[1]
# The lab sites (lab-*.toml) name lab-only power files; the lab tests apply them for real.
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.toml") if not p.name.startswith("lab-"))


def empty_cib(path: Path, nodes: list[str], remotes: list[str] | None = None) -> Path:
    """An empty CIB with these nodes, all online members, and quorum.

    `remotes`: pacemaker_remote nodes as a cluster knows them once they have connected (a node
    entry of type remote and a clean node state), so their connections' first start makes them
    usable in the same transition.
    """
    cib = ET.Element(
        "cib",
        {
            "crm_feature_set": "3.16.1",
            "validate-with": "pacemaker-3.9",
            "epoch": "1",
            "num_updates": "0",
            "admin_epoch": "0",
            "have-quorum": "1",
        },
    )
    conf = ET.SubElement(cib, "configuration")
    for tag in ("crm_config", "nodes", "resources", "constraints"):
        ET.SubElement(conf, tag)
    status = ET.SubElement(cib, "status")
    for number, name in enumerate(nodes, start=1):
        ET.SubElement(conf.find("nodes"), "node", id=str(number), uname=name)  # type: ignore[arg-type]
        ET.SubElement(
            status,
            "node_state",
            {
                "id": str(number),
                "uname": name,
                "in_ccm": "true",
                "crmd": "online",
                "join": "member",
                "expected": "member",
            },
        )
    for name in remotes or []:
        ET.SubElement(conf.find("nodes"), "node", id=name, uname=name, type="remote")  # type: ignore[arg-type]
        ET.SubElement(
            status,
            "node_state",
            {"id": name, "uname": name, "remote_node": "true", "in_ccm": "true", "crmd": "online"},
        )
    path.write_text(ET.tostring(cib, encoding="unicode") + "\n")
    return path


def _run(
    argv: list[str], env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        argv, capture_output=True, text=True, env=full_env, timeout=timeout, check=False
    )


def apply_crm(text: str, cib: Path) -> str:
    """`crm configure load update` into the CIB file; fails on any error or warning."""
    conf = cib.with_suffix(".crm")
    conf.write_text(text)
    done = _run(["crm", "configure", "load", "update", str(conf)], {"CIB_file": str(cib)})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not re.search(r"ERROR|WARNING", output), output
    return output


def apply_pcs(text: str, cib: Path, stepwise: bool = False) -> str:
    """Run the pcs script against the CIB file (CIB_FILE set); fails on any error.

    By default the script's fast path (one cibadmin merge); `stepwise` runs its pcs commands.
    """
    script = cib.with_suffix(".sh")
    script.write_text(text)
    argv = ["/bin/sh", str(script), *(["--stepwise"] if stepwise else [])]
    done = _run(argv, {"CIB_FILE": str(cib)})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Error" not in output, output
    return output


def verify(cib: Path) -> None:
    """crm_verify: no error and no warning."""
    done = _run(["crm_verify", "-x", str(cib), "-V"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert not re.search(r"error|warning", done.stdout + done.stderr, re.I), (
        done.stdout + done.stderr
    )


# Attributes whose absence means the same as this value.
_DEFAULTS = {
    ("rsc_colocation", "rsc-role"): "Started",
    ("rule", "boolean-op"): "and",
    ("rsc_order", "kind"): "Mandatory",
}
_KEEP_ID = {"primitive", "group", "clone", "rsc_location", "rsc_colocation", "rsc_order"}
_ORDERED = {"group"}  # children whose order carries meaning


def _canon(el: ET.Element) -> tuple[object, ...]:
    attrs = {k: v for k, v in el.attrib.items() if k != "id" or el.tag in _KEEP_ID}
    for (tag, name), value in _DEFAULTS.items():
        if el.tag == tag and attrs.get(name) == value:
            del attrs[name]
    kids = [_canon(k) for k in el]
    if el.tag in _ORDERED:
        members = tuple(_canon(k) for k in el if k.tag == "primitive")
        rest = sorted(_canon(k) for k in el if k.tag != "primitive")
        return (el.tag, tuple(sorted(attrs.items())), members, tuple(rest))
    return (el.tag, tuple(sorted(attrs.items())), tuple(sorted(kids, key=repr)))


def normalised(cib: Path) -> dict[str, object]:
    """The configuration without generated ids and document order, defaults made explicit."""
    conf = ET.parse(cib).getroot().find("configuration")
    assert conf is not None
    out: dict[str, object] = {}
    for section in ("crm_config", "rsc_defaults", "op_defaults"):
        pairs = sorted(
            (nv.get("name"), nv.get("value")) for nv in conf.iterfind(f"{section}//nvpair")
        )
        out[section] = pairs
    out["resources"] = sorted((_canon(r) for r in conf.find("resources") or []), key=repr)
    out["constraints"] = sorted((_canon(c) for c in conf.find("constraints") or []), key=repr)
    out["alerts"] = sorted((_canon(a) for a in conf.find("alerts") or []), key=repr)
    out["fencing-topology"] = sorted(
        (_canon(level) for level in conf.find("fencing-topology") or []), key=repr
    )
    return out


def site_nodes(site_path: Path) -> list[str]:
    import tomllib

    return [n["name"] for n in tomllib.loads(site_path.read_text())["node"]]


def site_remotes(site_path: Path) -> list[str]:
    import tomllib

    return [n["name"] for n in tomllib.loads(site_path.read_text()).get("remote", [])]


def remote_site_text(full: int = 3, remotes: int = 100, daemons: int = 200) -> str:
    """A large site: `full` full nodes and `remotes` remote nodes in two data centres, one
    director with its catalog on full nodes, `daemons` storage daemons on the remote nodes.

    Remote nodes r001.. are split in half by data centre; storage daemon i prefers remote node
    i mod `remotes` and stands by on the node half the ring away (the other data centre).
    """
    fence = (
        'fence = {{ agent = "fence_dummy", '
        'params = {{ type = "file", status_file = "/run/{0}" }} }}'
    )
    out = ['[site]\nname = "large-remote"\n']
    for i in range(1, full + 1):
        dc = "dc1" if i <= (full + 1) // 2 else "dc2"
        out.append(f'[[node]]\nname = "f{i}"\ndc = "{dc}"\n' + fence.format(f"f{i}") + "\n")
    half = remotes // 2
    for i in range(remotes):
        name = f"r{i + 1:03d}"
        dc = "dc1" if i < half else "dc2"
        address = f"10.60.{i // 200}.{10 + i % 200}"
        out.append(
            f'[[remote]]\nname = "{name}"\ndc = "{dc}"\naddress = "{address}"\n'
            + fence.format(name)
            + "\n"
        )
    out.append(
        f'[[director]]\nname = "dir1"\npreferred = "f1"\nstandby = "f{full}"\n'
        'vip = { ip = "10.61.0.2", cidr_netmask = 16 }\n'
        '[director.catalog]\nname = "cat1"\nbackend = "postgresql"\n'
        'vip = { ip = "10.61.0.3", cidr_netmask = 16 }\n'
        'disk = { type = "shared", device = "/dev/disk/by-label/cat1", fstype = "ext4", '
        'directory = "/srv/cat1" }\n'
        'database = { agent = "pgsql", params = { pgdata = "/srv/cat1/data" } }\n'
    )
    for i in range(daemons):
        preferred = f"r{i % remotes + 1:03d}"
        standby = f"r{(i % remotes + half) % remotes + 1:03d}"
        ip = f"10.62.{i // 200}.{10 + i % 200}"
        out.append(
            f'[[storage]]\nname = "sd{i:03d}"\npreferred = "{preferred}"\n'
            f'standby = "{standby}"\nvip = {{ ip = "{ip}", cidr_netmask = 16 }}\n'
            f'params = {{ config = "/etc/bacula/sd{i:03d}/bacula-sd.conf" }}\n'
        )
    return "\n".join(out)


@pytest.fixture(scope="session")
@slow_fixture
def ocf_agents() -> Iterator[None]:
    """This checkout's ocf:bacula agents, installed where crmsh and pcs look for them
    (/usr/lib/ocf), for the session.

    A current install is used as it is. A missing, stale or broken one (left by a checkout
    since deleted: its interpreter is gone, and crmsh finds no meta-data) is replaced by this
    checkout's, removed again after: the host keeps no agent that cannot run.
    """
    ocf_root = OCF_BACULA.parents[1]
    if all(c.ok for c in install.check(ocf_root)):
        yield
        return
    install.install(ocf_root)
    try:
        yield
    finally:
        install.uninstall(ocf_root)


# ---- crm_simulate ----------------------------------------------------------------------------


def simulate(cib: Path, out: Path, *events: str) -> str:
    """Run crm_simulate -S with node events (e.g. "--node-fail=n1"); returns its text output."""
    done = _run(["crm_simulate", "-x", str(cib), "-S", "-O", str(out), *events])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def set_attribute(cib: Path, node: str, name: str, value: str | None) -> None:
    """A transient node attribute in a CIB file (None deletes it), as ocf:pacemaker:ping's
    attrd_updater sets it on a live cluster: crm_simulate's rules see it like the real one."""
    change = ["--delete"] if value is None else ["--update", value]
    argv = ["crm_attribute", "--node", node, "--name", name, "--lifetime", "reboot", *change]
    done = _run(argv, {"CIB_file": str(cib)})
    assert done.returncode == 0, done.stdout + done.stderr


def placement(cib: Path) -> dict[str, tuple[str, str]]:
    """Resource id -> (node, role) of every active resource instance in a simulated CIB."""
    done = _run(["crm_mon", "-1", "--output-as=xml", "--include=resources"], {"CIB_file": str(cib)})
    assert done.returncode == 0, done.stderr
    root = ET.fromstring(done.stdout)
    found: dict[str, tuple[str, str]] = {}
    for res in root.iter("resource"):
        if res.get("active") != "true":
            continue
        nodes = [n.get("name", "") for n in res.iterfind("node")]
        rid = res.get("id", "")
        role = res.get("role", "")
        if rid in found and role != "Promoted":  # clone instances: keep the Promoted one
            continue
        found[rid] = (nodes[0] if nodes else "", role)
    return found


def executed(output: str) -> list[str]:
    """The resource actions in the order crm_simulate executed them: "rsc action node"."""
    return [
        f"{m.group(1)} {m.group(2)} {m.group(3)}"
        for m in re.finditer(r"Resource action:\s+(\S+)\s+(\S+) on (\S+)", output)
    ]
