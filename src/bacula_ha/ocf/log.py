"""Logging that behaves like ocf-shellfuncs' ocf_log: syslog, HA_LOGFILE, HA_DEBUGLOG, stderr."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Protocol

    class Log(Protocol):
        """What library code logs through: a Logger, or a test's stand-in (typing only)."""

        def debug(self, message: str) -> None: ...
        def info(self, message: str) -> None: ...
        def warning(self, message: str) -> None: ...
        def error(self, message: str) -> None: ...

else:
    from .record import dataclass

_SYSLOG_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "crit": 2}


@dataclass(frozen=True)
class Logger:
    """Writes `TAG: LEVEL: message` lines; TAG names the agent, the resource instance, the pid."""

    tag: str
    facility: str = ""
    logfile: str = ""
    debuglog: str = ""
    debug_enabled: bool = False
    to_stderr: bool = True
    secrets: tuple[str, ...] = ()  # values never written, whatever the message

    @classmethod
    def from_environ(
        cls, agent: str, environ: Mapping[str, str], secrets: tuple[str, ...] = ()
    ) -> Logger:
        instance = environ.get("OCF_RESOURCE_INSTANCE", "") or "default"
        facility = environ.get("HA_LOGFACILITY", "")
        if facility.lower() == "none":
            facility = ""
        logfile = environ.get("HA_LOGFILE", "")
        # Like ha_log: stderr when nothing else is configured, and always on a terminal.
        to_stderr = (not facility and not logfile) or _stderr_is_tty()
        return cls(
            tag=f"{agent}({instance})[{os.getpid()}]",
            facility=facility,
            logfile=logfile,
            debuglog=environ.get("HA_DEBUGLOG", ""),
            # Only "1" (as ocf-shellfuncs tests it): HA_debug=0 must not turn debugging on.
            debug_enabled=environ.get("HA_debug", "") == "1",
            to_stderr=to_stderr,
            secrets=secrets,
        )

    def debug(self, message: str) -> None:
        self.log("debug", message)

    def info(self, message: str) -> None:
        self.log("info", message)

    def warning(self, message: str) -> None:
        self.log("warning", message)

    def error(self, message: str) -> None:
        self.log("error", message)

    def log(self, level: str, message: str) -> None:
        is_debug = level == "debug"
        if is_debug and not self.debug_enabled and not self.debuglog:
            return
        line = f"{level.upper()}: {scrub(message, self.secrets)}"
        if self.debuglog:
            _append(self.debuglog, f"{self.tag}: {_stamp()} {line}\n")
        if is_debug and not self.debug_enabled:
            return
        if self.facility:
            _syslog(self.tag, self.facility, level, line)
        if self.logfile and self.logfile != self.debuglog:
            _append(self.logfile, f"{self.tag}: {_stamp()} {line}\n")
        if self.to_stderr:
            sys.stderr.write(f"{self.tag}: {line}\n")
            sys.stderr.flush()


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without the given secrets and without control characters (one line, no
    terminal escapes or forged log lines)."""
    from .redact import hide

    text = hide(text, secrets)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else " " if c.isspace() else "?" for c in text)
    return text


def _stderr_is_tty() -> bool:
    try:
        return os.isatty(2)
    except OSError:
        return False


def _stamp() -> str:
    return time.strftime("%Y/%m/%d_%H:%M:%S")


def _append(path: str, text: str) -> None:
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError:
        pass  # a log that cannot be written must never fail the action


def _syslog(tag: str, facility: str, level: str, line: str) -> None:
    import syslog

    code = getattr(syslog, f"LOG_{facility.upper()}", syslog.LOG_DAEMON)
    syslog.openlog(tag, 0, code)
    syslog.syslog(_SYSLOG_PRIORITY.get(level, 6), line)
    syslog.closelog()
