"""A seeded fuzzer over the five agents: every action, hostile parameters and environment.

Each agent runs as Pacemaker runs it (a subprocess, a bare environment) against fake Bacula tools
(tests/fake_bacula/fake-tool) and Bacula's real parsers (b*json, which need no daemon), so that
no daemon or database ever runs. The configuration files hold marker secrets in malformed
password directives, which Bacula's parser quotes in its error messages. For every trial:

- the exit code is an OCF code; no traceback in stdout or stderr, no "internal error" (an
  exception the agent did not expect);
- every failure (but 7 from a monitor or confsync's status) carries an exit reason: one line,
  printable, at most 128 characters;
- no marker secret in stdout, stderr, HA_LOGFILE or HA_DEBUGLOG;
- stop returns 0: the fakes refuse to run as daemons, and where a daemon stand-in runs (a copy
  of tail(1) under the daemon's name, following the configuration file) a stop whose `binary`
  and `config` name it must end it;
- the action ends inside its deadline (CRM_meta_timeout, else the declared timeout, plus slack);
- a failing recurring monitor is logged as an error;
- no process of the trial is left behind, and no value ran as a shell command.

Reproducible: `--fuzz-seed` (default: a fixed seed) and `--fuzz-trials` (per agent). A failure
names the seed, the agent, the trial number, the action and the whole input.
"""

from __future__ import annotations

import atexit
import functools
import marshal
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testkit.sandbox.bacula import BaculaSite, CatalogSettings

ROOT = Path(__file__).resolve().parent.parent
FAKE_TOOL = ROOT / "tests" / "fake_bacula" / "fake-tool"
STANDIN_SOURCE = ROOT / "tests" / "fake_bacula" / "standin.c"
AGENTS = ("bacula-dir", "bacula-sd", "bacula-fd", "bacula-catalog", "bacula-confsync")
DEFAULT_SEED = 20261130
# Trials per agent: the fast tier's share, and the full run's further trials (another seed).
DEFAULT_TRIALS = 80
MORE_TRIALS = 320
# Agents mostly wait on their own start-up and on short-lived children: a few at once keep
# two cores busy.
WORKERS = 3
# What an action may take beyond its deadline: the interpreter's start on a loaded machine.
SLACK = 1.5
# Every secret in the fixtures starts with this; a part of it in any output is a leak.
MARKER = "Zq9S3cr3t"
OCF_CODES = frozenset({*range(10), 190, 191})
REASON_PREFIX = "ocf-exit-reason:"
MAX_REASON = 128
# Blocking inputs (FIFOs, tools that hang) get a short CRM_meta_timeout so that a trial that
# waits for its whole deadline costs little.
SHORT_TIMEOUTS = ("1500", "2500")
IGNORED_TERM_TIMEOUT = 8000

DAEMONS = {"bacula-dir": "bdirjson", "bacula-sd": "bsdjson", "bacula-fd": "bfdjson"}
MODES = ("parser", "echo", "catalog", "hang")
COMMON_ACTIONS = ("start", "stop", "monitor", "validate-all", "meta-data")
# Each agent's own actions besides (its meta-data's, and confsync's admin actions).
OWN_ACTIONS = {
    "bacula-dir": ("reload", "reload-agent"),
    "bacula-catalog": ("reload-agent",),
    "bacula-confsync": ("sync", "status", "backups", "rollback"),
}
ODD_ACTIONS = ("bogus", "", "START", "monitor ", "meta-data\n", "-h", "reload", "reload-agent")

# Values Python's int() or str.isdigit() take but an OCF agent must not: every number parser
# sees these.
ODD_NUMBERS = (
    "\u00b2",  # superscript two: isdigit() but int() raises
    "\u0663\u0660",  # Arabic-Indic 30: int() takes it
    "\uff15",  # fullwidth 5
    "-1",
    "0",
    "-0",
    "+5",
    " 5",
    "5 ",
    "5.5",
    "1e3",
    "0x10",
    "nan",
    "inf",
    "abc",
    "9" * 30,
    "9" * 400,
    "99999999999",
    "1_000",
    "\x01",
    "5\n",
)
ODD_STRINGS = (
    "",
    " ",
    "-t",
    "--help",
    "a\nb",
    "bell\x07",
    "esc\x1b[31m",
    "tab\there",
    "\u00fcn\u00efc\u00f6d\u00e9",
    "\u202eRTL",
    "\udcff\udcfe",  # not UTF-8: the raw bytes 0xff 0xfe in the environment
    "x" * 3000,
    "$(touch pwned)",  # run by a shell, it leaves a file in the agent's working directory
    "'\"`;|&<>",
    "%s%n%x",
    "../../etc/passwd",
)
TIMEOUTS = (
    "2000",
    "5000",
    "10000",
    "",
    "0",
    "-1",
    "-20000",
    "\u00b2",
    "\u0663\u0660\u0660\u0660",
    "1e4",
    "abc",
    " 5000",
    "5000ms",
    "9" * 30,
    "9" * 400,
    "99999999999",
)
INTERVALS = ("", "0", "10000", "31000", "-5", "\u00b2", "x", "9" * 30, "1.5")
CHECK_LEVELS = ("", "0", "10", "20", "30", "-1", "\u00b2", "\u0661\u0660", "x", "9" * 40, "10 ")


# State files left by someone else, a crash or another version. Never a pid that exists: a
# bug must not get the fuzzer to signal a real process.
JUNK_STATES = (
    b"",
    b"\x00junk{",
    marshal.dumps([1, 2]),
    marshal.dumps({"pid": "12"}),
    marshal.dumps({"pid": 2**70, "binary": "/bin/sh", "config": "/x"}),
    marshal.dumps({"pid": 4194305, "binary": 5, "config": None, "sources": "x"}),
    marshal.dumps({"config": {"paths": 5}, "started": "yesterday", "cache": [1]}),
)


