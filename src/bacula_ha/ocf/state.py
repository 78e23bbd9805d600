"""Per-instance state under HA_RSCTMP (a tmpfs emptied at boot), written atomically; its lock."""

from __future__ import annotations

import os

from .env import Environment
from .errors import GenericError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .deadline import Deadline

_DIRECTORY = "bacula-ha"


class StateFile:
    """A small document (dicts, lists, strings, numbers) owned by one resource instance.

    Stored with `marshal`, which the interpreter has loaded before any agent code runs:
    every monitor reads this file, and `json` (with the `re` it imports) would cost a monitor
    a fifth of its time. The file is root's, mode 0600, in a root-only directory, and never
    outlives a boot; one written by another Python version reads as absent (a cache miss).
    """

    def __init__(self, env: Environment, agent: str) -> None:
        self.path = state_path(env.rsctmp, agent, env.instance)

    @classmethod
    def at(cls, path: str) -> StateFile:
        """The state file at `path` (from `state_path` or `existing`), without an environment."""
        state = cls.__new__(cls)
        state.path = path
        return state

    def read(self) -> dict[str, Any] | None:
        import marshal

        try:
            with open(self.path, "rb") as handle:
                data = marshal.load(handle)
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return data if isinstance(data, dict) else None

    def write(self, data: dict[str, Any]) -> None:
        import marshal

        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                marshal.dump(data, handle)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise _unusable(self.path, exc) from None

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass  # absent, or a name no file can have: nothing to remove


class Lock:
    """An exclusive flock on `<state file>.lock`: one action of an instance at a time.

    Beside the state file rather than on it: the state file is replaced by a rename at every
    write, and a lock on a replaced inode would lock nothing.
    """

    def __init__(self, state_path: str) -> None:
        self.path = state_path + ".lock"
        self.fd = -1

    def acquire(self, deadline: Deadline) -> bool:
        """Wait for the lock until `deadline`; False when it is still held then."""
        import fcntl
        import time

        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise _unusable(self.path, exc) from None
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if deadline.expired():
                    os.close(self.fd)
                    self.fd = -1
                    return False
                time.sleep(0.05)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


def _unusable(path: str, exc: OSError) -> GenericError:
    """HA_RSCTMP (or a file in it) cannot be written: a problem of this node, said plainly."""
    return GenericError(f"cannot keep state in {os.path.dirname(path)}: {exc.strerror}")


def state_path(rsctmp: str, agent: str, instance: str) -> str:
    """Where `agent`'s `instance` keeps its state file."""
    return os.path.join(rsctmp, _DIRECTORY, f"{agent}-{_file_name(instance)}.state")


def existing(rsctmp: str, agent: str) -> list[str]:
    """The state files of `agent`'s instances on this node (of those that keep one)."""
    directory = os.path.join(rsctmp, _DIRECTORY)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    prefix = f"{agent}-"
    return sorted(
        os.path.join(directory, n) for n in names if n.startswith(prefix) and n.endswith(".state")
    )


# Pacemaker's resource ids are XML ids, plus ":N" for a clone instance.
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
_MAX_NAME = 96


def _file_name(instance: str) -> str:
    """The instance as a file name: what an admin would recognise, always a valid name."""
    safe = "".join(c if c in _SAFE else "_" for c in instance)
    if safe == instance and len(safe) <= _MAX_NAME:
        return safe
    # Distinct odd names must not share a state file: keep a digest of the original.
    import hashlib

    digest = hashlib.sha256(instance.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{safe[:_MAX_NAME]}-{digest}"
