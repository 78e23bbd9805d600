"""docs/deploy.md as data: its command blocks in order, and what the lab changes in them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
# Where a block runs: a node, both nodes (node1 then node2), the client, or by hand.
PLACES = ("node1", "node2", "both", "client", "manual")
# The guide's stand-ins for real hardware: the shared disks' stable names and the IPMI fence
# devices. The lab's own values replace exactly these (lab_values), nothing else.
DISKS = {
    "/dev/disk/by-id/wwn-0x6000c29000000000000000000000c0a1": "catalog",
    "/dev/disk/by-id/wwn-0x6000c29000000000000000000000c0a2": "sd1",
}
LABELS = {"bacula-catalog": "catalog", "bacula-volumes": "sd1"}
FENCE = re.compile(
    r'fence = \{ agent = "fence_ipmilan", params = \{ ip = "10\.99\.9\.(\d)", [^}]*\} \}'
)
# What each by-hand block does, by its first word: the test's own way of doing it.
MANUAL = {
    "apt-get": "packages",
    "ssh-copy-id": "keys",
    "scp": "client-conf",
    "ipmitool": "power-on",
}

_BLOCK = re.compile(r"^```sh (\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    place: str
    script: str
    line: int  # of the opening fence, for messages

    @property
    def manual(self) -> str:
        """The test's action standing for a by-hand block ("" for one the test runs)."""
        return MANUAL.get(self.script.split()[0], "?") if self.place == "manual" else ""


def blocks(text: str | None = None) -> list[Block]:
    text = GUIDE.read_text() if text is None else text
    return [
        Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in _BLOCK.finditer(text)
    ]


def lab_values(script: str, devices: dict[str, str], label_prefix: str, power_dir: Path) -> str:
    """The block with the lab's disks, labels and fence devices instead of the guide's."""
    for name, disk in DISKS.items():
        script = script.replace(name, devices[disk])
    for label, disk in LABELS.items():
        script = script.replace(label, label_prefix + disk)
    return FENCE.sub(
        lambda m: (
            f'fence = {{ agent = "fence_dummy", params = {{ type = "file", status_file = '
            f'"{power_dir}/node{m.group(1)}", pcmk_reboot_action = "off" }} }}'
        ),
        script,
    )


def apt_packages(script: str) -> list[str]:
    """The Debian packages an `apt-get install` block names (not the local .deb)."""
    words = script.replace("\\\n", " ").split("\n")[0].split()
    return [w for w in words[3:] if not w.startswith(("-", "./"))]
