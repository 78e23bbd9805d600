"""One run of `bacula-ha check`: read the inputs, apply every check, collect a report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..ocf.deadline import Deadline
from .findings import Checked, Finding, Report, sort_findings
from .inputs import install_of, parse_config, read_hosts, read_site, wanted_configs
from .rules import DEFAULT_FAILOVER_TIME, Facts, check, check_site

# Bounds the whole run: each parser run is bounded as well (inputs.PARSE_TIMEOUT).
RUN_DEADLINE = 300.0


def run_check(
    site_path: Path | None,
    configs: Sequence[str] = (),
    failover_time: int = DEFAULT_FAILOVER_TIME,
    hosts_file: str = "/etc/hosts",
    prefix: str | None = None,
) -> Report:
    """Raises CheckInputError (naming file, line, field) when an input cannot be read.

    `site_path` None: a lint of the configurations alone, with the checks that need no site
    (loopback addresses, heartbeats, rescheduling, spooling).
    `prefix`: the Bacula install to read (bacula.org's PREFIX/bin and PREFIX/etc) instead of
    the site's `[bacula] prefix`; neither: Debian's /usr/sbin and /etc/bacula."""
    site = read_site(site_path) if site_path is not None else None
    deadline = Deadline.after(RUN_DEADLINE)
    where = install_of(site, prefix)
    parsed = [parse_config(w, deadline, where) for w in wanted_configs(site, configs, where)]
    facts = Facts(site, read_hosts(hosts_file), failover_time)
    findings: list[Finding] = []
    for p in parsed:
        findings += check(p, facts)
    if site is not None:
        findings += check_site(site)
    return Report(tuple(Checked(p.path, p.daemon) for p in parsed), sort_findings(findings))
