"""``@frozen``: stepstone's frozen, slotted dataclasses, made four times faster than the stdlib's.

A CLI command such as ``stepstone run -f flow.yaml`` imports some ninety value classes before
it does any work, and on Python 3.11 ``@dataclass(frozen=True, slots=True)`` compiles six
functions per class with ``exec`` (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``,
``__setattr__``, ``__delattr__``): about 0.5 ms a class, a fifth of the command's whole time.
``@frozen`` makes the fields, the parameters and the slotted class itself for the plain classes
stepstone writes (anything unusual goes through :func:`dataclasses.dataclass`), compiles
``__init__`` alone, and only when the class is first instantiated (it must stay a real function
with the fields' signature, and it is the one on the hot path; a command instantiates few of the
classes it imports), and makes the other methods as closures over the field names:
:func:`operator.attrgetter` compares and hashes at C speed.

The result is an ordinary dataclass (``dataclasses.fields``, ``replace``, ``asdict`` and
``is_dataclass`` work; ``__dataclass_params__.frozen`` is true) that behaves as the stdlib's
frozen slotted one: assigning or deleting a field raises :class:`dataclasses.FrozenInstanceError`,
``==`` compares the ``compare`` fields of two instances of the same class, ``hash`` hashes the
hashed ones, ``repr`` shows the ``repr`` fields, ``__post_init__`` runs, defaults and
``default_factory`` apply, and instances pickle and copy. ``@frozen(eq=False)`` keeps identity
equality and hashing. A method the class defines itself is never replaced.

``@record`` makes a mutable, slotted dataclass the same way (for the few mutable classes on a
command's path: a session, a parsed file): the same ``__init__``, ``repr`` and ``==``, fields
that can be assigned, and no hash (as the stdlib's mutable dataclasses).

>>> @frozen
... class Point:
...     x: int
...     y: int = 0
>>> Point(1) == Point(1, 0), Point(1)
(True, Point(x=1, y=0))
"""

from __future__ import annotations

import copy
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

__all__ = ["frozen", "record"]

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


@dataclass_transform(field_specifiers=(dataclasses.field,))
def record(cls: _T, /) -> _T:
    """Make ``cls`` a mutable, slotted dataclass, made as :func:`frozen` makes its classes."""
    return _make(cls, eq=True, mutable=True)


def _make(cls: _T, *, eq: bool, mutable: bool = False) -> _T:
    own = set(cls.__dict__)
    # Without a docstring, dataclass() writes one from inspect.signature(cls): with no __init__
    # yet, that is object's, parsed from its text signature by tokenize (whose one-time regex
    # compile is ~3% of a CLI command). A placeholder keeps it away; the real one is set below.
    undocumented = not cls.__doc__
    if undocumented:
        cls.__doc__ = cls.__name__
    made: Any = _plain(cls, _MUTABLE_PARAMS if mutable else _PARAMS)
    if made is None:  # anything unusual (a dataclass base, say): the stdlib does the work
        made = _with_stdlib(cls, mutable)
    fields = dataclasses.fields(made)
    methods: dict[str, Callable[..., Any]] = {"__init__": _first_init(made, fields)}
    if "__init__" not in own:
        type.__setattr__(made, "__signature__", _Signature(made, fields))
    shown = tuple(f.name for f in fields if f.repr)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({inner})"

    every = attrgetter(*(f.name for f in fields)) if fields else _nothing

    def __getstate__(self: Any) -> Any:
        return every(self)

    def __setstate__(self: Any, state: Any) -> None:
        values = state if len(fields) != 1 else (state,)
        for field, value in zip(fields, values, strict=True):
            object.__setattr__(self, field.name, value)

    methods.update(__repr__=__repr__, __getstate__=__getstate__, __setstate__=__setstate__)
    if not mutable:
        methods.update(_guards(made, fields))
    if eq:
        methods.update(_equality(fields, hashable=not mutable))
        if mutable and "__hash__" not in own:
            made.__hash__ = None  # as a mutable dataclass with eq
    for name, method in methods.items():
        if name in own:
            continue
        method.__qualname__ = f"{made.__qualname__}.{name}"
        setattr(made, name, method)
    if undocumented:  # what dataclass() would have written: the class's call signature
        made.__doc__ = made.__name__ + str(inspect.signature(made)).replace(" -> None", "")
    return made  # type: ignore[no-any-return]


def _with_stdlib(cls: type, mutable: bool) -> Any:
    """``dataclass(cls, init=False, repr=False, eq=False, slots=True)``, frozen as its dataclass
    bases are (the stdlib refuses a mix): a ``@frozen`` class may derive from a ``@frozen`` one or
    from a plain dataclass, a ``@record`` not from a frozen one."""
    frozen_base = any(
        vars(base)["__dataclass_params__"].frozen
        for base in cls.__mro__[1:]
        if "__dataclass_params__" in vars(base)
    )
    if mutable and frozen_base:
        raise TypeError(f"cannot inherit non-frozen dataclass from a frozen one: {cls.__name__}")
    made: Any = dataclasses.dataclass(
        cls, init=False, repr=False, eq=False, slots=True, frozen=frozen_base
    )
    made.__dataclass_params__.frozen = not mutable
    return made


@dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)
class _Params:
    """Holds the ``__dataclass_params__`` every plain ``@frozen`` class shares."""


