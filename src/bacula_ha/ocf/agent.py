"""The base class of every agent: the service logic only; the runner owns the OCF contract."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .env import Environment
from .log import Logger
from .metadata import MetaData
from .status import OCFStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar, TypeVar
    from typing import Generic as _Generic

    C = TypeVar("C")
else:
    # typing costs an agent a tenth of its start; at run time Agent[X] is just Agent.
    C = object

    class _Generic:
        def __class_getitem__(cls, item: object) -> type:
            return cls


Handler = Callable[[C, Environment, Logger], OCFStatus | None]


class Agent(_Generic[C]):
    """Subclass: implement configure, start, stop, monitor; add actions in `extra_actions`.

    Every handler gets the parsed configuration, the environment and the logger. It returns
    None (success) or a status, and raises an `OCFError` to fail with a reason.
    """

    metadata: ClassVar[MetaData]
    depths: ClassVar[tuple[int, ...]] = (0,)

    def configure(self, env: Environment, log: Logger) -> C:
        """Parse and check the parameters alone (no file system, no network)."""
        raise NotImplementedError

    def validate(self, config: C, env: Environment, log: Logger) -> None:
        """Cheap checks of this node run before every action (binaries, files). Default: none."""

    def validate_all(self, config: C, env: Environment, log: Logger) -> OCFStatus | None:
        """The validate-all action: every check without side effects. Default: `validate` only."""
        return None

    def start(self, config: C, env: Environment, log: Logger) -> OCFStatus | None:
        raise NotImplementedError

    def stop(self, config: C, env: Environment, log: Logger) -> OCFStatus | None:
        raise NotImplementedError

    def monitor(self, config: C, env: Environment, log: Logger) -> OCFStatus | None:
        raise NotImplementedError

    def stop_unconfigured(self, env: Environment, log: Logger, reason: str) -> OCFStatus | None:
        """Stop when the parameters are broken: succeed when nothing of ours can be running.

        The default assumes an agent that cannot have started anything without a valid
        configuration. Agents that leave a process behind override this with what they
        recorded at start.
        """
        return None

    def stop_unvalidated(
        self, config: C, env: Environment, log: Logger, reason: str
    ) -> OCFStatus | None:
        """Stop when the parameters parsed but `validate` refused them (e.g. a bad job_wait, a
        file missing on this node). Default: as with unusable parameters. An agent whose
        parsed parameters still name what may run overrides this to stop it."""
        return self.stop_unconfigured(env, log, reason)

    def extra_actions(self) -> Mapping[str, Handler[C]]:
        """Optional actions (reload, reload-agent, ...) by name."""
        return {}
