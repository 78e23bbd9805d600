"""An in-place upgrade of one lab node's Bacula, as a package upgrade does it (docs/upgrade.md).

`bacula-ha lab upgrade NODE --bacula 13.0.3|PREFIX` puts a bacula.org build's programs where
Debian's are, inside NODE's mount namespace only: every program of the build's bin/ that
Debian ships in /usr/sbin (bacula-dir, bacula-sd, bacula-fd, bconsole, the b*json parsers, the
volume tools) is bound read-only over Debian's file, and the build's scripts/ over
/usr/share/bacula-director. Same paths, new programs: the node's /etc/bacula, /var/lib/bacula
and the cluster's configuration stay as they were, and the other nodes still run 9.6.7.

The build's binaries find their libraries in the build's lib/ through their RUNPATH (the
build's own path on the host, which every machine sees); the upgrade checks that with ldd
inside the node. The binds are also written into the machine's spec, so the node boots
upgraded again after a crash, as an upgraded package stays installed.

Bacula's rule is that the director and the storage daemon move to a new release together, so
the node is upgraded whole; refused while a director or storage daemon runs on it (a package
upgrade would restart them under the cluster's feet: put the node in standby first).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bacula_ha.lab import baculaorg, machine
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.errors import LabError

# Where Debian's packages put what an upgrade replaces.
SBIN = baculaorg.DEBIAN.layout.bindir
SCRIPTS = baculaorg.DEBIAN.layout.scripts
# The programs whose libraries are checked with ldd after the binds (ELF files; the build's
# bin/ also holds shell scripts such as btraceback).
LINKED = ("bacula-dir", "bacula-sd", "bacula-fd", "bconsole", "bdirjson", "bsdjson", "bfdjson")
# What must not run on a node being upgraded (the client's file daemon is not on a node).
DAEMONS = ("bacula-dir", "bacula-sd")
STATE_KEY = "upgraded"


@dataclass(frozen=True)
class Upgraded:
    """What `upgrade` did on a node."""

    node: str
    prefix: str
    release: str  # what /usr/sbin/bacula-dir says in the node now
    binds: tuple[tuple[str, str], ...]  # (source on the host, target in the node)
    libraries: str  # ldd's view of bacula-dir's Bacula libraries in the node

    def describe(self) -> str:
        programs = ", ".join(os.path.basename(t) for _, t in self.binds if t.startswith(SBIN))
        return (
            f"{self.node}: Bacula {self.release} in place (from {self.prefix}): {SBIN}/ "
            f"{programs}; {SCRIPTS} = the build's scripts/\n{self.libraries}"
        )


def binds_for(prefix: str) -> list[tuple[str, str]]:
    """(source, target) pairs: each program of PREFIX/bin that Debian has in /usr/sbin, then
    PREFIX/scripts over Debian's catalog scripts."""
    bindir = Path(prefix, "bin")
    pairs = [
        (str(bindir / name), os.path.join(SBIN, name))
        for name in sorted(os.listdir(bindir))
        if os.path.isfile(os.path.join(SBIN, name)) and os.access(bindir / name, os.X_OK)
    ]
    missing = [n for n in LINKED if (str(bindir / n), os.path.join(SBIN, n)) not in pairs]
    if missing:
        raise LabError(
            f"cannot upgrade in place: {', '.join(missing)} missing from {bindir} or {SBIN}"
        )
    return [*pairs, (os.path.join(prefix, "scripts"), SCRIPTS)]


def upgraded_nodes(state: dict[str, object]) -> dict[str, str]:
    """node -> prefix of the build it was upgraded to, from the lab's state."""
    found = state.get(STATE_KEY, {})
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def upgrade(
    cfg: LabConfig,
    node: str,
    prefix: str,
    state: dict[str, object],
    save: Callable[[dict[str, str]], None],
) -> Upgraded:
    """Upgrade NODE in place to the build at PREFIX (see the module's docstring).

    state: the lab's state; save(upgraded) records the new node -> prefix map in it."""
    if cfg.bacula:
        raise LabError(
            f"this lab runs bacula.org's layout at {baculaorg.OPT} already (lab up --bacula); "
            "an in-place upgrade replaces Debian's programs: use a lab up without --bacula"
        )
    if not state.get("site"):
        raise LabError("a bare lab runs no Bacula to upgrade")
    m = cfg.node(node)
    done = upgraded_nodes(state)
    if done.get(node) == prefix:
        return _verify(cfg, node, prefix, binds_for(prefix))
    if node in done:
        raise LabError(f"{node} was upgraded to {done[node]} already")
    pairs = binds_for(prefix)
    running = machine.run_in(cfg, node, ["pgrep", "-l", "-x", "|".join(DAEMONS)], check=False)
    if running.stdout.strip():
        found = " and ".join(sorted(set(running.stdout.split()[1::2])))
        verb = "runs" if " and " not in found else "run"
        raise LabError(
            f"{found} {verb} on {node}: an upgrade replaces the programs under them; move the "
            f"Bacula groups away first (pcs node standby {node})"
        )
    # The build must be where its RUNPATH says, inside the node too.
    seen = machine.run_in(cfg, node, ["test", "-d", os.path.join(prefix, "lib")], check=False)
    if seen.returncode != 0:
        raise LabError(f"{node} does not see {prefix}/lib (the build's RUNPATH): build elsewhere")
    _record_in_spec(m.dir / "spec.json", pairs)
    for source, target in pairs:
        machine.run_in(cfg, node, ["mount", "--bind", "-o", "ro", source, target])
    save({**done, node: prefix})
    return _verify(cfg, node, prefix, pairs)


def _record_in_spec(spec_file: Path, pairs: list[tuple[str, str]]) -> None:
    """Add the binds to the machine's spec: its PID 1 applies them again at every boot."""
    spec = json.loads(spec_file.read_text())
    ro = [list(b) for b in spec.get("ro_binds", [])]
    ro += [[s, t] for s, t in pairs if [s, t] not in ro]
    spec["ro_binds"] = ro
    tmp = spec_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(spec, indent=1))
    tmp.rename(spec_file)


def _verify(cfg: LabConfig, node: str, prefix: str, pairs: list[tuple[str, str]]) -> Upgraded:
    """The node runs the build's programs from Debian's paths, linked with the build's lib/."""
    lib = os.path.join(prefix, "lib") + "/"
    libraries = ""
    for name in LINKED:
        out = machine.run_in(cfg, node, ["ldd", os.path.join(SBIN, name)]).stdout
        bacula = [line.strip() for line in out.splitlines() if "libbac" in line]
        wrong = [line for line in bacula if lib not in line]
        if "not found" in out or not bacula or wrong:
            raise LabError(f"{SBIN}/{name} on {node} does not load the build's libraries:\n{out}")
        if name == "bacula-dir":
            libraries = "ldd " + f"{SBIN}/{name}: " + "; ".join(bacula)
    usage = machine.run_in(cfg, node, [os.path.join(SBIN, "bacula-dir"), "-?"], check=False)
    found = re.search(r"Version: (\S+)", usage.stdout + usage.stderr)
    release = found.group(1) if found else "unknown"
    expected = baculaorg.release(prefix)
    if release != expected:
        raise LabError(f"{SBIN}/bacula-dir on {node} says {release}, the build is {expected}")
    return Upgraded(node, prefix, release, tuple(pairs), libraries)
