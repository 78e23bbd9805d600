"""Every bacula-ha command on hostile and broken input: exit 0/1/2, no traceback, no secret."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacula_ha.bacula.confsync.state import state_path
from bacula_ha.cli import main
from bacula_ha.generator.cli import FORMATS

ROOT = Path(__file__).resolve().parent.parent
MARK = "Hunter2-SECRET"
# How many invocations each sweep made (read with `pytest -s`: the closing numbers).
SWEPT: dict[str, int] = {}


@dataclass(frozen=True)
class Case:
    """One invocation and whether its output may legitimately hold the marker."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    # generate's successful output is configuration: the fence password belongs there.
    marker_in_stdout_ok: bool = False


def _run(case: Case) -> list[str]:
    """What is wrong with one invocation's outcome (nothing: an empty list)."""
    result = CliRunner().invoke(main, list(case.argv), env=dict(case.env))
    where = f"{' '.join(case.argv)} {dict(case.env)}"
    out, err = result.stdout, result.stderr
    wrong = []
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        wrong.append(f"{where}: raised {result.exception!r}")
    if result.exit_code not in (0, 1, 2):
        wrong.append(f"{where}: exit {result.exit_code}")
    if "Traceback" in out + err:
        wrong.append(f"{where}: a traceback")
    if MARK in err:
        wrong.append(f"{where}: the secret on stderr: {err!r}")
    if MARK in out and (result.exit_code != 0 or not case.marker_in_stdout_ok):
        wrong.append(f"{where}: the secret on stdout (exit {result.exit_code})")
    if result.exit_code == 1 and err.startswith("Error: "):
        wrong.append(f"{where}: click's 'Error: ' prefix: {err!r}")
    return wrong


def _sweep(name: str, cases: list[Case]) -> None:
    wrong = [w for case in cases for w in _run(case)]
    SWEPT[name] = len(cases)
    print(f"\n{name}: {len(cases)} invocations, {len(wrong)} faults")
    assert not wrong, "\n".join(wrong)


# ---- inputs ------------------------------------------------------------------------------------

GOOD_SITE = (ROOT / "examples" / "two-node-drbd.toml").read_text()
FENCE_LINE = next(line for line in GOOD_SITE.splitlines() if "fence = " in line)


def _with_fence(params: str) -> str:
    return GOOD_SITE.replace(
        FENCE_LINE, f'fence = {{ agent = "fence_ipmilan", params = {{ {params} }} }}', 1
    )


SITES: dict[str, bytes] = {
    "valid": _with_fence(f'ip = "10.0.0.9", password = "{MARK}"').encode(),
    "control": _with_fence(f'password = "{MARK}\\t"').encode(),
    "non-ascii": _with_fence(f'passwd = "{MARK}é"').encode(),
    "newline": _with_fence(f'password = "{MARK}\\nx"').encode(),
    "table": _with_fence(f'password = {{ x = "{MARK}" }}').encode(),
    "array": _with_fence(f'password = ["{MARK}"]').encode(),
    "unknown-key": _with_fence(f'password = "{MARK}"')
    .replace("[site]", "[site]\nbogus = 1")
    .encode(),
    "bad-name": _with_fence(f'"pass word" = "{MARK}"').encode(),
    "api-key": _with_fence(f'api_key = "{MARK}\\u0007"').encode(),
    "token": _with_fence(f'auth_token = "{MARK} ü"').encode(),
    "toml-after": _with_fence(f'password = "{MARK}"').encode() + b"\n[[broken\n",
    "toml-on-line": _with_fence(f'password = "{MARK}').encode(),
    "not-utf8": _with_fence(f'password = "{MARK}"').encode() + b"\n# \xff\xfe\n",
    "nul": _with_fence(f'password = "{MARK}"').encode() + b"\n\x00\n",
    "no-fence": GOOD_SITE.replace(FENCE_LINE, "", 1).encode(),
    "reload-token": GOOD_SITE.replace(
        "[[director]]", f'[[director]]\nparams = {{ reload_token = "{MARK}\\t" }}', 1
    ).encode(),
    "empty": b"",
    "binary": bytes(range(256)),
}

HARESOURCES: dict[str, bytes] = {
    "valid": b"n1 IPaddr::10.0.0.2/24 bacula-dir\n",
    "comment": f"# password={MARK}\nn1 IPaddr::10.0.0.2/24 bacula-dir\n".encode(),
    "too-few-ips": b"n1 IPaddr::10.0.0.2/24 postgresql bacula-dir\n",
    "bad-ip": b"n1 IPaddr::999.0.0.2/24 bacula-dir\n",
    "nothing": b"n1 httpd\n",
    "not-utf8": b"n1 IPaddr::10.0.0.2/24 bacula-dir\n\xff\n",
    "nul": b"n1 IPaddr::10.0.0.2/24 bacula-dir\x00\n",
    "empty": b"",
    "binary": bytes(range(256)),
}

