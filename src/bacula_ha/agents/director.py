"""The bacula-dir agent: the director, checked down to its console and catalog."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..bacula.config import Resources, json_tool_for, load
from ..bacula.console import RunningJob, ask_running_jobs, bconsole, director_console
from ..bacula.daemon import (
    Daemon,
    DaemonAgent,
    DaemonParams,
    Kind,
    common_actions,
    common_parameters,
    passwords_of,
    requires_tls,
)
from ..bacula.jobs import policy
from ..bacula.layout import tool_beside
from ..ocf import params as P
from ..ocf.agent import Handler
from ..ocf.deadline import Deadline
from ..ocf.env import Environment
from ..ocf.errors import GenericError, NotInstalledError, OCFError
from ..ocf.log import Logger
from ..ocf.metadata import Action, MetaData, Parameter
from ..ocf.state import state_path
from ..ocf.status import OCFStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass

    from ..bacula.jobs import Policy
else:
    from ..ocf.record import dataclass

# How often a monitor records the director's sign of life in the catalog (at most): where the
# next start begins its search for scheduled runs missed during an outage (bacula/jobs.py).
HEARTBEAT_EVERY = 55.0

KIND = Kind(
    agent="bacula-dir",
    json_tool="bdirjson",
    resource="Director",
    port_key="DirPort",
    address_key="DirAddress",
    default_port=9101,
    title="director",
)

METADATA = MetaData(
    name="bacula-dir",
    version="0.1.0",
    shortdesc="Bacula director",
    longdesc=(
        "Runs a Bacula director (bacula-dir). start tests the configuration with -t first: a "
        "file Bacula rejects is a configuration error (6), an unreachable catalog is not (1). "
        "monitor depth 0 checks the process named by the pid file; depth 10 authenticates as a "
        "console, so a wedged director fails although it still accepts TCP connections; depth "
        "20 runs bconsole commands that need the catalog. stop logs the jobs it interrupts and "
        "can wait for them (job_wait), then stops running backups so that they can be resumed "
        "(on_stop). start brings back, once, the jobs the previous instance left running: a "
        "job stopped Incomplete by a planned move is resumed (same JobId, only the files not "
        "yet saved are sent); a job interrupted by a crash is re-run from the start "
        "(interrupted_jobs). reload tests the configuration, keeps the old one when "
        "the test fails, and asks bacula-confsync (if active here) to push the new one. "
        "Change reload_token to make the cluster reload the director."
    ),
    parameters=(
        *common_parameters(KIND),
        Parameter(
            "bconsole",
            "bconsole binary",
            "Absolute path of bconsole, used by the depth-20 monitor and to list running jobs; "
            "default: the bconsole beside binary (/usr/sbin/bconsole with Debian's packages, "
            "/opt/bacula/bin/bconsole with bacula.org's).",
            default="",
            absolute=True,
        ),
        Parameter(
            "bconsole_config",
            "bconsole configuration",
            "Configuration file for bconsole, naming this director and its password; default: "
            "bconsole.conf beside config (/etc/bacula/bconsole.conf with Debian's packages).",
            default="",
            absolute=True,
        ),
        Parameter(
            "job_wait",
            "how long stop waits for running jobs",
            "Seconds stop waits for running jobs to finish before stopping the director (0: "
            "do not wait; the jobs are logged and interrupted). Bounded by the stop timeout.",
            content_type="integer",
            default="0",
            high=P.MAX_WHOLE_SECONDS,
        ),
        *policy.PARAMETERS,
        Parameter(
            "reload_token",
            "change to reload",
            "Any value. Changing it makes Pacemaker run reload-agent, which reloads the "
            "director's configuration without a restart: "
            "crm_resource -r RSC -p reload_token -v $(date +%s)",
            default="",
            reloadable=True,
        ),
    ),
    actions=(
        *common_actions(),
        Action("reload", timeout=60),
        Action("reload-agent", timeout=60),
    ),
)


# SIGTERM's grace when jobs are still running at the stop (see before_stop).
INTERRUPTED_TERM_GRACE = 3.0


@dataclass(frozen=True)
class DirectorParams(DaemonParams):
    """The director's parameters, parsed once per action (configure)."""

    jobs: Policy  # interrupted_jobs, rerun_types, max_reruns, missed_runs_window, on_stop
    job_wait: float
    bconsole: str  # the parameter, else beside the director's binary
    bconsole_config: str  # the parameter, else bconsole.conf beside its configuration


