"""Loop-backed ext4 disks: the lab's stand-in for shared or DRBD-replicated storage."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bacula_ha.lab.config import DISK_LABEL_PREFIX, LabConfig
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.run import run

# One disk for the catalog, one per storage daemon (the lab site has one).
# sd1 holds the volumes of the jobs tests (several GB of backups across a module): sparse,
# so only what is written takes space.
DISKS = {"catalog": 512, "sd1": 8192}  # name -> size in MiB (sparse files)


def create(cfg: LabConfig, mkfs: bool = True) -> dict[str, str]:
    """Make each image, attach it to a loop device, format it (unless a fresh machine's admin
    is to); return name -> /dev/loopN."""
    cfg.disks_dir.mkdir(parents=True, exist_ok=True)
    devices: dict[str, str] = {}
    for name, mib in DISKS.items():
        image = cfg.disks_dir / f"{name}.img"
        image.unlink(missing_ok=True)
        with open(image, "wb") as fh:
            fh.truncate(mib * 1024 * 1024)
        dev = run(["losetup", "--find", "--show", str(image)]).stdout.strip()
        devices[name] = dev
        (cfg.disks_dir / f"{name}.dev").write_text(dev)
        if mkfs:
            run(["mkfs.ext4", "-q", "-F", "-L", f"{DISK_LABEL_PREFIX}{name}", dev])
    return devices


def devices(cfg: LabConfig) -> dict[str, str]:
    """name -> loop device, as recorded by create()."""
    out: dict[str, str] = {}
    for name in DISKS:
        path = cfg.disks_dir / f"{name}.dev"
        if path.exists():
            out[name] = path.read_text().strip()
    return out


def attached(lab_dir: Path) -> list[str]:
    """Loop devices whose backing file lies in the lab directory (found even without records)."""
    out = run(["losetup", "--list", "--json", "--output", "NAME,BACK-FILE"]).stdout
    if not out.strip():
        return []
    found = []
    for dev in json.loads(out).get("loopdevices", []):
        back = (dev.get("back-file") or "").removesuffix(" (deleted)")
        if back.startswith(str(lab_dir) + "/"):
            found.append(dev["name"])
    return found


def detach_all(lab_dir: Path, timeout: float = 10.0) -> list[str]:
    """Detach the lab's loop devices; a mount in a dying namespace may hold one for a moment."""
    devs = attached(lab_dir)
    deadline = time.monotonic() + timeout
    while devs:
        for dev in devs:
            run(["losetup", "--detach", dev], check=False)
        devs = attached(lab_dir)
        if devs and time.monotonic() > deadline:
            raise LabError(f"loop devices still busy: {', '.join(devs)}")
        if devs:
            time.sleep(0.1)
    return devs
