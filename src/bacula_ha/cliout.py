"""What every `bacula-ha` command prints on failure, its exit statuses, and where output goes."""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

# Exit statuses of every command (documented once, in bacula-ha(1)).
EXIT_OK = 0
EXIT_FAILURE = 1  # findings, a failure, or input that cannot be read
EXIT_USAGE = 2  # a usage error: click's own status

# The JSON error document of every command with --format json (docs/check.md).
ERROR_FORMAT = "bacula-ha-error"
ERROR_VERSION = 1


@dataclass(frozen=True)
class Fault:
    """One thing wrong with a command's input: `FILE:LINE: field: message`."""

    message: str
    file: str = ""
    line: int | None = None
    field: str = ""

    def text(self) -> str:
        where = self.file + (f":{self.line}" if self.file and self.line is not None else "")
        return ": ".join(part for part in (where, self.field, self.message) if part)

    def as_json(self) -> dict[str, str | int | None]:
        return {
            "file": self.file or None,
            "line": self.line,
            "field": self.field or None,
            "message": self.message,
        }


class InputError(Exception):
    """An input a command reads cannot be read or decoded; carries the fault, said plainly."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        super().__init__(fault.text())


def error_document(command: str, faults: Sequence[Fault]) -> str:
    """The versioned JSON document of a failed command."""
    doc = {
        "format": ERROR_FORMAT,
        "version": ERROR_VERSION,
        "command": command,
        "exit_status": EXIT_FAILURE,
        "errors": [f.as_json() for f in faults],
    }
    return json.dumps(doc, indent=2) + "\n"


def fail(command: str, faults: Sequence[Fault] | str, fmt: str = "text") -> NoReturn:
    """Report the faults (one line each on stderr; with --format json, the error document on
    stdout too) and exit 1. A plain string is one fault, or several lines of faults."""
    if isinstance(faults, str):
        faults = [Fault(line) for line in faults.splitlines() if line.strip()] or [Fault(faults)]
    sys.stdout.flush()
    if fmt == "json":
        sys.stdout.write(error_document(command, faults))
        sys.stdout.flush()
    for fault in faults:
        sys.stderr.write(fault.text() + "\n")
    sys.stderr.flush()
    sys.exit(EXIT_FAILURE)


def os_reason(exc: OSError) -> str:
    """An OSError in words, without Python's `[Errno N]` and the repeated file name."""
    reasons = {
        errno.ENOENT: "no such file",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EISDIR: "is a directory",
        errno.ENOTDIR: "a parent is not a directory",
        errno.ENAMETOOLONG: "name too long",
        errno.ELOOP: "too many symbolic links",
    }
    return reasons.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()


def decode(data: bytes, source: str) -> str:
    """`data` as UTF-8; InputError naming the file and line of the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex()
        raise InputError(Fault(f"not UTF-8 text (byte 0x{byte})", source, line)) from None


def read_text(path: str | Path) -> str:
    """A whole input file as text; InputError saying plainly why it cannot be read."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(Fault(os_reason(exc), source)) from None
    except ValueError:  # a NUL byte in the name
        raise InputError(Fault("not a usable file name", repr(source))) from None
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise InputError(Fault("holds a NUL byte: not a text file", source, line))
    return decode(data, source)


def write_output(text: str, output: str | Path | None) -> None:
    """Write a command's result to `output`; None or `-`: standard output."""
    if output is None or str(output) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        reason = "its directory does not exist" if exc.errno == errno.ENOENT else os_reason(exc)
        raise InputError(Fault(f"cannot write: {reason}", str(output))) from None
