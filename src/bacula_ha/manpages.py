"""Man pages built at package build time: agents from their meta-data, the CLI, the site schema.

One source each, so a page cannot disagree with what it documents: `ocf_bacula_AGENT(7)` is
rendered from the same MetaData objects the agents answer `meta-data` with (and pcs describes),
`bacula-ha(1)` from the click command tree, `bacula-ha-site(5)` from docs/site-schema.md. The
output is plain man(7) roff: no DocBook tool chain.

Over 600 lines in one module on purpose: the three pages share the roff writer at the top
(escaping, inline markup, headers, examples), one section each below it; split, every page
would import the writer back and the build step would gather them again.

    python3 -m bacula_ha.manpages OUTDIR [--site-schema docs/site-schema.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .agents.registry import AGENT_MODULES, metadata

if TYPE_CHECKING:
    import click

    from .ocf.metadata import Action, MetaData, Parameter

SOURCE = f"bacula-ha {__version__}"
PROVIDER = "bacula"

# What each action does, for every agent (an agent's own longdesc says how it does it).
ACTION_TEXT = {
    "start": "Starts the resource.",
    "stop": "Stops the resource; succeeds when nothing of ours runs (never returns 7).",
    "monitor": "Checks the resource at the given depth (OCF_CHECK_LEVEL).",
    "reload": "Makes the running daemon reread its configuration, after testing it.",
    "reload-agent": "Applies changed reloadable parameters without a restart.",
    "validate-all": "Checks the parameters and this node, without side effects.",
    "meta-data": "Prints this agent's meta-data (internal use); answers at once, anywhere.",
    "promote": "Promotes the instance.",
    "demote": "Demotes the instance.",
    "notify": "Receives notifications of the clone's transitions.",
}

# The codes shared by every agent (the runner owns them: bacula_ha.ocf.runner).
_COMMON_CODES = {
    0: "success; for monitor: running and healthy.",
    2: "a parameter is invalid on this host (the resource is banned from this node).",
    3: "an action the agent does not implement.",
    7: "monitor or probe: cleanly stopped here. Never returned by stop.",
}

# The exit codes each agent uses and what each means for it. The source of truth is the agent's
# code; tests/test_packaging.py checks that every code an agent module names is listed here.
EXIT_CODES: dict[str, dict[int, str]] = {
    "bacula-dir": {
        1: "may work after recovery or elsewhere: a catalog is unreachable at start, the director "
        "does not answer, start timed out, a reload was refused by the configuration test.",
        5: "the binary, the user or the configuration file is missing on this node "
        "(a probe reports 7 instead).",
        6: "can never work anywhere: bacula-dir -t rejects the configuration, a relative path, "
        "a non-numeric port.",
        190: "running but degraded: the configuration on disk was broken or removed under the "
        "running director (deeper monitors).",
    },
    "bacula-sd": {
        1: "may work after recovery or elsewhere: the daemon does not answer, an Archive Device "
        "is not writable or its backup filesystem is not mounted (depth 20), start timed out.",
        5: "the binary, the user or the configuration file is missing on this node "
        "(a probe reports 7 instead).",
        6: "can never work anywhere: bacula-sd -t rejects the configuration, a relative path, "
        "a non-numeric port, an archive_mounts entry that is not absolute.",
        190: "running but degraded: the configuration on disk was broken or removed under the "
        "running daemon (deeper monitors).",
    },
    "bacula-fd": {
        1: "may work after recovery or elsewhere: the daemon does not answer, start timed out.",
        5: "the binary, the user or the configuration file is missing on this node "
        "(a probe reports 7 instead).",
        6: "can never work anywhere: bacula-fd -t rejects the configuration, a relative path, "
        "a non-numeric port.",
        190: "running but degraded: the configuration on disk was broken or removed under the "
        "running daemon (deeper monitors).",
    },
    "bacula-catalog": {
        1: "the catalog is not usable now: the database is unreachable, a standby or read-only, "
        "a query timed out, the write round trip failed (depth 20).",
        5: "the database client library or the director's configuration is missing on this node.",
        6: "can never work anywhere: the catalog's schema version is not the one the installed "
        "director expects, the configuration names no such catalog, an unknown backend.",
        190: "running but degraded: the catalog answers slower than latency_threshold (depth 20).",
    },
    "bacula-confsync": {
        1: "a push failed at start: a target refused or broke the transfer, or the "
        "configuration to push fails its check.",
        5: "rsync or ssh is missing on this node.",
        6: "can never work anywhere: a relative path, a target that names this node only, "
        "an unknown config_check.",
        190: "running but degraded: a peer is unreachable, or its copy drifted and was kept.",
    },
}

# Example parameters beyond the defaults, so each example is a working configuration.
_EXAMPLE_PARAMS: dict[str, dict[str, str]] = {
    "bacula-dir": {"config": "/etc/bacula/bacula-dir.conf"},
    "bacula-sd": {"config": "/etc/bacula/bacula-sd.conf", "archive_mounts": "/srv/bacula"},
    "bacula-fd": {"config": "/etc/bacula/bacula-fd.conf"},
    "bacula-catalog": {"config": "/etc/bacula/bacula-dir.conf", "backend": "postgresql"},
    "bacula-confsync": {"paths": "/etc/bacula", "targets": "node2"},
}

_CHARS = {
    "\u2014": r"\(em",
    "\u2013": r"\(en",
    "\u2019": r"\(aq",
    "\u2018": r"\(aq",
    "\u201c": r"\(lq",
    "\u201d": r"\(rq",
    "\u2026": "...",
    "\u2192": r"\(->",
    "\u2264": r"\(<=",
    "\u2265": r"\(>=",
}


def escape(text: str) -> str:
    """Text safe anywhere in a roff line (not at its start: see `line`)."""
    out = []
    for char in text:
        if char == "\\":
            out.append(r"\e")
        elif char == "-":
            out.append(r"\-")  # a minus that copies and searches as '-'
        elif char == "'":
            out.append(r"\(aq")
        elif char == "`":
            out.append(r"\(ga")
        elif char in _CHARS:
            out.append(_CHARS[char])
        elif ord(char) > 126 or (ord(char) < 32 and char != "\t"):
            out.append(rf"\[u{ord(char):04X}]")
        else:
            out.append(char)
    return "".join(out)


def line(text: str) -> str:
    """One roff text line: a leading '.' or apostrophe would be read as a request."""
    return "\\&" + text if text.startswith((".", "'")) else text


def bold(text: str) -> str:
    return rf"\fB{escape(text)}\fR"


def italic(text: str) -> str:
    return rf"\fI{escape(text)}\fR"


def _header(name: str, section: int, manual: str) -> list[str]:
    return [
        rf".\" Generated by bacula_ha.manpages from {_source_of(section)}; do not edit.",
        f'.TH "{escape(name.upper())}" "{section}" "{_date()}" "{escape(SOURCE)}" "{manual}"',
        # Like resource-agents' pages: no hyphenation, ragged right (paths and values stay whole).
        ".nh",
        ".ad l",
    ]


def _source_of(section: int) -> str:
    return {7: "the agent's meta-data", 1: "the click commands", 5: "docs/site-schema.md"}[section]


def _date() -> str:
    """SOURCE_DATE_EPOCH (set by dpkg-buildpackage from debian/changelog), else today."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
        if epoch and epoch.isdigit()
        else datetime.datetime.now(datetime.UTC)
    )
    return when.strftime("%Y-%m-%d")


