"""The config sync package without network: its face, its state (the OCF library's), the helper."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bacula_ha.agents.confsync import AGENT
from bacula_ha.bacula import confsync
from bacula_ha.bacula.confsync import remote, transport
from bacula_ha.ocf import state as ocf_state
from bacula_ha.ocf.deadline import Deadline
from bacula_ha.ocf.env import Environment
from bacula_ha.ocf.errors import NotRunningError
from bacula_ha.ocf.runner import main

SRC = Path(__file__).resolve().parent.parent / "src" / "bacula_ha"
PACKAGE = SRC / "bacula" / "confsync"


def _config() -> confsync.SyncConfig:
    return confsync.SyncConfig(paths=("/etc/bacula",), peers=(confsync.Peer("n2", "10.0.0.2"),))


def test_state_is_the_ocf_librarys_format_and_lock(tmp_path: Path) -> None:
    path = confsync.state_path(str(tmp_path), "cs1")
    env = Environment.from_mapping(
        ["x", "monitor"], {"HA_RSCTMP": str(tmp_path), "OCF_RESOURCE_INSTANCE": "cs1"}
    )
    assert path == ocf_state.StateFile(env, "bacula-confsync").path
    confsync.save_state(path, {"config": confsync.config_to_json(_config())})
    # Any agent's StateFile reads it: one format, one writer.
    saved = ocf_state.StateFile(env, "bacula-confsync").read()
    assert saved is not None
    assert confsync.config_from_json(saved["config"]) == _config()
    assert confsync.active_states(str(tmp_path)) == [path]
    held = confsync.Lock(path)
    assert held.acquire(Deadline.after(1))
    try:
        assert not ocf_state.Lock(path).acquire(Deadline.after(0.6))
    finally:
        held.release()
    assert ocf_state.Lock(path).acquire(Deadline.after(1))


def test_a_json_state_from_before_an_upgrade_is_adopted(tmp_path: Path) -> None:
    directory = tmp_path / "bacula-ha"
    directory.mkdir()
    old = {"config": confsync.config_to_json(_config()), "started": 1.5}
    (directory / "bacula-confsync-cs1.json").write_text(json.dumps(old))
    inst = confsync.saved_instance(str(tmp_path))
    assert inst.config == _config() and inst.active
    assert not (directory / "bacula-confsync-cs1.json").exists()
    assert confsync.load_state(inst.path) == json.loads(json.dumps(old))


def test_odd_instance_names_get_valid_distinct_state_files(tmp_path: Path) -> None:
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    paths = {confsync.state_path(str(tmp_path), n) for n in (long_a, long_b, "x/y", "x_y")}
    assert len(paths) == 4
    for path in paths:
        assert len(os.path.basename(path)) < 255
        confsync.save_state(path, {"n": 1})
    assert len(confsync.active_states(str(tmp_path))) == 4


def test_no_instance_here(tmp_path: Path) -> None:
    assert confsync.request_sync(Deadline.after(5), rsctmp=str(tmp_path)) == []
    with pytest.raises(NotRunningError, match="no instance is active"):
        confsync.saved_instance(str(tmp_path))


def test_rollback_operands_come_from_the_runner_not_sys_argv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = confsync.state_path(str(tmp_path), "cs1")
    confsync.save_state(path, {"config": confsync.config_to_json(_config())})
    environ = {"HA_RSCTMP": str(tmp_path), "PATH": "/usr/bin:/bin"}
    assert main(AGENT, ["bacula-confsync", "rollback", "--from"], environ) == 2
    assert "--from needs a peer name" in capsys.readouterr().err
    # status prints from the state file, through the same text as the CLI.
    assert main(AGENT, ["bacula-confsync", "status"], environ) == 0
    out = capsys.readouterr().out
    assert out.startswith("paths: /etc/bacula\n") and "n2: last good sync never" in out


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
            if node.module is None or node.module.endswith("bacula"):
                found.update(f"{'.' * node.level}{node.module or ''}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize(
    "user", ["agents/confsync.py", "confsync_cli.py", "agents/director.py"], ids=str
)
def test_users_reach_config_sync_only_through_its_face(user: str) -> None:
    reached = {i for i in _imports(SRC / user) if "confsync" in i}
    assert reached, f"{user} does not use config sync at all?"
    assert all(i.endswith("bacula.confsync") for i in reached), reached


# How long a module may be without saying why: tests/test_module_size.py, for the whole tree.


def test_helper_program_is_self_contained_and_runs_alone(tmp_path: Path) -> None:
    imported = _imports(PACKAGE / "remote.py")
    assert not [i for i in imported if i.startswith(".") or i.startswith("bacula_ha")]
    assert all(i.split(".")[0] in sys.stdlib_module_names or i == "__future__" for i in imported)
    tree = tmp_path / "etc" / "bacula"
    tree.mkdir(parents=True)
    (tree / "bacula-fd.conf").write_text("FileDaemon { Name = x }\n")
    request = {"op": "scan", "items": [{"path": str(tree), "excludes": []}]}
    # What the peer's python3 runs: the program text alone, no bacula_ha importable.
    done = subprocess.run(
        ["/usr/bin/python3", "-I", "-S", "-c", transport._BOOT],
        input=transport._helper_program(request),
        capture_output=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.decode().splitlines()[-1])
    assert answer["ok"] and answer["paths"][str(tree)]["digest"] == remote.digest(
        remote.walk(str(tree), [])
    )


def test_a_bacula_org_tree_is_tested_by_its_own_bacula(tmp_path: Path) -> None:
    # /opt/bacula/etc is parsed by /opt/bacula/bin's parser (here a wrapper that logs its
    # calls before running Debian's), not by Debian's /usr/sbin: the versions may differ.
    from bacula_ha.bacula.confsync.sourcetest import check_source

    prefix = tmp_path / "opt" / "bacula"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "etc").mkdir()
    calls = tmp_path / "calls"
    wrapper = prefix / "bin" / "bfdjson"
    wrapper.write_text(f'#!/bin/sh\necho "$0 $*" >> {calls}\nexec /usr/sbin/bfdjson "$@"\n')
    wrapper.chmod(0o755)
    conf = prefix / "etc" / "bacula-fd.conf"
    conf.write_text(
        'FileDaemon {\n  Name = x-fd\n  WorkingDirectory = "/tmp"\n  Pid Directory = "/tmp"\n}\n'
        'Director {\n  Name = x-dir\n  Password = "pw"\n}\n'
        "Messages {\n  Name = Standard\n  director = x-dir = all\n}\n"
    )

    class Log:
        def debug(self, message: str) -> None:
            raise AssertionError(message)

    assert check_source([str(prefix / "etc")], "parse", 20, Deadline.after(30), Log()) == []
    assert calls.read_text().split() == [str(wrapper), "-c", str(conf)]
    conf.write_text("FileDaemon {\n  Name = x-fd\n  Bogus = 1\n}\n")
    with pytest.raises(confsync.ConfigCheckFailed):
        check_source([str(prefix / "etc")], "parse", 20, Deadline.after(30), Log())
