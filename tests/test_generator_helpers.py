"""Generator test helpers: empty CIBs, applying crm/pcs output, normalising, simulating."""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacula_ha.generator import agentinfo

OCF_BACULA = Path("/usr/lib/ocf/resource.d/bacula")
STUB_MARK = "# stub written by the bacula-ha generator tests"
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.toml") if p.name != "lab-site.toml")


def empty_cib(path: Path, nodes: list[str]) -> Path:
    """An empty CIB with these nodes, all online members, and quorum."""
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


def apply_pcs(text: str, cib: Path) -> str:
    """Run the pcs script against the CIB file (CIB_FILE set); fails on any error."""
    script = cib.with_suffix(".sh")
    script.write_text(text)
    done = _run(["/bin/sh", str(script)], {"CIB_FILE": str(cib)})
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
    return out


def site_nodes(site_path: Path) -> list[str]:
    import tomllib

    return [n["name"] for n in tomllib.loads(site_path.read_text())["node"]]


@pytest.fixture(scope="session")
def ocf_agents() -> Iterator[None]:
    """The ocf:bacula agents installed where crmsh and pcs look for them (/usr/lib/ocf).

    Agents already installed (by `bacula-ha install`) are used as they are; any agent still
    missing gets a meta-data-only stub rendered from its registry meta-data, removed after.
    """
    missing = [a for a in agentinfo.BACULA_AGENTS if not (OCF_BACULA / a).exists()]
    if missing:
        _run([str(ROOT / ".venv/bin/bacula-ha"), "install"])
    stubs: list[Path] = []
    for agent in agentinfo.BACULA_AGENTS:
        path = OCF_BACULA / agent
        if path.exists():
            continue
        OCF_BACULA.mkdir(parents=True, exist_ok=True)
        meta = agentinfo.bacula_metadata(agent).render()
        path.write_text(
            f"#!/bin/sh\n{STUB_MARK}\n[ \"$1\" = meta-data ] || exit 7\ncat <<'XML'\n{meta}XML\n"
        )
        path.chmod(0o755)
        stubs.append(path)
    try:
        yield
    finally:
        for path in stubs:
            if path.exists() and STUB_MARK in path.read_text():
                path.unlink()


# ---- crm_simulate ----------------------------------------------------------------------------


def simulate(cib: Path, out: Path, *events: str) -> str:
    """Run crm_simulate -S with node events (e.g. "--node-fail=n1"); returns its text output."""
    done = _run(["crm_simulate", "-x", str(cib), "-S", "-O", str(out), *events])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


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
