"""Bacula's own verdict on a configuration, for every agent and config sync, secrets redacted."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from ..ocf.deadline import Deadline
from ..ocf.errors import GenericError, NotConfiguredError, NotInstalledError, OCFError
from ..ocf.redact import hide

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
    from typing import Any
else:
    from ..ocf.record import dataclass, field

# Outcomes of a test. Only REJECTED says the file is wrong: the others may pass later or on
# another node, and must never stop a resource cluster-wide.
ACCEPTED = "accepted"
REJECTED = "rejected"
CATALOG_UNREACHABLE = "catalog unreachable"
MISSING_PATH = "missing path"  # a directory it names is absent here (storage mounted elsewhere)
TIMED_OUT = "timed out"
NOT_INSTALLED = "not installed"

# `bacula-dir -t` opens the catalog after every other check passed: these mean "the file is
# fine, the database is not reachable" (src/cats/*.c and src/dird/dird.c of Bacula 9.6).
_CATALOG_DOWN = (
    "Could not open Catalog",
    "Unable to connect to PostgreSQL",
    "Unable to connect to MySQL",
    "Unable to connect to database",
    "Unable to connect",
)
_MISSING_PATH = ("Working Directory", "No such file or directory")
# The line of Bacula's output that says what is wrong, in order of preference. "Fatal error:"
# is how the daemons report a file that parses but lacks what they need ("No Director resource
# defined"): every such line is kept, or the admin fixes one only to be told of the next.
_FATAL = "Fatal error:"
_ERROR_MARKERS = ("Config error:", "ERR=", "Could not", "Cannot", _FATAL, "Error")
# A directive whose name holds "password" (Bacula ignores case and spaces in names, so
# "DB Password" is one), its '=' optional (the typo Bacula rejects), then the value: a quoted
# string, complete or not, or a bare word. In an echo of Bacula's, a separator is required,
# so that `"Password" directive is required` keeps its words.
_KEYWORD = r"p[ \t]*a[ \t]*s[ \t]*s[ \t]*w[ \t]*o[ \t]*r[ \t]*d[\w \t]*?"
_VALUE = r"(\"(?:[^\"\\\n]|\\.)*\"?|[^\s;{}#\"]+)"
_PASSWORD_IN_FILE = re.compile(_KEYWORD + r"[ \t]*(?:=[ \t]*)?" + _VALUE, re.IGNORECASE)
_PASSWORD_ECHO = re.compile(_KEYWORD + r"(?:[ \t]*=[ \t]*|[ \t]+)" + _VALUE, re.IGNORECASE)
# How much of a file may be read for its secrets (configurations are a few kB).
_READ_LIMIT = 4 << 20


@dataclass(frozen=True)
class Verdict:
    """What Bacula said of a configuration. `reason` is one line, every secret replaced."""

    outcome: str
    reason: str = ""
    entries: Any = field(default=None, repr=False)  # a *json tool's parsed output (passwords!)

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED

    def error(self, what: str) -> OCFError:
        """The OCF error this verdict means for `what` (e.g. "director configuration test")."""
        text = f"{what}: {self.reason}" if self.reason else what
        if self.outcome == REJECTED:
            return NotConfiguredError(text)
        if self.outcome in (NOT_INSTALLED, MISSING_PATH):
            return NotInstalledError(text)
        if self.outcome == CATALOG_UNREACHABLE:
            return CatalogUnreachable(text)
        return GenericError(text)


class CatalogUnreachable(GenericError):
    """The catalog database does not answer (not a configuration error: 1, not 6)."""


def parse(tool: str, config: str, deadline: Deadline, timeout: float = 10.0) -> Verdict:
    """Parse `config` with a *json tool (bdirjson, bsdjson, bfdjson): never opens the catalog.

    Accepted: `entries` holds the parsed resources, passwords in clear (never log them).
    """
    import json

    verdict = _run([tool, "-c", config], config, deadline, timeout)
    if not verdict.accepted:
        return verdict
    try:
        entries = json.loads(verdict.entries)
    except ValueError:
        return Verdict(REJECTED, f"{os.path.basename(tool)} printed no JSON")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return Verdict(REJECTED, f"{os.path.basename(tool)} printed unexpected JSON")
    return Verdict(ACCEPTED, entries=entries)


def test(argv: Sequence[str], config: str, deadline: Deadline, timeout: float = 30.0) -> Verdict:
    """Run a daemon's `-t` (argv holds `-t -c config` and the rest): Bacula's full check."""
    verdict = _run(argv, config, deadline, timeout)
    return Verdict(verdict.outcome, verdict.reason)


def _run(argv: Sequence[str], config: str, deadline: Deadline, timeout: float) -> Verdict:
    from ..ocf.command import CommandTimeout, run

    if not os.path.isfile(config):
        return Verdict(NOT_INSTALLED, f"{config} does not exist on this node")
    try:
        done = run(argv, deadline=deadline, timeout=timeout)
    except CommandTimeout:
        return Verdict(
            TIMED_OUT,
            f"{os.path.basename(argv[0])} did not finish in time (a file that blocks when "
            "read, or a server it needs, such as the catalog, does not answer)",
        )
    except NotInstalledError as exc:
        return Verdict(NOT_INSTALLED, exc.reason)
    if done.ok:
        return Verdict(ACCEPTED, entries=done.stdout)
    # The *json tools print their errors on stdout, where the JSON would have been.
    output = done.stdout + "\n" + done.stderr
    reason = error_reason(output, secrets_of(config), config)
    if any(marker in output for marker in _CATALOG_DOWN):
        return Verdict(CATALOG_UNREACHABLE, reason)
    if any(marker in output for marker in _MISSING_PATH):
        return Verdict(MISSING_PATH, reason)
    return Verdict(REJECTED, reason)


def error_reason(output: str, secrets: Sequence[str] = (), config: str = "") -> str:
    """The useful line of Bacula's error output, with where it is (the file named only when
    it is not `config`, which the caller names), every secret redacted."""
    lines = [" ".join(line.split()) for line in output.splitlines()]
    lines = [line for line in lines if line and "Orphaned buffer" not in line]
    message = ""
    for marker in _ERROR_MARKERS:
        found = [ln[ln.find(marker) :] for ln in lines if marker in ln]
        if marker == _FATAL and found:
            # "Fatal error: No Director resource defined in FILE": FILE is the caller's to
            # name; one "Fatal error:" before them all keeps the exit reason short.
            texts = (f.removeprefix(_FATAL).strip() for f in found)
            texts = (t.removesuffix(f" in {config}") if config else t for t in texts)
            message = f"{_FATAL} " + "; ".join(dict.fromkeys(texts))
        else:
            message = found[0] if found else ""
        if message:
            break
    if not message:
        message = next(
            (ln for ln in reversed(lines) if "ERROR TERMINATION" not in ln),
            "rejected by Bacula's parser",
        )
    where = next((ln.lstrip(": ") for ln in lines if re.search(r"line \d+, col \d+", ln)), "")
    if config:
        where = where.replace(f" of file {config}", "")
    if where and where not in message:
        message = f"{message} ({where})"
    return redact(message, secrets)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` with every known secret and every value of a password directive replaced."""
    text = hide(text, tuple(secrets))
    # A password directive echoed by the parser, whether or not its value was found above.
    return _PASSWORD_ECHO.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + "***", text)


def secrets_of(config: str) -> list[str]:
    """Every value of a password directive in `config` and the files it includes."""
    from .files import config_sources, read_text

    found: list[str] = []
    for path in config_sources(config, complete=False) or []:
        text = read_text(path, _READ_LIMIT)
        if text is None:
            continue
        for match in _PASSWORD_IN_FILE.finditer(text):
            value = match.group(1)
            if value.startswith('"'):
                value = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
                value = value.replace('\\"', '"')
            if value and value not in found:
                found.append(value)
                # Bacula reports an unterminated string without its closing quote, and may
                # cut it at the first escape: those fragments are secret too.
                found.extend(part for part in value.split('"') if part and part != value)
    return found
