"""The `bacula-ha status` command: a thin click layer over bacula_ha.status."""

from __future__ import annotations

import click


@click.command("status")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="json: a versioned document for monitoring systems.",
)
@click.option(
    "--no-jobs",
    is_flag=True,
    help="Do not ask the director for its running jobs (no Bacula configuration needed).",
)
@click.option(
    "--watch",
    metavar="[SECONDS]",
    type=click.IntRange(1, 3600),
    is_flag=False,
    flag_value=2,
    default=None,
    help="Show it again every SECONDS (default 2) until Ctrl-C: on a terminal the screen is "
    "redrawn; otherwise each snapshot follows the last after a blank line, and json gives one "
    "document a line (NDJSON).",
)
@click.option("--count", type=click.IntRange(min=1), hidden=True)  # --watch: stop after N (tests)
def status_command(fmt: str, no_jobs: bool, watch: int | None, count: int | None) -> None:
    """One view of the Bacula site: each component, where it runs and would go, its health at
    each monitor depth, its VIP, the last config sync, the catalog's latency, the running jobs
    and every failed action explained. Run it on a cluster node (or with CIB_file set).

    With --watch it stays, like crm_mon, until Ctrl-C (exit 0). A failure after the first
    snapshot (tools slow during a failover) is shown in its place and the watch goes on."""
    from ..cliout import InputError, fail
    from .collect import StatusError, gather
    from .render import as_json, as_text

    try:
        if watch is not None:
            from .watch import watch as watch_status

            watch_status(lambda: gather(jobs=not no_jobs), fmt, watch, count=count)
            return
        status = gather(jobs=not no_jobs)
    except InputError as exc:
        fail("status", [exc.fault], fmt)
    except StatusError as exc:
        fail("status", str(exc), fmt)
    click.echo(as_json(status) if fmt == "json" else as_text(status), nl=False)
