"""The site's `[alerts]` section: validated with its line, rendered the same way in every format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bacula_ha.generator.generate import generate_text
from bacula_ha.generator.plan import build
from bacula_ha.site.errors import SiteError
from bacula_ha.site.model import DEFAULT_ALERT_PATH
from bacula_ha.site.parse import load_site, parse_site

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "examples" / "lab-site.toml"


def _site(alerts: str) -> str:
    text = LAB.read_text()
    head, _, rest = text.partition("[alerts]")
    rest = rest.split("\n\n", 1)[1] if "\n\n" in rest else ""
    return f"{head}{alerts}\n\n{rest}"


def test_lab_site_alerts_every_bacula_resource() -> None:
    plan = build(load_site(LAB))
    (alert,) = plan.alerts
    assert alert.path == DEFAULT_ALERT_PATH
    assert alert.select == ("nodes", "fencing", "resources")
    assert [v for _, v in alert.recipients] == ["/var/log/pacemaker/bacula-ha-alerts.log"]
    roles = dict(word.split("=") for word in dict(alert.options)["bacula_resources"].split())
    assert roles == {
        "cat1-catalog": "catalog",
        "dir1-dir": "director",
        "dir1-confsync": "confsync",
        "sd1-sd": "storage",
    }


def test_defaults_and_every_field_in_both_formats() -> None:
    text = _site(
        "[alerts]\n"
        'recipients = ["syslog:local5", "/var/log/x.log"]\n'
        'select = ["fencing", "resources", "attributes"]\n'
        'command = "/usr/local/sbin/page"\n'
        'command_timeout = "7s"\n'
        'timeout = "20s"\n'
    )
    site = parse_site(text, "alerts.toml")
    crm = generate_text_of(site)
    assert re.search(r'^alert bacula-ha-alert "/usr/lib/ocf/lib/bacula/bacula-ha-alert"', crm, re.M)
    assert 'command="/usr/local/sbin/page" command_timeout="7"' in crm
    assert 'meta timeout="20s"' in crm and "select fencing resources attributes" in crm
    assert 'to { "syslog:local5" }' in crm and 'to { "/var/log/x.log" }' in crm


def generate_text_of(site: object) -> str:
    from bacula_ha.generator.render import render

    return render(build(site), "crm")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alerts", "field", "words"),
    [
        ('[alerts]\nrecipients = ["mail@example.org"]', "alerts.recipients[0]", "is not a file"),
        ('[alerts]\nrecipients = ["/a", "/a"]', "alerts.recipients[1]", "listed twice"),
        ('[alerts]\nselect = ["everything"]', "alerts.select[0]", "is not one of"),
        ('[alerts]\npath = "relative/agent"', "alerts.path", "absolute path"),
        ('[alerts]\ncommand = "/bin/x y"', "alerts.command", "absolute path"),
        ('[alerts]\ncommand_timeout = "1h"', "alerts.command_timeout", "at most 25s"),
        ('[alerts]\npager = "/x"', "alerts.pager", "unknown key"),
    ],
)
def test_bad_alerts_name_file_line_and_field(alerts: str, field: str, words: str) -> None:
    text = _site(alerts)
    with pytest.raises(SiteError) as caught:
        parse_site(text, "alerts.toml")
    message = str(caught.value)
    assert "alerts.toml:" in message and field in message and words in message
    line = text.splitlines().index(alerts.splitlines()[0]) + 1
    assert f"alerts.toml:{line}" in message or f"alerts.toml:{line + 1}" in message


def test_alerts_must_be_a_table() -> None:
    text = 'alerts = "syslog"\n' + _site("")
    with pytest.raises(SiteError) as caught:
        parse_site(text, "alerts.toml")
    assert "alerts.toml:1: alerts: must be a table" in str(caught.value)


def test_no_alerts_section_no_alert() -> None:
    text = _site("")
    assert "alert " not in generate_text_of(parse_site(text, "none.toml"))
    assert build(parse_site(text, "none.toml")).alerts == ()


def test_pcs_script_adds_the_select_filter_pcs_cannot_say() -> None:
    pcs = generate_text(LAB, "pcs")
    assert "run alert create path=/usr/lib/ocf/lib/bacula/bacula-ha-alert id=bacula-ha-alert" in pcs
    assert "<select><select_nodes/><select_fencing/><select_resources/></select>" in pcs