_DIRECTOR = """\
Director {
  Name = d-dir
  Password = "%s"
  QueryFile = "/etc/bacula/scripts/query.sql"
  WorkingDirectory = /var/lib/bacula
  PidDirectory = /run/bacula
  Messages = m
}
Messages {
  Name = m
}
Catalog {
  Name = c
  dbname = bacula
  DB Password = "%s"
}
"""
CONFIGS: dict[str, bytes] = {
    "no-job": (_DIRECTOR % (MARK, MARK)).encode(),
    "unterminated": (_DIRECTOR % (MARK, MARK + "\n}")).encode(),
    "no-equals": (_DIRECTOR % (MARK, MARK)).replace("Password =", "Password").encode(),
    "bogus": (_DIRECTOR % (MARK, MARK)).replace("Messages = m", f"Bogus = {MARK}").encode(),
    "not-utf8": (_DIRECTOR % (MARK, MARK)).encode() + b"\xff\xfe\n",
    "nul": (_DIRECTOR % (MARK + "\x00", MARK)).encode(),
    "console": f'Director {{\n  Name = d\n  Password = "{MARK}"\n  Address = x\n}}\n'.encode(),
    "binary": bytes(range(256)),
}

_CIB = """\
<cib crm_feature_set="3.17.4" validate-with="pacemaker-3.9" epoch="1" num_updates="0" \
admin_epoch="0">
  <configuration>
    <crm_config/>
    <nodes><node id="1" uname="n1"/></nodes>
    <resources>
      <primitive id="fence-n1" class="stonith" type="fence_ipmilan">
        <instance_attributes id="fence-n1-ia">
          <nvpair id="fence-n1-pw" name="password" value="%s"/>
        </instance_attributes>
      </primitive>
      <primitive id="dir" class="ocf" provider="bacula" type="bacula-dir"/>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
"""
CIBS: dict[str, bytes] = {
    "valid": (_CIB % MARK).encode(),
    "broken-xml": (_CIB % MARK).replace("</resources>", "</resourcez>").encode(),
    "unquoted": (_CIB % MARK).replace(f'value="{MARK}"', f"value={MARK}").encode(),
    "not-utf8": (_CIB % MARK).encode().replace(b"<status/>", b"<status/>\xff"),
    "nul": (_CIB % MARK).encode().replace(b"<status/>", b"<status/>\x00"),
    "not-a-cib": f"<html>{MARK}</html>".encode(),
    "empty": b"",
}


def _files(tmp: Path, kind: str, contents: dict[str, bytes]) -> Iterator[str]:
    for name, data in contents.items():
        path = tmp / f"{kind}-{name}"
        path.write_bytes(data)
        yield str(path)
    yield str(tmp / f"{kind}-missing")
    yield str(tmp)  # a directory


# ---- the sweeps --------------------------------------------------------------------------------


def test_generate(tmp_path: Path) -> None:
    cases = []
    for site in _files(tmp_path, "site", SITES):
        for fmt in FORMATS:
            cases.append(Case(("generate", site, "--format", fmt), marker_in_stdout_ok=True))
        cases.append(Case(("generate", site, "--format", "crm", "-o", "-"), (), True))
        out = tmp_path / "out.crm"
        cases.append(Case(("generate", site, "--format", "crm", "-o", str(out))))
        cases.append(Case(("generate", site, "--format", "crm", "-o", str(tmp_path / "no/x"))))
    _sweep("generate", cases)
    assert not (Path.cwd() / "-").exists()


def test_import_haresources(tmp_path: Path) -> None:
    cases = []
    for source in _files(tmp_path, "haresources", HARESOURCES):
        cases.append(Case(("import-haresources", source)))
        cases.append(Case(("import-haresources", source, "-o", "-", "--node", "n1")))
        cases.append(Case(("import-haresources", source, "--node", "bad name")))
        cases.append(Case(("import-haresources", source, "-o", str(tmp_path / "no/x"))))
    _sweep("import-haresources", cases)


