"""Renders a plan through the Jinja2 templates in crm-templates/, one quoting filter per syntax."""

from __future__ import annotations

import os
import re
import shlex
from functools import cache
from pathlib import Path

import jinja2

from ..data import DataNotFound, data_path
from ..site.model import Site
from .cibxml import render_cib
from .errors import GeneratorError
from .plan import Plan

FORMATS = {"crm": "site.crm.j2", "pcs": "site.pcs.j2"}
# Formats written without a template: CIB XML, the site's picture, corosync.conf's quorum section.
OTHER_FORMATS = ("cib", "dot", "svg", "corosync-quorum")


def template_dir() -> Path:
    """BACULA_HA_TEMPLATES, else the templates shipped with the package (crm-templates/)."""
    override = os.environ.get("BACULA_HA_TEMPLATES")
    if override:
        return Path(override)
    try:
        return data_path("crm-templates")
    except DataNotFound as exc:
        raise GeneratorError(str(exc)) from None


def crm_quote(value: object) -> str:
    """A crm shell value: always double-quoted; crmsh's shlex parsing unescapes \\\\ and \\"."""
    text = str(value)
    _refuse_controls(text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sh_quote(value: object) -> str:
    """One POSIX shell word holding exactly `value` (pcs receives it unchanged)."""
    text = str(value)
    _refuse_controls(text)
    return shlex.quote(text)


def sh_pairs(pairs: tuple[tuple[str, str], ...]) -> str:
    """`name=value` words for pcs, each one shell word."""
    return " ".join(sh_quote(f"{name}={value}") for name, value in pairs)


def comment(value: object) -> str:
    """Text safe inside a `#` comment line of either syntax.

    crmsh stores comments as XML comments in the CIB, which may not contain "--" or end in "-".
    """
    text = re.sub(r"[\x00-\x1f\x7f]", "?", str(value))
    while "--" in text:
        text = text.replace("--", "-~")
    return text + "~" if text.endswith("-") else text


def duration(seconds: int) -> str:
    return f"{seconds}s"


def _refuse_controls(text: str) -> None:
    # Validation rejects these already; this is the backstop that keeps a template bug from
    # ever writing a line break into a value.
    if re.search(r"[\x00-\x1f\x7f]", text):
        raise GeneratorError(f"refusing to render a control character in {text!r}")


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs: compiling costs more than rendering a big site.

    Jinja2's default directory is private to the user (it checks owner and mode); the cache is
    keyed by the template source, so an edited template is recompiled.
    """
    if os.environ.get("BACULA_HA_NO_TEMPLATE_CACHE"):
        return None
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None  # no usable cache directory: compile every time


@cache
def _environment(directory: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # neither output is HTML; the quoting filters do the escaping
        bytecode_cache=_bytecode_cache(),
    )
    env.filters.update(
        crmq=crm_quote, shq=sh_quote, shpairs=sh_pairs, comment=comment, dur=duration
    )
    return env


def render(plan: Plan, fmt: str, site: Site | None = None) -> str:
    """The plan as a crm shell file, a pcs shell script, CIB XML, a dot/SVG picture, or
    corosync.conf's quorum section.

    The pictures also show the nodes, so they need the `site` the plan was built from.
    """
    if fmt == "cib":
        return render_cib(plan)
    if fmt == "corosync-quorum":
        if plan.quorum is None:
            raise GeneratorError(
                f"{plan.source}: --format corosync-quorum needs a [quorum_device] section"
            )
        return plan.quorum.section
    if fmt in ("dot", "svg"):
        if site is None:
            raise GeneratorError(f"--format {fmt} needs the site description")
        from .dot import render_dot, render_svg

        text = render_dot(plan, site)
        return render_svg(text) if fmt == "svg" else text
    if fmt not in FORMATS:
        choices = ", ".join((*FORMATS, *OTHER_FORMATS))
        raise GeneratorError(f"unknown format {fmt!r} (use one of: {choices})")
    directory = template_dir()
    try:
        template = _environment(str(directory)).get_template(FORMATS[fmt])
    except jinja2.TemplateNotFound as exc:
        raise GeneratorError(f"template {exc.name} not found in {directory}") from None
    # The pcs script carries the same objects as CIB XML, for its fast path.
    return template.render(plan=plan, cib=render_cib(plan) if fmt == "pcs" else "")