class DirectorAgent(DaemonAgent[DirectorParams]):
    kind = KIND
    metadata = METADATA
    # The catalog's settings: stop records the jobs it stops there (bacula/jobs.py).
    recorded = ("Catalog",)
    # When this process launched the director: its scheduler's own start (bacula/jobs.py).
    launched: float | None = None

    def own_params(self, common: DaemonParams, env: Environment) -> DirectorParams:
        job_wait = P.integer_of(METADATA.parameter("job_wait"), env.param("job_wait")) or 0
        return DirectorParams(
            binary=common.binary,
            config=common.config,
            user=common.user,
            group=common.group,
            address=common.address,
            port=common.port,
            check_timeout=common.check_timeout,
            extra=common.extra,
            jobs=policy.policy_from(env.params),
            job_wait=float(job_wait),
            # bconsole and its configuration: beside the director's own binary and
            # configuration (Debian: /usr/sbin, /etc/bacula; bacula.org: /opt/bacula/bin, etc).
            bconsole=env.param("bconsole") or tool_beside(common.binary, "bconsole"),
            bconsole_config=env.param("bconsole_config")
            or os.path.join(os.path.dirname(common.config), "bconsole.conf"),
        )

    def validate(self, p: DirectorParams, env: Environment, log: Logger) -> None:
        super().validate(p, env, log)
        if env.depth >= 20 or env.action in ("stop", "validate-all"):
            bconsole_bin = P.absolute_path("bconsole", p.bconsole)
            if env.action != "stop" and not os.access(bconsole_bin, os.X_OK):
                raise NotInstalledError(f"{bconsole_bin} is not installed")

    def before_test(
        self, p: DirectorParams, read: Resources | OCFError | None, deadline: Deadline, log: Logger
    ) -> None:
        # `bacula-dir -t` opens the catalog and, when the database is down, retries for half
        # a minute: connect first, so that a down catalog fails the start at once and clearly.
        # (Imported here: the configuration test's module brings `re`, 4 ms of every probe; the
        # catalog's module, contextlib.)
        from ..bacula.catalog import catalog_endpoint, try_connect
        from ..bacula.configtest import CatalogUnreachable

        if isinstance(read, GenericError):
            return  # let `-t` say what is wrong with the file
        if isinstance(read, OCFError):
            raise read
        try:
            # Read here only when the action has not (validate-all).
            res = read or load(json_tool_for(p.binary, KIND.json_tool), p.config, deadline)
        except GenericError:
            return
        for catalog in res.all("Catalog"):
            where = catalog_endpoint(catalog)
            error = try_connect(where, min(3.0, deadline.bound()))
            if error:
                raise CatalogUnreachable(
                    f"catalog {catalog.get('Name', '?')} at {where[0]}:{where[1]} is "
                    f"unreachable: {error}"
                )

    def answer(
        self, p: DirectorParams, res: Resources, daemon: Daemon, timeout: float, log: Logger
    ) -> None:
        from ..bacula import protocol  # here: socket and hashing cost a probe nothing

        password = passwords_of(res, "Director").get(daemon.name, "")
        tls = requires_tls(res, "Director", daemon.name)  # then its challenge is the answer
        try:
            protocol.console_probe(daemon.address, daemon.port, password, timeout, requires_tls=tls)
        except protocol.AuthRejected:
            return  # it answered: alive, even if our password is not the console's
        except protocol.ProtocolError as exc:
            raise GenericError(
                f"director does not answer on {daemon.address}:{daemon.port}: {exc}"
            ) from None

    def deep_check(
        self, p: DirectorParams, res: Resources, daemon: Daemon, env: Environment, log: Logger
    ) -> OCFStatus | None:
        # `.sql` reaches the catalog: a director whose database went away fails here.
        result = self._console(
            p, env, log, ["status dir", '.sql query="SELECT VersionId FROM Version"']
        )
        if "Daemon started" not in result:
            raise GenericError("bconsole `status dir` gave no director status")
        if "VersionId" not in result and "versionid" not in result.lower():
            raise GenericError("the director could not query its catalog")
        return None

    def before_stop(
        self, p: DirectorParams, res: Resources, daemon: Daemon, env: Environment, log: Logger
    ) -> None:
        from . import director_jobs

        # Asked of the director itself over its own protocol: bconsole's configuration may
        # name another director, and a bconsole that cannot connect retries for its timeout.
        def jobs() -> list[RunningJob]:
            # A console per call: each is bounded by what is left of the stop's deadline.
            try:
                return ask_running_jobs(self._director_console(p, res, daemon, env, log))
            except GenericError as exc:
                raise GenericError(f"cannot list running jobs: {exc.reason}") from None

        wait = p.job_wait
        running = jobs()
        if running and wait > 0:
            log.info(f"waiting up to {wait:g}s for {len(running)} running job(s)")
            # Leave the rest of the stop timeout for the daemon's own shutdown.
            until = env.deadline.sooner(min(wait, env.deadline.remaining() * 0.5))
            while running and not until.expired():
                import time

                time.sleep(min(1.0, until.remaining()))
                running = jobs()
        console = self._director_console(p, res, daemon, env, log)
        before = {job.job_id for job in running}
        running = director_jobs.stop_for_resume(p.jobs, res, console, jobs, running, env, log)
        for job in running:
            log.warning(f"stopping the director interrupts JobId {job.job_id}: {job.description}")
        if running:
            # Bacula's director waits on SIGTERM for its job threads, and a job whose file or
            # storage daemon is out of reach (this node lost its network) holds it for the
            # network timeouts, over half a minute. The jobs are interrupted either way and
            # the next start brings them back as after a crash: do not wait long for them.
            self.term_grace = INTERRUPTED_TERM_GRACE
        paused = sorted(before - {job.job_id for job in running})
        words = [f"JobId {i} stopped to be resumed" for i in paused]
        words += [f"JobId {job.job_id} interrupted" for job in running]
        _report(env, log, "stopped: " + ("; ".join(words) or "no job was running"))
        # Reached only when the director answered: a clean stop, no outage to catch up on. A
        # wedged director never gets here, and its outage counts from its last good monitor.
        director_jobs.heartbeat(p.jobs, res, daemon.name, env, log, stopped=True)

    def before_launch(
        self, p: DirectorParams, res: Resources, env: Environment, log: Logger
    ) -> None:
        # The director fails what its previous instance left running as soon as it starts:
        # read it first (bacula/jobs).
        from . import director_jobs

        director_jobs.on_launch(p.jobs, res, env, log)
        self.launched = time.time()

    def after_start(
        self, p: DirectorParams, res: Resources, daemon: Daemon, env: Environment, log: Logger
    ) -> None:
        from . import director_jobs

        console = self._director_console(p, res, daemon, env, log)
        started = director_jobs.on_started(
            p.jobs, res, console, env, log, director=daemon.name, launched=self.launched
        )
        _report(env, log, f"started on this node: {director_jobs.summary(started)}")

    def monitor(self, p: DirectorParams, env: Environment, log: Logger) -> OCFStatus | None:
        status = super().monitor(p, env, log)
        if status is None and not env.is_probe:
            self._heartbeat(p, env, log)
        return status

    def _heartbeat(self, p: DirectorParams, env: Environment, log: Logger) -> None:
        """At most every HEARTBEAT_EVERY seconds: the director's sign of life, in the catalog."""
        marker = state_path(env.rsctmp, "bacula-dir-alive", env.instance)
        try:
            if time.time() - os.stat(marker).st_mtime < HEARTBEAT_EVERY:
                return
        except OSError:
            pass
        recorded = self._recorded(p, env, current=False)
        if recorded is None:
            return
        # Touched first, so that a catalog that is down costs one attempt a minute, not one
        # per monitor.
        try:
            os.makedirs(os.path.dirname(marker), mode=0o700, exist_ok=True)
            with open(marker, "a"):
                pass
            os.utime(marker)
        except OSError:
            return
        from . import director_jobs

        director_jobs.heartbeat(p.jobs, recorded[0], recorded[1].name, env, log)

    def _director_console(
        self, p: DirectorParams, res: Resources, daemon: Daemon, env: Environment, log: Logger
    ) -> Callable[[str], str]:
        """Console commands on the director itself; through bconsole (whose configuration
        carries the certificates) when the director requires TLS, which the agent's own
        client does not speak."""

        def by_bconsole(command: str) -> str:
            log.debug(f"the director requires TLS: {command.split()[0]!r} through bconsole")
            return self._console(p, env, log, [command])

        timeout = env.deadline.bound(p.check_timeout)
        return director_console(
            res, daemon.name, daemon.address, daemon.port, timeout, tls_fallback=by_bconsole
        )

    def _console(self, p: DirectorParams, env: Environment, log: Logger, cmds: list[str]) -> str:
        binary, config = p.bconsole, p.bconsole_config
        if not os.path.isfile(config):
            raise GenericError(f"bconsole configuration {config} does not exist")
        return bconsole(
            binary, config, cmds, deadline=env.deadline, timeout=p.check_timeout * 2, log=log
        ).stdout

    def reload(self, p: DirectorParams, env: Environment, log: Logger) -> OCFStatus | None:
        self.reload_daemon(p, env, log)
        _request_confsync(env, log)
        return None

    def extra_actions(self) -> dict[str, Handler[DirectorParams]]:
        return {"reload": self.reload, "reload-agent": self.reload}


def _report(env: Environment, log: Logger, text: str) -> None:
    """Leave what this start or stop did with jobs where the alert agent and `bacula-ha
    status` read it: the node attribute bacula-ha-jobs-<resource> (bacula_ha.alert)."""
    from ..ocf.attribute import publish

    publish(f"bacula-ha-jobs-{env.instance.split(':')[0]}", text, env.deadline, log)


def _request_confsync(env: Environment, log: Logger) -> None:
    """Ask an active bacula-confsync on this node to push the reloaded configuration now."""
    # Through config sync's public face, within what is left of the reload's deadline: the
    # face finds the instances active here and syncs each under its own lock.
    from ..bacula import confsync

    try:
        reports = confsync.request_sync(env.deadline, rsctmp=env.rsctmp, log=log)
    except Exception as exc:  # a failed push must not fail the reload that succeeded
        log.warning(f"configuration sync after reload failed: {exc}")
        return
    if reports:
        log.info(f"configuration pushed by {len(reports)} bacula-confsync instance(s)")


AGENT = DirectorAgent()