def test_check(tmp_path: Path) -> None:
    cases = []
    sites = list(_files(tmp_path, "site", SITES))
    configs = list(_files(tmp_path, "config", CONFIGS))
    for fmt in ("text", "json"):
        for site in sites:
            cases.append(Case(("check", site, "--config", configs[0], "--format", fmt)))
        for config in configs:
            cases.append(Case(("check", "--config", config, "--format", fmt)))
            cases.append(Case(("check", sites[0], "--config", config, "--format", fmt)))
    _sweep("check", cases)


def test_status(tmp_path: Path) -> None:
    cases = []
    for cib in _files(tmp_path, "cib", CIBS):
        for fmt in ("text", "json"):
            cases.append(Case(("status", "--no-jobs", "--format", fmt), (("CIB_file", cib),)))
            cases.append(Case(("status", "--format", fmt), (("CIB_file", cib),)))
    _sweep("status", cases)


def test_status_json_error_is_the_versioned_document(tmp_path: Path) -> None:
    cib = tmp_path / "cib.xml"
    cib.write_bytes((_CIB % MARK).encode().replace(b"<status/>", b"<status/>\n\xff"))
    result = CliRunner().invoke(main, ["status", "--format", "json"], env={"CIB_file": str(cib)})
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (doc["format"], doc["version"], doc["command"]) == ("bacula-ha-error", 1, "status")
    line = (_CIB % MARK).split("<status/>")[0].count("\n") + 2
    assert doc["errors"] == [
        {"file": str(cib), "line": line, "field": None, "message": "not UTF-8 text (byte 0xff)"}
    ]
    assert result.stderr == f"{cib}:{line}: not UTF-8 text (byte 0xff)\n"
    missing = CliRunner().invoke(main, ["status"], env={"CIB_file": "/nonexistent.xml"})
    assert (missing.exit_code, missing.stderr) == (1, "/nonexistent.xml: no such file\n")


def test_install_check(tmp_path: Path) -> None:
    cases = []
    roots = [tmp_path / "empty", tmp_path / "file", tmp_path / "missing"]
    roots[0].mkdir()
    roots[1].write_text(MARK)
    for root in roots:
        cases.append(Case(("install", "--check", "--ocf-root", str(root))))
        for interpreter in ("/nonexistent/python", "relative", str(roots[1])):
            argv = ("install", "--check", "--ocf-root", str(root), "--interpreter", interpreter)
            cases.append(Case(argv))
        cases.append(Case(("install", "--check", "--uninstall", "--ocf-root", str(root))))
    _sweep("install --check", cases)


def test_confsync(tmp_path: Path) -> None:
    states: dict[str, str] = {
        "none": "",
        "garbage": f"password={MARK}\n\xff",
        # A JSON list costs ~3 s a command (the state's reader waits): swept once, below.
        "no-config": json.dumps({"password": MARK}),
        "bad-config": json.dumps({"config": {"password": MARK}}),
        "config-not-a-table": json.dumps({"config": MARK}),
    }
    cases = []
    for name, text in states.items():
        rsctmp = tmp_path / name
        rsctmp.mkdir()
        if text:
            Path(state_path(str(rsctmp), "")).parent.mkdir(parents=True, exist_ok=True)
            Path(state_path(str(rsctmp), "cs")).write_text(text)
        for sub in (("status",), ("backups",), ("sync",), ("rollback", "--local")):
            argv = ("confsync", *sub, "--rsctmp", str(rsctmp))
            if sub[0] != "status" and sub[0] != "rollback":
                argv = (*argv, "--timeout", "5")
            cases.append(Case(argv))
            cases.append(Case((*argv, "--instance", "cs")))
    listed = tmp_path / "json-list"
    Path(state_path(str(listed), "cs")).parent.mkdir(parents=True)
    Path(state_path(str(listed), "cs")).write_text(json.dumps([MARK]))
    cases.append(Case(("confsync", "status", "--rsctmp", str(listed))))
    _sweep("confsync", cases)


def test_usage_errors_exit_2() -> None:
    cases = [
        Case(("generate",)),
        Case(("generate", "x.toml", "--format", "bogus")),
        Case(("check", "--failover-time", "0")),
        Case(("check", "--prefix", "relative")),
        Case(("status", "--format", "xml")),
        Case(("install", "--check", "--uninstall")),
        Case(("import-haresources",)),
        Case(("nonexistent-command",)),
    ]
    for case in cases:
        result = CliRunner().invoke(main, list(case.argv))
        assert result.exit_code == 2, (case, result.output)
    _sweep("usage", cases)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path) -> Iterator[None]:
    # `-o -` must never make a file named `-`: run where a stray one would be seen.
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield
    finally:
        os.chdir(cwd)
