"""The `bacula-ha check` command: a thin click layer over bacula_ha.check."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _prefix(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--prefix: an absolute, normalised path, as the site's `[bacula] prefix`."""
    if value is None:
        return None
    from ..site.parse import prefix_problem

    problem = prefix_problem(value)
    if problem is not None:
        raise click.BadParameter(problem)
    return value


@click.command("check")
@click.argument("site", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--config",
    "configs",
    multiple=True,
    metavar="FILE",
    help="A Bacula configuration to check (repeat). Default: the files the site names for its "
    "components (params.config), else (or without SITE) the install's defaults that exist "
    "(/etc/bacula, or PREFIX/etc).",
)
@click.option(
    "--prefix",
    metavar="DIR",
    callback=_prefix,
    help="Where bacula.org's packages put Bacula (e.g. /opt/bacula): its parsers in DIR/bin "
    "(bdirjson, bsdjson, bfdjson), its configurations in DIR/etc. Default: the site's "
    "[bacula] prefix, else Debian's /usr/sbin and /etc/bacula.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="json: a stable document for monitoring (docs/check.md).",
)
@click.option(
    "--failover-time",
    type=click.IntRange(1, 3600),
    default=30,
    show_default=True,
    metavar="SECONDS",
    help="How long a failover of a storage daemon takes here: a Reschedule Interval shorter "
    "than this is reported.",
)
def check_command(
    site: Path | None, configs: tuple[str, ...], prefix: str | None, fmt: str, failover_time: int
) -> None:
    """Check that the Bacula configuration lets the site described in SITE fail over.

    Without SITE, a lint of the configurations alone: only the checks that need no site's
    addresses (loopback addresses, heartbeats, rescheduling, spooled attributes). Reads the
    configurations with Bacula's own parsers (bdirjson, bsdjson, bfdjson). Exit status: 0
    clean, 1 findings (warnings or errors: the JSON's status tells which) or unreadable input,
    2 usage error.
    """
    from ..cliout import fail
    from .engine import run_check
    from .findings import format_json, format_text
    from .inputs import CheckInputError

    try:
        report = run_check(site, list(configs), failover_time, prefix=prefix)
    except CheckInputError as exc:
        fail("check", exc.faults, fmt)
    sys.stdout.write(format_json(report) if fmt == "json" else format_text(report))
    sys.exit(report.exit_status)
