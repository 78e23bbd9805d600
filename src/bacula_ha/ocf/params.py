"""Typed parameter parsing shared by the agents: one `is_true`, ports, durations, paths."""

from __future__ import annotations

from .errors import NotConfiguredError

_TRUE = frozenset({"yes", "true", "1", "on", "y", "t"})
_FALSE = frozenset({"no", "false", "0", "off", "n", "f", ""})


def is_true(value: str) -> bool:
    """What ocf-shellfuncs' ocf_is_true accepts (case-insensitive)."""
    return value.strip().lower() in _TRUE


def boolean(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise NotConfiguredError(f"parameter {name}={value!r} is not a boolean")


def port(name: str, value: str) -> int | None:
    """A TCP port, or None when empty (meaning: take it from the configuration)."""
    if value == "":
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise NotConfiguredError(f"parameter {name}={value!r} is not a TCP port")
    return int(value)


def seconds(name: str, value: str, *, minimum: float = 0.0) -> float:
    """A duration in seconds; accepts a bare number or a number with s/ms/min suffix."""
    text = value.strip().lower()
    scale = 1.0
    for suffix, factor in (("ms", 0.001), ("min", 60.0), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    try:
        result = float(text) * scale
    except ValueError:
        raise NotConfiguredError(f"parameter {name}={value!r} is not a duration") from None
    if result < minimum or result != result:  # the second test rejects NaN
        raise NotConfiguredError(f"parameter {name}={value!r} must be at least {minimum:g}s")
    return result


def absolute_path(name: str, value: str) -> str:
    if not value.startswith("/"):
        raise NotConfiguredError(f"parameter {name}={value!r} must be an absolute path")
    if "\0" in value or "\n" in value:
        raise NotConfiguredError(f"parameter {name} holds a control character")
    return value
