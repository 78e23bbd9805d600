"""docs/deploy.md's blocks, without the lab: places, by-hand steps, the lab's values, syntax."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bacula_ha.generator.generate import generate_text
from tests import deploy_guide

BLOCKS = deploy_guide.blocks()
TEXT = deploy_guide.GUIDE.read_text()


def test_every_block_says_where_it_runs() -> None:
    assert len(BLOCKS) > 20
    assert [b for b in BLOCKS if b.place not in deploy_guide.PLACES] == []
    # Any other fenced block is one the test would silently skip.
    assert TEXT.count("\n```sh ") == len(BLOCKS) and "\n```\n#" not in TEXT


def test_every_by_hand_step_has_exactly_one_stand_in() -> None:
    manual = [b.manual for b in BLOCKS if b.place == "manual"]
    assert sorted(manual) == sorted(deploy_guide.MANUAL.values())


def test_the_lab_changes_only_disks_labels_and_fencing() -> None:
    devices = {"catalog": "/dev/loop7", "sd1": "/dev/loop8"}
    power = Path("/lab/power")
    assert len(deploy_guide.FENCE.findall(TEXT)) == 2
    for name in (*deploy_guide.DISKS, *deploy_guide.LABELS):
        assert name in TEXT
    scripts = "".join(b.script for b in BLOCKS if not b.manual)
    changed = deploy_guide.lab_values(scripts, devices, "bhl-", power)
    for gone in ("fence_ipmilan", "/dev/disk/by-id/", "bacula-catalog", "bacula-volumes"):
        assert gone not in changed
    assert changed.count("/lab/power/node") == 2 and "--label=bhl-catalog" in changed
    # Nothing else differs: the same lines, apart from those holding the values.
    diff = [
        (a, b) for a, b in zip(scripts.splitlines(), changed.splitlines(), strict=True) if a != b
    ]
    assert len(diff) == 2 + 2 + 2 + 2  # fence lines, mkfs lines, mounts, site disks


def test_every_block_is_valid_sh() -> None:
    for block in BLOCKS:
        proc = subprocess.run(["sh", "-n"], input=block.script, capture_output=True, text=True)
        assert proc.returncode == 0, f"docs/deploy.md:{block.line}: {proc.stderr}"


def test_the_guides_site_file_generates(tmp_path: Path) -> None:
    site = re.search(r"cat >/etc/bacula-ha/site.toml <<'EOF'\n(.*?)^EOF$", TEXT, re.M | re.S)
    assert site is not None
    path = tmp_path / "site.toml"
    path.write_text(site.group(1))
    pcs = generate_text(path, "pcs")
    assert "fence_ipmilan" in pcs and "ocf:bacula:bacula-dir" in pcs


def test_apt_packages_are_read_from_the_block() -> None:
    (apt,) = [b for b in BLOCKS if b.manual == "packages"]
    packages = deploy_guide.apt_packages(apt.script)
    assert {"pacemaker", "pcs", "bacula-director-pgsql", "postgresql", "rsync"} <= set(packages)
    assert not [p for p in packages if p.startswith(("-", "./"))]
