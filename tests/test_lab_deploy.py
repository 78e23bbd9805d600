"""docs/deploy.md, run: every command block on the lab's fresh machines, in order."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from bacula_ha.lab import disks, lifecycle, machine
from bacula_ha.lab.config import DISK_LABEL_PREFIX, LabConfig
from testkit.lab import evidence, power_offs, running_lab
from tests import deploy_guide
from tests.deploy_guide import Block

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]


def _by_hand(cfg: LabConfig, block: Block) -> None:
    """What the admin does by hand, done the lab's way (and checked where it can be)."""
    if block.manual == "packages":
        for package in deploy_guide.apt_packages(block.script):
            argv = ["dpkg-query", "-W", "-f=${Status}", package]
            state = subprocess.run(argv, capture_output=True, text=True).stdout
            assert state == "install ok installed", f"the guide installs {package}: {state!r}"
    elif block.manual == "keys":  # ssh-copy-id, both ways
        for source, target in (("node1", "node2"), ("node2", "node1")):
            key = (cfg.node(source).dir / "fs/root/.ssh/id_ed25519.pub").read_text()
            authorized = cfg.node(target).dir / "fs/root/.ssh/authorized_keys"
            with authorized.open("a") as fh:
                fh.write(key)
            authorized.chmod(0o600)
    elif block.manual == "client-conf":  # scp to the client
        target = cfg.client.dir / "fs/etc/bacula/bacula-fd.conf"
        shutil.copyfile(cfg.node("node1").dir / "fs/root/client-fd.conf", target)
    elif block.manual == "power-on":
        lifecycle.heal(cfg)
    else:
        pytest.fail(f"docs/deploy.md:{block.line}: a by-hand block the test cannot do")


def test_the_deployment_guide_runs_on_fresh_machines() -> None:
    timings: list[tuple[int, str, float]] = []
    with running_lab(fresh=True) as cfg:
        devices = disks.devices(cfg)
        for block in deploy_guide.blocks():
            start = time.monotonic()
            if block.manual:
                _by_hand(cfg, block)
                timings.append((block.line, "by hand", time.monotonic() - start))
                continue
            script = deploy_guide.lab_values(
                block.script, devices, DISK_LABEL_PREFIX, cfg.lab_dir / "power"
            )
            for place in ("node1", "node2") if block.place == "both" else (block.place,):
                proc = machine.run_in(cfg, place, ["sh", "-ec", script], check=False, timeout=600)
                if proc.returncode != 0:
                    pytest.fail(
                        f"docs/deploy.md:{block.line} on {place} exited {proc.returncode}:\n"
                        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n"
                        + evidence(cfg, ("pacemaker-controld", "pacemaker-schedulerd"))
                    )
            timings.append((block.line, block.place, time.monotonic() - start))
        # The drill fenced node2 once, and nothing else was ever powered off.
        assert power_offs(cfg) == ["node2"]
    total = sum(t for _, _, t in timings)
    print(f"\ndocs/deploy.md: {len(timings)} blocks in {total:.1f} s")
    for line, place, took in timings:
        print(f"  line {line:4}  {place:8} {took:6.1f} s")