def _paragraphs(text: str) -> list[str]:
    parts = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return [p for p in parts if p]


def _prose(text: str) -> list[str]:
    """Plain text (meta-data descriptions): paragraphs, `code` in bold."""
    out: list[str] = []
    for paragraph in _paragraphs(text):
        out += [".PP", line(_inline(paragraph))]
    return out


def _inline(text: str) -> str:
    """Escape text, with Markdown's `code` in bold and [text](link) as its text."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    pieces = re.split(r"(`[^`]+`|\*\*[^*]+\*\*)", text)
    out = []
    for piece in pieces:
        if piece.startswith("`") and piece.endswith("`") and len(piece) > 1:
            out.append(bold(piece[1:-1]))
        elif piece.startswith("**") and piece.endswith("**") and len(piece) > 3:
            out.append(bold(piece[2:-2]))
        else:
            out.append(escape(piece))
    return "".join(out)


def _example(lines: Iterable[str]) -> list[str]:
    return [".PP", ".RS 4", ".nf", *(line(escape(text)) for text in lines), ".fi", ".RE"]


# ---------------------------------------------------------------- agents (section 7)


def agent_page_name(agent: str) -> str:
    return f"ocf_{PROVIDER}_{agent}"


def agent_page(agent: str) -> str:
    """ocf_bacula_AGENT(7), from the agent's meta-data."""
    meta = metadata(agent)
    out = _header(agent_page_name(agent), 7, "OCF resource agents")
    out += [".SH NAME", f"{escape(agent_page_name(agent))} \\- {escape(meta.shortdesc)}"]
    names = list(dict.fromkeys(a.name for a in meta.actions))
    out += [
        ".SH SYNOPSIS",
        rf".B {escape(f'/usr/lib/ocf/resource.d/{PROVIDER}/{agent}')}",
        escape("[" + " | ".join(names) + "]"),
    ]
    out += [".SH DESCRIPTION", *_prose(meta.longdesc)]
    out += [
        ".PP",
        line(
            escape(f"Use it as ocf:{PROVIDER}:{agent}; ")
            + bold(f"crm_resource --show-metadata ocf:{PROVIDER}:{agent}")
            + escape(" prints the meta-data this page is made from.")
        ),
    ]
    out += [".SH SUPPORTED PARAMETERS"]
    for param in meta.parameters:
        out += _parameter(param)
    out += [".SH SUPPORTED ACTIONS", ".PP", "This resource agent supports these actions:"]
    for action in meta.actions:
        out += _action(action)
    out += [".SH EXIT STATUS", ".PP", "The exit codes this agent uses and what each means for it:"]
    # An agent missing from EXIT_CODES gets the common codes; the tests name what it lacks.
    for code, meaning in sorted({**_COMMON_CODES, **EXIT_CODES.get(agent, {})}.items()):
        out += [".TP", rf"\fB{code}\fR", line(escape(meaning))]
    out += [".SH EXAMPLE CRM SHELL", ".PP", r"With \fBcrm\fR(8):"]
    out += _example(_crm_example(agent, meta))
    out += [".SH EXAMPLE PCS", ".PP", r"With \fBpcs\fR(8):"]
    out += _example(_pcs_example(agent, meta))
    out += [
        ".SH SEE ALSO",
        ".PP",
        ", ".join(
            [
                r"\fBbacula\-ha\fR(1)",
                r"\fBbacula\-ha\-site\fR(5)",
                *(rf"\fB{escape(agent_page_name(a))}\fR(7)" for a in AGENT_MODULES if a != agent),
                r"\fBocf\-tester\fR(8)",
                r"\fBcrm_resource\fR(8)",
            ]
        ),
    ]
    return "\n".join(out) + "\n"


