"""Installing the agent executables into an OCF root, and removing exactly what was installed."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .agents.registry import AGENT_MODULES, available, metadata

PROVIDER = "bacula"
MANIFEST = ".bacula-ha-installed"
# The Pacemaker alert agent (bacula_ha.alert). It is no resource agent, so it does not go into
# the provider directory (where `crm ra list` would offer it) but into the provider's private
# directory of the OCF root, beside resource-agents' lib/heartbeat:
# /usr/lib/ocf/lib/bacula/bacula-ha-alert. Its manifest entry is this name.
ALERT = "bacula-ha-alert"


class InstallError(Exception):
    """The installation could not be done; nothing was left half-written."""


# The installed executable names the package version that wrote it (see agent_text).
_VERSION_LINE = re.compile(r"^VERSION = '([^'\n]*)'$", re.MULTILINE)


@dataclass(frozen=True)
class Change:
    path: Path
    action: str  # installed | updated | unchanged | removed | kept (modified by someone else)
    detail: str = ""  # updated: what it replaced, e.g. "was 0.0.9"


@dataclass(frozen=True)
class Check:
    """How one installed agent compares with what this package would install."""

    path: Path
    state: str  # current | missing | stale (another version) | differs (same version)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "current"


def agent_text(name: str, interpreter: str) -> str:
    """The installed executable: this interpreter, isolated from PYTHONPATH and the user site.

    The meta-data is rendered here, once, and answered before any import: Pacemaker, pcs and
    crmsh ask for it on every node and every command, and it never depends on the node.
    """
    module = AGENT_MODULES[name]
    rendered = metadata(name).render()
    return (
        f"#!{interpreter} -I\n"
        f'"""OCF resource agent ocf:{PROVIDER}:{name}, installed by `bacula-ha install`."""\n\n'
        "import sys\n\n"
        f"VERSION = {__version__!r}\n"
        f"META_DATA = {rendered!r}\n\n"
        'if sys.argv[1:2] == ["meta-data"]:\n'
        "    sys.stdout.write(META_DATA)\n"
        "    raise SystemExit(0)\n\n"
        f"from {module} import AGENT  # noqa: E402\n"
        "from bacula_ha.ocf.runner import main  # noqa: E402\n\n"
        "raise SystemExit(main(AGENT))\n"
    )


def alert_text(interpreter: str) -> str:
    """The installed alert agent: like an agent, isolated, standard library only."""
    return (
        f"#!{interpreter} -I\n"
        f'"""Pacemaker alert agent for Bacula components, installed by `bacula-ha install`."""\n\n'
        f"VERSION = {__version__!r}\n\n"
        "from bacula_ha.alert import main\n\n"
        "raise SystemExit(main())\n"
    )


def provider_dir(ocf_root: Path) -> Path:
    return ocf_root / "resource.d" / PROVIDER


def alert_path(ocf_root: Path) -> Path:
    """Where the alert agent goes for this OCF root (the CIB's <alert path=...> names it)."""
    return ocf_root / "lib" / PROVIDER / ALERT


def _executables(ocf_root: Path, interpreter: str) -> list[tuple[str, Path, str]]:
    """(manifest name, path, text) of everything `install` writes."""
    target = provider_dir(ocf_root)
    found = [(name, target / name, agent_text(name, interpreter)) for name in available()]
    found.append((ALERT, alert_path(ocf_root), alert_text(interpreter)))
    return found


def install(ocf_root: Path, interpreter: str | None = None) -> list[Change]:
    """Install every available agent (mode 0755); running it again changes nothing."""
    interpreter = interpreter or sys.executable
    if not os.path.isabs(interpreter):
        raise InstallError(f"interpreter {interpreter!r} is not an absolute path")
    target = provider_dir(ocf_root)
    try:
        target.mkdir(parents=True, exist_ok=True)
        alert_path(ocf_root).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {exc.filename}: {exc.strerror}") from None
    manifest = _read_manifest(target)
    changes: list[Change] = []
    for name, path, text in _executables(ocf_root, interpreter):
        digest = _digest(text.encode())
        old = _read(path)
        if old is not None and _digest(old) == digest and _mode(path) == 0o755:
            changes.append(Change(path, "unchanged"))
            manifest[name] = digest
            continue
        try:
            # Written beside and renamed over, so Pacemaker never runs a half-written agent.
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            os.replace(tmp, path)
        except OSError as exc:
            raise InstallError(f"cannot write {path}: {exc.strerror}") from None
        if old is None:
            changes.append(Change(path, "installed"))
        else:
            # After an upgrade of the package the old copy names the old version: say so.
            changes.append(Change(path, "updated", _describe_old(old, interpreter)))
        manifest[name] = digest
    _write_manifest(target, manifest)
    return changes


def check(ocf_root: Path, interpreter: str | None = None) -> list[Check]:
    """Compare every installed agent with what `install` would write now; changes nothing."""
    interpreter = interpreter or sys.executable
    result: list[Check] = []
    for _name, path, text in _executables(ocf_root, interpreter):
        old = _read(path)
        if old is None:
            result.append(Check(path, "missing"))
            continue
        expected = text.encode()
        version = _installed_version(old)
        if old == expected and _mode(path) == 0o755:
            result.append(Check(path, "current", f"version {__version__}"))
        elif old == expected:
            result.append(Check(path, "differs", f"mode {_mode(path):04o}, not 0755"))
        elif version != __version__:
            shown = version or "unknown"
            result.append(Check(path, "stale", f"version {shown}, package {__version__}"))
        else:
            result.append(Check(path, "differs", _describe_old(old, interpreter)))
    return result


def uninstall(ocf_root: Path) -> list[Change]:
    """Remove the files the manifest lists, unless someone changed them since."""
    target = provider_dir(ocf_root)
    manifest = _read_manifest(target)
    changes: list[Change] = []
    for name, digest in sorted(manifest.items()):
        path = alert_path(ocf_root) if name == ALERT else target / name
        if not path.exists():
            continue
        if _digest(path.read_bytes()) != digest:
            changes.append(Change(path, "kept"))
            continue
        path.unlink()
        changes.append(Change(path, "removed"))
    (target / MANIFEST).unlink(missing_ok=True)
    for directory in (target, alert_path(ocf_root).parent):
        try:
            directory.rmdir()  # only when nothing else lives there
        except OSError:
            pass
    return changes


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from None


def _installed_version(text: bytes) -> str | None:
    found = _VERSION_LINE.search(text.decode(errors="replace"))
    return found.group(1) if found else None


def _describe_old(old: bytes, interpreter: str) -> str:
    """What made an installed copy differ: its version, its interpreter, or its content."""
    version = _installed_version(old)
    if version != __version__:
        return f"was {version or 'an unversioned copy'}"
    first = old.split(b"\n", 1)[0].decode(errors="replace")
    if first != f"#!{interpreter} -I":
        return f"ran {first[2:].removesuffix(' -I')}, not {interpreter}"
    return "content differed from this package (edited, or another build of the same version)"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


def _read_manifest(target: Path) -> dict[str, str]:
    try:
        lines = (target / MANIFEST).read_text().splitlines()
    except FileNotFoundError:
        return {}
    entries = dict(line.split(" ", 1)[::-1] for line in lines if " " in line)
    return {
        name: digest for name, digest in entries.items() if name in AGENT_MODULES or name == ALERT
    }


def _write_manifest(target: Path, manifest: dict[str, str]) -> None:
    text = "".join(f"{digest} {name}\n" for name, digest in sorted(manifest.items()))
    (target / MANIFEST).write_text(text)
