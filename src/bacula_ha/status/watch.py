"""`bacula-ha status --watch`: the status again every few seconds, like `crm_mon`."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from ..cliout import Fault, InputError, error_document
from .collect import Status, StatusError
from .render import as_json, as_text

# Cursor home, then clear the screen: the next snapshot replaces the last one, no scrolling.
CLEAR = "\033[H\033[2J"


def watch(
    gather: Callable[[], Status],
    fmt: str,
    interval: int,
    *,
    count: int | None = None,
    out: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = datetime.now,
) -> None:
    """Show a snapshot every `interval` seconds until Ctrl-C, or `count` snapshots (tests).

    Text on a terminal redraws the screen under a header; elsewhere each snapshot follows the
    last after a blank line. JSON is one document a line (NDJSON), terminal or not. Ctrl-C
    and a reader gone (`| head`) end the watch normally.

    The first snapshot's failure goes to the caller: no cluster here fails as `status` does.
    A later one (tools slow during a failover, a CIB_file caught half-written) is shown in
    place of that snapshot, the error document in JSON, and the watch goes on.
    """
    out = out if out is not None else sys.stdout
    terminal = _is_terminal(out)
    redraw = terminal and fmt == "text"
    shown = 0
    try:
        while True:
            try:
                text = _snapshot(gather(), fmt)
            except (StatusError, InputError) as exc:
                if shown == 0:
                    raise
                text = _error(exc.fault if isinstance(exc, InputError) else Fault(str(exc)), fmt)
            if redraw:
                stamp = f"{now():%Y-%m-%d %H:%M:%S}"
                out.write(f"{CLEAR}Every {interval} s (Ctrl-C to quit)    {stamp}\n\n{text}")
            else:
                out.write(("\n" if shown and fmt == "text" else "") + text)
            out.flush()
            shown += 1
            if count is not None and shown >= count:
                return
            sleep(interval)
    except KeyboardInterrupt:
        if terminal:
            out.write("\n")  # the shell's prompt on its own line, not after the echoed ^C
    except BrokenPipeError:
        _discard(out)


def _snapshot(status: Status, fmt: str) -> str:
    return as_json(status, indent=None) if fmt == "json" else as_text(status)


def _error(fault: Fault, fmt: str) -> str:
    if fmt == "json":
        # The same document as a failed `status --format json`, on one line like the others.
        return json.dumps(json.loads(error_document("status", [fault]))) + "\n"
    return fault.text() + "\n"


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _discard(out: TextIO) -> None:
    """Point `out` at /dev/null: the interpreter's last flush at exit would otherwise fail
    again on the closed pipe and print a warning (the recipe of Python's signal docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
    except (OSError, ValueError, AttributeError):
        pass
