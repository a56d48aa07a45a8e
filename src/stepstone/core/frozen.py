"""``@frozen``: stepstone's frozen, slotted dataclasses, made four times faster than the stdlib's.

A CLI command such as ``stepstone run -f flow.yaml`` imports some seventy value classes before
it does any work, and on Python 3.11 ``@frozen`` compiles six
functions per class with ``exec`` (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__``, ``__delattr__``): about 0.5 ms a class, a fifth of the command's whole time.
``@frozen`` asks :func:`dataclasses.dataclass` for the fields and the slots only, compiles
``__init__`` alone (it must stay a real function with the fields' signature, and it is the one on
the hot path), and makes the other methods as closures over the field names:
:func:`operator.attrgetter` compares and hashes at C speed.

The result is an ordinary dataclass (``dataclasses.fields``, ``replace``, ``asdict`` and
``is_dataclass`` work; ``__dataclass_params__.frozen`` is true) that behaves as the stdlib's
frozen slotted one: assigning or deleting a field raises :class:`dataclasses.FrozenInstanceError`,
``==`` compares the ``compare`` fields of two instances of the same class, ``hash`` hashes the
hashed ones, ``repr`` shows the ``repr`` fields, ``__post_init__`` runs, defaults and
``default_factory`` apply, and instances pickle and copy. ``@frozen(eq=False)`` keeps identity
equality and hashing. A method the class defines itself is never replaced.

>>> @frozen
... class Point:
...     x: int
...     y: int = 0
>>> Point(1) == Point(1, 0), Point(1)
(True, Point(x=1, y=0))
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import MISSING, FrozenInstanceError
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    from typing import dataclass_transform

__all__ = ["frozen"]

_T = TypeVar("_T", bound=type)


@overload
def frozen(cls: _T, /) -> _T: ...


@overload
def frozen(*, eq: bool = True) -> Callable[[_T], _T]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: _T | None = None, /, *, eq: bool = True) -> _T | Callable[[_T], _T]:
    """Make ``cls`` a frozen, slotted dataclass (``@frozen`` or ``@frozen(eq=False)``)."""
    if cls is None:
        return lambda c: _make(c, eq=eq)
    return _make(cls, eq=eq)


def _make(cls: _T, *, eq: bool) -> _T:
    own = set(cls.__dict__)
    # Without a docstring, dataclass() writes one from inspect.signature(cls): with no __init__
    # yet, that is object's, parsed from its text signature by tokenize (whose one-time regex
    # compile is ~3% of a CLI command). A placeholder keeps it away; the real one is set below.
    undocumented = not cls.__doc__
    if undocumented:
        cls.__doc__ = cls.__name__
    made: Any = dataclasses.dataclass(cls, init=False, repr=False, eq=False, slots=True)
    made.__dataclass_params__.frozen = True
    fields = dataclasses.fields(made)
    names = frozenset(f.name for f in fields)
    methods: dict[str, Callable[..., Any]] = {"__init__": _init(made, fields)}
    shown = tuple(f.name for f in fields if f.repr)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({inner})"

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is made or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(made, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is made or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(made, self).__delattr__(name)

    every = attrgetter(*(f.name for f in fields)) if fields else _nothing

    def __getstate__(self: Any) -> Any:
        return every(self)

    def __setstate__(self: Any, state: Any) -> None:
        values = state if len(fields) != 1 else (state,)
        for field, value in zip(fields, values, strict=True):
            object.__setattr__(self, field.name, value)

    methods.update(
        __repr__=__repr__,
        __setattr__=__setattr__,
        __delattr__=__delattr__,
        __getstate__=__getstate__,
        __setstate__=__setstate__,
    )
    if eq:
        methods.update(_equality(fields))
    for name, method in methods.items():
        if name in own:
            continue
        method.__qualname__ = f"{made.__qualname__}.{name}"
        setattr(made, name, method)
    if undocumented:  # what dataclass() would have written: the class's call signature
        made.__doc__ = made.__name__ + str(inspect.signature(made)).replace(" -> None", "")
    return made  # type: ignore[no-any-return]


def _nothing(_: object) -> tuple[()]:
    return ()


def _init(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    """Compile ``__init__`` (the one method that must be real code: signature and speed)."""
    scope: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": MISSING}
    params: list[str] = []
    body: list[str] = []
    for field in fields:
        name = field.name
        if field.default_factory is not MISSING:
            scope[f"_d_{name}"] = field.default_factory
            if field.init:
                params.append(f"{name}=_MISSING")
                body.append(f"_set(self,{name!r},_d_{name}() if {name} is _MISSING else {name})")
            else:
                body.append(f"_set(self,{name!r},_d_{name}())")
        elif field.init:
            if field.default is not MISSING:
                scope[f"_d_{name}"] = field.default
                params.append(f"{name}=_d_{name}")
            else:
                params.append(name)
            body.append(f"_set(self,{name!r},{name})")
        elif field.default is not MISSING:
            scope[f"_d_{name}"] = field.default
            body.append(f"_set(self,{name!r},_d_{name})")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    lines = "\n".join(f" {line}" for line in body) or " pass"
    exec(f"def __init__(self,{','.join(params)}):\n{lines}", scope)
    init: Callable[..., None] = scope["__init__"]
    return init


def _equality(fields: tuple[dataclasses.Field[Any], ...]) -> dict[str, Callable[..., Any]]:
    compared = [f.name for f in fields if f.compare]
    hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
    key = attrgetter(*compared) if compared else _nothing
    hash_key = attrgetter(*hashed) if hashed else _nothing

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(hash_key(self))

    return {"__eq__": __eq__, "__hash__": __hash__}
