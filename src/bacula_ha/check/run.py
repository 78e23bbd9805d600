"""One run of `bacula-ha check`: read the inputs, apply every check, collect a report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..ocf.deadline import Deadline
from .findings import Checked, Finding, Report, sort_findings
from .inputs import parse_config, read_hosts, read_site, wanted_configs
from .rules import DEFAULT_FAILOVER_TIME, Facts, check, check_site

# Bounds the whole run: each parser run is bounded as well (inputs.PARSE_TIMEOUT).
RUN_DEADLINE = 300.0


def run_check(
    site_path: Path,
    configs: Sequence[str] = (),
    failover_time: int = DEFAULT_FAILOVER_TIME,
    hosts_file: str = "/etc/hosts",
) -> Report:
    """Raises CheckInputError (naming file, line, field) when an input cannot be read."""
    site = read_site(site_path)
    deadline = Deadline.after(RUN_DEADLINE)
    parsed = [parse_config(w, deadline) for w in wanted_configs(site, configs)]
    facts = Facts(site, read_hosts(hosts_file), failover_time)
    findings: list[Finding] = []
    for p in parsed:
        findings += check(p, facts)
    findings += check_site(site)
    return Report(tuple(Checked(p.path, p.daemon) for p in parsed), sort_findings(findings))
