"""Installing the agent executables into an OCF root, and removing exactly what was installed."""

# Over 500 lines on purpose: install, check and uninstall share the manifest, the installed
# texts and the proofs of the interpreter; apart, each would restate them.

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import __version__
from .agents.registry import AGENT_MODULES, available, metadata

PROVIDER = "bacula"
MANIFEST = ".bacula-ha-installed"
# The Pacemaker alert agent (bacula_ha.alert). It is no resource agent, so it does not go into
# the provider directory (where `crm ra list` would offer it) but into the provider's private
# directory of the OCF root, beside resource-agents' lib/heartbeat:
# /usr/lib/ocf/lib/bacula/bacula-ha-alert. Its manifest entry is this name.
ALERT = "bacula-ha-alert"


class LibTool(NamedTuple):
    module: str  # whose main() it runs
    summary: str  # its installed file's docstring


# Programs that go there with it, no resource agents either. pg_ctl-wait is the catalog's
# pg_ctl for ocf:heartbeat:pgsql.
LIB_TOOLS = {
    ALERT: LibTool("bacula_ha.alert", "Pacemaker alert agent for Bacula components"),
    "pg_ctl-wait": LibTool(
        "bacula_ha.pgwait", "pg_ctl for ocf:heartbeat:pgsql whose start waits for PostgreSQL"
    ),
}


class InstallError(Exception):
    """The installation could not be done; nothing was left half-written."""


# The installed executable names the package version that wrote it (see agent_text).
_VERSION_LINE = re.compile(r"^VERSION = '([^'\n]*)'$", re.MULTILINE)
# ... and the module it runs (agent_text, lib_text).
_MODULE_LINE = re.compile(r"^ *from ([\w.]+) import (AGENT|main)\b", re.MULTILINE)

# The interpreter is proven in an environment like the one Pacemaker's executor gives an agent:
# no virtualenv, no PYTHONPATH, run from /. What passes here is what the cluster will see.
_BARE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
_PROOF_TIMEOUT = 60.0
# Run by the interpreter under test (`-I -c`): imports each MODULE:NAME given on the command line
# and prints one JSON line per name: [spec, imported, the value when it is a string, or why not].
# Nothing of the agents runs; it is written for any Python 3 so that an old one answers too.
_IMPORT_PROOF = """\
import importlib, json, sys
for spec in sys.argv[1:]:
    module, _, name = spec.partition(":")
    try:
        value = getattr(importlib.import_module(module), name)
    except BaseException as exc:
        print(json.dumps([spec, False, "%s: %s" % (type(exc).__name__, exc)]))
    else:
        print(json.dumps([spec, True, value if isinstance(value, str) else ""]))
"""
_PACKAGE_VERSION = "bacula_ha:__version__"


@dataclass(frozen=True)
class Change:
    path: Path
    action: str  # installed | updated | unchanged | removed | kept (modified by someone else)
    detail: str = ""  # updated: what it replaced, e.g. "was 0.0.9"


@dataclass(frozen=True)
class Check:
    """How one installed agent compares with what this package would install."""

    path: Path
    # current | missing | stale (another version) | differs (same version) | broken (its
    # interpreter cannot run it: missing, or cannot import what the agent needs)
    state: str
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
        # `install` proved this interpreter; should it lose the package later (a virtualenv
        # removed), the agent says so with OCF_ERR_INSTALLED instead of a traceback.
        "try:\n"
        f"    from {module} import AGENT\n"
        "    from bacula_ha.ocf.runner import main\n"
        "except ModuleNotFoundError as exc:\n"
        '    if exc.name != "bacula_ha":\n'
        "        raise\n"
        "    sys.stderr.write(\n"
        '        f"{sys.executable} cannot import bacula_ha\\n"\n'
        '        "ocf-exit-reason:bacula_ha is not importable: see bacula-ha install --check\\n"\n'
        "    )\n"
        "    raise SystemExit(5) from None  # OCF_ERR_INSTALLED\n\n"
        "raise SystemExit(main(AGENT))\n"
    )


def lib_text(name: str, interpreter: str) -> str:
    """An installed lib tool (the alert agent, pg_ctl-wait): like an agent, isolated, standard
    library only."""
    return (
        f"#!{interpreter} -I\n"
        f'"""{LIB_TOOLS[name].summary}, installed by `bacula-ha install`."""\n\n'
        f"VERSION = {__version__!r}\n\n"
        f"from {LIB_TOOLS[name].module} import main\n\n"
        "raise SystemExit(main())\n"
    )


def provider_dir(ocf_root: Path) -> Path:
    return ocf_root / "resource.d" / PROVIDER


def lib_path(ocf_root: Path, name: str) -> Path:
    """Where a lib tool goes for this OCF root (the CIB names the alert agent's and the
    catalog's pg_ctl-wait by these paths)."""
    return ocf_root / "lib" / PROVIDER / name


def alert_path(ocf_root: Path) -> Path:
    return lib_path(ocf_root, ALERT)