def _parameter(param: Parameter) -> list[str]:
    facts = ["required" if param.required else "optional"]
    if param.unique_group:
        facts.append(f"unique in group {param.unique_group}")
    facts.append("reloadable" if param.reloadable else "not reloadable")
    facts.append(param.content_type)
    facts.append(f'default "{param.default}"' if param.default else "no default")
    body = param.longdesc
    if param.choices:
        body += " Allowed values: " + ", ".join(param.choices) + "."
    out = [".PP", bold(param.name), ".RS 4", line(italic(param.shortdesc)), ".br"]
    for i, paragraph in enumerate(_paragraphs(body)):
        if i:
            out.append(".sp")
        out.append(line(_inline(paragraph)))
    out += [".sp", line(escape("(" + ", ".join(facts) + ")")), ".RE"]
    return out


def _action(action: Action) -> list[str]:
    facts = [f"Suggested minimum timeout: {action.timeout}s."]
    if action.interval is not None:
        facts.append(f"Suggested interval: {action.interval}s.")
    if action.depth is not None:
        facts.append(f"Depth (OCF_CHECK_LEVEL): {action.depth}.")
    if action.role is not None:
        facts.append(f"Role: {action.role}.")
    text = " ".join([ACTION_TEXT.get(action.name, ""), *facts]).strip()
    return [".PP", bold(action.name), ".RS 4", line(escape(text)), ".RE"]


