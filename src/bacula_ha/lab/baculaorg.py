"""Which Bacula the lab runs: Debian's packages, or a bacula.org build installed at /opt/bacula.

`lab up --bacula 13.0.3` takes the build that `scripts/build-bacula` makes (building it first
when it is missing); `--bacula PATH` any prefix laid out as bacula.org's packages are (bin/
with bacula-dir, lib/, scripts/). Every machine then holds that build as a bacula.org install:
a private /opt whose bacula/ has the build's bin/, lib/ and scripts/ bound read-only and its
own etc/ (the lab's configuration), working/ (WorkingDirectory and PidDirectory, as bacula.org
ships them) and log/. Debian's Bacula stays installed in /usr/sbin, and nothing of the lab's
runs it: the machines' /etc/bacula is gone, and the site gets `[bacula] prefix`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bacula_ha.bacula import layout, versions
from bacula_ha.lab.config import LabConfig, Machine
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.run import run
from bacula_ha.ocf.deadline import Deadline

OPT = layout.BACULA_ORG_PREFIX
# The build's own directories, the same read-only files in every machine.
SHARED = ("bin", "lib", "scripts")
# Each machine's own, as on separate hosts: configuration, state and pid files, logs.
OWN = ("etc", "working", "log")
# The machines' private /opt (empty but for bacula/): the host's /opt is none of theirs.
PRIVATE_DIRS = ("/opt",)
BUILD_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "build-bacula"


@dataclass(frozen=True)
class Install:
    """Where the lab's Bacula lives inside every machine."""

    layout: layout.Layout
    working: str  # WorkingDirectory
    pid_dir: str  # PidDirectory
    log_dir: str  # what the Messages resources append to
    query_file: str  # the director's QueryFile


# Debian's packages: pid files on the /run tmpfs, the lab's own (empty) query file.
DEBIAN = Install(
    layout.DEBIAN,
    working=layout.DEBIAN.working,
    pid_dir="/run/bacula",
    log_dir="/var/log/bacula",
    query_file="/etc/bacula/scripts/query.sql",
)
# bacula.org's packages: everything under /opt/bacula, pid files in working/ (a crash leaves
# them behind: the agents must not trust them), the build's own query.sql.
ORG = Install(
    layout.under(OPT),
    working=layout.under(OPT).working,
    pid_dir=layout.under(OPT).working,
    log_dir=f"{OPT}/log",
    query_file=f"{OPT}/scripts/query.sql",
)


def install_of(cfg: LabConfig) -> Install:
    return ORG if cfg.bacula else DEBIAN


def resolve(spec: str, log: Callable[[str], None]) -> Path:
    """The prefix of the Bacula that `--bacula SPEC` names: a path, or a version that
    scripts/build-bacula builds (built now if it is not yet)."""
    if "/" in spec or Path(spec).is_dir():
        prefix = Path(spec).resolve()
        if not os.access(prefix / "bin" / "bacula-dir", os.X_OK):
            raise LabError(
                f"--bacula {spec}: no executable bin/bacula-dir there (a prefix laid out as "
                "bacula.org's /opt/bacula is needed)"
            )
        missing = [d for d in SHARED if not (prefix / d).is_dir()]
        if missing:
            raise LabError(f"--bacula {spec}: the prefix has no {', '.join(missing)}/")
        return prefix
    if versions.Version.parse(spec) is None:
        raise LabError(f"--bacula {spec!r}: a version such as 13.0.3, or the path of a prefix")
    if not BUILD_SCRIPT.is_file():
        raise LabError(
            f"--bacula {spec}: {BUILD_SCRIPT} is not there (only a checkout has it): pass the "
            "prefix of a build instead"
        )
    builds = _script_version()
    if builds != spec:
        raise LabError(
            f"--bacula {spec}: {BUILD_SCRIPT.name} builds Bacula {builds or '(unknown)'}; "
            f"pass the prefix of a {spec} build instead"
        )
    done = run([str(BUILD_SCRIPT), "--check"], check=False)
    if done.returncode != 0:
        log(f"building Bacula {spec} with {BUILD_SCRIPT} (about 5 minutes on two cores)")
        done = run([str(BUILD_SCRIPT)], check=False, timeout=3600)
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip())[-1500:]
            raise LabError(f"{BUILD_SCRIPT} failed ({done.returncode}):\n{detail}")
    lines = done.stdout.strip().splitlines()
    prefix = Path(lines[-1]) if lines else Path()
    found = release(prefix)
    if found != spec:
        raise LabError(f"{prefix}/bin/bacula-dir is Bacula {found}, not {spec}")
    return prefix


