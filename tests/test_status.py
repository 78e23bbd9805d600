"""`bacula-ha status` on the lab's generated site, run by crm_simulate in a CIB file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bacula_ha.generator.generate import generate_text
from tests.test_generator_helpers import empty_cib, ocf_agents, simulate, site_nodes

__all__ = ["ocf_agents"]

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "examples" / "lab-site.toml"
CLI = Path(sys.executable).parent / "bacula-ha"


@pytest.fixture(scope="module")
def site_cibs(ocf_agents: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The lab's site started on all nodes; then with the director's check failing once."""
    base = tmp_path_factory.mktemp("status")
    cib = empty_cib(base / "site.xml", site_nodes(SITE))
    conf = base / "site.crm"
    conf.write_text(generate_text(SITE, "crm"))
    # The lab's short monitor timeouts draw crmsh's advice (a warning): only errors matter here.
    done = subprocess.run(
        ["crm", "configure", "load", "update", str(conf)],
        env={**os.environ, "CIB_file": str(cib)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "ERROR" not in done.stdout + done.stderr, done.stderr
    up = base / "up.xml"
    simulate(cib, up)
    failed = base / "failed.xml"
    node = _running_on(up, "dir1-dir")
    simulate(up, failed, f"--op-inject=dir1-dir_monitor_10000@{node}=7")
    return {"up": up, "failed": failed}


def _running_on(cib: Path, rsc: str) -> str:
    doc = _status(cib, "--format", "json")
    comp = next(c for c in doc["components"] if c["rsc"] == rsc)
    assert len(comp["running_on"]) == 1
    return str(comp["running_on"][0])


def _status(cib: Path, *args: str) -> dict[str, object]:
    done = _cli(cib, *args, "--no-jobs")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _cli(cib: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CIB_file"}
    if cib is not None:
        env["CIB_file"] = str(cib)
    return subprocess.run(
        [str(CLI), "status", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_every_component_with_placement_vip_and_checks(site_cibs: dict[str, Path]) -> None:
    doc = _status(site_cibs["up"], "--format", "json")
    assert doc["version"] == 1
    comps = {c["rsc"]: c for c in doc["components"]}  # type: ignore[union-attr]
    roles = {c["role"] for c in comps.values()}
    assert {"director", "storage", "catalog"} <= roles
    director = next(c for c in comps.values() if c["role"] == "director")
    assert director["running_on"] == [director["preferred"]]
    assert director["would_go"] not in ("", director["preferred"])
    assert director["vip"].count(".") == 3
    # One check per advertised depth (0, 10, 20), each with its last recorded result.
    assert sorted(k["depth"] for k in director["checks"]) == [0, 10, 20]
    assert doc["failures"] == []


def test_a_failed_action_is_explained(site_cibs: dict[str, Path]) -> None:
    doc = _status(site_cibs["failed"], "--format", "json")
    failures = doc["failures"]
    assert isinstance(failures, list) and len(failures) == 1
    assert failures[0]["rsc"] == "dir1-dir" and failures[0]["exitcode"] == 7
    assert "was found not running" in failures[0]["sentence"]
    text = _cli(site_cibs["failed"], "--no-jobs").stdout
    assert "Failed actions:" in text and "dir1-dir: the check on" in text


def test_a_missing_cib_file_is_said_plainly(tmp_path: Path) -> None:
    # status reads CIB_file itself before any cluster tool (cliout's convention: FILE: message).
    missing = tmp_path / "no-such-cib.xml"
    done = _cli(missing)
    assert done.returncode == 1
    assert done.stderr == f"{missing}: no such file\n"
