"""The lifecycle all Bacula daemons share: test, start until answering, escalating stop, checks."""

# Over 500 lines on purpose: the one lifecycle three agents share (test, start until
# answering, escalating stop, checks by depth, reload); each phase hands its state to the next.

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

from ..ocf import params as P
from ..ocf.agent import Agent
from ..ocf.deadline import SAFETY_MARGIN, Deadline
from ..ocf.env import Environment
from ..ocf.errors import (
    Degraded,
    GenericError,
    NotConfiguredError,
    NotInstalledError,
    NotRunningError,
    OCFError,
)
from ..ocf.log import Logger
from ..ocf.metadata import Action, Parameter
from ..ocf.process import Identity, is_alive, read_pidfile, terminate, wait_until
from ..ocf.state import StateFile
from ..ocf.status import OCFStatus
from .config import Resources, json_tool_for, load
from .files import config_sources, refuse_nul, signature
from .layout import DEBIAN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Any, ClassVar, TypeVar

    # An agent's parsed parameters: DaemonParams, or a subclass with the agent's own, typed.
    PT = TypeVar("PT", bound="DaemonParams")
else:
    from ..ocf.record import dataclass

    PT = object  # typing costs an agent a tenth of its start (see ocf/agent.py)


# Share of the stop deadline given to SIGTERM before SIGKILL: Bacula daemons flush and
# close volumes on TERM, which is worth waiting for, but the stop must finish in time.
_TERM_SHARE = 0.6


@dataclass(frozen=True)
class Kind:
    """What distinguishes one Bacula daemon from another."""

    agent: str  # bacula-dir
    json_tool: str  # bdirjson
    resource: str  # Director
    port_key: str  # DirPort
    address_key: str  # DirAddress
    default_port: int
    title: str  # director

    @property
    def binary(self) -> str:
        """The default `binary`: Debian's (/usr/sbin/bacula-dir)."""
        return DEBIAN.tool(self.agent)

    @property
    def config(self) -> str:
        """The default `config`: Debian's (/etc/bacula/bacula-dir.conf)."""
        return DEBIAN.conf(f"{self.agent}.conf")


@dataclass(frozen=True)
class DaemonParams:
    """The parameters every daemon agent takes, parsed."""

    binary: str
    config: str
    user: str
    group: str
    address: str | None
    port: int | None
    check_timeout: float
    extra: Mapping[str, str]  # every parameter, raw (an agent parses its own in configure)


@dataclass(frozen=True)
class Daemon:
    """Facts about one configured daemon, from its configuration (never its passwords)."""

    name: str
    address: str  # where to reach it for checks
    port: int
    pid_file: str


def common_parameters(kind: Kind) -> tuple[Parameter, ...]:
    """The parameters shared by the director, storage and file daemon agents."""
    return (
        Parameter(
            "config",
            f"{kind.title} configuration file",
            f"Absolute path of the {kind.title}'s configuration file. It identifies the instance: "
            "two resources must not share it.",
            default=kind.config,
            unique_group="config",
            absolute=True,
        ),
        Parameter(
            "binary",
            f"{kind.title} binary",
            f"Absolute path of the {kind.agent} executable.",
            default=kind.binary,
            absolute=True,
        ),
        Parameter(
            "user",
            "user to run as",
            "User the daemon drops privileges to (-u).",
            default="bacula" if kind.agent != "bacula-fd" else "root",
        ),
        Parameter(
            "group",
            "group to run as",
            "Group the daemon drops privileges to (-g).",
            default="bacula" if kind.agent != "bacula-fd" else "root",
        ),
        Parameter(
            "address",
            "address to check",
            f"Address the agent connects to for its checks. Empty: {kind.address_key} from the "
            "configuration (loopback when the daemon listens on every address).",
            default="",
        ),
        Parameter(
            "port",
            "port to check",
            f"TCP port the agent connects to for its checks. Empty: {kind.port_key} from the "
            f"configuration ({kind.default_port} when absent).",
            content_type="integer",
            default="",
            low=1,
            high=P.PORT_HIGH,
        ),
        Parameter(
            "check_timeout",
            "bound of a protocol check",
            "Seconds the daemon may take to answer a check at depth 10 and above; a daemon "
            "that does not answer in time (wedged, stopped) fails the monitor.",
            content_type="integer",
            default="5",
            low=1,
            high=3600,
        ),
    )


