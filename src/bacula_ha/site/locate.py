"""Maps a field path of a parsed TOML document back to the line that set it.

tomllib keeps no positions, so this scanner re-reads the text and follows table headers and
keys. It understands the layouts people write by hand (tables, arrays of tables, dotted keys,
inline tables); for anything else it answers with the nearest enclosing line or None, which only
costs the error message its line number.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_key(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


class LineMap:
    """Field path -> first line (1-based) that defines it."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Path, int] = {}
        counters: dict[tuple[str, ...], int] = {}
        table: Path = ()
        depth = 0  # open brackets of a multi-line array: keys inside are not ours
        for number, line in enumerate(text.splitlines(), start=1):
            if depth:
                depth += line.count("[") - line.count("]")
                depth = max(depth, 0)
                continue
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                names = _split_key(header.group(2))
                if header.group(1) == "[[":
                    key = tuple(names)
                    counters[key] = counters.get(key, -1) + 1
                table = self._resolve(names, counters)
                if header.group(1) == "[[":
                    table = (*table, counters[tuple(names)])
                self._lines.setdefault(table, number)
                continue
            key_match = _KEY.match(line)
            if key_match:
                keys = _split_key(key_match.group(1))
                # A dotted key (`ops.storage.monitor = ...`) also defines its prefixes.
                for end in range(1, len(keys) + 1):
                    self._lines.setdefault((*table, *keys[:end]), number)
                rest = line[key_match.end() :]
                depth = max(rest.count("[") - rest.count("]"), 0)

    @staticmethod
    def _resolve(names: list[str], counters: dict[tuple[str, ...], int]) -> Path:
        # `[director.catalog]` after `[[director]]` belongs to the latest director element.
        path: list[str | int] = []
        for i, name in enumerate(names):
            path.append(name)
            prefix = tuple(names[: i + 1])
            if prefix in counters and i < len(names) - 1:
                path.append(counters[prefix])
        return tuple(path)

    def line(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), 0, -1):
            found = self._lines.get(path[:end])
            if found is not None:
                return found
        return None