def _executables(ocf_root: Path, interpreter: str) -> list[tuple[str, Path, str]]:
    """(manifest name, path, text) of everything `install` writes."""
    target = provider_dir(ocf_root)
    found = [(name, target / name, agent_text(name, interpreter)) for name in available()]
    found += [(name, lib_path(ocf_root, name), lib_text(name, interpreter)) for name in LIB_TOOLS]
    return found


def install(ocf_root: Path, interpreter: str | None = None, verify: bool = True) -> list[Change]:
    """Install every available agent (mode 0755); running it again changes nothing.

    First the interpreter is proven (unless `verify` is false: a package build, where it can
    import the package only once installed): every agent is written to a scratch directory and
    run there (`meta-data`, through its own `#!` line), and the interpreter imports what each
    agent and the alert agent need, isolated (-I) in a bare environment. When that fails nothing
    is installed: InstallError says why, and directories this call created are removed again.
    """
    interpreter = interpreter or sys.executable
    if not os.path.isabs(interpreter):
        raise InstallError(f"interpreter {interpreter!r} is not an absolute path")
    target = provider_dir(ocf_root)
    executables = _executables(ocf_root, interpreter)
    created = _missing_dirs(target) + _missing_dirs(alert_path(ocf_root).parent)
    try:
        target.mkdir(parents=True, exist_ok=True)
        alert_path(ocf_root).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_dirs(created)
        raise InstallError(f"cannot create {exc.filename}: {exc.strerror}") from None
    if verify:
        try:
            problems = _prove(target, interpreter, executables)
        except InstallError:
            _remove_dirs(created)
            raise
        if problems:
            _remove_dirs(created)
            raise InstallError(_refusal(interpreter, problems, len(executables)))
    manifest = _read_manifest(target)
    changes: list[Change] = []
    for name, path, text in executables:
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
    """Compare every installed agent with what `install` would write now; changes nothing.

    Every installed agent is also run (`meta-data`) and its own interpreter, the one its `#!`
    line names, must import what it needs, as at install time: otherwise it is `broken`.
    """
    interpreter = interpreter or sys.executable
    result: list[Check] = []
    installed: list[tuple[str, Path, str]] = []
    for name, path, text in _executables(ocf_root, interpreter):
        old = _read(path)
        if old is None:
            result.append(Check(path, "missing"))
            continue
        installed.append((name, path, old.decode(errors="replace")))
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
    broken = _installed_problems(installed)
    return [Check(c.path, "broken", broken[c.path]) if c.path in broken else c for c in result]


def uninstall(ocf_root: Path) -> list[Change]:
    """Remove the files the manifest lists, unless someone changed them since."""
    target = provider_dir(ocf_root)
    manifest = _read_manifest(target)
    changes: list[Change] = []
    for name, digest in sorted(manifest.items()):
        path = lib_path(ocf_root, name) if name in LIB_TOOLS else target / name
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


def _needs(name: str, text: str) -> list[str]:
    """What an executable imports (MODULE:NAME), read from its text, else from the registry.

    The package itself comes first: when it is missing, every executable says so alike.
    """
    found = _MODULE_LINE.search(text)
    if name in LIB_TOOLS:
        return [_PACKAGE_VERSION, f"{found.group(1) if found else LIB_TOOLS[name].module}:main"]
    module = found.group(1) if found else AGENT_MODULES[name]
    return [_PACKAGE_VERSION, f"{module}:AGENT", "bacula_ha.ocf.runner:main"]


