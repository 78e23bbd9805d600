"""Reading a site: the file and the TOML, the top-level tables, then the rules over the whole."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .components import read_daemon, read_director, read_failure, read_ops
from .errors import Problem, SiteError
from .locate import Path as FieldPath
from .model import (
    DEFAULT_FAILURE_TIMEOUT,
    DEFAULT_MIGRATION_THRESHOLD,
    PREFIX_RE,
    SITE_OP_KINDS,
    Failure,
    Site,
)
from .reader import Reader, kind_of
from .rules import cross_check
from .sections import read_alerts, read_connectivity, read_node, read_quorum_device, read_remote

T = TypeVar("T")


def load_site(path: str | Path) -> Site:
    """Read and validate a site file; raises SiteError (naming file, line and field) if invalid."""
    from bacula_ha.cliout import InputError, read_text

    source = str(path)
    try:
        text = read_text(path)
    except InputError as exc:
        raise SiteError(source, [Problem("", exc.fault.message, exc.fault.line)]) from None
    return parse_site(text, source)


def parse_site(text: str, source: str = "<site>") -> Site:
    """Validate a site description given as TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise SiteError(
            source, [Problem("", f"not valid TOML: {exc}", int(line.group(1)) if line else None)]
        ) from None
    reader = Reader(text, raw)
    site = _parse(reader, raw, source)
    if reader.problems or site is None:
        raise SiteError(source, reader.problems)
    return site


def _parse(r: Reader, raw: dict[str, Any], source: str) -> Site | None:
    r.table(
        raw,
        (),
        (
            "site",
            "node",
            "remote",
            "failure",
            "director",
            "storage",
            "filedaemon",
            "confsync",
            "ops",
            "alerts",
            "connectivity",
            "quorum_device",
            "bacula",
        ),
        ("site", "node"),
    )
    head = (
        r.table(
            raw.get("site", {}),
            ("site",),
            ("name", "stickiness", "fence_delay", "probe_all_nodes", "properties"),
            ("name",),
        )
        or {}
    )
    name = r.ident(head, "name", ("site",))
    stickiness = r.integer(head, "stickiness", ("site",), 0, 1000000)
    fence_delay = r.duration(head, "fence_delay", ("site",))
    properties = r.params(head, "properties", ("site",))
    probe_all_nodes = r.boolean(head, "probe_all_nodes", ("site",), False)
    for prop, _ in properties:
        if prop in ("stonith-enabled",):
            r.problem(("site", "properties", prop), "is set by the generator (always true)")

    nodes = _list(r, raw, "node", read_node)
    remotes = _list(r, raw, "remote", read_remote)
    site_failure = read_failure(r, raw, ())
    site_ops = read_ops(r, raw, (), SITE_OP_KINDS) if "ops" in raw else ()
    alerts = read_alerts(r, raw["alerts"]) if "alerts" in raw else None
    connectivity = None
    if "connectivity" in raw:
        connectivity = read_connectivity(r, raw["connectivity"], [*nodes, *remotes])
    quorum_device = None
    if "quorum_device" in raw:
        quorum_device = read_quorum_device(r, raw["quorum_device"], connectivity)
    bacula_prefix = _bacula(r, raw["bacula"]) if "bacula" in raw else None
    confsync_default = r.table(raw.get("confsync", {}), ("confsync",), ("enabled", "params")) or {}
    directors = _list(r, raw, "director", lambda r, t, p: read_director(r, t, p, confsync_default))
    storages = _list(r, raw, "storage", lambda r, t, p: read_daemon(r, t, p, "storage"))
    filedaemons = _list(r, raw, "filedaemon", lambda r, t, p: read_daemon(r, t, p, "filedaemon"))
    if isinstance(raw.get("node"), list) and not raw["node"]:
        r.problem(("node",), "at least one node is required")
    if name is None:
        return None
    site = Site(
        name=name,
        stickiness=200 if stickiness is None else stickiness,
        fence_delay=5 if fence_delay is None else fence_delay,
        probe_all_nodes=probe_all_nodes,
        properties=properties,
        nodes=tuple(nodes),
        directors=tuple(directors),
        storages=tuple(storages),
        filedaemons=tuple(filedaemons),
        ops=site_ops,
        source=source,
        text=r.text,
        secrets=r.secrets,
        remotes=tuple(remotes),
        failure=Failure(
            DEFAULT_MIGRATION_THRESHOLD
            if site_failure.migration_threshold is None
            else site_failure.migration_threshold,
            DEFAULT_FAILURE_TIMEOUT
            if site_failure.failure_timeout is None
            else site_failure.failure_timeout,
        ),
        alerts=alerts,
        connectivity=connectivity,
        quorum_device=quorum_device,
        bacula_prefix=bacula_prefix,
    )
    cross_check(r, site)
    return site


def prefix_problem(value: str) -> str | None:
    """Why `value` cannot be a Bacula install prefix (bacula.org's /opt/bacula), or None."""
    if not value.startswith("/"):
        return f"{value!r} is not an absolute path"
    if value.strip("/") == "":
        return f"{value!r} cannot be a prefix: bacula-confsync would keep all of /etc in sync"
    if not PREFIX_RE.match(value):
        return f"{value!r} holds a character other than letters, digits and _ . / + -"
    normal = "/" + os.path.normpath(value).lstrip("/")
    if normal != value:
        return f"{value!r} is not normalised (write {normal!r})"
    return None


def _bacula(r: Reader, raw: object) -> str | None:
    """`[bacula] prefix = "/opt/bacula"`: where bacula.org's packages put everything."""
    path: FieldPath = ("bacula",)
    t = r.table(raw, path, ("prefix",))
    if t is None:
        return None
    prefix = r.string(t, "prefix", path)
    if prefix is None:
        return None
    problem = prefix_problem(prefix)
    if problem is not None:
        r.problem((*path, "prefix"), problem)
        return None
    return prefix


def _list(
    r: Reader,
    raw: dict[str, Any],
    key: str,
    parse: Callable[[Reader, dict[str, Any], FieldPath], T | None],
) -> list[T]:
    items = raw.get(key, [])
    if not isinstance(items, list):
        r.problem((key,), f"must be an array of tables ([[{key}]]), not {kind_of(items)}")
        return []
    out: list[T] = []
    for index, item in enumerate(items):
        path = (key, index)
        if isinstance(item, dict):
            parsed = parse(r, item, path)
            if parsed is not None:
                out.append(parsed)
        else:
            r.problem(path, f"must be a table, not {kind_of(item)}")
    return out
