"""What `bacula-ha check` reports: findings with a stable code, and their text and JSON forms."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..cliout import EXIT_FAILURE, EXIT_OK
from ..ocf.redact import MASK, is_secret_name

ERROR = "error"
WARNING = "warning"

# Exit statuses of `bacula-ha check`, those of every command (bacula-ha(1), docs/check.md):
# the JSON's `status` tells warnings from errors, the exit status only that there are findings.
EXIT_CLEAN = EXIT_OK
EXIT_FINDINGS = EXIT_FAILURE  # warnings or errors; also input that cannot be read

JSON_VERSION = 1


@dataclass(frozen=True)
class Finding:
    """One thing in a Bacula configuration that defeats or slows down failover."""

    code: str  # short and stable, e.g. "storage-address-not-vip"
    severity: str  # ERROR: failover cannot work; WARNING: it works badly or loses jobs
    file: str
    resource_type: str  # as Bacula's parser names it: Director, Storage, Catalog, Job ...
    resource_name: str
    directive: str  # as written in the configuration, e.g. "Address", "Heartbeat Interval"
    value: str | None  # the value found (None: the directive is absent)
    message: str  # why it breaks failover
    fix: str

    @property
    def shown_value(self) -> str | None:
        """The value as a message may show it: a secret directive's (Password) masked."""
        return MASK if self.value is not None and is_secret_name(self.directive) else self.value

    def as_json(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.file,
            "resource_type": self.resource_type,
            "resource_name": self.resource_name,
            "directive": self.directive,
            "value": self.shown_value,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Checked:
    """A configuration file that was checked, and the daemon whose parser accepted it."""

    file: str
    daemon: str  # "director" | "storage" | "filedaemon"


@dataclass(frozen=True)
class Report:
    """Every finding of one run, in configuration order."""

    checked: tuple[Checked, ...]
    findings: tuple[Finding, ...]

    @property
    def exit_status(self) -> int:
        return EXIT_FINDINGS if self.findings else EXIT_CLEAN

    @property
    def status_word(self) -> str:
        """clean, warnings (only) or errors: what the exit status does not tell."""
        if any(f.severity == ERROR for f in self.findings):
            return "errors"
        return "warnings" if self.findings else "clean"

    def counts(self) -> tuple[int, int]:
        errors = sum(1 for f in self.findings if f.severity == ERROR)
        return errors, len(self.findings) - errors


def format_text(report: Report) -> str:
    """One block per finding, then a summary line."""
    out: list[str] = []
    for f in report.findings:
        value = "(not set)" if f.value is None else f.shown_value
        out.append(
            f"{f.file}: {f.resource_type} {f.resource_name!r}: {f.directive} = {value}: "
            f"{f.severity} [{f.code}]"
        )
        out.append(f"  why: {f.message}")
        out.append(f"  fix: {f.fix}")
    errors, warnings = report.counts()
    files = ", ".join(f"{c.file} ({c.daemon})" for c in report.checked)
    if report.findings:
        out.append(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} in {files}")
    else:
        out.append(f"clean: nothing in {files} stands in the way of failover")
    return "\n".join(out) + "\n"


def format_json(report: Report) -> str:
    doc = {
        "version": JSON_VERSION,
        "status": report.status_word,
        "exit_status": report.exit_status,
        "checked": [{"file": c.file, "daemon": c.daemon} for c in report.checked],
        "findings": [f.as_json() for f in report.findings],
    }
    return json.dumps(doc, indent=2) + "\n"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def sort_findings(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Errors first, then warnings; otherwise in the order found (configuration order)."""
    return tuple(sorted(findings, key=lambda f: f.severity != ERROR))
