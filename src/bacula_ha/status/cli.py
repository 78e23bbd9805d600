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
def status_command(fmt: str, no_jobs: bool) -> None:
    """One view of the Bacula site: each component, where it runs and would go, its health at
    each monitor depth, its VIP, the last config sync, the catalog's latency, the running jobs
    and every failed action explained. Run it on a cluster node (or with CIB_file set)."""
    from .collect import StatusError, gather
    from .render import as_json, as_text

    try:
        status = gather(jobs=not no_jobs)
    except StatusError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(as_json(status) if fmt == "json" else as_text(status), nl=False)
