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


def is_number(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also accepts '²' and '٣٠', which int() rejects or
    reads as another number."""
    return text.isascii() and text.isdigit()


def integer(name: str, value: str, *, low: int = 0, high: int = 2**31 - 1) -> int:
    """A decimal integer of ASCII digits (an optional leading '-') within [low, high]."""
    text = value.strip()
    digits = text[1:] if text.startswith("-") else text
    if not is_number(digits) or len(digits) > 19:
        raise NotConfiguredError(f"parameter {name}={value!r} is not an integer")
    number = int(text)
    if not low <= number <= high:
        raise NotConfiguredError(f"parameter {name}={value!r} is out of range ({low}..{high})")
    return number


def port(name: str, value: str) -> int | None:
    """A TCP port, or None when empty (meaning: take it from the configuration)."""
    if value == "":
        return None
    if not is_number(value) or not 0 < int(value) < 65536:
        raise NotConfiguredError(f"parameter {name}={value!r} is not a TCP port")
    return int(value)


# A week: longer than any action timeout Pacemaker would be given, short enough that no
# arithmetic on it overflows.
MAX_SECONDS = 7 * 86400.0


def seconds(name: str, value: str, *, minimum: float = 0.0, maximum: float = MAX_SECONDS) -> float:
    """A duration in seconds: a plain decimal number (ASCII), optionally with s/ms/min."""
    text = value.strip().lower()
    scale = 1.0
    for suffix, factor in (("ms", 0.001), ("min", 60.0), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    whole, _, fraction = text.partition(".")
    if (
        not (is_number(whole) or (whole == "" and fraction))
        or not (fraction == "" or is_number(fraction))
        or len(text) > 24
    ):
        raise NotConfiguredError(f"parameter {name}={value!r} is not a duration")
    result = float(text) * scale
    if result < minimum:
        raise NotConfiguredError(f"parameter {name}={value!r} must be at least {minimum:g}s")
    if result > maximum:
        raise NotConfiguredError(f"parameter {name}={value!r} must be at most {maximum:g}s")
    return result


def absolute_path(name: str, value: str) -> str:
    if not value.startswith("/"):
        raise NotConfiguredError(f"parameter {name}={value!r} must be an absolute path")
    if not value.isprintable():
        raise NotConfiguredError(f"parameter {name} holds a control character")
    return value
