"""The pcs script's `--stepwise` run counts its steps on a terminal and is silent otherwise."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

import pytest

from bacula_ha.generator.generate import generate_text
from tests.test_generator_helpers import EXAMPLES

# Stand-ins for pcs and cibadmin: each call is one line of the log, nothing else happens.
FAKE = '#!/bin/sh\nprintf "%s\\n" "$(basename "$0") $*" >> "$FAKE_LOG"\n'


def _fake_path(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("pcs", "cibadmin"):
        tool = bin_dir / name
        tool.write_text(FAKE)
        tool.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "CIB_FILE": str(tmp_path / "cib.xml"),
    }


def _script(example: Path, tmp_path: Path) -> Path:
    script = tmp_path / "site.sh"
    script.write_text(generate_text(example, "pcs"))
    return script


def _run_on_tty(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal: (status, stdout, what the terminal showed)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=follower)
    finally:
        os.close(follower)
    shown = b""
    try:
        while chunk := os.read(leader, 4096):
            shown += chunk
    except OSError:  # EIO: every writer of the terminal has gone
        pass
    finally:
        os.close(leader)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    return proc.wait(timeout=60), stdout, shown.decode().replace("\r\n", "\n")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_stepwise_counts_steps_on_a_terminal(example: Path, tmp_path: Path) -> None:
    script = _script(example, tmp_path)
    env = _fake_path(tmp_path)
    status, stdout, shown = _run_on_tty(["/bin/sh", str(script), "--stepwise"], env)
    assert status == 0, shown
    assert stdout == ""
    calls = (tmp_path / "calls.log").read_text().splitlines()
    lines = shown.splitlines()
    total = len(lines)
    # One line per command the script ran, numbered 1..N of N: the total is known up front.
    assert total == len(calls) > 10
    for number, (line, call) in enumerate(zip(lines, calls, strict=True), start=1):
        match = re.fullmatch(rf"\[{number}/{total}\] (\S+) (.*)", line)
        assert match, line
        tool, words = match.groups()
        assert call.startswith(tool + " ")
        if tool == "pcs":
            # The object's first words only, never the rest of the line (a fence password).
            assert call.startswith(f"pcs -f {env['CIB_FILE']} {words.removesuffix(' ...')}")
    assert "secret" not in shown
    assert lines[0].startswith(f"[1/{total}] pcs property set ")


@pytest.mark.parametrize("stepwise", [True, False], ids=["stepwise", "merge"])
def test_silent_when_not_a_terminal(stepwise: bool, tmp_path: Path) -> None:
    script = _script(EXAMPLES[0], tmp_path)
    env = _fake_path(tmp_path)
    argv = ["/bin/sh", str(script), *(["--stepwise"] if stepwise else [])]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    assert (tmp_path / "calls.log").read_text()


def test_merge_path_prints_nothing_on_a_terminal(tmp_path: Path) -> None:
    # The default path is one cibadmin call: nothing to count, so nothing on the terminal either.
    script = _script(EXAMPLES[0], tmp_path)
    status, stdout, shown = _run_on_tty(["/bin/sh", str(script)], _fake_path(tmp_path))
    assert (status, stdout, shown) == (0, "", "")


def test_the_script_is_posix_sh(tmp_path: Path) -> None:
    for example in EXAMPLES:
        script = _script(example, tmp_path)
        for shell in ("/bin/sh", "/usr/bin/dash"):
            if Path(shell).exists():
                done = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
                assert done.returncode == 0, (example.name, shell, done.stderr)