def common_actions(deep_timeout: int = 30) -> tuple[Action, ...]:
    return (
        Action("start", timeout=60),
        Action("stop", timeout=60),
        Action("monitor", timeout=20, interval=10, depth=0),
        Action("monitor", timeout=20, interval=31, depth=10),
        Action("monitor", timeout=deep_timeout, interval=61, depth=20),
        Action("validate-all", timeout=30),
        Action("meta-data", timeout=5),
    )


class DaemonAgent(Agent[PT]):
    """start / stop / monitor / validate-all of one Bacula daemon; subclasses add what is theirs."""

    kind: ClassVar[Kind]
    depths: ClassVar[tuple[int, ...]] = (0, 10, 20)
    # Resource types (besides the Directors' names and passwords) that start records for the
    # monitors, so that they need not run Bacula's parser while the files are unchanged.
    recorded: ClassVar[tuple[str, ...]] = ()
    # At most this long for SIGTERM before SIGKILL, when before_stop found that a clean
    # shutdown cannot happen (None: the usual share of the stop timeout).
    term_grace: float | None = None

    # -- hooks for the agents ------------------------------------------------------------
    def answer(self, p: PT, res: Resources, daemon: Daemon, timeout: float, log: Logger) -> None:
        """Prove the daemon itself answers (depth 10). Raise GenericError when it does not."""
        raise NotImplementedError

    def deep_check(
        self, p: PT, res: Resources, daemon: Daemon, env: Environment, log: Logger
    ) -> OCFStatus | None:
        """The depth-20 check; default: nothing deeper than depth 10."""
        return None

    def before_stop(
        self, p: PT, res: Resources, daemon: Daemon, env: Environment, log: Logger
    ) -> None:
        """Called with the daemon running, before it is stopped (e.g. to report jobs)."""

    def start_facts(self, p: PT, res: Resources) -> dict[str, Any]:
        """What a daemon found at start that later checks compare with (kept in the record
        whatever happens to the files since). Default: nothing."""
        return {}

    def recorded_facts(self, env: Environment) -> dict[str, Any]:
        """What `start_facts` returned when this resource started here ({} if unknown)."""
        facts = (StateFile(env, self.kind.agent).read() or {}).get("facts")
        return facts if isinstance(facts, dict) else {}

    def before_test(
        self, p: PT, read: Resources | OCFError | None, deadline: Deadline, log: Logger
    ) -> None:
        """Fast checks before `-t` (which may wait long for a server that is down). `read`:
        this action's reading of the configuration, why it failed, or None (not read)."""

    def before_launch(self, p: PT, res: Resources, env: Environment, log: Logger) -> None:
        """Called after the configuration test, right before the daemon is launched."""

    def after_start(
        self, p: PT, res: Resources, daemon: Daemon, env: Environment, log: Logger
    ) -> None:
        """Called once the daemon answers (also when start finds it answering already)."""

    # -- OCF actions -----------------------------------------------------------------------
    def configure(self, env: Environment, log: Logger) -> PT:
        return self.own_params(self.common_params(env), env)

    def own_params(self, common: DaemonParams, env: Environment) -> PT:
        """The agent's parameters: the common ones plus its own, parsed once per action.
        Default: the common ones (an agent with none of its own is a DaemonAgent[DaemonParams])."""
        return common  # type: ignore[return-value]

    def common_params(self, env: Environment) -> DaemonParams:
        # Every value was checked against the meta-data's rules already (the runner's
        # ocf.params.check_all): here they are only read.
        k, meta = self.kind, self.metadata
        return DaemonParams(
            binary=env.param("binary", k.binary),
            config=env.param("config", k.config),
            user=env.param("user", meta.parameter("user").default or "bacula"),
            group=env.param("group", meta.parameter("group").default or "bacula"),
            address=env.param("address") or None,
            port=P.integer_of(meta.parameter("port"), env.param("port")),
            check_timeout=float(
                P.integer_of(meta.parameter("check_timeout"), env.param("check_timeout")) or 5
            ),
            extra=env.params,
        )

    def validate(self, p: PT, env: Environment, log: Logger) -> None:
        if not os.access(p.binary, os.X_OK) or not os.path.isfile(p.binary):
            raise NotInstalledError(f"{p.binary} is not installed")
        if not os.path.isfile(p.config):
            # Perhaps on storage mounted elsewhere, or not yet synced: not this node's business
            # to call the configuration wrong.
            raise NotInstalledError(f"configuration {p.config} does not exist on this node")
        _check_account(p.user, p.group)

    def validate_all(self, p: PT, env: Environment, log: Logger) -> OCFStatus | None:
        self.test_config(p, env.deadline, log, None)
        return None

    def start(self, p: PT, env: Environment, log: Logger) -> OCFStatus | None:
        answering = self._answering(p, env, log) if self.find_pid(p, env) is not None else None
        if answering is not None:
            log.info(f"{self.kind.title} already running")
            self._remember(p, env, answering)
            self.after_start(p, *self.resources(p, env), env, log)
            return None
        res, daemon = self.read_and_test(p, env, log)
        self._clear_stale(daemon, p)
        self.before_launch(p, res, env, log)
        launcher = self._launch(p, env, log)
        log.info(f"started {self.kind.title} {daemon.name}; waiting for it to answer")
        # Kept back from the wait so that a daemon that never answers is still terminated
        # inside the start's own timeout.
        reserve = min(5.0, max(1.0, env.deadline.remaining() * 0.2))
        waiting = Deadline(env.deadline.at - reserve)

        last_error = ""

        def ready() -> bool:
            nonlocal last_error
            if self.find_pid(p, env, daemon) is None:
                code = _exit_code(launcher)
                if code:
                    raise GenericError(f"{self.kind.agent} failed to start: exit {code}")
                return False
            try:
                self.answer(p, res, daemon, waiting.bound(min(p.check_timeout, 2.0)), log)
            except GenericError as exc:
                last_error = exc.reason
                return False
            return True

        if wait_until(ready, waiting):
            self._remember(p, env, (res, daemon))
            self.after_start(p, res, daemon, env, log)
            return None
        self._end_launched(launcher, p, env, grace=reserve / 2)
        raise GenericError(
            f"{self.kind.title} did not answer within the start timeout"
            + (f": {last_error}" if last_error else "")
        )

    def stop(self, p: PT, env: Environment, log: Logger) -> OCFStatus | None:
        """Stop what start recorded, else what the process scan finds. A failed stop gets the
        node fenced, so nothing here depends on Bacula's parser, the catalog or the files:
        the daemon runs with what it loaded at start, which is what the record holds."""
        recorded = self._recorded(p, env, current=False)
        daemon = recorded[1] if recorded else None
        pid = self.find_pid(p, env, daemon)
        if pid is None:
            self._forget(env, daemon)
            return None
        if recorded is None:
            # Started outside the cluster (or the record is lost): the jobs report is worth a
            # short, bounded try at the parser, and nothing more.
            try:
                recorded = self.read(p, env, env.deadline.sooner(env.deadline.bound(3.0) * 0.3))
            except OCFError as exc:
                log.warning(f"cannot read the configuration ({exc.reason}); stopping by process")
        if recorded is not None:
            try:
                self.before_stop(p, recorded[0], recorded[1], env, log)
            except Exception as exc:  # a report that fails must not fail the stop
                log.warning(f"before stopping: {getattr(exc, 'reason', type(exc).__name__)}")
        self._kill(pid, env, log)
        self._forget(env, daemon)
        return None

    def stop_unvalidated(
        self, p: PT, env: Environment, log: Logger, reason: str
    ) -> OCFStatus | None:
        # The binary and configuration are known: what runs with them is ours to stop, whatever
        # else is wrong (a missing account, a bad job_wait, the file gone from this node).
        return self.stop(p, env, log)

    def stop_unconfigured(self, env: Environment, log: Logger, reason: str) -> OCFStatus | None:
        """What start recorded, and what the binary and configuration parameters name (when
        they are at least absolute paths), whatever else is wrong with the parameters."""
        state = StateFile(env, self.kind.agent).read() or {}
        pid, exe, conf = state.get("pid"), state.get("binary"), state.get("config")
        known = isinstance(pid, int) and isinstance(exe, str) and isinstance(conf, str)
        if known and Identity(str(exe), str(conf)).matches(int(str(pid))):
            self._kill(int(str(pid)), env, log)
        binary = env.param("binary", self.kind.binary)
        config = env.param("config", self.kind.config)
        if all(p.startswith("/") and p.isprintable() for p in (binary, config)):
            for found in _processes(Identity(binary, config)):
                self._kill(found, env, log)
        StateFile(env, self.kind.agent).remove()
        return None

    def monitor(self, p: PT, env: Environment, log: Logger) -> OCFStatus | None:
        recorded = self._recorded(p, env)
        pid = self.find_pid(p, env, recorded[1] if recorded else None)
        if pid is None:
            raise NotRunningError(f"{self.kind.title} is not running")
        if env.depth < 10:
            return None
        try:
            res, daemon = self.resources(p, env, recorded)
        except OCFError as exc:
            # The daemon runs with the configuration it loaded; a file broken or removed
            # since (an admin mid-edit) must not get it stopped, let alone cluster-wide.
            raise Degraded(
                f"running, but its configuration on disk is unusable: {exc.reason}"
            ) from None
        self.answer(p, res, daemon, env.deadline.bound(p.check_timeout), log)
        if env.depth < 20:
            return None
        return self.deep_check(p, res, daemon, env, log)

    # -- shared machinery ------------------------------------------------------------------
    def identity(self, p: PT) -> Identity:
        return Identity(p.binary, p.config)

    def find_pid(self, p: PT, env: Environment, daemon: Daemon | None = None) -> int | None:
        """The pid of this daemon: from its pid file when that is ours, else by scanning /proc.

        The pid file alone is not trusted: after a kill -9 or a reboot it may name a recycled
        pid. The scan finds a daemon started outside the cluster or whose pid file is gone.
        """
        ident = self.identity(p)
        if daemon is not None:
            pid = read_pidfile(daemon.pid_file)
            if pid is not None and ident.matches(pid) and is_alive(pid):
                return pid
        return next(iter(_processes(ident)), None)

    def read(
        self, p: PT, env: Environment, deadline: Deadline | None = None
    ) -> tuple[Resources, Daemon]:
        """Parse the configuration (with Bacula's parser) and extract what the checks need."""
        tool = json_tool_for(p.binary, self.kind.json_tool)
        res = load(tool, p.config, deadline or env.deadline)
        own = res.first(self.kind.resource)
        raw_port = own.get(self.kind.port_key) or self.kind.default_port
        port = raw_port if isinstance(raw_port, int) else self.kind.default_port
        listen = str(own.get(self.kind.address_key) or "")
        address = p.address or _reachable(listen)
        pid_dir = str(own.get("PidDirectory") or "/run/bacula")
        daemon = Daemon(
            name=str(own.get("Name", "")),
            address=address,
            port=p.port or port,
            pid_file=os.path.join(pid_dir, f"{self.kind.agent}.{port}.pid"),
        )
        return res, daemon

    def read_and_test(self, p: PT, env: Environment, log: Logger) -> tuple[Resources, Daemon]:
        """This action's one reading of the configuration (Bacula's parser), then `-t`; the
        reading, handed to before_test and returned. A reading that failed is raised after
        `-t`, whose words about a file Bacula rejects come first."""
        refuse_nul(p.config)
        try:
            read = self.read(p, env)
        except OCFError as exc:
            self.test_config(p, env.deadline, log, exc)
            raise
        self.test_config(p, env.deadline, log, read[0])
        return read

    def test_config(
        self, p: PT, deadline: Deadline, log: Logger, read: Resources | OCFError | None
    ) -> None:
        """`<daemon> -t`: a file Bacula rejects is 6, anything that may pass later is not
        (an unreachable catalog 1, a directory on storage mounted elsewhere 5). `read`: what
        this action read of the configuration already (see before_test)."""
        from .configtest import test

        refuse_nul(p.config)
        self.before_test(p, read, deadline, log)
        argv = [p.binary, "-t", "-c", p.config, "-u", p.user, "-g", p.group]
        verdict = test(argv, p.config, deadline)
        if not verdict.accepted:
            raise verdict.error(p.config)

    def _answering(self, p: PT, env: Environment, log: Logger) -> tuple[Resources, Daemon] | None:
        """The configuration read, if the daemon running with it answers; else None."""
        try:
            res, daemon = self.read(p, env)
            self.answer(p, res, daemon, env.deadline.bound(p.check_timeout), log)
        except GenericError:
            return None
        return res, daemon

    def _launch(self, p: PT, env: Environment, log: Logger) -> int:
        """Start the daemon (it forks away); the launcher's pid, not waited for here."""
        from ..ocf.command import BASE_ENV, spawn

        argv = [p.binary, "-c", p.config, "-u", p.user, "-g", p.group]
        log.debug("running: " + " ".join(argv))
        # Output goes nowhere: Bacula logs through its own Messages resource.
        null = os.open(os.devnull, os.O_RDWR)
        try:
            return spawn(argv, BASE_ENV, null, null, null)
        except OSError as exc:
            raise NotInstalledError(f"cannot run {p.binary}: {exc.strerror}") from None
        finally:
            os.close(null)

    def _end_launched(self, launcher: int, p: PT, env: Environment, *, grace: float) -> None:
        """End everything a failed start launched: its launcher, then the daemon it forked.

        Ending whatever a scan found while the launcher still ran could end only the launcher
        and miss the daemon it forked the next moment (the fuzz caught one left running, under
        load). A dead launcher forks nothing more, so the scan after it finds them all."""
        # Bacula's launcher forks and exits at once. The margin the action keeps back would
        # leave no time for that wait when the start gave up late, hence a deadline of its own.
        # Only an unreaped child is signalled: its pid cannot have gone to another process.
        waited = Deadline.after(SAFETY_MARGIN + min(grace, env.deadline.bound()))
        if not wait_until(lambda: not _unreaped_running(launcher), waited):
            terminate(launcher, env.deadline, grace=grace)
            _exit_code(launcher)  # reaped
        for pid in _processes(self.identity(p)):
            terminate(pid, env.deadline, grace=grace)

    def _kill(self, pid: int, env: Environment, log: Logger) -> None:
        grace = max(1.0, (env.deadline.remaining() - 1.0) * _TERM_SHARE)
        if self.term_grace is not None:
            grace = min(grace, self.term_grace)
        if not terminate(pid, env.deadline, grace=grace, log=log.warning):
            raise GenericError(f"{self.kind.title} (pid {pid}) survived SIGKILL")
        log.info(f"{self.kind.title} (pid {pid}) stopped")

    def _clear_stale(self, daemon: Daemon, p: PT) -> None:
        pid = read_pidfile(daemon.pid_file)
        if pid is not None and not (self.identity(p).matches(pid) and is_alive(pid)):
            # Bacula refuses to start over a pid file naming a live process, which after
            # a kill -9 may be any recycled pid.
            try:
                os.unlink(daemon.pid_file)
            except OSError:
                pass

    def _remember(
        self, p: PT, env: Environment, read: tuple[Resources, Daemon] | None = None
    ) -> None:
        """Record the pid and what the checks need, so monitors need not parse the files.

        The record holds the Name and Password of the Director resources (what a depth-10
        check authenticates with): it lives in HA_RSCTMP, a root-only tmpfs, mode 0600, like
        the configuration it comes from, and is dropped as soon as any source file changes.
        """
        if read is None:
            try:
                read = self.read(p, env)
            except GenericError:
                return
        res, daemon = read
        sources = config_sources(p.config)
        pid = self.find_pid(p, env, daemon)
        StateFile(env, self.kind.agent).write(
            {
                "pid": pid,
                "binary": p.binary,
                "config": p.config,
                "sources": signature(sources) if sources else None,
                "pid_file": daemon.pid_file,
                "name": daemon.name,
                "address": daemon.address,
                "port": daemon.port,
                "directors": [
                    {
                        "Name": r.get("Name", ""),
                        "Password": r.get("Password", ""),
                        "TlsRequire": bool(r.get("TlsRequire", False)),
                    }
                    for r in res.all("Director")
                ],
                "resources": {kind: list(res.all(kind)) for kind in self.recorded},
                "facts": self.start_facts(p, res),
            }
        )

    def resources(
        self,
        p: PT,
        env: Environment,
        recorded: tuple[Resources, Daemon] | None = None,
    ) -> tuple[Resources, Daemon]:
        """What the checks need: from the record while the files are unchanged, else parsed."""
        return recorded or self._recorded(p, env) or self.read(p, env)

    def _recorded(
        self, p: PT, env: Environment, current: bool = True
    ) -> tuple[Resources, Daemon] | None:
        """What start recorded (facts, Directors, `recorded` types), read once; with `current`,
        only while no source file changed since."""
        state = self._state(p, env, current)
        if state is None:
            return None
        try:
            daemon = Daemon(
                state["name"],
                p.address or state["address"],
                p.port or state["port"],
                state["pid_file"],
            )
            by_type = {k: tuple(v) for k, v in (state.get("resources") or {}).items()}
            by_type["Director"] = tuple(state["directors"])
        except (KeyError, TypeError, AttributeError):
            return None
        return Resources(p.config, by_type), daemon

    def _state(self, p: PT, env: Environment, current: bool = True) -> dict[str, Any] | None:
        state = StateFile(env, self.kind.agent).read()
        if not state or state.get("config") != p.config or state.get("binary") != p.binary:
            return None
        if not current:
            return state
        recorded = state.get("sources")
        if not isinstance(recorded, dict) or signature(list(recorded)) != recorded:
            return None
        return state

    def _forget(self, env: Environment, daemon: Daemon | None) -> None:
        StateFile(env, self.kind.agent).remove()
        if daemon is not None:
            pid = read_pidfile(daemon.pid_file)
            if pid is not None and not is_alive(pid):
                try:
                    os.unlink(daemon.pid_file)
                except OSError:
                    pass

    def reload_daemon(self, p: PT, env: Environment, log: Logger) -> None:
        """Test the configuration, then SIGHUP, then check the daemon still answers."""
        pid = self.find_pid(p, env)
        if pid is None:
            raise GenericError(f"cannot reload: {self.kind.title} is not running")
        try:
            res, daemon = self.read_and_test(p, env, log)
        except NotConfiguredError as exc:
            # The running daemon keeps its old configuration: a reload is not a restart.
            raise GenericError(f"reload refused, old configuration kept: {exc.reason}") from None
        os.kill(pid, signal.SIGHUP)

        def answers() -> bool:
            try:
                self.answer(p, res, daemon, env.deadline.bound(min(2.0, p.check_timeout)), log)
            except GenericError:
                return False
            return True

        if not wait_until(answers, env.deadline):
            raise GenericError(f"{self.kind.title} does not answer after the reload")
        self._remember(p, env, (res, daemon))
        log.info(f"{self.kind.title} reloaded {p.config}")