_PARAMS = _Params.__dataclass_params__  # type: ignore[attr-defined]
_MUTABLE_PARAMS = copy.copy(_PARAMS)
_PARAMS.frozen = True
_FIELD = getattr(dataclasses, "_FIELD", None)
_MUTABLE = (list, dict, set)


def _plain(cls: type, params: Any) -> type | None:
    """What ``dataclass(cls, init=False, repr=False, eq=False, slots=True)`` makes, for the plain
    classes stepstone writes (string annotations under ``from __future__ import annotations``, no
    dataclass base, no ``ClassVar``/``InitVar``/``KW_ONLY``, no metaclass, no ``__slots__``):
    the fields, the parameters, ``__match_args__`` and the slotted class, without the stdlib's
    per-field checks (a regular expression per annotation) that cost as much again as
    ``__init__``'s compile. None for any other class: the stdlib then makes it."""
    if _FIELD is None or type(cls) is not type or "__slots__" in cls.__dict__:
        return None
    if any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:]):
        return None
    # the class's own dict, as under `from __future__ import annotations` (inspect's is slower)
    annotations: dict[str, Any] | None = cls.__dict__.get("__annotations__")  # noqa: RUF063
    if annotations is None:
        annotations = inspect.get_annotations(cls)
    fields: dict[str, dataclasses.Field[Any]] = {}
    for name, kind in annotations.items():
        if kind.__class__ is not str or "ClassVar" in kind or "InitVar" in kind:
            return None
        if "KW_ONLY" in kind:
            return None
        default = cls.__dict__.get(name, MISSING)
        if isinstance(default, dataclasses.Field):
            made = default
            if made.kw_only is True:
                return None
        elif isinstance(default, _MUTABLE):
            return None  # the stdlib's ValueError names it
        else:
            made = dataclasses.field(default=default)
        if made.default is not MISSING and made.default_factory is not MISSING:
            return None
        made.name, made.type, made._field_type = name, kind, _FIELD  # type: ignore[attr-defined]
        made.kw_only = False
        fields[name] = made
    body = {k: v for k, v in cls.__dict__.items() if k not in fields}
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    body["__slots__"] = tuple(fields)
    body["__dataclass_fields__"] = fields
    body["__dataclass_params__"] = params
    body["__match_args__"] = tuple(name for name, f in fields.items() if f.init)
    made_cls = type(cls.__name__, cls.__bases__, body)
    made_cls.__qualname__ = cls.__qualname__
    return made_cls


def _nothing(_: object) -> tuple[()]:
    return ()


def _first_init(cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> Callable[..., None]:
    """``__init__`` until the class is first instantiated: it compiles the real one (see
    :func:`_init`), puts it on the class and calls it. Compiling costs ~0.2 ms a class, and a
    command instantiates few of the classes it imports (``stepstone run -f``: 24 of 87). The
    class's signature is its ``__signature__`` (:class:`_Signature`), the same before and
    after."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init = _init(cls, fields)
        init.__qualname__ = f"{cls.__qualname__}.__init__"
        type.__setattr__(cls, "__init__", init)
        init(self, *args, **kwargs)

    return __init__


class _Signature:
    """A ``@frozen`` class's ``__signature__``: what ``inspect.signature(cls)`` (and ``help``)
    shows, built on first use. Building the parameters of the 88 classes a ``stepstone run -f``
    process imports was 2% of its instructions, for a signature nobody reads. A subclass does
    not inherit it: its own ``__init__`` decides."""

    __slots__ = ("_cls", "_fields", "_made")

    def __init__(self, cls: type, fields: tuple[dataclasses.Field[Any], ...]) -> None:
        self._cls, self._fields = cls, fields
        self._made: inspect.Signature | None = None

    def __get__(self, obj: object, owner: type | None = None) -> inspect.Signature:
        if owner is not self._cls:
            raise AttributeError("__signature__")
        if self._made is None:
            kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
            params = []
            for field in self._fields:
                if not field.init:
                    continue
                default: Any = inspect.Parameter.empty
                if field.default_factory is not MISSING:
                    default = MISSING  # as in the compiled one: the factory runs when left out
                elif field.default is not MISSING:
                    default = field.default
                params.append(inspect.Parameter(field.name, kind, default=default))
            self._made = inspect.Signature(params)
        return self._made


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


def _guards(made: Any, fields: tuple[dataclasses.Field[Any], ...]) -> dict[str, Callable[..., Any]]:
    """A frozen class's ``__setattr__`` and ``__delattr__``: fields cannot change (a subclass
    that is not a dataclass may still set attributes of its own)."""
    names = frozenset(f.name for f in fields)

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is made or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(made, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is made or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(made, self).__delattr__(name)

    return {"__setattr__": __setattr__, "__delattr__": __delattr__}


def _equality(
    fields: tuple[dataclasses.Field[Any], ...], *, hashable: bool
) -> dict[str, Callable[..., Any]]:
    compared = [f.name for f in fields if f.compare]
    hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
    key = attrgetter(*compared) if compared else _nothing
    hash_key = attrgetter(*hashed) if hashed else _nothing

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    if not hashable:
        return {"__eq__": __eq__}

    def __hash__(self: Any) -> int:
        return hash(hash_key(self))

    return {"__eq__": __eq__, "__hash__": __hash__}