def _configs() -> dict[str, bytes]:
    """Bacula configuration files, each with a marker secret where the parser will quote it."""
    s = MARKER
    return {
        "dir-no-equals.conf": f'Director {{\n  Name = d\n  Password "{s}-a"\n}}\n'.encode(),
        "dir-unterminated.conf": f'Director {{\n  Name = d\n  Password = "{s}-b\n}}\n'.encode(),
        "dir-unquoted.conf": f"Director {{\n  Name = d\n  Password {s}-c\n}}\n".encode(),
        "dir-shouting.conf": f'Director {{\n  Name = d\n  PASSWORD   "{s}-d"\n}}\n'.encode(),
        "dir-tight.conf": f'Director {{\n  Name = d\n  Password="{s}-e\n}}\n'.encode(),
        "dir-catalog.conf": (
            f'Catalog {{\n  Name = MyCatalog\n  dbname = "bacula"\n  dbuser = "bacula"\n'
            f'  dbpassword "{s}-f"\n}}\n'
        ).encode(),
        # The secret is fine where it is defined, and quoted by the error of another directive.
        "dir-elsewhere.conf": (f'Director {{\n  Password = "{s}-g"\n  Name "{s}-g"\n}}\n').encode(),
        "dir-not-utf8.conf": (
            b'Director {\n  Name = d\xff\xfe\n  Password "' + f"{s}-h".encode() + b'"\n}\n'
        ),
        "sd-no-equals.conf": f'Director {{\n  Name = d\n  Password "{s}-i"\n}}\n'.encode(),
        "sd-storage.conf": f"Storage {{\n  Name = s\n  Password {s}-j\n}}\n".encode(),
        "console.conf": f'Director {{\n  Name = d\n  Password = "{s}-k\n}}\n'.encode(),
        "empty.conf": b"",
        "garbage.conf": b"\x00\x01\x02{{{{}}}}@@@",
        # A NUL byte in an @include's name: os.open of it raises ValueError, not OSError.
        "garbage-include.conf": (
            f'Director {{\n  Name = d\n  Password = "{s}-n"\n}}\n@/etc/bacula\x00/x.conf\n'
        ).encode(),
    }


@dataclass
class Slot:
    """One worker's files: fake tools, configurations, a FIFO (its trials run one by one)."""

    base: Path
    files: Path = field(init=False)
    fakes: Path = field(init=False)
    good: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.files = self.base / "files"
        self.fakes = self.base / "fakes"
        self.files.mkdir()
        for name, text in _configs().items():
            (self.files / name).write_bytes(text)
        fifo = self.files / "fifo"
        os.mkfifo(fifo)
        (self.files / "includes-fifo.conf").write_text(
            f'Director {{\n  Name = d\n  Password = "{MARKER}-l"\n}}\n@{fifo}\n'
        )
        (self.files / "a-directory").mkdir()
        (self.files / "loop").symlink_to(self.files / "loop")
        (self.files / "not-executable").write_text("#!/bin/sh\nexit 0\n")
        (self.files / "password").write_text(f"{MARKER}-pw\n")
        (self.files / "password-not-utf8").write_bytes(b"\xff\xfe" + f"{MARKER}-pw8".encode())
        (self.files / "password-empty").write_text("")
        (self.files / "bconsole.conf").write_text(
            f"Director {{\n  Name = d\n  DIRport = 9101\n  address = localhost\n"
            f'  Password = "{MARKER}-bc"\n}}\n'
        )
        # A good site too, whose passwords are marker secrets: Bacula's parser accepts it, so
        # the agents get further (and must still never show a password).
        site = BaculaSite(
            self.base / "site",
            catalog=CatalogSettings(password=f"{MARKER}-db", port=9),
            dir_port=9,
            fd_port=9,
            sd_ports=(9,),
            dir_password=f"{MARKER}-dir",
            sd_password=f"{MARKER}-sd",
            fd_password=f"{MARKER}-fd",
        ).write(owner=None)
        self.good = {
            "bacula-dir": str(site.dir_conf),
            "bacula-sd": str(site.sd_conf()),
            "bacula-fd": str(site.fd_conf),
            "console": str(site.console_conf),
        }
        for mode in MODES:
            directory = self.fakes / mode
            directory.mkdir(parents=True)
            tools = [*DAEMONS, "bconsole", "psql", "mariadb"]
            if mode in ("echo", "hang"):
                # Beside the daemon, the agents take these instead of Debian's real parsers.
                tools += list(DAEMONS.values())
            for tool in tools:
                (directory / tool).symlink_to(FAKE_TOOL)
        # A daemon that runs: a copy of tail(1) under the daemon's name, so that its
        # /proc/PID/exe is the agent's `binary`. `<daemon> -f -n 0 CONFIG` follows the
        # configuration file (forever), which is what the agents' process scan looks for.
        (self.fakes / "run").mkdir()
        for daemon in DAEMONS:
            shutil.copy("/usr/bin/tail", self.fakes / "run" / daemon)
        for tool in ("bconsole", "psql", "mariadb"):
            (self.fakes / "run" / tool).symlink_to(FAKE_TOOL)
        # Daemons the agents start themselves: they accept any configuration, fork away and
        # never answer (under "stubborn", they also ignore SIGTERM). Needs a C compiler.
        self.launchable: tuple[str, ...] = ()
        compiled = _standin_binary()
        if compiled is not None:
            for kind in ("daemon", "stubborn"):
                (self.fakes / kind).mkdir()
                for daemon in DAEMONS:
                    shutil.copy(compiled, self.fakes / kind / daemon)
                for tool in ("bconsole", "psql", "mariadb"):
                    (self.fakes / kind / tool).symlink_to(FAKE_TOOL)
            self.launchable = ("daemon", "stubborn")

    def blocking(self) -> set[str]:
        """Inputs that make an agent wait for its deadline (a start waits for an answer)."""
        return {
            str(self.files / "fifo"),
            str(self.files / "includes-fifo.conf"),
            *(str(p) for p in (self.fakes / "hang").iterdir()),
            *(str(self.fakes / kind / d) for kind in self.launchable for d in DAEMONS),
        }


