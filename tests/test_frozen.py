"""``@frozen`` behaves as ``@dataclass(frozen=True, slots=True)`` does, class by class."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