def _example_params(agent: str, meta: MetaData) -> list[tuple[str, str]]:
    """The chosen example values, and every required parameter (its name in capitals)."""
    wanted = dict(_EXAMPLE_PARAMS.get(agent, {}))
    for param in meta.parameters:
        if param.required and param.name not in wanted:
            wanted[param.name] = param.default or param.name.upper()
    known = {p.name for p in meta.parameters}
    return [(name, value) for name, value in wanted.items() if name in known]


def _ops(meta: MetaData) -> list[tuple[str, str]]:
    """(operation name, attributes) of the example: start, stop and every monitor."""
    ops = []
    for action in meta.actions:
        if action.name in ("start", "stop"):
            ops.append((action.name, f"interval=0s timeout={action.timeout}s"))
        elif action.name == "monitor" and action.interval is not None:
            attrs = f"interval={action.interval}s timeout={action.timeout}s"
            if action.depth:
                attrs += f" OCF_CHECK_LEVEL={action.depth}"
            ops.append((action.name, attrs))
    return ops


def _crm_example(agent: str, meta: MetaData) -> list[str]:
    rid = f"p_{agent.replace('-', '_')}"
    lines = [f"primitive {rid} ocf:{PROVIDER}:{agent}"]
    params = _example_params(agent, meta)
    if params:
        lines.append("  params " + " ".join(f'{n}="{v}"' for n, v in params))
    lines += [f"  op {name} {attrs}" for name, attrs in _ops(meta)]
    return [text + " \\" for text in lines[:-1]] + lines[-1:]


def _pcs_example(agent: str, meta: MetaData) -> list[str]:
    rid = f"p_{agent.replace('-', '_')}"
    lines = [f"pcs resource create {rid} ocf:{PROVIDER}:{agent}"]
    params = _example_params(agent, meta)
    if params:
        lines.append("  " + " ".join(f"{n}={v}" for n, v in params))
    for i, (name, attrs) in enumerate(_ops(meta)):
        lines.append(("  op " if i == 0 else "     ") + f"{name} {attrs}")
    return [text + " \\" for text in lines[:-1]] + lines[-1:]


# ---------------------------------------------------------------- the command (section 1)