@functools.cache
def _standin_binary() -> Path | None:
    """tests/fake_bacula/standin.c, compiled once per run (None without a C compiler)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    out = Path(tempfile.mkdtemp(prefix="bacula-ha-standin-")) / "standin"
    atexit.register(shutil.rmtree, out.parent, True)
    subprocess.run([cc, "-O", "-o", str(out), str(STANDIN_SOURCE)], check=True, timeout=60)
    return out


@dataclass(frozen=True)
class Trial:
    agent: str
    number: int
    action: str
    params: dict[str, str]
    env: dict[str, str]
    # Configuration files copied into the trial's own tree (confsync): source, name there.
    paths_tree: tuple[tuple[str, str], ...]
    junk_state: bytes | None = None  # what the instance's state file holds before the action
    # A daemon stand-in running before: binary, config, whether it ignores SIGTERM.
    standin: tuple[str, str, bool] | None = None
    started_first: bool = False  # `start` ran before the action, with the same input


@dataclass
class Outcome:
    trial: Trial
    code: int | None
    elapsed: float
    allowed: float
    stdout: str
    stderr: str
    logs: str
    leftovers: list[str]
    problems: list[str]
    standin_left: bool = False
    injected: bool = False  # a parameter ran as a shell command


# --- generating trials -------------------------------------------------------------------------


def _param_pools(agent: str, slot: Slot, tree: Path) -> dict[str, tuple[str, ...]]:
    f, fakes = slot.files, slot.fakes
    dir_configs = tuple(str(f / n) for n in _configs() if n.startswith(("dir-", "empty", "garb")))
    sd_configs = tuple(str(f / n) for n in _configs() if n.startswith(("sd-", "empty", "garb")))
    odd_paths = (
        str(f / "fifo"),
        str(f / "a-directory"),
        str(f / "missing"),
        str(f / "dir-not-utf8.conf"),
        str(f / "includes-fifo.conf"),
        str(f / "not-executable"),
        str(f / "loop"),
        "relative/path",
        "/dev/null",
        str(f) + "/\udcff",
    )
    numbers = ("1", "5", "30", *ODD_NUMBERS)
    ports = ("9101", "65535", "65536", "0", *ODD_NUMBERS)
    if agent in DAEMONS:
        configs = dir_configs if agent == "bacula-dir" else sd_configs
        pools: dict[str, tuple[str, ...]] = {
            "config": (slot.good[agent], *configs, *odd_paths),
            "binary": (
                *(str(fakes / m / agent) for m in (*MODES, "run", *slot.launchable)),
                str(fakes / "parser" / "bacula-fd"),
                *odd_paths,
            ),
            "user": ("bacula", "root", "nosuchuser", "-x", "0", *ODD_STRINGS[1:]),
            "group": ("bacula", "root", "nosuchgroup", "-x", "0", *ODD_STRINGS[1:]),
            "address": HOSTS,
            "port": ports,
            "check_timeout": numbers,
        }
        if agent == "bacula-dir":
            pools["bconsole"] = (*(str(fakes / m / "bconsole") for m in MODES), *odd_paths)
            consoles = (slot.good["console"], str(f / "bconsole.conf"), str(f / "console.conf"))
            pools["bconsole_config"] = (*consoles, *odd_paths)
            pools["job_wait"] = numbers
            pools["reload_token"] = ODD_STRINGS
        if agent == "bacula-sd":
            pools["archive_mounts"] = (str(tree), f"{tree} {f}", *odd_paths, *ODD_STRINGS)
        return pools
    if agent == "bacula-catalog":
        return {
            "config": (slot.good["bacula-dir"], *dir_configs, *odd_paths),
            "catalog": ("MyCatalog", "other", *ODD_STRINGS),
            "backend": ("auto", "postgresql", "mysql", "oracle", *ODD_STRINGS),
            "db_name": ("bacula", *ODD_STRINGS),
            "db_user": ("bacula", *ODD_STRINGS),
            "db_address": HOSTS,
            "db_port": ports,
            "db_socket": (str(f / "a-directory"), *odd_paths),
            "password_file": (
                str(f / "password"),
                str(f / "password-not-utf8"),
                str(f / "password-empty"),
                *odd_paths,
            ),
            "client": (
                *(str(fakes / m / "psql") for m in MODES),
                str(fakes / "parser" / "mariadb"),
                *odd_paths,
            ),
            "connect_timeout": numbers,
            "query_timeout": numbers,
            "latency_threshold": numbers,
            "schema_version": ("16", *numbers),
        }
    # bacula-confsync: its paths are always the trial's own tree (never /etc/bacula).
    return {
        "paths": (str(tree), f"{tree} {tree}", f"{tree}/missing", str(f / "fifo"), "relative"),
        "targets": (
            os.uname().nodename,  # this node alone: nobody to push to
            "",
            f"peer={LOOPBACK_PEER}",
            f"{os.uname().nodename} peer={LOOPBACK_PEER}",
            f"peer={LOOPBACK_PEER} peer={LOOPBACK_PEER}",
            "peer=",
            "=x",
            "-x",
            "peer=-oProxyCommand=x",
        ),
        "user": ("", "root", "-oProxyCommand=x", "a b", *ODD_STRINGS),
        "identity": ("", str(f / "password"), *odd_paths),
        "ssh_config": ("", str(f / "a-directory"), *odd_paths),
        "ssh_options": ("", "ConnectTimeout=1", "-o x", "Bad", *ODD_STRINGS),
        "connect_timeout": numbers,
        "io_timeout": numbers,
        "backups": numbers,
        "config_check": ("parse", "none", "full", "FULL", *ODD_STRINGS),
        "check_timeout": numbers,
        "exclude": ("*.swp", "a/b", *ODD_STRINGS),
        "rsync_options": ("", "--checksum", "-a", "--delete", *ODD_STRINGS),
        "node_attribute": ("false", "true", "yes", "0", *ODD_STRINGS),
        "peer_root": ("", str(tree), *odd_paths),
    }


def _baseline(agent: str, slot: Slot, tree: Path, rng: random.Random) -> dict[str, str]:
    """Sound parameters to mutate: a good configuration, or one Bacula's parser rejects."""
    f, fakes = slot.files, slot.fakes
    if agent in DAEMONS:
        bad = "dir-no-equals.conf" if agent == "bacula-dir" else "sd-no-equals.conf"
        config = rng.choice((slot.good[agent], str(f / bad)))
        base = {"binary": str(fakes / "parser" / agent), "config": config}
        if agent == "bacula-dir":
            base["bconsole"] = str(fakes / "parser" / "bconsole")
            base["bconsole_config"] = slot.good["console"]
        return base
    if agent == "bacula-catalog":
        client = str(fakes / "parser" / "psql")
        return rng.choice(
            (
                {"config": slot.good["bacula-dir"], "client": client},
                {"config": str(f / "dir-catalog.conf"), "client": client},
                # Everything explicit: the director's file is not read, the password file is.
                {
                    "db_name": "bacula",
                    "db_user": "bacula",
                    "password_file": str(f / "password"),
                    "client": client,
                },
            )
        )
    return {
        "paths": str(tree),
        "targets": os.uname().nodename,
        "node_attribute": "false",
        "config_check": "parse",
    }


