"""Transient node attributes: how an agent leaves a word for alerts and status tools."""

from __future__ import annotations

import os

from .deadline import Deadline
from .errors import OCFError
from .log import Logger

ATTRD_UPDATER = "/usr/sbin/attrd_updater"
MAX_VALUE = 240  # what an alert line or a status column can carry


def publish(name: str, value: str, deadline: Deadline, log: Logger) -> None:
    """Set this node's transient attribute `name` (cleared at reboot). Best effort: outside a
    cluster, or when attrd does not answer within a second or two, it is only a debug line."""
    from .command import BASE_ENV, run

    if not os.access(ATTRD_UPDATER, os.X_OK):
        return
    value = " ".join(value.split())[:MAX_VALUE]
    try:
        done = run(
            [ATTRD_UPDATER, "-n", name, "-U", value],
            deadline=deadline,
            timeout=deadline.bound(2.0),
            env=BASE_ENV,
        )
    except OCFError as exc:
        log.debug(f"node attribute {name}: {exc.reason}")
        return
    if not done.ok:
        log.debug(f"node attribute {name}: {done.output_tail()}")
