"""Typed parameter parsing shared by the agents and the generator: one rule per meta-data type.

`check` applies every rule a parameter declares (ocf.metadata.Parameter: its type, choices,
bounds, absolute path, own rule) to one value; the runner calls it on what Pacemaker passes
(`check_all`) and `bacula-ha generate` on what a site sets, so both refuse the same values
with the same words. `integer_of` is the one way an agent reads an integer parameter.
"""

from __future__ import annotations

from .errors import NotConfiguredError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from .metadata import Parameter

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


# The highest TCP port: the `high` a port parameter declares (its `low` is 1).
PORT_HIGH = 65535


def port(name: str, value: str) -> int | None:
    """A TCP port, or None when empty (meaning: take it from the configuration)."""
    return None if value == "" else integer(name, value, low=1, high=PORT_HIGH)


# A week: longer than any action timeout Pacemaker would be given, short enough that no
# arithmetic on it overflows.
MAX_SECONDS = 7 * 86400.0
# The same bound for an integer parameter in seconds (its meta-data's `high`).
MAX_WHOLE_SECONDS = 7 * 86400


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


def check(p: Parameter, value: str) -> None:
    """Every rule `p` declares, on one value; NotConfiguredError names the first broken.
    Empty means the default (as in ocf-shellfuncs), which is the agent's to choose."""
    if value == "":
        return
    if p.content_type == "integer":
        integer(p.name, value, low=p.low, high=p.high)
    elif p.content_type == "boolean":
        boolean(p.name, value)
    if p.choices and value not in p.choices:
        raise NotConfiguredError(
            f"parameter {p.name}={value!r} is not one of: {', '.join(p.choices)}"
        )
    if p.absolute:
        absolute_path(p.name, value)
    if p.rule is not None:
        p.rule(value)


def check_all(parameters: Iterable[Parameter], given: Mapping[str, str]) -> None:
    """`check` on every declared parameter's given value (names not declared are ignored)."""
    for p in parameters:
        check(p, given.get(p.name, ""))


def integer_of(p: Parameter, value: str) -> int | None:
    """An integer parameter's value: `value`, else its default, within its declared bounds;
    None when both are empty (an optional number such as a port taken from elsewhere)."""
    if p.content_type != "integer":
        raise TypeError(f"parameter {p.name} is declared {p.content_type}, not integer")
    text = value if value != "" else (p.default or "")
    if text == "":
        return None
    return integer(p.name, text, low=p.low, high=p.high)