# Network names stay on loopback or in /etc/hosts: an unknown name would be asked of the DNS
# server (this machine may reach no other address), and so would an odd string taken for one.
HOSTS = ("127.0.0.1", "::1", "127.0.0.9", "localhost", "", "[::1]", "127.0.0.1:9", "::", "0")
# Nothing listens on port 22 there: ssh is refused at once.
LOOPBACK_PEER = "127.0.0.9"
NO_ODD_STRINGS = frozenset({"address", "db_address", "targets"})

# Parameters whose empty value means a real default (a real daemon, /etc/bacula, a real
# database client): the fuzzer never leaves them empty.
NEVER_EMPTY = frozenset({"binary", "bconsole", "client", "paths", "config"})


def _pick(rng: random.Random, values: tuple[str, ...], sound: int, odd: float) -> str:
    """One of the first `sound` values, or with probability `odd` any of them."""
    return rng.choice(values) if rng.random() < odd else rng.choice(values[:sound])


def make_trial(seed: int, agent: str, number: int, slot: Slot, tree: Path) -> Trial:
    rng = random.Random(f"{seed}:{agent}:{number}")
    actions = [*COMMON_ACTIONS, *OWN_ACTIONS.get(agent, ())]
    action = rng.choice(ODD_ACTIONS if rng.random() < 0.08 else actions)
    pools = _param_pools(agent, slot, tree)
    params = _baseline(agent, slot, tree, rng)
    standin = None
    if agent in DAEMONS and rng.random() < 0.3:
        params["binary"] = str(slot.fakes / "run" / agent)
        standin = (params["binary"], params["config"], rng.random() < 0.3)
    elif agent in DAEMONS and slot.launchable and rng.random() < 0.2:
        params["binary"] = str(slot.fakes / rng.choice(slot.launchable) / agent)
    for name in rng.sample(sorted(pools), k=min(len(pools), rng.choice((0, 1, 1, 2, 3, 5)))):
        odd = rng.random() < 0.2 and name not in NO_ODD_STRINGS
        pool = ODD_STRINGS + ODD_NUMBERS if odd else pools[name]
        value = rng.choice(pool)
        if value == "" and name in NEVER_EMPTY:
            continue
        params[name] = value
    if rng.random() < 0.1:
        params[rng.choice(("unknown_param", "CRM_meta_x"))] = rng.choice(ODD_STRINGS)
    if rng.random() < 0.1:
        # The resource's own secret: the runner must keep it out of every output too.
        params["password"] = f"{MARKER}-param"
    # Mostly sound environments, so that most trials get past the environment's parsing.
    env: dict[str, str] = {"OCF_RESKEY_CRM_meta_timeout": _pick(rng, TIMEOUTS, 3, 0.15)}
    if rng.random() < 0.05:
        del env["OCF_RESKEY_CRM_meta_timeout"]
    if action.startswith("monitor") or rng.random() < 0.05:
        env["OCF_RESKEY_CRM_meta_interval"] = _pick(rng, INTERVALS, 4, 0.2)
    if rng.random() < 0.5:
        env["OCF_CHECK_LEVEL"] = _pick(rng, CHECK_LEVELS, 5, 0.2)
    env["OCF_RESOURCE_INSTANCE"] = rng.choice(
        ("fuzz", "fuzz", "fuzz:0", "a/b", "..", "\u00fcn\u00ef", "x" * 300, "")
    )
    # Mostly a log file, sometimes one that cannot be written (a directory, a full device).
    odd_logs = ("<trial>", "/dev/full", "<trial>/missing/log")
    if rng.random() < 0.5:
        env["HA_LOGFILE"] = _pick(rng, ("<trial>/ha-log", *odd_logs), 1, 0.1)
    if rng.random() < 0.5:
        env["HA_DEBUGLOG"] = _pick(rng, ("<trial>/ha-debug", *odd_logs), 1, 0.1)
        env["HA_debug"] = rng.choice(("1", "0", ""))
    env["HA_RSCTMP"] = _pick(rng, ("<trial>/rsctmp", "<trial>/missing", "<trial>/a-file"), 1, 0.15)
    if rng.random() < 0.05:
        # The action as ocf-tester may pass it: in the environment, not as an argument.
        env["__OCF_ACTION"] = action
    if set(params.values()) & slot.blocking():
        env["OCF_RESKEY_CRM_meta_timeout"] = rng.choice(SHORT_TIMEOUTS)
    timeout = env.get("OCF_RESKEY_CRM_meta_timeout", "")
    ms = _milliseconds(timeout)
    if standin and standin[2] and (not timeout or (ms is not None and ms > IGNORED_TERM_TIMEOUT)):
        # A stop of a stand-in that ignores SIGTERM waits half its deadline (none given: the
        # declared 60 s) before SIGKILL, 35 s of one trial: a shorter deadline proves the same.
        env["OCF_RESKEY_CRM_meta_timeout"] = str(IGNORED_TERM_TIMEOUT)
    tree_files: tuple[tuple[str, str], ...] = ()
    if agent == "bacula-confsync":
        bad = ["dir-no-equals.conf", "dir-unterminated.conf", "empty.conf"]
        choices = [(str(slot.files / n), "bacula-dir.conf") for n in bad]
        choices.append((str(slot.files / "sd-storage.conf"), "bacula-sd.conf"))
        good = [(slot.good[d], f"{d}.conf") for d in DAEMONS]
        tree_files = tuple(rng.sample(choices + good, k=rng.choice((0, 1, 2))))
        if set(tree_files) & set(good) and params.get("config_check") == "full":
            # confsync runs the real /usr/sbin/<daemon> -t on a file the parser accepts,
            # and the director's opens the catalog: not here.
            params["config_check"] = "parse"
    state = rng.choice(JUNK_STATES) if rng.random() < 0.15 else None
    # confsync's start can succeed (nothing runs): what the other actions find after it.
    first = agent == "bacula-confsync" and rng.random() < 0.3
    return Trial(agent, number, action, params, env, tree_files, state, standin, first)


