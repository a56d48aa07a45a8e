"""``@frozen`` behaves as ``@dataclass(frozen=True, slots=True)`` does, class by class."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from stepstone.core.frozen import frozen


def _pair(eq: bool = True) -> list[Callable[[type], Any]]:
    return [dataclass(frozen=True, slots=True, eq=eq), frozen(eq=eq)]


def _item_class() -> type:
    class Item:
        """An item."""

        name: str
        size: int = 1
        tags: tuple[str, ...] = ()
        notes: dict[str, str] = field(default_factory=dict, compare=False)
        label: str | None = field(default=None, hash=False)
        secret: str = field(default="", repr=False)

    return Item


# module level, so that pickle finds them by name
StdItem = dataclass(frozen=True, slots=True)(_item_class())
StdItem.__qualname__ = "StdItem"
Item = frozen(_item_class())
Item.__qualname__ = "Item"
StdIdentity = dataclass(frozen=True, slots=True, eq=False)(_item_class())
Identity = frozen(eq=False)(_item_class())


@frozen
class One:
    """One field."""

    value: tuple[int, int]


@frozen
class Empty:
    """No field."""


@pytest.mark.parametrize("cls", [StdItem, Item], ids=["stdlib", "frozen"])
def test_it_behaves_as_the_stdlib_frozen_slotted_dataclass(cls: Any) -> None:
    item = cls("a", 2, ("x",), {"n": "1"}, "l", "s")
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen
    assert [f.name for f in dataclasses.fields(cls)] == [
        "name",
        "size",
        "tags",
        "notes",
        "label",
        "secret",
    ]
    assert not hasattr(item, "__dict__")
    assert repr(item).endswith("Item(name='a', size=2, tags=('x',), notes={'n': '1'}, label='l')")
    assert item == cls("a", 2, ("x",), {}, "l", "s")  # notes is not compared
    assert item != cls("a", 3, ("x",), {"n": "1"}, "l", "s")
    assert item != ("a", 2)
    assert hash(item) == hash(cls("a", 2, ("x",), {}, "other", "s"))  # label is not hashed
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.size = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        del item.name
    with pytest.raises(TypeError):
        cls()
    assert cls("b").notes == {} and cls("b").notes is not cls("b").notes
    assert dataclasses.replace(item, size=5).size == 5
    assert dataclasses.asdict(cls("b"))["size"] == 1
    assert pickle.loads(pickle.dumps(item)) == item
    assert copy.deepcopy(item) == item and copy.copy(item) == item


@pytest.mark.parametrize("cls", [StdIdentity, Identity], ids=["stdlib", "frozen"])
def test_eq_false_keeps_identity(cls: Any) -> None:
    one, other = cls("a"), cls("a")
    assert one == one and one != other
    assert hash(one) == object.__hash__(one)


@pytest.mark.parametrize("deco", _pair(), ids=["stdlib", "frozen"])
def test_post_init_and_init_false_fields(deco: Callable[[type], Any]) -> None:
    class Checked:
        """Checked."""

        low: int
        high: int
        seen: list[int] = field(init=False, default_factory=list)

        def __post_init__(self) -> None:
            if self.low > self.high:
                raise ValueError(f"low {self.low} > high {self.high}")

    cls = deco(Checked)
    assert cls(1, 2).seen == []
    with pytest.raises(ValueError, match="low 3 > high 2"):
        cls(3, 2)
    with pytest.raises(TypeError):
        cls(1, 2, [])


@pytest.mark.parametrize("deco", _pair(), ids=["stdlib", "frozen"])
def test_a_method_the_class_defines_is_kept(deco: Callable[[type], Any]) -> None:
    class Shown:
        """Shown."""

        value: int

        def __repr__(self) -> str:
            return f"<{self.value}>"

    assert repr(deco(Shown)(3)) == "<3>"


def test_single_and_no_field_classes_pickle() -> None:
    assert pickle.loads(pickle.dumps(One((1, 2)))) == One((1, 2))
    assert pickle.loads(pickle.dumps(Empty())) == Empty()
    assert hash(Empty()) == hash(Empty())


def _shape(cls: Any) -> Any:
    keys = ("name", "type", "default", "init", "repr", "hash", "compare", "metadata", "kw_only")
    fields = [
        (tuple(getattr(f, k) for k in keys), f.default_factory is dataclasses.MISSING)
        for f in dataclasses.fields(cls)
    ]
    return fields, cls.__match_args__, cls.__slots__, cls.__dataclass_params__.frozen


def test_the_fast_path_makes_what_the_stdlib_makes() -> None:
    # Item is built without dataclass() (plain class, string annotations); the stdlib's twin
    # of the same class must have the same fields, match args and slots
    assert "__dataclass_fields__" in Item.__dict__
    assert _shape(Item) == _shape(StdItem)
    assert Item.__doc__ == "An item."
    assert Empty.__slots__ == () and Empty.__match_args__ == ()


def test_unusual_classes_go_through_the_stdlib() -> None:
    class Base:
        """A dataclass base."""

        x: int

    base = dataclass(Base)

    class Child(base):  # type: ignore[misc,valid-type]
        """Inherits a field."""

        y: int = 2

    child = frozen(Child)
    assert [f.name for f in dataclasses.fields(child)] == ["x", "y"]
    assert child(1) == child(1, 2) and repr(child(1)).endswith("Child(x=1, y=2)")

    class Counted:
        """With a class variable."""

        total: ClassVar[int] = 0
        n: int

    counted = frozen(Counted)
    assert [f.name for f in dataclasses.fields(counted)] == ["n"] and counted.total == 0

    class Shared:
        """A mutable default."""

        items: list[int] = []  # noqa: RUF012

    with pytest.raises(ValueError, match="mutable default"):
        frozen(Shared)


def test_an_undocumented_class_gets_its_signature_as_docstring() -> None:
    class Bare:
        x: int
        y: str = "a"

    assert frozen(Bare).__doc__ == "Bare(x, y='a')"


def test_init_is_compiled_at_the_first_instance_with_the_same_signature() -> None:
    class Late:
        """Not instantiated yet."""

        x: int
        y: int = 0
        z: list[int] = field(default_factory=list)

    cls: Any = frozen(Late)
    stub = cls.__init__
    before = inspect.signature(cls)
    assert str(before).startswith("(x, y=0, z=")
    assert cls(1) == cls(1, 0, [])
    assert cls.__init__ is not stub  # the compiled one took its place
    assert inspect.signature(cls) == before
    assert cls.__init__.__qualname__ == stub.__qualname__ == f"{cls.__qualname__}.__init__"
    with pytest.raises(TypeError):
        cls()


def test_the_signature_is_the_classs_own_not_a_subclasss() -> None:
    @frozen
    class Base:
        """Two fields."""

        a: int
        b: str = "x"

    class Child(Base):
        def __init__(self, only: int) -> None:
            super().__init__(only, "y")

    @frozen
    class Explicit:
        """An __init__ of its own."""

        a: int

        def __init__(self, given: str) -> None:
            object.__setattr__(self, "a", int(given))

    assert str(inspect.signature(Base)) == "(a, b='x')"
    assert str(inspect.signature(Child)) == "(only: 'int') -> 'None'"
    assert Child(3).b == "y"
    assert str(inspect.signature(Explicit)) == "(given: 'str') -> 'None'"
    assert Explicit("4").a == 4


def test_a_record_is_a_mutable_slotted_dataclass() -> None:
    from stepstone.core.frozen import record

    @record
    class Session:
        """A mutable one."""

        db: str | None
        verbose: int = 0
        notes: dict[str, int] = field(default_factory=dict)

    first = Session("a.db")
    first.verbose = 2
    first.notes["x"] = 1
    assert first == Session("a.db", 2, {"x": 1}) and first != Session("b.db", 2, {"x": 1})
    assert repr(first).endswith("<locals>.Session(db='a.db', verbose=2, notes={'x': 1})")
    assert Session("c").notes is not Session("c").notes
    assert Session.__hash__ is None
    with pytest.raises(TypeError, match="unhashable"):
        hash(first)
    with pytest.raises(AttributeError):
        first.other = 1  # type: ignore[attr-defined]  # slotted: no such field
    assert dataclasses.is_dataclass(first) and not Session.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert frozen(type("F", (), {"__annotations__": {"a": "int"}})).__dataclass_params__.frozen
    assert dataclasses.replace(first, db="d").db == "d"
    assert copy.deepcopy(first) == first and copy.deepcopy(first) is not first
    assert str(inspect.signature(Session)).startswith("(db, verbose=0, notes=")


@frozen
class _Base:
    """A frozen base."""

    a: int
    b: str = "x"


@frozen
class _Derived(_Base):
    """A frozen class derived from a frozen one: the base's fields first, then its own."""

    c: float = 1.5


def test_a_frozen_class_can_derive_from_a_frozen_class() -> None:
    from stepstone.core.frozen import record

    item = _Derived(1, "y", 2.5)
    assert (item.a, item.b, item.c) == (1, "y", 2.5) and _Derived(1) == _Derived(1, "x", 1.5)
    assert [f.name for f in dataclasses.fields(_Derived)] == ["a", "b", "c"]
    assert str(inspect.signature(_Derived)) == "(a, b='x', c=1.5)"
    assert repr(item) == "_Derived(a=1, b='y', c=2.5)"
    assert hash(item) == hash(_Derived(1, "y", 2.5)) and item != _Base(1, "y")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.c = 3.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.a = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(item)) == item
    with pytest.raises(TypeError, match="non-frozen"):  # as the stdlib refuses it

        @record
        class Mutable(_Base):
            """Mutable under a frozen base."""

            d: int = 0
