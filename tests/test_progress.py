"""bacula_ha.progress: stage lines with their duration on a terminal, nothing otherwise."""

from __future__ import annotations

import inspect
import io
import os
import pty
import sys
from pathlib import Path

import pytest

from bacula_ha import progress
from bacula_ha.lab import lifecycle
from bacula_ha.progress import Progress


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_step_shows_the_seconds_since_the_previous_one() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("lab", enabled=True, stream=out, clock=clock)
    clock.now += 3.14
    p.step("machines up")
    clock.now += 12.0
    p.step("cluster formed")
    p.step("site applied")
    assert out.getvalue().splitlines() == [
        "lab: machines up (3.1 s)",
        "lab: cluster formed (12.0 s)",
        "lab: site applied (0.0 s)",
    ]


def test_disabled_prints_nothing_but_keeps_time() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("lab", enabled=False, stream=out, clock=clock)
    clock.now += 5
    p.step("machines up")
    p.enabled = True
    clock.now += 1
    p.step("cluster formed")
    assert out.getvalue() == "lab: cluster formed (1.0 s)\n"


def test_off_unless_the_stream_is_a_terminal(tmp_path: Path) -> None:
    assert not Progress("x", stream=io.StringIO()).enabled
    with (tmp_path / "log").open("w") as f:
        assert not Progress("x", stream=f).enabled
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            p = Progress("x", stream=tty)
            assert p.enabled
            p.step("done")
        assert os.read(leader, 1024).startswith(b"x: done (")
    finally:
        os.close(leader)
        os.close(follower)


def test_default_stream_is_stderr_when_made(capsys: pytest.CaptureFixture[str]) -> None:
    # Under pytest's capture stderr is no terminal: off by default, on when asked.
    assert not Progress("lab").enabled
    p = Progress("lab", enabled=True)
    p.step("cluster formed")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("lab: cluster formed (")
    assert sys.stderr is not None


def test_closed_stream_counts_as_no_terminal() -> None:
    closed = io.StringIO()
    closed.close()
    assert not Progress("x", stream=closed).enabled


def test_quiet_never_prints(capsys: pytest.CaptureFixture[str]) -> None:
    p = progress.quiet()
    p.step("anything")
    assert capsys.readouterr() == ("", "")


def test_lab_up_gets_a_progress_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without building a lab (root, minutes): `lab up` hands lifecycle.up a Progress named "lab",
    # on stderr, which is no terminal here, so off.
    from click.testing import CliRunner

    from bacula_ha.lab import cli

    seen: list[Progress | None] = []

    def fake_up(
        cfg: object, site: object = None, log: object = None, progress: Progress | None = None
    ) -> float:
        seen.append(progress)
        if progress is not None:
            progress.step("machines up")
        return 0.0

    monkeypatch.setattr(cli, "_need_root", lambda: None)
    monkeypatch.setattr(cli.lifecycle, "up", fake_up)
    result = CliRunner().invoke(cli.lab, ["up", "--bare"])
    assert result.exit_code == 0, result.output
    assert len(seen) == 1 and seen[0] is not None
    assert not seen[0].enabled
    assert result.output == ""
    assert "progress" in inspect.signature(lifecycle.up).parameters
