"""`bacula-ha status --watch`: snapshots on a CIB file, redrawn on a terminal, NDJSON, Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from bacula_ha.cliout import Fault, InputError
from bacula_ha.status.collect import Status, StatusError
from bacula_ha.status.watch import CLEAR, watch
from tests.test_generator_helpers import empty_cib

CLI = Path(sys.executable).parent / "bacula-ha"


@pytest.fixture
def cib(tmp_path: Path) -> Path:
    return empty_cib(tmp_path / "cib.xml", ["n1", "n2"])


def _cli(cib: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "status", "--no-jobs", *args],
        env={**os.environ, "CIB_file": str(cib)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ndjson_one_document_a_line(cib: Path) -> None:
    done = _cli(cib, "--format", "json", "--watch", "1", "--count", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        doc = json.loads(line)
        assert doc["version"] == 1
        assert doc["nodes"] == {"n1": "online", "n2": "online"}


def test_text_snapshots_separated_by_a_blank_line_off_a_terminal(cib: Path) -> None:
    once = _cli(cib)
    assert once.returncode == 0, once.stderr
    # --watch alone is every 2 s; a value right after it is the interval.
    done = _cli(cib, "--watch", "--count", "1")
    assert (done.returncode, done.stdout) == (0, once.stdout)
    done = _cli(cib, "--watch", "1", "--count", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout == once.stdout + "\n" + once.stdout
    assert CLEAR not in done.stdout


@pytest.mark.parametrize("value", ["0", "3601", "abc", "1.5"])
def test_interval_is_an_integer_from_1_to_3600(cib: Path, value: str) -> None:
    done = _cli(cib, "--watch", value, "--count", "1")
    assert done.returncode == 2
    assert "--watch" in done.stderr


def test_redraws_the_screen_on_a_terminal(cib: Path) -> None:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(CLI), "status", "--no-jobs", "--watch", "1", "--count", "1"],
            env={**os.environ, "CIB_file": str(cib)},
            stdout=follower,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(follower)
    shown = b""
    try:
        while chunk := os.read(leader, 4096):
            shown += chunk
    except OSError:  # EIO: the watch has ended
        pass
    finally:
        os.close(leader)
    assert proc.wait(timeout=30) == 0
    screen = shown.decode().replace("\r\n", "\n")
    # One snapshot (no wait): a redraw is the clear sequence, the header, the status.
    assert screen.startswith(f"{CLEAR}Every 1 s (Ctrl-C to quit)    ")
    assert screen.count("Nodes: n1 (online), n2 (online)") == 1


def test_ctrl_c_ends_with_0_and_no_traceback(cib: Path) -> None:
    proc = subprocess.Popen(
        [str(CLI), "status", "--no-jobs", "--watch", "1"],
        env={**os.environ, "CIB_file": str(cib)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first snapshot is out: the loop is running
    assert first.startswith("Nodes: ")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert err == ""
    assert "Traceback" not in out


def test_no_cluster_fails_at_once_as_status_does(tmp_path: Path) -> None:
    done = _cli(tmp_path / "missing.xml", "--watch", "1")  # no --count: it must not loop
    # The same failure as `status` without --watch (whatever its wording), not a loop.
    once = _cli(tmp_path / "missing.xml")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", once.stderr)
    assert once.stderr and "Traceback" not in once.stderr


# --- the loop itself, with a hand-made clock and statuses ---------------------------------


def _status(dc: str) -> Status:
    return Status(nodes={"n1": "online"}, dc=dc, components=[], failures=[])


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_later_failure_is_shown_and_the_watch_goes_on() -> None:
    answers: list[Status | StatusError] = [_status("n1"), StatusError("crm_mon timed out")]
    answers.append(_status("n2"))
    slept: list[float] = []

    def gather() -> Status:
        answer = answers.pop(0)
        if isinstance(answer, StatusError):
            raise answer
        return answer

    out = io.StringIO()
    watch(gather, "json", 5, count=3, out=out, sleep=slept.append)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d.get("dc") for d in docs] == ["n1", None, "n2"]
    assert docs[1]["format"] == "bacula-ha-error"
    assert [e["message"] for e in docs[1]["errors"]] == ["crm_mon timed out"]
    assert slept == [5, 5]  # not after the last one


def test_the_first_failure_goes_to_the_caller() -> None:
    def gather() -> Status:
        raise StatusError("no cluster")

    with pytest.raises(StatusError):
        watch(gather, "text", 2, out=io.StringIO(), sleep=lambda _: None)


def test_terminal_header_and_ctrl_c_during_the_sleep() -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    out = Tty()
    watch(
        lambda: _status("n1"),
        "text",
        7,
        out=out,
        sleep=interrupt,
        now=lambda: datetime(2026, 12, 6, 11, 0, 0),
    )
    text = out.getvalue()
    assert text.startswith(f"{CLEAR}Every 7 s (Ctrl-C to quit)    2026-12-06 11:00:00\n\nNodes: ")
    assert text.endswith("\n\n")  # the prompt after ^C on a line of its own


def test_json_on_a_terminal_is_still_one_line_a_document() -> None:
    out = Tty()
    watch(lambda: _status("n1"), "json", 1, count=2, out=out, sleep=lambda _: None)
    assert CLEAR not in out.getvalue()
    assert len(out.getvalue().splitlines()) == 2


def test_a_cib_file_caught_half_written_is_shown_as_its_fault() -> None:
    answers: list[Status | Exception] = [_status("n1")]
    answers.append(InputError(Fault("not valid XML: no element found", "cib.xml", 3)))

    def gather() -> Status:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    out = io.StringIO()
    watch(gather, "text", 1, count=2, out=out, sleep=lambda _: None)
    assert out.getvalue().endswith("\n\ncib.xml:3: not valid XML: no element found\n")
