"""The JSON codec and JSON Schema from types: round trips by annotation, clear failures."""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, Literal, Optional, TypedDict

import pydantic
import pytest

from stepstone import DecodeError, EncodeError
from stepstone.core.codec import decode, encode
from stepstone.core.jsonschema import first_problem, schema_for


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@dataclasses.dataclass
class Inner:
    when: datetime
    tags: set[str]


@dataclasses.dataclass
class Outer:
    name: str
    inner: Inner
    mood: Mood
    scores: dict[int, float]
    maybe: Optional[int] = None  # noqa: UP045 - the old spelling must work too
    data: bytes = b""


class Model(pydantic.BaseModel):
    id: uuid.UUID
    amount: Decimal
    items: list[Inner] = []


class TD(TypedDict):
    a: int


VALUES: list[tuple[Any, Any]] = [
    (None, type(None)),
    (3, int),
    (2.5, float),
    ("x", str),
    (True, bool),
    ([1, 2], list[int]),
    ((1, "a"), tuple[int, str]),
    ((1, 2, 3), tuple[int, ...]),
    ({"a", "b"}, set[str]),
    (frozenset({1}), frozenset[int]),
    ({"k": [1.5]}, dict[str, list[float]]),
    (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime),
    (date(2026, 1, 2), date),
    (timedelta(seconds=90), timedelta),
    (Mood.SAD, Mood),
    (uuid.UUID(int=7), uuid.UUID),
    (Decimal("0.10"), Decimal),
    (b"\x00\x01", bytes),
    (PurePosixPath("/a/b"), PurePosixPath),
    ("sad", Literal["happy", "sad"]),
    (5, int | str),
    ({"a": 1}, TD),
    (
        Outer("o", Inner(datetime(2026, 1, 1, tzinfo=UTC), {"t"}), Mood.HAPPY, {1: 0.5}, 3, b"z"),
        Outer,
    ),
    (Model(id=uuid.UUID(int=1), amount=Decimal("9.99"), items=[]), Model),
]


@pytest.mark.parametrize(("value", "tp"), VALUES)
def test_round_trip_by_annotation(value: Any, tp: Any) -> None:
    text = encode(value, "test")
    json.loads(text)  # plain JSON
    assert decode(text, tp, "test") == value


def test_without_annotation_plain_json_comes_back() -> None:
    assert decode(encode(Inner(datetime(2026, 1, 1, tzinfo=UTC), {"b", "a"}), "x")) == {
        "when": "2026-01-01T00:00:00+00:00",
        "tags": ["a", "b"],
    }


def test_unencodable_values_name_the_path() -> None:
    with pytest.raises(EncodeError) as info:
        encode({"a": [1, {"b": object()}]}, "step 'x' #2 result")
    assert info.value.path == "$.a[1].b" and info.value.type_name == "object"
    assert str(info.value).startswith("step 'x' #2 result: value at $.a[1].b of type object")
    with pytest.raises(EncodeError, match="nan"):
        encode([float("nan")], "x")
    with pytest.raises(EncodeError, match="a key"):
        encode({(1, 2): 3}, "x")


def test_decode_errors_name_the_path() -> None:
    with pytest.raises(DecodeError) as info:
        decode(
            '{"name": "o", "inner": {"when": "nope", "tags": []}, "mood": "happy", "scores": {}}',
            Outer,
        )
    assert info.value.path == "$.inner.when"
    with pytest.raises(DecodeError, match=r"\$\[1\]: expected int, got str"):
        decode('[1, "2"]', list[int])
    with pytest.raises(DecodeError, match="unknown field"):
        decode('{"when": "2026-01-01T00:00:00", "tags": [], "extra": 1}', Inner)
    with pytest.raises(DecodeError, match="not valid JSON"):
        decode("{", int)


def test_schema_for_dataclasses_and_validation() -> None:
    schema = schema_for(Outer)
    good = json.loads(encode(VALUES[-2][0], "x"))
    assert first_problem(good, schema) is None
    bad = dict(good, mood="meh")
    assert first_problem(bad, schema) == "$.mood: expected one of ['happy', 'sad'], got 'meh'"
    assert first_problem({**good, "inner": {"when": "x", "tags": []}}, schema) == (
        "$.inner.when: 'x' is not a valid date-time"
    )
    assert "missing required property 'name'" in (first_problem({}, schema) or "")
    assert (
        first_problem({"a": "1"}, schema_for(dict[str, int])) == "$.a: expected integer, got string"
    )
    assert first_problem(None, schema_for(Optional[int])) is None  # noqa: UP045
    assert (
        first_problem([1, "x"], schema_for(tuple[int, int])) == "$[1]: expected integer, got string"
    )


def test_pydantic_schema_with_refs_validates() -> None:
    schema = schema_for(Model)
    ok = json.loads(encode(Model(id=uuid.UUID(int=1), amount=Decimal(1), items=[]), "x"))
    assert first_problem(ok, schema) is None
    problem = first_problem(
        {"id": str(uuid.UUID(int=1)), "amount": "1", "items": [{"when": 3}]}, schema
    )
    assert problem is not None and problem.startswith("$.items[0]")
