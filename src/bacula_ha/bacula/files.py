"""A Bacula configuration's files: the includes, what tells a change, FIFO-safe reading."""

from __future__ import annotations

import os
from collections.abc import Sequence


def read_text(path: str, limit: int = 1 << 20) -> str | None:
    """A regular file's text (undecodable bytes replaced), or None: never blocks on a FIFO or
    a device, which a configuration may name by mistake or malice."""
    data = read_bytes(path, limit)
    return None if data is None else data.decode("utf-8", errors="replace")


def read_bytes(path: str, limit: int = 1 << 20) -> bytes | None:
    """A regular file's first `limit` bytes, or None (as `read_text`)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path (an @include's)
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def config_sources(config: str, limit: int = 64, *, complete: bool = True) -> list[str] | None:
    """The file and every file it @-includes (recursively), or None when the set cannot be
    known from the text (a wildcard or a `@|command` include, a file that is not readable).
    With `complete` false, the readable ones found anyway (what a search for secrets needs)."""
    import re

    found: list[str] = []
    pending = [config]
    while pending:
        path = pending.pop()
        if path in found:
            continue
        if len(found) >= limit:
            return None if complete else found
        text = read_text(path)
        if text is None:
            if complete:
                return None
            continue
        found.append(path)
        # Bacula's lexer takes `@file` (or `@"file"`) wherever a token may start.
        for match in re.finditer(r'(?:^|[\s;{}=])@("([^"]*)"|(\S+))', text):
            target = match.group(2) if match.group(2) is not None else match.group(3)
            if not target or target.startswith("|"):
                if complete:
                    return None
                continue
            if not os.path.isabs(target):
                target = os.path.join(os.path.dirname(config), target)
            if any(c in target for c in "*?["):
                if complete:
                    return None
                import glob

                pending.extend(sorted(glob.glob(target)))
                continue
            pending.append(target)
    return found


def nul_byte(config: str) -> str | None:
    """Where the configuration or a file it @-includes holds a NUL byte ("FILE line N"), else
    None. Bacula's lexer reads lines as C strings, so it silently drops what follows a NUL:
    such a file is binary or corrupt, and no node can run it as its author meant."""
    for path in config_sources(config, complete=False) or []:
        data = read_bytes(path) or b""
        at = data.find(b"\0")
        if at >= 0:
            line = data.count(b"\n", 0, at) + 1
            return f"{path} line {line}"
    return None


def refuse_nul(config: str) -> None:
    """NotConfiguredError (6) when the configuration or an include holds a NUL byte: the file
    can never work as written, and config sync would spread it to every node alike."""
    where = nul_byte(config)
    if where:
        from ..ocf.errors import NotConfiguredError

        raise NotConfiguredError(f"a NUL byte, not a Bacula configuration: {where}")


def signature(paths: Sequence[str]) -> dict[str, list[int]] | None:
    """What tells a file changed: inode, size and modification time (None: one is missing)."""
    result: dict[str, list[int]] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except (OSError, ValueError):  # ValueError: a NUL byte in the path
            return None
        result[path] = [st.st_ino, st.st_size, st.st_mtime_ns]
    return result
