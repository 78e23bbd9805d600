"""What `bacula-ha check` reads: the site, the Bacula configurations (through Bacula's own
parsers, via bacula.config.load) and /etc/hosts; every unreadable input is a CheckInputError."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..bacula import layout
from ..bacula.config import Resources, load
from ..cliout import Fault, os_reason
from ..ocf.deadline import Deadline
from ..ocf.errors import OCFError
from ..site.errors import SiteError
from ..site.model import Site
from ..site.parse import load_site

DIRECTOR, STORAGE, FILEDAEMON = "director", "storage", "filedaemon"
# Each daemon's parser and configuration file, found in the install (bacula.layout): Debian's
# /usr/sbin and /etc/bacula, or PREFIX/bin and PREFIX/etc of bacula.org's packages.
JSON_TOOLS = {DIRECTOR: "bdirjson", STORAGE: "bsdjson", FILEDAEMON: "bfdjson"}
CONFIG_NAMES = {
    DIRECTOR: "bacula-dir.conf",
    STORAGE: "bacula-sd.conf",
    FILEDAEMON: "bacula-fd.conf",
}
PARSE_TIMEOUT = 30.0

# Resource types only one daemon's configuration has: they order which parser is tried first.
_ONLY_IN = (
    (
        DIRECTOR,
        re.compile(r"^\s*(Catalog|Job|JobDefs|Pool|FileSet|Schedule|Console)\s*\{", re.M | re.I),
    ),
    (STORAGE, re.compile(r"^\s*(Device|Autochanger)\s*\{", re.M | re.I)),
    (FILEDAEMON, re.compile(r"^\s*FileDaemon\s*\{", re.M | re.I)),
)


class CheckInputError(Exception):
    """Input that cannot be read: each fault names the file, and the line and field if known."""

    def __init__(self, *faults: Fault) -> None:
        self.faults = faults
        super().__init__("\n".join(f.text() for f in faults))


@dataclass(frozen=True)
class Wanted:
    """A configuration to check; `daemon` and `component` are known when the site names it."""

    path: str
    daemon: str | None = None
    component: str | None = None  # the site component's name
    tool: str | None = None  # its parser, when the component names its own binary


@dataclass(frozen=True)
class Parsed:
    """A configuration as Bacula's parser read it."""

    path: str
    daemon: str
    component: str | None
    resources: Resources


def read_site(path: Path) -> Site:
    try:
        return load_site(path)
    except SiteError as exc:
        raise CheckInputError(
            *(Fault(p.message, exc.source, p.line, p.field) for p in exc.problems)
        ) from None


def install_of(site: Site | None, prefix: str | None = None) -> layout.Layout:
    """The Bacula install to read: `prefix` (--prefix), else the site's `[bacula] prefix`,
    else Debian's layout."""
    chosen = prefix or (site.bacula_prefix if site is not None else None)
    return layout.under(chosen) if chosen else layout.DEBIAN


def default_configs(where: layout.Layout) -> dict[str, str]:
    """Each daemon's configuration file in the install."""
    return {daemon: where.conf(name) for daemon, name in CONFIG_NAMES.items()}


def wanted_configs(
    site: Site | None, explicit: Sequence[str], where: layout.Layout = layout.DEBIAN
) -> list[Wanted]:
    """--config paths if given; else those the site names for its components (a missing one is
    an error naming the site's field), else the install's defaults that exist (`where`:
    /etc/bacula, or PREFIX/etc). No site: --config, else the defaults."""
    if explicit:
        return _unique([Wanted(os.path.abspath(p)) for p in explicit])
    defaults = default_configs(where)
    if site is None:
        wanted = [Wanted(p, d) for d, p in defaults.items() if os.path.exists(p)]
        if not wanted:
            raise CheckInputError(
                Fault(
                    f"no Bacula configuration to check: none of {', '.join(defaults.values())} "
                    "exists (pass --config)"
                )
            )
        return wanted
    wanted = []
    missing: list[Fault] = []

    def add(daemon: str, component: str, params: Mapping[str, str], field: str) -> None:
        named = params.get("config")
        path = named or defaults[daemon]
        binary = params.get("binary")
        tool = _tool_beside(binary, JSON_TOOLS[daemon], where) if binary else None
        if os.path.exists(path):
            wanted.append(Wanted(path, daemon, component, tool))
        elif named:
            key = f"{field}.params.config"
            missing.append(
                Fault(
                    f"{path} does not exist here (pass --config to name the files to check)",
                    site.source,
                    site.line(key),
                    key,
                )
            )

    for i, d in enumerate(site.directors):
        add(DIRECTOR, d.name, dict(d.params), f"director[{i}]")
        if d.catalog is not None:
            add(DIRECTOR, d.name, dict(d.catalog.params), f"director[{i}].catalog")
    for i, s in enumerate(site.storages):
        add(STORAGE, s.name, dict(s.params), f"storage[{i}]")
    for i, f in enumerate(site.filedaemons):
        add(FILEDAEMON, f.name, dict(f.params), f"filedaemon[{i}]")
    if missing:
        raise CheckInputError(*missing)
    if not wanted:
        wanted = [Wanted(p, d) for d, p in defaults.items() if os.path.exists(p)]
    if not wanted:
        raise CheckInputError(
            Fault(
                "no Bacula configuration to check: the site names none and none of "
                f"{', '.join(defaults.values())} exists (pass --config)",
                site.source,
            )
        )
    return _unique(wanted)


