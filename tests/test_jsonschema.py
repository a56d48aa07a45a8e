"""JSON Schema: every Draft 2020-12 keyword enforced, bad schemas refused, compiled once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from typing import Any

import pydantic
import pytest

from stepstone import (
    AsyncClient,
    InvalidArgument,
    RunFailed,
    SignalPayloadError,
    WorkflowContext,
    workflow,
)
from stepstone.core import jsonschema
from stepstone.core.jsonschema import check_schema, first_problem, schema_for
from stepstone.core.model import RunState
from tests.test_waits import wait_for_state

# Each row: a schema, a payload that breaks it, what the problem says, a payload that fits.
# The hand-written validator before jsonschema ignored every one of these keywords.
KEYWORDS: list[tuple[Any, Any, str, Any]] = [
    (
        {"properties": {"n": {"multipleOf": 5}}},
        {"n": 7},
        "$.n: 7 is not a multiple of 5",
        {"n": 10},
    ),
    (
        {"properties": {"tags": {"uniqueItems": True}}},
        {"tags": ["a", "a"]},
        "$.tags: ['a', 'a'] has non-unique elements",
        {"tags": ["a", "b"]},
    ),
    (
        {"if": {"properties": {"kind": {"const": "card"}}}, "then": {"required": ["last4"]}},
        {"kind": "card"},
        "$: missing required property 'last4'",
        {"kind": "cash"},
    ),
    ({"not": {"type": "null"}}, None, "$: None should not be valid under", 0),
    (
        {"dependentRequired": {"card": ["expiry"]}},
        {"card": "4242"},
        "$: 'expiry' is a dependency of 'card'",
        {"card": "4242", "expiry": "12/30"},
    ),
    ({"contains": {"const": "admin"}}, ["user"], "$: ['user'] does not contain items", ["admin"]),
    (
        {"patternProperties": {"^x_": {"type": "integer"}}},
        {"x_a": "1"},
        "$.x_a: expected integer, got string",
        {"x_a": 1},
    ),
    ({"minProperties": 1}, {}, "$: {} should be non-empty", {"a": 1}),
    ({"propertyNames": {"maxLength": 3}}, {"long": 1}, "$: 'long' is too long", {"ok": 1}),
    (
        {"$defs": {"id": {"$anchor": "id", "type": "string"}}, "items": {"$ref": "#id"}},
        [1],
        "$[0]: expected string, got integer",
        ["a"],
    ),
    (
        {"properties": {"a": {}}, "unevaluatedProperties": False},
        {"a": 1, "b": 2},
        "$: Unevaluated properties are not allowed ('b' was unexpected)",
        {"a": 1},
    ),
]


@pytest.mark.parametrize(("schema", "bad", "problem", "good"), KEYWORDS)
def test_every_keyword_is_enforced(schema: Any, bad: Any, problem: str, good: Any) -> None:
    assert (first_problem(bad, schema) or "").startswith(problem)
    assert first_problem(good, schema) is None


def test_problems_name_the_path_first_in_stepstone_words() -> None:
    schema = {
        "type": "object",
        "properties": {"approved": {"type": "boolean"}, "at": {"format": "date-time"}},
        "required": ["approved"],
        "additionalProperties": False,
    }
    assert first_problem({"approved": "yes"}, schema) == "$.approved: expected boolean, got string"
    assert first_problem({}, schema) == "$: missing required property 'approved'"
    assert first_problem({"approved": True, "x": 1}, schema) == "$: unexpected property 'x'"
    # the codec writes naive datetimes without an offset: that is a valid date-time here
    assert first_problem({"approved": True, "at": "2026-01-02T03:04:05"}, schema) is None
    assert first_problem({"approved": True, "at": "soon"}, schema) == (
        "$.at: 'soon' is not a valid date-time"
    )
    assert first_problem("x", {"anyOf": [{"type": "integer"}, {"type": "null"}]}) == (
        "$: matches none of the allowed forms (expected integer, got string; "
        "expected null, got string)"
    )


class Item(pydantic.BaseModel):
    sku: str = pydantic.Field(pattern="^[A-Z]+$")
    qty: int = pydantic.Field(multiple_of=5)


class Order(pydantic.BaseModel):
    items: list[Item]
    tags: set[str] = set()


@dataclasses.dataclass
class Shipment:
    order: Order
    note: str | None = None


def test_pydantic_schemas_come_from_pydantic_and_their_refs_resolve() -> None:
    assert schema_for(Order) == pydantic.TypeAdapter(Order).json_schema()
    # A model inside a dataclass: its $defs are hoisted to the root, where "#/$defs/..." points.
    schema = schema_for(Shipment)
    assert set(schema["$defs"]) == {"Item", "Order"}
    good = {"order": {"items": [{"sku": "AB", "qty": 10}], "tags": ["x"]}}
    assert first_problem(good, schema) is None
    bad = {"order": {"items": [{"sku": "AB", "qty": 7}]}}
    assert first_problem(bad, schema) == "$.order.items[0].qty: 7 is not a multiple of 5"
    assert first_problem({"order": {"items": [{"sku": "ab", "qty": 5}]}}, schema) == (
        "$.order.items[0].sku: 'ab' does not match '^[A-Z]+$'"
    )
    assert first_problem(
        [good["order"], {"items": [], "tags": ["a", "a"]}], schema_for(list[Order])
    ) == ("$[1].tags: ['a', 'a'] has non-unique elements")
    assert first_problem({"order": good["order"], "extra": 1}, schema) == (
        "$: unexpected property 'extra'"
    )


class Broken(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(json_schema_extra={"type": "strin"})
    a: int


def test_an_invalid_schema_is_refused_naming_the_bad_part() -> None:
    with pytest.raises(InvalidArgument, match=r"not a valid JSON Schema .* at \$\.type: 'strin'"):
        schema_for(Broken)
    with pytest.raises(InvalidArgument, match=r"at \$\.properties\.a\.minimum: '3' is not of"):
        first_problem({"a": 4}, {"properties": {"a": {"minimum": "3"}}})
    with pytest.raises(InvalidArgument, match=r"at \$\.required"):
        check_schema({"required": "a"})
    with pytest.raises(InvalidArgument, match="must be plain JSON"):
        check_schema({"const": object()})
    # a reference outside the schema is never fetched over the network
    with pytest.raises(
        InvalidArgument, match=r"'https://example\.invalid/s\.json' cannot be resolved"
    ):
        first_problem({"a": 1}, {"properties": {"a": {"$ref": "https://example.invalid/s.json"}}})


def test_a_schema_is_compiled_once() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}}
    first_problem({"n": 1}, schema)
    misses = jsonschema._compiled.cache_info().misses
    for _ in range(3):  # equal schemas, even rebuilt, hit the same validator
        assert first_problem({"n": 1}, json.loads(json.dumps(schema))) is not None
    assert jsonschema._compiled.cache_info().misses == misses


def test_validators_and_pydantic_are_imported_at_the_first_check_only() -> None:
    code = (
        "import sys, stepstone.core.jsonschema as js\n"
        "names = ('jsonschema_rs', 'jsonschema', 'pydantic')\n"
        "print(*(n in sys.modules for n in names))\n"
        "js.first_problem(1, js.schema_for(int))\n"
        "print(*(n in sys.modules for n in names))\n"
        "js.first_problem(1, {'type': 'integer', 'minimum': 0})\n"
        "print(*(n in sys.modules for n in names))\n"
        "js.first_problem('1', js.schema_for(int))\n"
        "print(*(n in sys.modules for n in names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    # a type-only schema is decided in place; a conforming value needs jsonschema-rs only;
    # jsonschema comes to explain a problem
    assert out.splitlines() == [
        "False False False",
        "False False False",
        "True False False",
        "True True False",
    ]


@pytest.mark.parametrize(
    "kind", ["object", "array", "string", "boolean", "null", "number", "integer", None]
)
def test_a_type_only_schema_is_decided_as_jsonschema_decides(kind: str | None) -> None:
    import jsonschema as reference

    schema = {"title": "T"} if kind is None else {"type": kind, "description": "d"}
    for value in [None, True, False, 0, 1, 1.0, 1.5, -2.0, "s", "", [], [1], {}, {"a": 1}]:
        expected = reference.Draft202012Validator(schema).is_valid(value)
        assert (first_problem(value, schema) is None) is expected, (schema, value)


UNTRUSTED: list[tuple[Any, Any]] = [
    ({"type": "array"}, (1, 2)),  # jsonschema-rs takes a tuple for an array
    ({"multipleOf": 0.1}, 0.3),  # 0.3 / 0.1 is not a whole number in floats
    ({"format": "date-time"}, "soon"),  # jsonschema-rs takes formats as annotations
]


@pytest.mark.parametrize(("schema", "value"), UNTRUSTED)
def test_jsonschema_decides_where_the_fast_validator_could_disagree(
    schema: Any, value: Any
) -> None:
    import jsonschema as reference
    from referencing import Registry

    checker = jsonschema._format_checker()
    expected = reference.Draft202012Validator(
        schema, registry=Registry(), format_checker=checker
    ).is_valid(value)
    assert (first_problem(value, schema) is None) == expected


@workflow
async def packer(ctx: WorkflowContext) -> int:
    order = await ctx.wait_for_signal("order", schema=Order)
    return sum(item.qty for item in order.items)


async def test_a_signal_breaking_a_pydantic_constraint_is_rejected(
    client: AsyncClient, store: Any
) -> None:
    task = asyncio.create_task(client.run(packer, run_id="p1"))
    await wait_for_state(client, "p1", RunState.WAITING)
    sender = AsyncClient(store)  # another process: knows only the schema stored with the wait
    try:
        with pytest.raises(SignalPayloadError, match=r"\$\.items\[0\]\.qty: 7 is not a multiple"):
            await sender.signal("p1", "order", {"items": [{"sku": "A", "qty": 7}]})
        [refused] = await client.store.list_signals("p1")
        assert refused.rejected and refused.consumed_seq == 0
        await sender.signal("p1", "order", {"items": [{"sku": "A", "qty": 5}]})
    finally:
        await sender.close()
    assert await task == 5


@workflow
async def broken_wait(ctx: WorkflowContext) -> Any:
    return await ctx.wait_for_signal("x", schema=Broken)


async def test_a_wait_declaring_an_invalid_schema_fails_the_run_saying_so(
    client: AsyncClient,
) -> None:
    with pytest.raises(RunFailed, match=r"InvalidArgument: not a valid JSON Schema .* 'strin'"):
        await client.run(broken_wait, run_id="b1")
    assert (await client.get("b1")).state is RunState.FAILED
