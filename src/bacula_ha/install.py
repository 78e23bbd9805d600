"""Installing the agent executables into an OCF root, and removing exactly what was installed."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .agents.registry import AGENT_MODULES, available, metadata

PROVIDER = "bacula"
MANIFEST = ".bacula-ha-installed"


class InstallError(Exception):
    """The installation could not be done; nothing was left half-written."""


@dataclass(frozen=True)
class Change:
    path: Path
    action: str  # installed | unchanged | removed | kept (modified by someone else)


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
        f"META_DATA = {rendered!r}\n\n"
        'if sys.argv[1:2] == ["meta-data"]:\n'
        "    sys.stdout.write(META_DATA)\n"
        "    raise SystemExit(0)\n\n"
        f"from {module} import AGENT  # noqa: E402\n"
        "from bacula_ha.ocf.runner import main  # noqa: E402\n\n"
        "raise SystemExit(main(AGENT))\n"
    )


def provider_dir(ocf_root: Path) -> Path:
    return ocf_root / "resource.d" / PROVIDER


def install(ocf_root: Path, interpreter: str | None = None) -> list[Change]:
    """Install every available agent (mode 0755); running it again changes nothing."""
    interpreter = interpreter or sys.executable
    if not os.path.isabs(interpreter):
        raise InstallError(f"interpreter {interpreter!r} is not an absolute path")
    target = provider_dir(ocf_root)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {target}: {exc.strerror}") from None
    manifest = _read_manifest(target)
    changes: list[Change] = []
    for name in available():
        text = agent_text(name, interpreter)
        path = target / name
        digest = _digest(text.encode())
        if path.is_file() and _digest(path.read_bytes()) == digest and _mode(path) == 0o755:
            changes.append(Change(path, "unchanged"))
        else:
            # Written beside and renamed over, so Pacemaker never runs a half-written agent.
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            os.replace(tmp, path)
            changes.append(Change(path, "installed"))
        manifest[name] = digest
    _write_manifest(target, manifest)
    return changes


def uninstall(ocf_root: Path) -> list[Change]:
    """Remove the files the manifest lists, unless someone changed them since."""
    target = provider_dir(ocf_root)
    manifest = _read_manifest(target)
    changes: list[Change] = []
    for name, digest in sorted(manifest.items()):
        path = target / name
        if not path.exists():
            continue
        if _digest(path.read_bytes()) != digest:
            changes.append(Change(path, "kept"))
            continue
        path.unlink()
        changes.append(Change(path, "removed"))
    (target / MANIFEST).unlink(missing_ok=True)
    try:
        target.rmdir()  # only when nothing else lives there
    except OSError:
        pass
    return changes


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
    return {name: digest for name, digest in entries.items() if name in AGENT_MODULES}


def _write_manifest(target: Path, manifest: dict[str, str]) -> None:
    text = "".join(f"{digest} {name}\n" for name, digest in sorted(manifest.items()))
    (target / MANIFEST).write_text(text)