def _tool_beside(binary: str, tool: str, where: layout.Layout) -> str:
    """A component's parser: beside the daemon binary it names, else the install's."""
    beside = layout.of_binary(binary).tool(tool)
    return beside if os.access(beside, os.X_OK) else where.tool(tool)


def _unique(wanted: list[Wanted]) -> list[Wanted]:
    seen: set[str] = set()
    out: list[Wanted] = []
    for w in wanted:
        if w.path not in seen:
            seen.add(w.path)
            out.append(w)
    return out


def parse_config(
    wanted: Wanted, deadline: Deadline, where: layout.Layout = layout.DEBIAN
) -> Parsed:
    """Parse with the daemon's own parser (the component's, else the install's: `where`); if
    the daemon is not known, the parser that accepts the file decides (the likeliest one is
    tried first, and its complaint is the one reported)."""
    path = wanted.path
    if not os.path.exists(path):
        raise CheckInputError(Fault("no such configuration file", path))
    if not os.path.isfile(path):
        raise CheckInputError(Fault("not a regular file", path))
    order, sure = ([wanted.daemon], True) if wanted.daemon else _likely_daemons(path)
    first_error: str | None = None
    for daemon in order:
        tool = wanted.tool or where.tool(JSON_TOOLS[daemon])
        try:
            resources = load(tool, path, deadline, timeout=PARSE_TIMEOUT)
        except OCFError as exc:
            if first_error is None:
                first_error = exc.reason
            continue
        except OSError as exc:  # the parser cannot be run at all (not installed, no rights)
            raise CheckInputError(Fault(f"cannot run {tool}: {os_reason(exc)}", path)) from None
        return Parsed(path, daemon, wanted.component, resources)
    reason = first_error or "rejected by Bacula's parsers"
    # Bacula's reason names the file at its start ("FILE: Config error: ..."): said once.
    reason = reason.removeprefix(f"{path}: ")
    if not sure:
        reason += " (not a director, storage daemon or file daemon configuration Bacula accepts)"
    line = re.search(r"\(line (\d+), col \d+\)", reason)
    raise CheckInputError(Fault(reason, path, int(line.group(1)) if line else None))


def _likely_daemons(path: str) -> tuple[list[str], bool]:
    """Every daemon, the likeliest first; and whether the file's name or text gave a clue."""
    name = os.path.basename(path).lower()
    first: str | None = None
    for daemon, marker in ((DIRECTOR, "dir"), (STORAGE, "sd"), (FILEDAEMON, "fd")):
        if re.search(rf"(^|[-_.]){marker}([-_.0-9]|$)", name):
            first = daemon
            break
    if first is None:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")[: 1 << 20]
        except OSError:
            text = ""
        first = next((d for d, pattern in _ONLY_IN if pattern.search(text)), None)
    order = [DIRECTOR, STORAGE, FILEDAEMON]
    if first is not None:
        order.remove(first)
        order.insert(0, first)
    return order, first is not None


def read_hosts(path: str = "/etc/hosts") -> dict[str, frozenset[str]]:
    """Host name -> addresses from a hosts file. No DNS: a name the file does not list is
    compared as written."""
    names: dict[str, set[str]] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            names.setdefault(name.lower(), set()).add(fields[0])
    return {name: frozenset(addrs) for name, addrs in names.items()}