def _processes(ident: Identity) -> list[int]:
    """Every live process that runs this executable with this configuration."""
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and ident.matches(int(entry)) and is_alive(int(entry))
    ]


def _exit_code(pid: int) -> int | None:
    """The launcher's exit code once it has exited (reaping it), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None  # reaped already
    return os.waitstatus_to_exitcode(status) if done else None


def _unreaped_running(pid: int) -> bool:
    """True while the launcher, our child, runs; once it has exited it is reaped here."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # reaped already (by the start's wait)
    return done == 0


def _reachable(listen: str) -> str:
    """Where to connect to a daemon listening on `listen` (any-address means loopback)."""
    if listen in ("", "0.0.0.0"):
        return "127.0.0.1"
    if listen in ("::", "[::]"):
        return "::1"
    return listen


def _check_account(user: str, group: str) -> None:
    import grp
    import pwd

    try:
        pwd.getpwnam(user)
    except KeyError:
        raise NotInstalledError(f"user {user!r} does not exist on this node") from None
    try:
        grp.getgrnam(group)
    except KeyError:
        raise NotInstalledError(f"group {group!r} does not exist on this node") from None


def passwords_of(res: Resources, kind: str) -> dict[str, str]:
    """Name -> password of every resource of `kind` (kept in memory only, never logged)."""
    return {str(r.get("Name", "")): str(r.get("Password", "")) for r in res.all(kind)}


def requires_tls(res: Resources, kind: str, name: str) -> bool:
    """Whether the resource `name` of `kind` says `TLS Require = yes` (certificates, or on
    11.0 and later TLS-PSK): a client without TLS, like ours, is refused after the challenge."""
    return any(r.get("Name") == name and r.get("TlsRequire") is True for r in res.all(kind))
