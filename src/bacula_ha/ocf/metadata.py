"""Agent meta-data declared as data and rendered with xml.etree (escaping is never hand-made)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from dataclasses import dataclass, field
else:
    from .record import dataclass, field


OCF_VERSION = "1.1"

# One document must pass two checkers that disagree: Pacemaker and pcs read OCF 1.1
# (`reload-agent`, `reloadable`, `unique-group`), while ocf-tester validates against the
# OCF 1.0 DTD `ra-api-1.dtd`, which knows none of them. XML lets an internal DTD subset
# extend an external one, and the first declaration of an attribute is binding: so we point
# at ra-api-1.dtd and declare, in the internal subset, only the 1.1 attributes we use and a
# free-form action name. We avoid the 1.1 constructs that would need new *elements*
# (`select` with <option>, <deprecated>), since an element cannot be declared twice; the
# allowed values of an enumerated parameter are listed in its longdesc instead.
_DOCTYPE = """<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd" [
<!ATTLIST action name CDATA #REQUIRED>
<!ATTLIST parameter reloadable (0|1) "0" unique-group CDATA #IMPLIED>
]>
"""


@dataclass(frozen=True)
class Parameter:
    """One OCF_RESKEY_<name> parameter."""

    name: str
    shortdesc: str
    longdesc: str
    content_type: str = "string"  # string | integer | boolean | time (the DTD's set)
    default: str | None = None
    required: bool = False
    unique_group: str | None = None
    reloadable: bool = False
    choices: tuple[str, ...] = ()
    # Not rendered (OCF has no such attribute): the runner keeps the value out of every log
    # line and exit reason.
    secret: bool = False
    # The rules every value must satisfy, declared once: the runner checks what Pacemaker
    # passes before the agent's own checks, `bacula-ha generate` what a site sets, both with
    # `ocf.params.check`. Not rendered either. An integer lies within [low, high]; `absolute`:
    # an absolute path; `rule`: a check of the value's own (NotConfiguredError when bad).
    low: int = 0
    high: int = 2**31 - 1
    absolute: bool = False
    rule: Callable[[str], object] | None = field(default=None, repr=False)

    @property
    def is_secret(self) -> bool:
        from .redact import is_secret_name

        return self.secret or is_secret_name(self.name)

    def __post_init__(self) -> None:
        if self.content_type not in ("string", "integer", "boolean", "time"):
            raise ValueError(f"parameter {self.name}: unsupported type {self.content_type}")


@dataclass(frozen=True)
class Action:
    """An advertised action: default timeout (seconds); for monitors, interval and depth."""

    name: str
    timeout: int
    interval: int | None = None
    depth: int | None = None
    role: str | None = None


@dataclass(frozen=True)
class MetaData:
    """The whole meta-data of an agent."""

    name: str
    version: str
    shortdesc: str
    longdesc: str
    parameters: tuple[Parameter, ...]
    actions: tuple[Action, ...]

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)

    def parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)

    def defaults(self) -> dict[str, str]:
        return {p.name: p.default for p in self.parameters if p.default is not None}

    def render(self) -> str:
        import xml.etree.ElementTree as ET

        root = ET.Element("resource-agent", name=self.name, version=self.version)
        ET.SubElement(root, "version").text = OCF_VERSION
        _describe(root, self.longdesc, self.shortdesc)
        params = ET.SubElement(root, "parameters")
        for p in self.parameters:
            attrs = {"name": p.name, "required": _flag(p.required)}
            if p.unique_group:
                attrs["unique-group"] = p.unique_group
            if p.reloadable:
                attrs["reloadable"] = "1"
            node = ET.SubElement(params, "parameter", attrs)
            longdesc = p.longdesc
            if p.choices:
                longdesc += " Allowed values: " + ", ".join(p.choices) + "."
            _describe(node, longdesc, p.shortdesc)
            content = {"type": p.content_type}
            if p.default is not None:
                content["default"] = p.default
            ET.SubElement(node, "content", content)
        actions = ET.SubElement(root, "actions")
        for a in self.actions:
            attrs = {"name": a.name, "timeout": f"{a.timeout}s"}
            if a.interval is not None:
                attrs["interval"] = f"{a.interval}s"
            if a.depth is not None:
                attrs["depth"] = str(a.depth)
            if a.role is not None:
                attrs["role"] = a.role
            ET.SubElement(actions, "action", attrs)
        ET.indent(root)
        return _DOCTYPE + ET.tostring(root, encoding="unicode") + "\n"


def _describe(parent: object, longdesc: str, shortdesc: str) -> None:
    import xml.etree.ElementTree as ET

    assert isinstance(parent, ET.Element)
    ET.SubElement(parent, "longdesc", lang="en").text = longdesc
    ET.SubElement(parent, "shortdesc", lang="en").text = shortdesc


def _flag(value: bool) -> str:
    return "1" if value else "0"