# --- running one trial -------------------------------------------------------------------------


def declared_timeouts(agent: str) -> dict[str, float]:
    """Each action's timeout from the agent's meta-data (the longest of its monitors)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "agents" / agent), "meta-data"],
        env={"PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0, f"{agent} meta-data: exit {out.returncode}: {out.stderr!r}"
    found: dict[str, float] = {}
    for action in ET.fromstring(out.stdout).iter("action"):
        seconds = float(action.get("timeout", "20s").rstrip("s"))
        name = action.get("name", "")
        found[name] = max(found.get(name, 0.0), seconds)
    return found


def _milliseconds(raw: str) -> int | None:
    """A CRM_meta_timeout of plain ASCII digits, else None ("²".isdigit() is true)."""
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _deadline(trial: Trial, declared: dict[str, float]) -> float:
    ms = _milliseconds(trial.env.get("OCF_RESKEY_CRM_meta_timeout", ""))
    if ms is not None and 0 < ms <= 3_600_000:
        return ms / 1000
    # Anything else: the agent must refuse it at once or use its declared timeout.
    return declared.get(trial.action, 20.0)


def _trial_processes(marker: bytes, session: int) -> dict[int, str]:
    """Live processes in the agent's session or naming the slot's directory (fakes, files)."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if not fields or fields[0] in (b"Z", b"X"):
            continue
        if marker in cmdline or int(fields[3]) == session:
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
    return found


def _wait_gone(marker: bytes, session: int, within: float, exclude: set[int]) -> dict[int, str]:
    """What is still there after `within` seconds (a killed child may take a moment to die)."""
    end = time.monotonic() + within

    def left() -> dict[int, str]:
        found = _trial_processes(marker, session)
        return {pid: cmd for pid, cmd in found.items() if pid not in exclude}

    found = left()
    while found and time.monotonic() < end:
        time.sleep(0.02)
        found = left()
    return found