def _script_version() -> str:
    """The release scripts/build-bacula builds (its `version=` line); "" without the script."""
    try:
        text = BUILD_SCRIPT.read_text()
    except OSError:
        return ""
    found = re.search(r"^version=(\S+)$", text, re.MULTILINE)
    return found.group(1) if found else ""


def release(prefix: Path | str) -> str:
    """The release of the director in PREFIX/bin ("unknown" when it does not say)."""
    binary = os.path.join(prefix, "bin", "bacula-dir")
    found = versions.daemon_version(binary, deadline=Deadline.after(15), timeout=10)
    return str(found) if found else "unknown"


def describe(cfg: LabConfig) -> str:
    """Which Bacula the lab's machines run, for `lab status`."""
    if cfg.bacula:
        return f"{release(cfg.bacula)}, bacula.org's layout at {OPT} (the build in {cfg.bacula})"
    found = versions.daemon_version(DEBIAN.layout.tool("bacula-dir"), deadline=Deadline.after(15))
    return f"{found or 'unknown'}, Debian's packages ({DEBIAN.layout.bindir})"


def catalog_schema(cfg: LabConfig) -> int:
    """The Version a new catalog of the lab's Bacula holds (9.6: 16; 13.0: 1024)."""
    if not cfg.bacula:
        return 16
    line = versions.line_of(versions.Version.parse(release(cfg.bacula)))
    if line is None:
        raise LabError(f"Bacula {release(cfg.bacula)} ({cfg.bacula}): no catalog schema known")
    return line.schema


def prepare(m: Machine, owner: tuple[int, int]) -> Path:
    """The machine's private /opt/bacula: mount points for the build, its own etc, working and
    log directories (working and log owned by `owner`, the daemons' user); its etc/ on the host."""
    top = m.dir / "fs" / "opt" / "bacula"
    for sub in SHARED:
        (top / sub).mkdir(parents=True, exist_ok=True)
    for sub in OWN:
        (top / sub).mkdir(parents=True, exist_ok=True)
        if sub != "etc":
            os.chown(top / sub, *owner)
            (top / sub).chmod(0o750)
    return top / "etc"


def ro_binds(cfg: LabConfig) -> list[tuple[str, str]]:
    """The build's bin/, lib/ and scripts/ at /opt/bacula/..., read-only, in every machine."""
    if not cfg.bacula:
        return []
    return [(os.path.join(cfg.bacula, sub), f"{OPT}/{sub}") for sub in SHARED]


def site_text(text: str) -> str:
    """A lab site for Debian's layout, turned to /opt/bacula: the generator's `[bacula] prefix`
    gives every Bacula agent its binary and file paths; the paths the site sets itself
    (configuration files, config sync's directory) move from /etc/bacula to /opt/bacula/etc."""
    text = text.replace('"/etc/bacula', f'"{ORG.layout.etc}')
    if re.search(r"^\s*\[bacula\]", text, re.MULTILINE):
        raise LabError("the site has its own [bacula] table: drop it, or --bacula")
    return text + f'\n# Added by `bacula-ha lab up --bacula`.\n[bacula]\nprefix = "{OPT}"\n'