def _run_bare(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `argv` as Pacemaker would run an agent: a bare environment, from /, no input."""
    return subprocess.run(
        argv,
        env=_BARE_ENV,
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=_PROOF_TIMEOUT,
    )


def _imports(interpreter: str, specs: list[str]) -> dict[str, tuple[bool, str]] | str:
    """spec -> (imported, value or why not) by `interpreter -I` in a bare environment, or why
    the interpreter could not answer at all."""
    try:
        out = _run_bare([interpreter, "-I", "-c", _IMPORT_PROOF, *sorted(set(specs))])
    except FileNotFoundError:
        return f"{interpreter} does not exist"
    except PermissionError:
        return f"{interpreter} is not executable"
    except OSError as exc:
        return f"cannot run {interpreter}: {exc.strerror}"
    except subprocess.TimeoutExpired:
        return f"{interpreter} did not answer the import check in {_PROOF_TIMEOUT:.0f} s"
    answers: dict[str, tuple[bool, str]] = {}
    for line in out.stdout.splitlines():
        try:
            spec, ok, value = json.loads(line)
        except ValueError:
            continue
        answers[str(spec)] = (bool(ok), str(value))
    if not answers:
        said = out.stderr.strip().splitlines()
        why = said[-1] if said else f"exit status {out.returncode}"
        return f"{interpreter} -I cannot run the import check: {why}"
    return answers


def _import_problems(
    interpreter: str, needs: dict[str, list[str]], version: str | None = None
) -> dict[str, str]:
    """name -> why `interpreter -I` cannot import what that executable needs, or (`version`
    given) imports a bacula-ha of another version."""
    answers = _imports(interpreter, [s for specs in needs.values() for s in specs])
    if isinstance(answers, str):
        return dict.fromkeys(needs, answers)
    problems: dict[str, str] = {}
    for name, specs in needs.items():
        for spec in specs:
            ok, value = answers.get(spec, (False, "no answer"))
            module = spec.split(":")[0]
            if not ok:
                problems[name] = f"{interpreter} -I cannot import {module}: {value}"
                break
            if spec == _PACKAGE_VERSION and version is not None and value != version:
                problems[name] = f"{interpreter} -I imports bacula-ha {value}, not {version}"
                break
    return problems


def _meta_data_problem(path: Path, interpreter: str) -> str | None:
    """Why the executable at `path` does not answer meta-data through its own #! line."""
    try:
        out = _run_bare([str(path), "meta-data"])
    except FileNotFoundError:  # the file is there: the kernel did not find its #! interpreter
        if not os.path.exists(interpreter):
            return f"{interpreter} does not exist"
        return (
            f"meta-data: the kernel cannot run {interpreter} from the agent's #! line"
            " (that path must hold no blank and be short)"
        )
    except OSError as exc:
        return f"meta-data: cannot run {path}: {exc.strerror}"
    except subprocess.TimeoutExpired:
        return f"meta-data did not answer in {_PROOF_TIMEOUT:.0f} s"
    if out.returncode != 0 or "<resource-agent" not in out.stdout:
        said = out.stderr.strip().splitlines()
        why = said[-1] if said else "no meta-data"
        return f"meta-data exited {out.returncode}: {why}"
    return None


def _prove(
    target: Path, interpreter: str, executables: list[tuple[str, Path, str]]
) -> dict[str, str]:
    """name -> why it cannot run with `interpreter`: each is written to a scratch directory in
    `target` (removed again), run there, and the interpreter imports what it needs."""
    if not os.access(interpreter, os.X_OK):
        state = "is not executable" if os.path.exists(interpreter) else "does not exist"
        return {name: f"{interpreter} {state}" for name, _, _ in executables}
    # The imports first: when the interpreter cannot run at all, that is the one reason.
    needs = {name: _needs(name, text) for name, _, text in executables}
    problems = _import_problems(interpreter, needs, version=__version__)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".bacula-ha-proof-", dir=target))
    except OSError as exc:
        raise InstallError(f"cannot write in {target}: {exc.strerror}") from None
    try:
        for name, _, text in executables:
            if name in LIB_TOOLS or name in problems:
                continue  # a lib tool has no meta-data: its imports are proven above
            staged = scratch / name
            try:
                staged.write_text(text)
                staged.chmod(0o755)
            except OSError as exc:
                raise InstallError(f"cannot write {staged}: {exc.strerror}") from None
            found = _meta_data_problem(staged, interpreter)
            if found:
                problems[name] = found
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return problems


def _installed_problems(installed: list[tuple[str, Path, str]]) -> dict[Path, str]:
    """path -> why the installed executable cannot run with the interpreter its #! names."""
    by_interpreter: dict[str, list[tuple[str, Path, str]]] = {}
    problems: dict[Path, str] = {}
    for name, path, text in installed:
        first = text.split("\n", 1)[0]
        if not first.startswith("#!/"):
            problems[path] = "no absolute interpreter on its #! line"
            continue
        by_interpreter.setdefault(first[2:].split(" ", 1)[0], []).append((name, path, text))
    for interpreter, group in by_interpreter.items():
        for name, path, _ in group:
            if name not in LIB_TOOLS:
                found = _meta_data_problem(path, interpreter)
                if found:
                    problems[path] = found
        needs = {name: _needs(name, text) for name, _, text in group}
        paths = {name: path for name, path, _ in group}
        for name, why in _import_problems(interpreter, needs).items():
            problems.setdefault(paths[name], why)
    return problems


def _refusal(interpreter: str, problems: dict[str, str], total: int) -> str:
    """The message of a refused install: each reason once, with the agents it concerns."""
    reasons: dict[str, list[str]] = {}
    for name, why in sorted(problems.items()):
        reasons.setdefault(why, []).append(name)
    lines = [f"refused: the agents cannot run with {interpreter}; nothing was installed"]
    if len(reasons) == 1 and len(problems) == total:
        lines.append(f"  every agent: {next(iter(reasons))}")
    else:
        lines += [f"  {', '.join(names)}: {why}" for why, names in reasons.items()]
    lines.append(
        "  Give --interpreter the Python that holds this bacula-ha (its virtualenv's"
        f" bin/python3: {sys.executable} runs this command), or install bacula-ha for that one."
    )
    return "\n".join(lines)


def _missing_dirs(directory: Path) -> list[Path]:
    """`directory` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing


def _remove_dirs(created: list[Path]) -> None:
    """Remove the directories this install created, deepest first, if they are still empty."""
    for directory in sorted(set(created), key=lambda d: len(d.parts), reverse=True):
        try:
            directory.rmdir()
        except OSError:
            pass


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
        name: digest
        for name, digest in entries.items()
        if name in AGENT_MODULES or name in LIB_TOOLS
    }


def _write_manifest(target: Path, manifest: dict[str, str]) -> None:
    text = "".join(f"{digest} {name}\n" for name, digest in sorted(manifest.items()))
    (target / MANIFEST).write_text(text)