def run_trial(
    trial: Trial,
    slot: Slot,
    declared: dict[str, float],
    executable: Path | None = None,
    slack: float = SLACK,
) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix=f"t{trial.number}-", dir=slot.base))
    (work / "rsctmp").mkdir(mode=0o700)
    (work / "a-file").write_text("not a directory\n")
    tree = slot.base / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir()
    if trial.junk_state is not None and trial.env["HA_RSCTMP"] == "<trial>/rsctmp":
        instance = trial.env.get("OCF_RESOURCE_INSTANCE", "") or "default"
        states = work / "rsctmp" / "bacula-ha"
        states.mkdir()
        name = f"{trial.agent}-{instance.replace('/', '_')}.state"
        try:
            (states / name).write_bytes(trial.junk_state)
        except OSError:
            pass  # an instance name too long for a file name: no state, then
    for source, name in trial.paths_tree:
        shutil.copy(source, tree / name)
    standin = None
    if trial.standin is not None:
        binary, config, stubborn = trial.standin
        # An ignored signal stays ignored across exec: the shell's trap makes tail deaf to TERM.
        trap = "trap '' TERM; " if stubborn else ""
        standin = subprocess.Popen(
            ["/bin/sh", "-c", f'{trap}exec "$0" -F -n 0 "$1"', binary, config],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        # This tree's library, whatever the virtualenv's editable install points at.
        "PYTHONPATH": str(ROOT / "src"),
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESOURCE_TYPE": trial.agent,
        "OCF_RESOURCE_PROVIDER": "bacula",
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "1",
    }
    env.update({k: v.replace("<trial>", str(work)) for k, v in trial.env.items()})
    env.update({f"OCF_RESKEY_{k}": v for k, v in trial.params.items()})
    allowed = min(_deadline(trial, declared), 120.0) + slack
    if trial.started_first:
        argv = [sys.executable, str(executable or ROOT / "agents" / trial.agent), "start"]
        first = {k: v for k, v in env.items() if k != "__OCF_ACTION"}
        subprocess.run(argv, env=first, cwd=work, capture_output=True, timeout=allowed + 5)
    # Output goes to files, not pipes: a child left behind holding them must not make the
    # agent look slow (it is found below, by its session or its command line).
    with open(work / "stdout", "wb") as out, open(work / "stderr", "wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                str(executable or ROOT / "agents" / trial.agent),
                *(() if "__OCF_ACTION" in trial.env else (trial.action,)),
            ],
            env=env,
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            code: int | None = proc.wait(timeout=allowed + 5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    elapsed = time.monotonic() - started
    # Still running after the action (the agent's stop must have ended it).
    standin_left = standin is not None and standin.poll() is None
    left = _wait_gone(str(slot.base).encode(), proc.pid, 2.0, {standin.pid} if standin else set())
    if standin is not None:
        standin.kill()
        standin.wait()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    logs = ""
    for name in ("ha-log", "ha-debug"):
        try:
            logs += (work / name).read_bytes().decode(errors="replace")
        except OSError:
            pass
    outcome = Outcome(
        trial,
        code,
        elapsed,
        allowed,
        (work / "stdout").read_bytes().decode(errors="replace"),
        (work / "stderr").read_bytes().decode(errors="replace"),
        logs,
        [f"{pid}: {cmd}" for pid, cmd in left.items()],
        [],
        standin_left,
        (work / "pwned").exists(),
    )
    outcome.problems = check(outcome)
    shutil.rmtree(work, ignore_errors=True)
    return outcome


def check(o: Outcome) -> list[str]:
    """Every rule of the issue a trial broke, each as a short stable name and its detail."""
    t, problems = o.trial, []
    if o.code is None:
        return [f"deadline: still running after {o.allowed + 5:.1f}s (killed)"]
    if o.code not in OCF_CODES:
        problems.append(f"exit-code: {o.code} is not an OCF exit code")
    for where, text in (("stdout", o.stdout), ("stderr", o.stderr), ("log", o.logs)):
        # The runner logs an agent's bug with its traceback on purpose: the bug is the finding.
        if "Traceback" in text and where != "log":
            problems.append(f"traceback: in {where}")
        if MARKER in text:
            line = next(ln for ln in text.splitlines() if MARKER in ln)
            problems.append(f"secret: in {where}: {line.strip()[:200]!r}")
    reasons = [ln for ln in o.stderr.split("\n") if ln.startswith(REASON_PREFIX)]
    exempt = o.code == 7 and t.action in ("monitor", "status")
    if o.code not in (0, None) and not exempt:
        if not reasons:
            problems.append(f"no-reason: exit {o.code} without an exit reason")
        else:
            reason = reasons[-1][len(REASON_PREFIX) :]
            if not reason.strip():
                problems.append(f"empty-reason: exit {o.code}")
            if len(reason) > MAX_REASON:
                problems.append(f"long-reason: {len(reason)} characters: {reason[:60]!r}...")
            if not reason.isprintable():
                problems.append(f"unprintable-reason: {reason!r}")
            if "internal error" in reason:
                problems.append(f"internal-error: {reason[:150]!r}")
    named = (t.params.get("binary"), t.params.get("config"))
    ours = t.standin is not None and t.standin[:2] == named
    if t.action == "stop" and o.code == 0 and ours and o.standin_left:
        problems.append("stop-left-running: stop returned 0, the daemon it names still runs")
    if t.action == "stop" and o.code != 0:
        reason = reasons[-1] if reasons else ""
        problems.append(f"stop-failed: exit {o.code} with nothing running: {reason!r}")
    if t.action == "meta-data" and o.code != 0:
        problems.append(f"meta-data: exit {o.code}")
    if o.elapsed > o.allowed:
        problems.append(f"deadline: took {o.elapsed:.1f}s, allowed {o.allowed:.1f}s")
    interval = t.env.get("OCF_RESKEY_CRM_meta_interval", "")
    recurring = t.action == "monitor" and interval.isascii() and interval.isdigit()
    readable_log = t.env.get("HA_LOGFILE") in (None, "<trial>/ha-log")
    failing = recurring and int(interval) > 0 and o.code not in (0, 7, 190, 191, None)
    # Admins and log monitors look for errors: a failing recurring monitor is one.
    if failing and readable_log and "ERROR:" not in o.stderr + o.logs:
        problems.append(f"quiet-monitor-failure: exit {o.code} not logged as an error")
    if o.injected:
        problems.append("injection: a parameter ran as a shell command ($(touch pwned))")
    if o.leftovers:
        problems.append(f"leftover: {'; '.join(o.leftovers)}")
    return problems


def _short(values: dict[str, str]) -> str:
    """The mapping's repr, with long values cut (a 3000-character value tells no more)."""
    cut = {k: v if len(v) <= 200 else f"{v[:20]}...({len(v)} chars)" for k, v in values.items()}
    return repr(cut)


def describe(o: Outcome, seed: int) -> str:
    t = o.trial
    lines = [
        f"seed {seed} agent {t.agent} trial {t.number} action {t.action!r}: "
        f"exit {o.code} in {o.elapsed:.1f}s",
        f"  params: {_short(t.params)}",
        f"  env: {_short(t.env)}",
    ]
    if t.paths_tree:
        lines.append(f"  confsync tree: {t.paths_tree!r}")
    if t.standin:
        deaf = " (ignoring SIGTERM)" if t.standin[2] else ""
        lines.append(f"  running before: {t.standin[0]} -F -n 0 {t.standin[1]}{deaf}")
    if t.junk_state is not None:
        lines.append(f"  state file before: {t.junk_state!r}")
    if t.started_first:
        lines.append("  after: start, with the same input")
    lines += [f"  problem: {p}" for p in o.problems]
    tail = o.stderr.strip().splitlines()[-3:]
    lines += [f"  stderr: {ln[:200]}" for ln in tail]
    return "\n".join(lines)


# --- the test ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[queue.Queue[Slot]]:
    found: queue.Queue[Slot] = queue.Queue()
    for n in range(WORKERS):
        base = tmp_path_factory.mktemp(f"fuzz-slot{n}")
        base.chmod(0o755)
        found.put(Slot(base))
    yield found


@pytest.mark.parametrize("agent", AGENTS)
def test_fuzz_agent(agent: str, slots: queue.Queue[Slot], request: pytest.FixtureRequest) -> None:
    """The fast tier's share of trials."""
    seed = request.config.getoption("--fuzz-seed")
    trials = request.config.getoption("--fuzz-trials") or DEFAULT_TRIALS
    fuzz(agent, DEFAULT_SEED if seed is None else seed, trials, slots)


@pytest.mark.slow
@pytest.mark.parametrize("agent", AGENTS)
def test_fuzz_agent_more(
    agent: str, slots: queue.Queue[Slot], request: pytest.FixtureRequest
) -> None:
    """More trials, other inputs (the next seed), in the full run only."""
    seed = request.config.getoption("--fuzz-seed")
    trials = request.config.getoption("--fuzz-trials") or MORE_TRIALS
    fuzz(agent, (DEFAULT_SEED if seed is None else seed) + 1, trials, slots)


def fuzz(agent: str, seed: int, trials: int, slots: queue.Queue[Slot]) -> None:
    declared = declared_timeouts(agent)

    def one(number: int) -> Outcome:
        slot = slots.get()
        try:
            trial = make_trial(seed, agent, number, slot, slot.base / "tree")
            return run_trial(trial, slot, declared)
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(one, range(trials)))
    failed = [o for o in outcomes if o.problems]
    if not failed:
        return
    # Grouped by broken rule and action, so that one fix shows as one group gone.
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in failed:
        for rule in {p.split(":", 1)[0] for p in o.problems}:
            groups.setdefault((rule, o.trial.action), []).append(o)
    summary = [
        f"{len(failed)} of {trials} trials of {agent} broke a rule (seed {seed}; rerun with "
        f"`pytest 'tests/test_fuzz_agents.py::test_fuzz_agent[{agent}]' --fuzz-seed {seed} "
        f"--fuzz-trials {trials}`):"
    ]
    for (rule, action), members in sorted(groups.items()):
        summary.append(f"  {rule} on {action!r}: {len(members)} trials")
    shown: set[int] = set()
    for (rule, action), members in sorted(groups.items()):
        first = members[0]
        summary.append(f"\n== {rule} on {action!r} (first of {len(members)}):")
        if first.trial.number in shown:
            summary.append(f"trial {first.trial.number}, above")
            continue
        shown.add(first.trial.number)
        summary.append(describe(first, seed))
    pytest.fail("\n".join(summary), pytrace=False)


