"""One line per finished stage of long work, on a terminal only: `lab: cluster formed (3.1 s)`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Tells a person at a terminal how far long work has gone; prints nothing otherwise.

    Off unless the stream is a terminal, so a pipe, a log file or a test sees the same output
    as before. Each `step` names a stage just finished and the seconds it took (since the
    previous step, or since the start for the first).
    """

    def __init__(
        self,
        prefix: str,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The stream is looked up now, not at import time: tests and click swap sys.stderr.
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self._stream) if enabled is None else enabled
        self._prefix = prefix
        self._clock = clock
        self._last = clock()

    def step(self, text: str) -> None:
        """`PREFIX: TEXT (N.N s)` on the stream if enabled; the clock restarts either way."""
        now = self._clock()
        elapsed, self._last = now - self._last, now
        if self.enabled:
            print(f"{self._prefix}: {text} ({elapsed:.1f} s)", file=self._stream, flush=True)


def quiet() -> Progress:
    """A Progress that never prints: the default of library functions."""
    return Progress("", enabled=False)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