def command_page() -> str:
    """bacula-ha(1), from the click command tree (every subcommand, every option)."""
    from .cli import main

    out = _header("bacula-ha", 1, "bacula-ha manual")
    out += [".SH NAME", r"bacula\-ha \- " + escape(_first_line(main.help))]
    out += [".SH SYNOPSIS", r".B bacula\-ha", r"\fICOMMAND\fR [\fIOPTIONS\fR] [\fIARGS\fR]..."]
    out += [".SH DESCRIPTION", *_click_help(main.help or "")]
    out += [
        ".PP",
        "The agents themselves are documented in " + _agent_refs() + ".",
        ".SH OPTIONS",
    ]
    out += _options(main, None)
    out += [".SH COMMANDS"]
    for path, command in _walk(main):
        out += [".SS " + line(escape(" ".join(path)))]
        out += [".PP", line(bold(" ".join(path)) + " " + escape(_usage_pieces(command)))]
        out += _click_help(command.help or "")
        options = _options(command, path)
        if options:
            out += [".PP", "Options:", ".RS 4", *options, ".RE"]
    out += [
        ".SH EXIT STATUS",
        ".PP",
        "The same for every command: 0 on success; 1 for findings (" + bold("check") + "), "
        "a failure, or input that cannot be read; 2 for a usage error. A failure prints one "
        "line per fault on standard error, FILE:LINE: field: message (the line and field when "
        "known), and no value of a secret field (password, passwd, key, token, secret); with "
        + bold("--format json")
        + escape(" the command prints the error document on standard output too: ")
        + escape('{"format": "bacula-ha-error", "version": 1, "command": ..., "errors": ')
        + escape('[{"file", "line", "field", "message"}]}. ')
        + bold("-o -")
        + " is standard output. "
        + bold("bacula-ha install --check")
        + escape(" exits 0 when every installed agent matches this package and 1 when one is ")
        + escape("missing, stale (another version) or different."),
        ".SH FILES",
        ".TP",
        bold("/usr/lib/ocf/resource.d/bacula/"),
        "the agents (ocf:bacula:*).",
        ".SH SEE ALSO",
        ".PP",
        r"\fBbacula\-ha\-site\fR(5), " + _agent_refs() + r", \fBcrm\fR(8), \fBpcs\fR(8)",
    ]
    return "\n".join(out) + "\n"


def _agent_refs() -> str:
    return ", ".join(rf"\fB{escape(agent_page_name(a))}\fR(7)" for a in AGENT_MODULES)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].rstrip(".") if text else ""


def _walk(group: click.Command) -> Iterator[tuple[list[str], click.Command]]:
    """(path, command) for every subcommand below `group`, depth first, sorted by name."""
    import click

    def visit(
        command: click.Command, path: list[str], ctx: click.Context
    ) -> Iterator[tuple[list[str], click.Command]]:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is None or sub.hidden:
                    continue
                sub_ctx = click.Context(sub, info_name=name, parent=ctx)
                yield [*path, name], sub
                yield from visit(sub, [*path, name], sub_ctx)

    root = click.Context(group, info_name="bacula-ha")
    yield from visit(group, ["bacula-ha"], root)


def _usage_pieces(command: click.Command) -> str:
    import click

    ctx = click.Context(command, info_name=command.name)
    return " ".join(command.collect_usage_pieces(ctx))


def _options(command: click.Command, path: list[str] | None) -> list[str]:
    import click

    ctx = click.Context(command, info_name=path[-1] if path else "bacula-ha")
    out: list[str] = []
    for param in command.get_params(ctx):
        # Arguments are in the usage line; --help is said once, for bacula-ha itself.
        if isinstance(param, click.Argument) or (path and param.name == "help"):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        opts, help_text = record
        # A long choice list must be able to break after its bars (groff warns otherwise).
        tag = bold(opts).replace("|", "|\\:")
        out += [".TP", line(tag), line(escape(" ".join(help_text.split()))) or r"\&"]
    return out