def test_fake_tools_quote_the_secret_like_bacula(tmp_path: Path) -> None:
    """The fixtures are what the fuzzer claims: Bacula's parser quotes the marker secret."""
    slot = Slot(tmp_path)
    conf = slot.files / "dir-no-equals.conf"
    for mode in ("parser", "echo"):
        out = subprocess.run(
            [str(slot.fakes / mode / "bacula-dir"), "-t", "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 1
        assert f"expected an equals, got: {MARKER}-a" in out.stdout
    daemon = subprocess.run(
        [str(slot.fakes / "parser" / "bacula-dir"), "-c", str(conf)],
        capture_output=True,
        timeout=30,
    )
    assert daemon.returncode == 1


def test_trials_are_reproducible(tmp_path: Path) -> None:
    slot = Slot(tmp_path)
    first = [make_trial(7, "bacula-dir", n, slot, tmp_path / "tree") for n in range(20)]
    again = [make_trial(7, "bacula-dir", n, slot, tmp_path / "tree") for n in range(20)]
    assert first == again
    assert len({(t.action, repr(t.params), repr(t.env)) for t in first}) > 10


# An agent that breaks every rule, one per action: each rule must catch its breach.
_MISBEHAVING = f"""
import os, subprocess, sys, time
action = sys.argv[1]
if action == "stop" and os.environ.get("QUIET_STOP"):  # success, without stopping anything
    raise SystemExit(0)
if action == "monitor" and os.environ.get("QUIET_MONITOR"):  # failing, logged as info
    sys.stderr.write("agent: INFO: monitor: ERR_GENERIC: wedged\\nocf-exit-reason:wedged\\n")
    raise SystemExit(1)
if action == "start":  # a secret, and no exit reason
    sys.stderr.write("Config error: expected an equals, got: {MARKER}-x\\n")
    raise SystemExit(1)
if action == "stop":  # a failed stop, with a control character in its reason
    sys.stderr.write("ocf-exit-reason:bad\\x07reason\\n")
    raise SystemExit(1)
if action == "monitor":  # a child left behind
    subprocess.Popen(["tail", "-f", "-n", "0", "/dev/null"], start_new_session=False)
    raise SystemExit(0)
if action == "validate-all":  # past its deadline
    time.sleep(1.0)
    raise SystemExit(0)
if action == "reload-agent":  # a value run by a shell
    os.system("touch pwned")
    raise SystemExit(0)
if action == "reload":  # not an OCF exit code
    raise SystemExit(42)
if action == "meta-data":  # a traceback
    raise RuntimeError("boom")
"""
_BREACHES = {
    "start": {"secret", "no-reason"},
    "stop": {"stop-failed", "unprintable-reason"},
    "monitor": {"leftover"},
    "validate-all": {"deadline"},
    "reload": {"exit-code", "no-reason"},
    "reload-agent": {"injection"},
    "meta-data": {"meta-data", "traceback", "no-reason"},
}


@pytest.mark.parametrize("action", sorted(_BREACHES))
def test_each_rule_catches_its_breach(action: str, tmp_path: Path) -> None:
    slot = Slot(tmp_path)
    agent = tmp_path / "misbehaving"
    agent.write_text(_MISBEHAVING)
    env = {"OCF_RESKEY_CRM_meta_timeout": "100", "HA_RSCTMP": "<trial>/rsctmp"}
    trial = Trial("bacula-fd", 0, action, {}, env, ())
    outcome = run_trial(trial, slot, {}, executable=agent, slack=0.5)
    assert {p.split(":", 1)[0] for p in outcome.problems} == _BREACHES[action], outcome.problems


def test_a_stop_that_leaves_the_daemon_running_is_caught(tmp_path: Path) -> None:
    slot = Slot(tmp_path)
    agent = tmp_path / "misbehaving"
    agent.write_text(_MISBEHAVING)
    binary, config = str(slot.fakes / "run" / "bacula-fd"), slot.good["bacula-fd"]
    env = {"HA_RSCTMP": "<trial>/rsctmp", "QUIET_STOP": "1"}
    params = {"binary": binary, "config": config}
    trial = Trial("bacula-fd", 0, "stop", params, env, (), None, (binary, config, False))
    outcome = run_trial(trial, slot, {}, executable=agent)
    assert [p.split(":", 1)[0] for p in outcome.problems] == ["stop-left-running"]
    # The real agent takes the stand-in for its daemon (a probe finds it running) and stops it.
    env = {"HA_RSCTMP": "<trial>/rsctmp"}
    probe = Trial("bacula-fd", 0, "monitor", params, env, (), None, (binary, config, False))
    assert run_trial(probe, slot, {"monitor": 20.0}).code == 0
    stop = Trial("bacula-fd", 0, "stop", params, env, (), None, (binary, config, False))
    assert run_trial(stop, slot, {"stop": 60.0}).problems == []


def test_a_failing_recurring_monitor_logged_as_info_is_caught(tmp_path: Path) -> None:
    slot = Slot(tmp_path)
    agent = tmp_path / "misbehaving"
    agent.write_text(_MISBEHAVING)
    env = {
        "HA_RSCTMP": "<trial>/rsctmp",
        "OCF_RESKEY_CRM_meta_interval": "10000",
        "QUIET_MONITOR": "1",
    }
    outcome = run_trial(Trial("bacula-fd", 0, "monitor", {}, env, ()), slot, {}, executable=agent)
    assert [p.split(":", 1)[0] for p in outcome.problems] == ["quiet-monitor-failure"]


@pytest.mark.parametrize("kind", ["daemon", "stubborn"])
def test_start_of_a_daemon_that_never_answers_ends_in_time(kind: str, tmp_path: Path) -> None:
    """The start waits for an answer until its deadline, then ends the daemon: all inside it."""
    slot = Slot(tmp_path)
    if kind not in slot.launchable:
        pytest.skip("no C compiler for tests/fake_bacula/standin.c")
    params = {"binary": str(slot.fakes / kind / "bacula-fd"), "config": slot.good["bacula-fd"]}
    env = {"HA_RSCTMP": "<trial>/rsctmp", "OCF_RESKEY_CRM_meta_timeout": "2000"}
    outcome = run_trial(Trial("bacula-fd", 0, "start", params, env, ()), slot, {})
    assert outcome.code == 1, outcome.stderr
    assert outcome.problems == []


def test_a_start_with_no_time_to_wait_ends_the_daemon_its_launcher_forks(tmp_path: Path) -> None:
    """With 1.5 s, the start gives up before the launcher has forked and exited: the scan then
    finds the launcher, and ending only it left the forked daemon running (CI, seed 20261131).
    The start must end both, whatever the moment it gives up."""
    slot = Slot(tmp_path)
    if "stubborn" not in slot.launchable:
        pytest.skip("no C compiler for tests/fake_bacula/standin.c")
    env = {"HA_RSCTMP": "<trial>/rsctmp", "OCF_RESKEY_CRM_meta_timeout": "1500"}
    for agent in ("bacula-sd", "bacula-fd"):
        params = {"binary": str(slot.fakes / "stubborn" / agent), "config": slot.good[agent]}
        for number in range(8):
            outcome = run_trial(Trial(agent, number, "start", params, env, ()), slot, {})
            assert outcome.code == 1, outcome.stderr
            assert outcome.problems == [], describe(outcome, 0)


@pytest.mark.parametrize("agent", ["bacula-dir", "bacula-sd", "bacula-fd", "bacula-catalog"])
def test_a_configuration_holding_a_nul_byte_is_refused_with_6(agent: str, tmp_path: Path) -> None:
    """A NUL byte in the file or in an @include's name: a clear reason and 6 (the file can
    never work as written), from validate-all and start alike, never an internal error."""
    slot = Slot(tmp_path)
    env = {"HA_RSCTMP": "<trial>/rsctmp"}
    for name, line in (("garbage.conf", 1), ("garbage-include.conf", 5)):
        config = str(slot.files / name)
        if agent == "bacula-catalog":
            params = {"config": config, "client": str(slot.fakes / "parser" / "psql")}
        else:
            binary = str(slot.fakes / "parser" / agent)
            params = {"binary": binary, "config": config, "user": "root", "group": "root"}
        for action in ("validate-all", "start"):
            trial = Trial(agent, 0, action, params, env, ())
            outcome = run_trial(trial, slot, declared_timeouts(agent))
            assert outcome.problems == [], describe(outcome, 0)
            assert outcome.code == 6, describe(outcome, 0)
            reason = outcome.stderr.strip().splitlines()[-1]
            expected = f"a NUL byte, not a Bacula configuration: {config} line {line}"
            assert reason == REASON_PREFIX + expected[:128], describe(outcome, 0)
