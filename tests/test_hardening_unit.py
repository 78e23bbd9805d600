"""Hardening without daemons: redaction of Bacula's messages, numbers, the runner's last defence."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from bacula_ha.bacula import configtest as ct
from bacula_ha.ocf import params as P
from bacula_ha.ocf import runner
from bacula_ha.ocf.agent import Agent
from bacula_ha.ocf.deadline import Deadline
from bacula_ha.ocf.env import Environment
from bacula_ha.ocf.errors import ArgsError, GenericError, NotConfiguredError
from bacula_ha.ocf.log import Logger, scrub
from bacula_ha.ocf.metadata import Action, MetaData, Parameter

SECRET = "Mark3rS3cret"
BDIRJSON = "/usr/sbin/bdirjson"
needs_bdirjson = pytest.mark.skipif(
    not os.access(BDIRJSON, os.X_OK), reason="bacula-director (bdirjson) not installed"
)

# Every shape of a password directive Bacula's parser rejects while echoing its value.
BROKEN_PASSWORDS = {
    "no equals": f'  Password "{SECRET}"\n',
    "unterminated": f'  Password = "{SECRET}\n',
    "unquoted with junk": f"  Password = {SECRET} junk\n",
    "spaced name": f'  Pass Word "{SECRET}"\n',
    "lower case, no equals": f"  password {SECRET}\n",
}


def _director_conf(path: Path, password_line: str) -> Path:
    path.write_text(
        "Director {\n  Name = d\n" + password_line + "  DirPort = 9101\n"
        "  WorkingDirectory = /tmp\n  PidDirectory = /tmp\n  Messages = m\n}\n"
    )
    return path


# -- secrets in configuration files ------------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(BROKEN_PASSWORDS))
def test_secrets_of_finds_every_shape(tmp_path: Path, shape: str) -> None:
    conf = _director_conf(tmp_path / "d.conf", BROKEN_PASSWORDS[shape])
    assert SECRET in ct.secrets_of(str(conf))


def test_secrets_of_follows_includes_and_never_blocks_on_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    inc = tmp_path / "inc.conf"
    inc.write_text(f'Catalog {{\n  Name = c\n  DB Password = "{SECRET}x"\n}}\n')
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "one.conf").write_text(f"Client {{\n  Password = {SECRET}y\n}}\n")
    conf = _director_conf(tmp_path / "d.conf", f"  @{inc}\n  @{fifo}\n  @conf.d/*.conf\n")
    started = time.monotonic()
    found = ct.secrets_of(str(conf))
    assert f"{SECRET}x" in found and f"{SECRET}y" in found
    assert time.monotonic() - started < 5  # a FIFO read would have blocked forever


def test_redact_keeps_bacula_s_words_and_hides_values() -> None:
    assert "***" in ct.redact(f"got: {SECRET} here", [SECRET])
    assert SECRET not in ct.redact(f'  Password = "{SECRET}" x')
    assert SECRET not in ct.redact(f"  DB Password {SECRET}")
    # A directive named in a message is not a value.
    text = 'Config error: "Password" directive is required in "Director" resource'
    assert ct.redact(text) == text
    # A short secret only as a whole word: "a" must not blank every message.
    assert ct.redact("a bad value: a", ["a"]) == "*** bad value: ***"


@needs_bdirjson
@pytest.mark.parametrize("shape", sorted(BROKEN_PASSWORDS))
def test_real_parser_rejection_never_carries_the_password(tmp_path: Path, shape: str) -> None:
    conf = _director_conf(tmp_path / "d.conf", BROKEN_PASSWORDS[shape])
    verdict = ct.parse(BDIRJSON, str(conf), Deadline.after(20))
    assert verdict.outcome == ct.REJECTED
    assert SECRET not in verdict.reason
    assert "Config error" in verdict.reason and "line " in verdict.reason
    error = verdict.error(str(conf))
    assert isinstance(error, NotConfiguredError) and SECRET not in error.reason


@needs_bdirjson
def test_parser_blocked_on_a_fifo_include_times_out_in_bound(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    conf = _director_conf(tmp_path / "d.conf", f'  Password = "x"\n  @{fifo}\n')
    started = time.monotonic()
    verdict = ct.parse(BDIRJSON, str(conf), Deadline.after(30), timeout=1.0)
    assert verdict.outcome == ct.TIMED_OUT
    assert time.monotonic() - started < 5
    assert not isinstance(verdict.error("x"), NotConfiguredError)  # never 6


def test_missing_tool_and_missing_file_are_not_configuration_errors(tmp_path: Path) -> None:
    conf = _director_conf(tmp_path / "d.conf", '  Password = "x"\n')
    assert ct.parse("/nonexistent/bdirjson", str(conf), Deadline.after(5)).outcome == (
        ct.NOT_INSTALLED
    )
    assert ct.parse(BDIRJSON, str(tmp_path / "none"), Deadline.after(5)).outcome == (
        ct.NOT_INSTALLED
    )


def test_catalog_down_is_told_apart_from_a_bad_file() -> None:
    out = 'bacula-dir: dird.c:1273-0 Could not open Catalog "MyCatalog", database "bacula".'
    assert "Could not open Catalog" in ct.error_reason(out)


# -- Bacula's own reason: a file that parses but lacks what the daemon needs -------------------

BACULA_DIR = "/usr/sbin/bacula-dir"
# Parses, but has no Director (nor Job): Bacula says so only as "Fatal error:" lines, then
# "Please correct configuration file", which says nothing.
DIRECTORLESS = f'Catalog {{\n  Name = c\n  dbname = bacula\n  DB Password = "{SECRET}"\n}}\n'
NO_DIRECTOR = "Fatal error: No Director resource defined; No Job records defined"


def test_fatal_errors_are_the_reason_all_of_them_once_and_redacted() -> None:
    out = (
        "06-Dec 08:33 bacula-dir JobId 0: Fatal error: No Director resource defined in /c.conf\n"
        "Without that I don't know who I am :-(\n"
        f"06-Dec 08:33 bacula-dir JobId 0: Fatal error: bad {SECRET} in /c.conf\n"
        "06-Dec 08:33 bacula-dir ERROR TERMINATION\n"
        "Please correct configuration file: /c.conf\n"
    )
    assert ct.error_reason(out + out, [SECRET], "/c.conf") == (
        "Fatal error: No Director resource defined; bad ***"
    )
    # Another file than the caller's keeps its name; a config error still comes first.
    assert ct.error_reason(out, [SECRET], "/other.conf").endswith("bad *** in /c.conf")
    assert ct.error_reason("Config error: x\n" + out).startswith("Config error: x")


@needs_bdirjson
def test_a_directorless_file_is_rejected_with_bacula_s_reason(tmp_path: Path) -> None:
    conf = tmp_path / "nodir.conf"
    conf.write_text(DIRECTORLESS)
    for verdict in (
        ct.parse(BDIRJSON, str(conf), Deadline.after(20)),  # bacula-ha check, config sync
        ct.test([BACULA_DIR, "-t", "-c", str(conf)], str(conf), Deadline.after(20)),  # agents
    ):
        assert (verdict.outcome, verdict.reason) == (ct.REJECTED, NO_DIRECTOR)
        error = verdict.error(str(conf))
        assert isinstance(error, NotConfiguredError)
        assert error.reason == f"{conf}: {NO_DIRECTOR}"


@needs_bdirjson
def test_the_director_agent_s_exit_reason_is_bacula_s(tmp_path: Path) -> None:
    from bacula_ha.agents.director import AGENT

    conf = tmp_path / "nodir.conf"
    conf.write_text(DIRECTORLESS)
    log = tmp_path / "ha.log"
    environ = {
        "OCF_RESKEY_config": str(conf),
        "HA_LOGFILE": str(log),
        "HA_LOGFACILITY": "none",
        "HA_RSCTMP": str(tmp_path),
        "OCF_RESKEY_CRM_meta_timeout": "20000",
    }
    err = io.StringIO()
    with redirect_stderr(err):
        code = runner.main(AGENT, ["bacula-dir", "validate-all"], environ)
    assert code == 6, err.getvalue()
    # The runner cuts a reason at 128 characters: the test's long path leaves Bacula's first.
    assert f"ocf-exit-reason:{conf}: Fatal error: No Director resource defined" in err.getvalue()
    assert SECRET not in err.getvalue() + log.read_text()


# -- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "٣٠", "1e3", "-1", " 5", "99999999999999999999999", "x"])
def test_environment_numbers_are_ascii_and_bounded(raw: str) -> None:
    for key in ("OCF_RESKEY_CRM_meta_timeout", "OCF_RESKEY_CRM_meta_interval", "OCF_CHECK_LEVEL"):
        with pytest.raises(ArgsError) as caught:
            Environment.from_mapping(["x", "monitor"], {key: raw})
        assert caught.value.reason.isprintable() and len(caught.value.reason) < 128
        lenient = Environment.from_mapping(["x", "stop"], {key: raw}, lenient=True)
        assert lenient.problems and lenient.timeout_ms == 20_000


def test_environment_numbers_accepted() -> None:
    env = Environment.from_mapping(
        ["x", "monitor"],
        {
            "OCF_RESKEY_CRM_meta_timeout": "30000",
            "OCF_RESKEY_CRM_meta_interval": "10000",
            "OCF_CHECK_LEVEL": "20",
        },
        depths=(0, 10, 20),
    )
    assert (env.timeout_ms, env.interval_ms, env.depth, env.problems) == (30000, 10000, 20, ())


@pytest.mark.parametrize("raw", ["²", "٣٠", "", "1.5", "65536", "0"])
def test_ports_are_ascii(raw: str) -> None:
    if raw == "":
        assert P.port("port", raw) is None
        return
    with pytest.raises(NotConfiguredError):
        P.port("port", raw)


def test_integers_and_durations() -> None:
    assert P.integer("n", "42", low=1) == 42
    assert P.integer("n", "-3", low=-5) == -3
    for bad in ("٣٠", "²", "1_000", "+4", "9" * 30, "0x10"):
        with pytest.raises(NotConfiguredError):
            P.integer("n", bad)
    assert P.seconds("t", "1.5") == 1.5 and P.seconds("t", "2min") == 120
    for bad in ("٣٠", "inf", "nan", "1e400", "-1", "9" * 40, ".", ""):
        with pytest.raises(NotConfiguredError):
            P.seconds("t", bad)


# -- the runner: the last line of defence -------------------------------------------------------


class _Leaky(Agent[str]):
    """An agent that puts its secret parameter and control characters into every message."""

    metadata = MetaData(
        name="leaky",
        version="1",
        shortdesc="leaky",
        longdesc="leaky",
        parameters=(
            Parameter("password", "p", "p"),
            Parameter("token", "t", "t", secret=True),
        ),
        actions=(Action("start", 10), Action("stop", 10), Action("monitor", 10)),
    )

    def configure(self, env: Environment, log: Logger) -> str:
        return env.param("password") + env.param("token")

    def start(self, config: str, env: Environment, log: Logger) -> None:
        log.info(f"starting with {config}")
        raise GenericError(f"refused \x1b[31m{config}\x00\n")

    def stop(self, config: str, env: Environment, log: Logger) -> None:
        raise RuntimeError(config)  # an agent bug: stop still answers

    def monitor(self, config: str, env: Environment, log: Logger) -> int:
        return 1  # a failure without a reason


@pytest.fixture
def logfile(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "ha.log"


def _run(action: str, logfile: Path, tmp: Path) -> tuple[int, str, str]:
    environ = {
        "OCF_RESKEY_password": "pw-Secret-1",
        "OCF_RESKEY_token": "tok-Secret-2",
        "HA_LOGFILE": str(logfile),
        "HA_LOGFACILITY": "none",
        "HA_RSCTMP": str(tmp),
        "OCF_RESKEY_CRM_meta_interval": "10000" if action == "monitor" else "0",
    }
    err = io.StringIO()
    with redirect_stderr(err):
        code = runner.main(_Leaky(), ["leaky", action], environ)
    return code, err.getvalue(), logfile.read_text() if logfile.exists() else ""


def test_runner_never_prints_secret_parameters_or_control_characters(
    logfile: Path, tmp_path: Path
) -> None:
    code, err, log = _run("start", logfile, tmp_path)
    assert code == 1
    reason = [ln for ln in err.splitlines() if ln.startswith("ocf-exit-reason:")]
    assert len(reason) == 1 and reason[0].isprintable() and len(reason[0]) <= 128 + 16
    for text in (err, log):
        assert "pw-Secret-1" not in text and "tok-Secret-2" not in text
        assert "\x1b" not in text and "\x00" not in text
    assert "refused" in reason[0]


def test_runner_gives_every_failure_a_reason_and_logs_it_as_an_error(
    logfile: Path, tmp_path: Path
) -> None:
    code, err, log = _run("monitor", logfile, tmp_path)
    assert code == 1
    assert "ocf-exit-reason:monitor failed" in err
    assert "ERROR: monitor" in log  # a failing recurring monitor is an error, not info


def test_runner_stop_survives_an_agent_bug(logfile: Path, tmp_path: Path) -> None:
    code, err, log = _run("stop", logfile, tmp_path)
    assert code == 0, err
    assert "Traceback" in log  # logged for the developer, never on stderr alone
    assert "pw-Secret-1" not in err + log


def test_scrub() -> None:
    assert scrub("a\x1bb\tc\nd", ("b",)) == "a?*** c d"
