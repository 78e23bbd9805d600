"""bacula-confsync: keep the Bacula configuration of every node equal to the active node's."""

from __future__ import annotations

import sys

from ..bacula import confsync as cs
from ..ocf.agent import Agent, Handler
from ..ocf.deadline import Deadline
from ..ocf.errors import ArgsError, Degraded, GenericError
from ..ocf.metadata import Action, MetaData
from ..ocf.status import OCFStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..ocf.env import Environment
    from ..ocf.log import Logger

AGENT_NAME = "bacula-confsync"
# Admin actions (not called by Pacemaker): with no OCF_RESKEY_* they use the parameters
# saved by the instance active on this node.
ADMIN_ACTIONS = ("sync", "status", "backups", "rollback")
# An admin's command has no Pacemaker timeout: the runner's 20 s default is too short for a
# rollback of a large tree, so without an explicit CRM_meta_timeout these get this bound.
ADMIN_TIMEOUT = 600.0
# A sync never takes the stop's last seconds: the state file must still be removed.
STOP_RESERVE = 3.0
STOP_PUSH_BOUND = 45.0

_METADATA = MetaData(
    name=AGENT_NAME,
    version="0.1.0",
    shortdesc="Pushes the Bacula configuration from the active node to the other nodes",
    longdesc=(
        "Colocate with bacula-dir (it runs only where the director runs). At start, at every "
        "monitor (the monitor interval is the sync period) and right after a reload of the "
        "director, it pushes `paths` to every other node with rsync over ssh (BatchMode, a "
        "connect timeout, one multiplexed connection per peer). Only changed files travel; "
        "owners, modes, ACLs and xattrs are kept. Before a push the tree must pass Bacula's "
        "own test (bdirjson/bsdjson/bfdjson and bacula-dir/sd/fd -t for the daemons whose "
        "configuration is in the tree; a catalog that cannot be opened is not a configuration "
        "error). A peer receives into a stage and swaps it in with one rename: it never holds "
        "a half-copied tree; the previous tree becomes a timestamped backup (at most `backups` "
        "of them) in .bacula-ha-confsync beside the path. A peer edited since the last sync "
        "(drift) is logged with the changed names; its version is kept as a backup. An "
        "unreachable peer makes the monitor return degraded (190) naming it, never a failure; "
        "the time of each peer's last good sync is in the status file (`bacula-confsync "
        "status`) and, in a cluster, the peer's transient node attribute "
        f"{cs.ATTRIBUTE} (crm_mon -A). A probe never touches the network. Admin actions, run "
        "by hand on the active node: sync, status, backups, rollback [STAMP] [--local] "
        "(documented in docs/confsync.md)."
    ),
    parameters=cs.PARAMETERS,
    actions=(
        Action("start", timeout=120),
        Action("stop", timeout=120),
        Action("monitor", timeout=120, interval=60, depth=0),
        Action("validate-all", timeout=30),
        Action("meta-data", timeout=5),
    ),
)