def _click_help(text: str) -> list[str]:
    """click help text: paragraphs; a paragraph after a \\b line keeps its lines."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if block.startswith("\b"):
            kept = [ln for ln in block.splitlines()[1:] if ln.strip()]
            out += [".PP", ".nf", *(line(escape(ln.strip())) for ln in kept), ".fi"]
        elif block.strip():
            out += [".PP", line(_inline(" ".join(block.split())))]
    return out


# ---------------------------------------------------------------- the site (section 5)


def site_page(markdown: str) -> str:
    """bacula-ha-site(5), converted from docs/site-schema.md (the only copy of the text)."""
    out = _header("bacula-ha-site", 5, "bacula-ha manual")
    out += [
        ".SH NAME",
        r"bacula\-ha\-site \- the site description read by bacula\-ha generate",
        ".SH SYNOPSIS",
        r"\fBbacula\-ha generate\fR \fISITE.toml\fR \fB\-\-format\fR "
        r"\fBcrm\fR|\fBpcs\fR|\fBcib\fR|\fBdot\fR|\fBsvg\fR",
    ]
    out += _markdown(markdown)
    out += [
        ".SH SEE ALSO",
        ".PP",
        r"\fBbacula\-ha\fR(1), " + _agent_refs(),
    ]
    return "\n".join(out) + "\n"


def _markdown(text: str) -> list[str]:
    """The Markdown docs/site-schema.md uses: headings, paragraphs, lists, pipe tables, code."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    first_heading = True
    while i < len(lines):
        current = lines[i]
        stripped = current.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```"):
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith("```"):
                end += 1
            out += _example(lines[i + 1 : end])
            i = end + 1
        elif stripped.startswith("#"):
            level = len(stripped) - len(stripped.lstrip("#"))
            title = _inline_plain(stripped[level:].strip())
            if first_heading and level <= 2:
                out += [".SH DESCRIPTION"]  # the top heading is the page's own title
            elif level <= 2:
                out += [f'.SH "{escape(title.upper())}"']
            else:
                out += [f'.SS "{escape(title)}"']
            first_heading = False
            i += 1
        elif stripped.startswith("|"):
            end = i
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            out += _table(lines[i:end])
            i = end
        elif re.match(r"[-*] ", stripped):
            item = [stripped[2:]]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                item.append(lines[i].strip())
                i += 1
            out += [".IP \\(bu 2", line(_inline(" ".join(item)))]
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not _starts_block(lines[i]):
                paragraph.append(lines[i].strip())
                i += 1
            out += [".PP", line(_inline(" ".join(paragraph)))]
    return out


def _starts_block(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith(("```", "#", "|")) or bool(re.match(r"[-*] ", stripped))


def _inline_plain(text: str) -> str:
    """A heading's text without Markdown marks (headings are set in bold by man already)."""
    return re.sub(r"`([^`]*)`", r"\1", text)


def _cells(row: str) -> list[str]:
    # `\|` is a literal bar inside a cell.
    inner = row.strip().strip("|")
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def _table(rows: list[str]) -> list[str]:
    """A pipe table as tagged paragraphs: the first cell is the tag, the others follow.

    Tables of long prose do not fit 80 columns as tbl tables; the tagged list is how man pages
    list keys anyway.
    """
    header = _cells(rows[0])
    body = [_cells(r) for r in rows[1:] if not re.fullmatch(r"\|?[\s:|-]+\|?", r.strip())]
    out: list[str] = []
    for cells in body:
        cells += [""] * (len(header) - len(cells))
        out += [".TP", line(_inline(cells[0]))]
        middle = [
            f"{_inline(h)}: {_inline(c)}"
            for h, c in zip(header[1:-1], cells[1:-1], strict=True)
            if c
        ]
        if middle and len(header) > 2:
            out.append(line("; ".join(middle)))
            if cells[-1]:
                out.append(".br")
        if len(header) > 1 and cells[-1]:
            label = header[-1].lower()
            unlabelled = label in ("meaning", "what", "description") or len(header) == 2
            text = (
                _inline(cells[-1]) if unlabelled else f"{_inline(header[-1])}: {_inline(cells[-1])}"
            )
            out.append(line(text))
    return out


# ---------------------------------------------------------------- writing them


def pages(site_schema: Path | None) -> dict[str, str]:
    """File name -> page text, for every page (bacula-ha-site.5 only with its source)."""
    result = {f"{agent_page_name(a)}.7": agent_page(a) for a in AGENT_MODULES}
    result["bacula-ha.1"] = command_page()
    if site_schema is not None:
        result["bacula-ha-site.5"] = site_page(site_schema.read_text())
    return result


def write(outdir: Path, site_schema: Path | None) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in pages(site_schema).items():
        path = outdir / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bacula_ha.manpages", description=__doc__)
    parser.add_argument("outdir", type=Path)
    parser.add_argument(
        "--site-schema",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "docs" / "site-schema.md",
        help="the Markdown source of bacula-ha-site(5) [default: docs/site-schema.md here]",
    )
    args = parser.parse_args(argv)
    try:
        written = write(args.outdir, args.site_schema)
    except OSError as exc:
        print(f"manpages: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
