"""Frozen records for the agents' run-time path, without importing the dataclasses module.

`import dataclasses` pulls in inspect, ast, dis, tokenize and re: on this machine that alone
costs more than the interpreter's own start, and every agent action would pay it. Modules on
an agent's path therefore write

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from dataclasses import dataclass
    else:
        from ..ocf.record import dataclass

so that mypy checks real frozen dataclasses while the agent runs this small stand-in. It
supports what those modules use: `@dataclass(frozen=True)` with annotated fields, defaults,
`field(repr=False)`, ClassVar annotations skipped, `__post_init__`, equality, hashing, repr.
"""

from __future__ import annotations

from collections.abc import Callable


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen record."""


_MISSING = object()


class _Field:
    def __init__(self, default: object, show: bool) -> None:
        self.default, self.show = default, show


def field(*, default: object = _MISSING, repr: bool = True) -> object:
    """`dataclasses.field` for the two options records use: a default, and repr=False."""
    return _Field(default, repr)


def dataclass(*, frozen: bool = True) -> Callable[[type], type]:
    if not frozen:
        raise TypeError("bacula_ha.ocf.record only makes frozen records")
    return _make


def _make(cls: type) -> type:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")) or name in names:
                continue
            names.append(name)
    defaults: dict[str, object] = {}
    hidden: set[str] = set()
    for name in names:
        if not hasattr(cls, name):
            continue
        value = getattr(cls, name)
        if isinstance(value, _Field):
            if not value.show:
                hidden.add(name)
            if value.default is _MISSING:
                delattr(cls, name)
                continue
            value = value.default
            setattr(cls, name, value)
        defaults[name] = value
    fields = tuple(names)
    post_init = getattr(cls, "__post_init__", None)

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} arguments, got {len(args)}")
        values = dict(zip(fields, args, strict=False))
        for key, value in kwargs.items():
            if key not in fields or key in values:
                raise TypeError(f"{cls.__name__}() got an unexpected or repeated {key!r}")
            values[key] = value
        for name in fields:
            if name not in values:
                if name not in defaults:
                    raise TypeError(f"{cls.__name__}() missing argument {name!r}")
                values[name] = defaults[name]
            object.__setattr__(self, name, values[name])
        if post_init is not None:
            post_init(self)

    def _values(self: object) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in fields)

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def __hash__(self: object) -> int:
        return hash(_values(self))

    def __repr__(self: object) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in fields if n not in hidden)
        return f"{cls.__name__}({inner})"

    def __setattr__(self: object, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self: object, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    for function in (__init__, __eq__, __hash__, __repr__, __setattr__, __delattr__):
        setattr(cls, function.__name__, function)
    setattr(cls, "__match_args__", fields)  # noqa: B010 (mypy: not a known attribute)
    return cls
