"""Click commands of the generator: `generate` and `import-haresources`; the logic lives beside."""

from __future__ import annotations

from pathlib import Path

import click

from ..cliout import Fault, InputError, fail, write_output
from ..site.errors import SiteError, SiteModelError
from .errors import GeneratorError

# Kept here, not imported from .render: `bacula-ha --help` and the other subcommands should
# not pay for loading jinja2 and the generator.
FORMATS = ("crm", "pcs", "cib", "dot", "svg", "corosync-quorum")


@click.command()
@click.argument("site", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help=(
        "crm: a file for `crm configure load update`; pcs: a shell script of pcs commands "
        "(`sh FILE` applies them in one step, `sh FILE --stepwise` one by one); cib: the CIB "
        "XML for `cibadmin --modify --scope configuration --xml-file`; dot / svg: a picture of the "
        "site (svg needs Graphviz); corosync-quorum: corosync.conf's quorum section for the "
        "site's [quorum_device]."
    ),
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of standard output (`-`: standard output; only when the site is "
    "valid).",
)
def generate(site: Path, fmt: str, output: Path | None) -> None:
    """Generate the cluster configuration of the site described in SITE (TOML)."""
    from .generate import generate_text

    try:
        text = generate_text(site, fmt)
    except (GeneratorError, SiteModelError) as exc:
        fail("generate", faults(exc))
    _write("generate", text, output)


@click.command("import-haresources")
@click.argument("haresources", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--node",
    "nodes",
    multiple=True,
    metavar="NAME",
    help="A cluster node (repeat); default: the nodes named in the file.",
)
@click.option(
    "--remote",
    "remotes",
    multiple=True,
    metavar="NAME",
    help="A pacemaker_remote node (repeat): becomes a [[remote]]; storage and file daemons only.",
)
@click.option("--name", "site_name", default="bacula", show_default=True, help="Site name.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the site description here instead of standard output (`-`: standard output).",
)
def import_haresources(
    haresources: Path,
    nodes: tuple[str, ...],
    remotes: tuple[str, ...],
    site_name: str,
    output: Path | None,
) -> None:
    """Translate a Heartbeat v1 haresources file into a site description."""
    from .haresources import convert_file

    try:
        text, warnings = convert_file(haresources, list(nodes), site_name, list(remotes))
    except (GeneratorError, SiteModelError) as exc:
        fail("import-haresources", faults(exc))
    _write("import-haresources", text, output)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def faults(exc: GeneratorError | SiteModelError) -> list[Fault]:
    """A generator's or a site's error as faults: one per problem of a site, else one per line."""
    if isinstance(exc, SiteError):
        return [Fault(p.message, exc.source, p.line, p.field) for p in exc.problems]
    return [Fault(line) for line in str(exc).splitlines() if line.strip()]


def _write(command: str, text: str, output: Path | None) -> None:
    try:
        write_output(text, output)
    except InputError as exc:
        fail(command, [exc.fault])


commands = [generate, import_haresources]
