"""`bacula-ha status`: the director's programs and files from its resource's params in the CIB,
the rest beside its binary (bacula.org's /opt/bacula layout or Debian's)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from bacula_ha.status.collect import Component, director_files, running_jobs

STATUS_DIR = """\
Connecting to Director 10.99.0.21:9101
1000 OK: 103 dir1-dir Version: 13.0.3 (02 May 2023)
Running Jobs:
Console connected at 06-Dec-26 08:00
 JobId  Type Level     Files     Bytes  Name              Status
======================================================================
    42  Back Full        120    1.2 M  BackupClient1     is running
====
"""


def bacula_org(prefix: Path, log: Path) -> Path:
    """PREFIX/bin with a bdirjson that cannot read the configuration and a bconsole that
    answers `status dir`, both logging their arguments; PREFIX/etc with the two files."""
    (prefix / "bin").mkdir(parents=True)
    (prefix / "etc").mkdir()
    (prefix / "etc" / "bacula-dir.conf").write_text("Director { Name = dir1-dir }\n")
    (prefix / "etc" / "bconsole.conf").write_text("Director { Name = dir1-dir }\n")
    (prefix / "bin" / "bacula-dir").write_text("#!/bin/sh\nexit 1\n")
    tools = {
        "bdirjson": 'echo "bdirjson: ERROR TERMINATION at parse_conf.c:1143"\n'
        'echo "Config error: Could not open config file: Permission denied"\nexit 1\n',
        "bconsole": f"cat >/dev/null\ncat <<'EOF'\n{STATUS_DIR}EOF\n",
    }
    for name, body in tools.items():
        (prefix / "bin" / name).write_text(f'#!/bin/sh\necho "$0 $*" >> {log}\n{body}')
    for tool in (prefix / "bin").iterdir():
        tool.chmod(0o755)
    return prefix


def cib_with(params: dict[str, str]) -> ET.Element:
    nvpairs = "".join(
        f'<nvpair id="dir1-dir-instance_attributes-{k}" name="{k}" value="{v}"/>'
        for k, v in params.items()
    )
    return ET.fromstring(
        "<cib><configuration><resources>"
        '<primitive id="dir1-dir" class="ocf" provider="bacula" type="bacula-dir">'
        f'<instance_attributes id="dir1-dir-instance_attributes">{nvpairs}</instance_attributes>'
        "</primitive></resources></configuration></cib>"
    )


def test_tools_beside_the_binary(tmp_path: Path) -> None:
    prefix = bacula_org(tmp_path / "opt" / "bacula", tmp_path / "log")
    files = director_files({"binary": f"{prefix}/bin/bacula-dir"})
    assert files.bdirjson == f"{prefix}/bin/bdirjson"
    assert files.bconsole == f"{prefix}/bin/bconsole"
    # The configuration is the agent's default unless the resource names it; bconsole's
    # configuration is beside it.
    assert files.config == "/etc/bacula/bacula-dir.conf"
    assert files.bconsole_config == "/etc/bacula/bconsole.conf"
    files = director_files(
        {"binary": f"{prefix}/bin/bacula-dir", "config": f"{prefix}/etc/bacula-dir.conf"}
    )
    assert files.bconsole_config == f"{prefix}/etc/bconsole.conf"


def test_the_resources_own_params_win(tmp_path: Path) -> None:
    prefix = bacula_org(tmp_path / "opt" / "bacula", tmp_path / "log")
    files = director_files(
        {
            "binary": f"{prefix}/bin/bacula-dir",
            "bconsole": "/srv/console/bconsole",
            "bconsole_config": "/srv/console/bconsole.conf",
        }
    )
    assert (files.bconsole, files.bconsole_config) == (
        "/srv/console/bconsole",
        "/srv/console/bconsole.conf",
    )
    assert files.bdirjson == f"{prefix}/bin/bdirjson"


def test_debians_layout_without_params_or_tools_beside(tmp_path: Path) -> None:
    assert director_files({}) == director_files({"binary": "/usr/sbin/bacula-dir"})
    files = director_files({})
    assert (files.binary, files.config) == ("/usr/sbin/bacula-dir", "/etc/bacula/bacula-dir.conf")
    assert (files.bdirjson, files.bconsole) == ("/usr/sbin/bdirjson", "/usr/sbin/bconsole")
    assert files.bconsole_config == "/etc/bacula/bconsole.conf"
    # A binary with no tools beside it: Debian's.
    (tmp_path / "bin").mkdir()
    files = director_files({"binary": str(tmp_path / "bin" / "bacula-dir")})
    assert (files.bdirjson, files.bconsole) == ("/usr/sbin/bdirjson", "/usr/sbin/bconsole")


def test_running_jobs_through_the_tools_beside_the_binary(tmp_path: Path) -> None:
    log = tmp_path / "log"
    prefix = bacula_org(tmp_path / "opt" / "bacula", log)
    cib = cib_with(
        {"binary": f"{prefix}/bin/bacula-dir", "config": f"{prefix}/etc/bacula-dir.conf"}
    )
    jobs = running_jobs(cib, Component(rsc="dir1-dir", role="director", vip="10.99.0.21"))
    assert jobs == "JobId 42 Back Full 120 1.2 M BackupClient1 is running"
    ran = log.read_text().splitlines()
    assert ran[0].startswith(f"{prefix}/bin/bdirjson ")
    assert f"{prefix}/etc/bacula-dir.conf" in ran[0]
    assert ran[1] == f"{prefix}/bin/bconsole -n -u 10 -c {prefix}/etc/bconsole.conf"


def test_running_jobs_unknown_says_why(tmp_path: Path) -> None:
    log = tmp_path / "log"
    prefix = bacula_org(tmp_path / "opt" / "bacula", log)
    (prefix / "etc" / "bconsole.conf").unlink()  # no console to fall back on
    cib = cib_with(
        {"binary": f"{prefix}/bin/bacula-dir", "config": f"{prefix}/etc/bacula-dir.conf"}
    )
    jobs = running_jobs(cib, Component(rsc="dir1-dir", role="director"))
    assert jobs.startswith("unknown (") and "Could not open config file" in jobs
    assert "bconsole" not in log.read_text()


def _readable_config(prefix: Path, director: str, kind: str = "Director") -> None:
    """bdirjson reads the configuration: one resource of `kind`, `director` its JSON body."""
    entries = f'[{{"{kind}": {director}}}]'
    (prefix / "bin" / "bdirjson").write_text(f"#!/bin/sh\ncat <<'EOF'\n{entries}\nEOF\n")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_running_jobs_of_a_director_that_does_not_answer(tmp_path: Path) -> None:
    log = tmp_path / "log"
    prefix = bacula_org(tmp_path / "opt" / "bacula", log)
    port = _closed_port()
    _readable_config(prefix, f'{{"Name": "dir1-dir", "Password": "pw", "DirPort": {port}}}')
    cib = cib_with(
        {"binary": f"{prefix}/bin/bacula-dir", "config": f"{prefix}/etc/bacula-dir.conf"}
    )
    jobs = running_jobs(cib, Component(rsc="dir1-dir", role="director", vip="127.0.0.1"))
    assert jobs.startswith("unknown (the director does not answer: "), jobs
    assert not log.exists()  # bconsole (the only tool left that logs) never ran: no fallback


def test_running_jobs_of_a_director_that_wants_tls_go_through_bconsole(tmp_path: Path) -> None:
    log = tmp_path / "log"
    prefix = bacula_org(tmp_path / "opt" / "bacula", log)
    port = _closed_port()  # never dialled: TLS Require sends every command to bconsole
    director = f'{{"Name": "dir1-dir", "Password": "pw", "DirPort": {port}, "TlsRequire": true}}'
    _readable_config(prefix, director)
    cib = cib_with(
        {"binary": f"{prefix}/bin/bacula-dir", "config": f"{prefix}/etc/bacula-dir.conf"}
    )
    component = Component(rsc="dir1-dir", role="director", vip="127.0.0.1")
    assert running_jobs(cib, component) == "JobId 42 Back Full 120 1.2 M BackupClient1 is running"
    # Without bconsole's configuration nothing can ask it: unknown, and why.
    (prefix / "etc" / "bconsole.conf").unlink()
    jobs = running_jobs(cib, component)
    assert jobs == f"unknown (the director wants TLS, and {prefix}/bin/bconsole could not ask it)"


def test_running_jobs_of_a_configuration_without_a_director(tmp_path: Path) -> None:
    log = tmp_path / "log"
    prefix = bacula_org(tmp_path / "opt" / "bacula", log)
    _readable_config(prefix, '{"Name": "client-fd", "Password": "pw"}', kind="Client")
    cib = cib_with(
        {"binary": f"{prefix}/bin/bacula-dir", "config": f"{prefix}/etc/bacula-dir.conf"}
    )
    jobs = running_jobs(cib, Component(rsc="dir1-dir", role="director", vip="127.0.0.1"))
    assert jobs == f"unknown ({prefix}/etc/bacula-dir.conf has no Director resource)"