class ConfsyncAgent(Agent[cs.Instance]):
    """The bacula-confsync agent."""

    metadata = _METADATA

    def configure(self, env: Environment, log: Logger) -> cs.Instance:
        if env.action in ADMIN_ACTIONS and not env.params:
            name = "" if env.instance == "default" else env.instance
            return cs.saved_instance(env.rsctmp, name)
        config = cs.parse_parameters(env.params, env.rsctmp, env.instance, env.deadline)
        return cs.instance(env.rsctmp, env.instance, config)

    def validate(self, inst: cs.Instance, env: Environment, log: Logger) -> None:
        cs.check_node(inst.config)

    # --- the OCF actions --------------------------------------------------------------------

    def start(self, inst: cs.Instance, env: Environment, log: Logger) -> OCFStatus | None:
        import time

        # This node is the source from now on: its live files must not share inodes with
        # the backups it kept as a peer, or the admins' in-place edits would change those.
        for path, copied, problem in cs.begin(inst, time.time()):
            if problem:
                log.warning(
                    f"{path}: could not separate the live files from the backups: {problem}"
                )
            elif copied:
                log.info(f"{path}: {copied} file(s) no longer share their inode with a backup")
        # Running from here on: a failed first push is the monitor's business, never a
        # failed start (the resource is colocated with the director).
        report = cs.sync_instance(inst, env.deadline, log)
        if report is not None and report.degraded:
            log.warning(f"started, but: {report.reason()}")
        return None

    def stop(self, inst: cs.Instance, env: Environment, log: Logger) -> OCFStatus | None:
        if inst.active:
            # Best effort: a frozen peer must not hold the stop for its whole timeout.
            last = env.deadline.sooner(STOP_PUSH_BOUND)
            last = Deadline(min(last.at, env.deadline.at - STOP_RESERVE))
            if not last.expired():
                try:
                    report = cs.sync_instance(inst, last, log)
                    if report is not None and report.degraded:
                        log.warning(f"last push before stop incomplete: {report.reason()}")
                except GenericError as exc:
                    log.warning(f"last push before stop failed: {exc.reason}")
        closing = env.deadline.sooner(2.0)
        for peer in inst.config.peers:
            cs.close_connection(inst.config, peer, closing)
        cs.forget(inst.path, inst.config.mux_dir)
        return None

    def stop_unconfigured(self, env: Environment, log: Logger, reason: str) -> OCFStatus | None:
        # Nothing runs between syncs: forgetting the instance is all a stop must do.
        cs.forget(cs.state_path(env.rsctmp, env.instance), cs.mux_dir(env.rsctmp, env.instance))
        return None

    def monitor(self, inst: cs.Instance, env: Environment, log: Logger) -> OCFStatus | None:
        if not inst.active:
            return OCFStatus.NOT_RUNNING
        if env.is_probe:
            return OCFStatus.SUCCESS  # a probe never touches the network
        report = cs.sync_instance(inst, env.deadline, log)
        if report is not None and report.degraded:
            raise Degraded(report.reason())
        return None

    # --- admin actions: their output is what an admin reads (the runner prints only the
    # --- meta-data and the exit reason), the same text as `bacula-ha confsync ...` -----------

    def extra_actions(self) -> dict[str, Handler[cs.Instance]]:
        return {
            "sync": self.sync_now,
            "status": self.status,
            "backups": self.list_backups,
            "rollback": self.rollback,
        }

    def sync_now(self, inst: cs.Instance, env: Environment, log: Logger) -> OCFStatus | None:
        """Push now (like a monitor), even when the resource is not running here."""
        report = cs.sync_instance(inst, _admin_deadline(env), log, require_running=False)
        if report is not None:
            _show(cs.text.report(report))
            if report.degraded:
                raise Degraded(report.reason())
        return None

    def status(self, inst: cs.Instance, env: Environment, log: Logger) -> OCFStatus | None:
        state = cs.status(inst)
        _show(cs.text.status(state, inst.config))
        return OCFStatus.NOT_RUNNING if state is None else None

    def list_backups(self, inst: cs.Instance, env: Environment, log: Logger) -> OCFStatus | None:
        _show(cs.text.backups(cs.list_backups(inst.config, _admin_deadline(env))))
        return None

    def rollback(self, inst: cs.Instance, env: Environment, log: Logger) -> OCFStatus | None:
        """rollback [STAMP] [--local] [--from PEER]: see docs/confsync.md."""
        args = list(env.args)
        local = "--local" in args
        source_peer = None
        if "--from" in args:
            i = args.index("--from")
            if i + 1 >= len(args):
                raise ArgsError("rollback --from needs a peer name")
            source_peer = args[i + 1]
            args = args[:i] + args[i + 2 :]
        stamps = [a for a in args if not a.startswith("--")]
        stamp = stamps[0] if stamps else None
        if local:
            _show(cs.text.rollback_here(cs.rollback_here(inst, stamp)))
            return None
        origin, report = cs.rollback_instance(inst, _admin_deadline(env), log, stamp, source_peer)
        _show(cs.text.rollback(origin, report))
        if report.degraded:
            raise Degraded(report.reason())
        return None


def _admin_deadline(env: Environment) -> Deadline:
    return env.deadline if "timeout" in env.meta else Deadline.after(ADMIN_TIMEOUT)


def _show(text: str) -> None:
    sys.stdout.write(text)


AGENT = ConfsyncAgent()
