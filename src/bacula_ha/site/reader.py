"""Typed access to the raw TOML that records a problem, with its line, instead of raising."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..ocf.redact import hide
from .errors import Problem, secret_values
from .locate import LineMap
from .locate import Path as FieldPath
from .model import CONTROL_RE, DURATION_RE, ID_RE, MAX_ID, PARAM_RE, Pairs


def fmt_path(path: FieldPath) -> str:
    """`("director", 0, "vip", "ip")` -> `director[0].vip.ip`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (part if ID_RE.match(part) else repr(part))
    return out


class Reader:
    """Typed access to the raw TOML that records a problem instead of raising."""

    def __init__(self, text: str, raw: dict[str, Any] | None = None) -> None:
        self.text = text
        self._lines: LineMap | None = None
        self.problems: list[Problem] = []
        self.secrets = secret_values(raw)
        self._reported: list[FieldPath] = []

    @property
    def lines(self) -> LineMap:
        # Built on the first problem only: a valid site never needs line numbers.
        if self._lines is None:
            self._lines = LineMap(self.text)
        return self._lines

    def problem(self, path: FieldPath, message: str, covers: Iterable[FieldPath] = ()) -> None:
        # One fault, one report: a field already reported, itself or within it, is not
        # reported again by a later check (a node without a valid fence is not also told
        # that every node needs one).
        if path and any(seen[: len(path)] == path for seen in self._reported):
            return
        self._reported.extend((path, *covers))
        message = hide(message, self.secrets)
        self.problems.append(Problem(fmt_path(path), message, self.lines.line(path)))

    def table(
        self, value: object, path: FieldPath, known: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(path, f"must be a table, not {kind_of(value)}")
            return None
        allowed = set(known)
        for key in value:
            if key not in allowed:
                self.problem((*path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        # Reported on the table, at its header: the user never wrote the missing key's line.
        missing = [key for key in required if key not in value]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            self.problem(path, f"{_join(missing)} {verb} required", [(*path, k) for k in missing])
        return value

    def string(
        self,
        tbl: dict[str, Any],
        key: str,
        path: FieldPath,
        *,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
    ) -> str | None:
        if key not in tbl:
            return None
        value = tbl[key]
        where = (*path, key)
        if not isinstance(value, str):
            self.problem(where, f"must be a string, not {kind_of(value)}")
            return None
        if not self.clean(where, value):
            return None
        if pattern is not None and not pattern.match(value):
            self.problem(where, f"{value!r} is not {what}")
            return None
        return value

    def clean(self, where: FieldPath, value: str) -> bool:
        if not value:
            self.problem(where, "must not be empty")
            return False
        if CONTROL_RE.search(value):
            self.problem(where, f"{value!r} contains a control character (newline, tab, ...)")
            return False
        if not value.isascii():
            # crmsh 4.4 stores non-ASCII text as the literal text of character references
            # ("&#252;" for "ü"), so the two output formats would disagree: refuse it.
            self.problem(
                where, f"{value!r} contains non-ASCII characters (crmsh would mangle them)"
            )
            return False
        return True

    def ident(self, tbl: dict[str, Any], key: str, path: FieldPath) -> str | None:
        value = self.string(tbl, key, path, pattern=ID_RE, what=_ID_WHAT)
        if value is not None and len(value) > MAX_ID:
            self.problem((*path, key), f"is longer than {MAX_ID} characters")
            return None
        return value

    def integer(
        self, tbl: dict[str, Any], key: str, path: FieldPath, low: int, high: int
    ) -> int | None:
        if key not in tbl:
            return None
        value = tbl[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem((*path, key), f"must be an integer from {low} to {high}, not {value!r}")
            return None
        return value

    def boolean(self, tbl: dict[str, Any], key: str, path: FieldPath, default: bool) -> bool:
        value = tbl.get(key, default)
        if not isinstance(value, bool):
            self.problem((*path, key), f"must be true or false, not {value!r}")
            return default
        return value

    def duration(self, tbl: dict[str, Any], key: str, path: FieldPath) -> int | None:
        """Seconds, from an integer or a string like "90s", "2min", "1h"."""
        if key not in tbl:
            return None
        value = tbl[key]
        seconds: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        elif isinstance(value, str) and (m := DURATION_RE.match(value.strip())):
            unit = {"m": 60, "min": 60, "h": 3600, "hr": 3600}.get(m.group(2) or "s", 1)
            seconds = int(m.group(1)) * unit
        if seconds is None or not 0 < seconds <= 86400:
            self.problem((*path, key), f"{value!r} is not a duration (seconds, or e.g. '90s')")
            return None
        return seconds

    def params(self, tbl: dict[str, Any], key: str, path: FieldPath) -> Pairs:
        if key not in tbl:
            return ()
        raw = tbl[key]
        where = (*path, key)
        if not isinstance(raw, dict):
            self.problem(where, f"must be a table of name = value, not {kind_of(raw)}")
            return ()
        out: list[tuple[str, str]] = []
        for name, value in raw.items():
            if not PARAM_RE.match(name):
                self.problem((*where, name), f"{name!r} is not a parameter name")
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = str(value)
            elif isinstance(value, str):
                if not self.clean((*where, name), value):
                    continue
                text = value
            else:
                self.problem(
                    (*where, name), f"must be a string, number or boolean, not {kind_of(value)}"
                )
                continue
            out.append((name, text))
        return tuple(out)

    def array(self, tbl: dict[str, Any], key: str, path: FieldPath) -> list[Any]:
        if key not in tbl:
            return []
        value = tbl[key]
        if not isinstance(value, list):
            self.problem((*path, key), f"must be an array, not {kind_of(value)}")
            return []
        return value


def _join(words: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


_ID_WHAT = "a valid name (a letter or _, then letters, digits, _ . -)"


def kind_of(value: object) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
