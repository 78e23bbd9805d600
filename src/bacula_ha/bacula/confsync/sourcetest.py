"""The source tree's test before a push: Bacula's own verdict, through bacula/configtest.py."""

from __future__ import annotations

import os

from .model import ConfigCheckFailed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ...ocf.deadline import Deadline
    from .model import Log

# The configurations tested when found at the top of a synced tree: parser, daemon.
_DAEMONS = (
    ("bacula-dir.conf", "bdirjson", "bacula-dir"),
    ("bacula-sd.conf", "bsdjson", "bacula-sd"),
    ("bacula-fd.conf", "bfdjson", "bacula-fd"),
)


def check_source(
    paths: Sequence[str], mode: str, timeout: float, deadline: Deadline, log: Log
) -> list[str]:
    """Test every daemon configuration found at the top of a synced tree.

    Returns notes (e.g. catalog unreachable); raises ConfigCheckFailed when a test fails.
    The *json tools parse with Bacula's own parser and resolve references but never open
    the catalog; `bacula-dir -t` adds the daemon's own checks and opens it, and its retries
    against a dead database take 30 s, so it is bounded and a catalog failure is only a note.
    """
    from .. import configtest as ct  # re and the redaction rules: only when the tree changed
    from ..layout import of_config_dir

    notes: list[str] = []
    if mode == "none":
        return notes
    for path in paths:
        # /opt/bacula/etc is tested by /opt/bacula/bin's Bacula, /etc/bacula by Debian's.
        bindir = of_config_dir(path).bindir
        for conf_name, parser, daemon in _DAEMONS:
            conf = os.path.join(path, conf_name)
            if not os.path.isfile(conf):
                continue
            parsed = ct.parse(os.path.join(bindir, parser), conf, deadline, timeout)
            if parsed.outcome == ct.NOT_INSTALLED:
                log.debug(f"{parser} not installed: {conf} not parsed")
            elif not parsed.accepted:
                raise ConfigCheckFailed(f"{conf_name}: {parsed.reason}")
            if mode != "full":
                continue
            tested = ct.test(
                [os.path.join(bindir, daemon), "-t", "-c", conf], conf, deadline, timeout
            )
            if tested.accepted:
                continue
            if tested.outcome == ct.NOT_INSTALLED:
                log.debug(f"{daemon} not installed: {conf} not tested")
            elif daemon == "bacula-dir" and tested.outcome == ct.CATALOG_UNREACHABLE:
                notes.append("catalog unreachable during bacula-dir -t (not a config error)")
            elif daemon == "bacula-dir" and tested.outcome == ct.TIMED_OUT and parsed.accepted:
                notes.append(f"{daemon} -t did not finish in {timeout:.0f}s (catalog?)")
            else:
                raise ConfigCheckFailed(f"{daemon} -t: {tested.reason}")
    return notes
