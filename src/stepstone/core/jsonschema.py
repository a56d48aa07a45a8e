"""JSON Schema for payload types, and a small validator for the subset stepstone produces and reads.

``schema_for(tp)`` turns an annotation (dataclass, Pydantic model, primitives, containers,
``Optional``, ``Literal``, enums, datetimes) into a JSON Schema; it is stored with a wait so that
``signal()`` can reject a malformed payload in any process, without the workflow's code.
``first_problem(value, schema)`` returns the first violation as ``"$.path: what is wrong"``.
Supported keywords: type, enum, const, properties, required, additionalProperties, items,
prefixItems, min/maxItems, min/maxLength, pattern, minimum, maximum, exclusiveMinimum,
exclusiveMaximum, anyOf, oneOf, allOf, $ref (local), format (date-time, date, uuid).
Unknown keywords are ignored, as the JSON Schema specification asks.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from stepstone.core.codec import is_pydantic_model

__all__ = ["first_problem", "schema_for"]

JSONSchema = dict[str, Any]


def schema_for(tp: object) -> JSONSchema:
    """The JSON Schema that values of ``tp`` encode to."""
    if tp is None or tp is type(None):
        return {"type": "null"}
    if tp in (Any, object) or isinstance(tp, typing.TypeVar | str):
        return {}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return schema_for(args[0])
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [schema_for(a) for a in args]}
    if origin is typing.Literal:
        return {"enum": [a.value if isinstance(a, enum.Enum) else a for a in args]}
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is ...):
        return {"type": "array", "items": schema_for(args[0])} if args else {"type": "array"}
    if origin is tuple:
        return {
            "type": "array",
            "prefixItems": [schema_for(a) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin is dict:
        return {"type": "object", "additionalProperties": schema_for(args[1]) if args else {}}
    if not isinstance(tp, type):
        return {}
    simple = _SIMPLE.get(tp)
    if simple is not None:
        return dict(simple)
    if is_pydantic_model(tp):
        return dict(tp.model_json_schema())  # type: ignore[attr-defined]
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = [f for f in dataclasses.fields(tp) if f.init]
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        return {
            "title": tp.__name__,
            "type": "object",
            "properties": {f.name: schema_for(hints.get(f.name, Any)) for f in fields},
            "required": required,
            "additionalProperties": False,
        }
    if issubclass(tp, enum.Enum):
        return {"title": tp.__name__, "enum": [m.value for m in tp]}
    for base, schema in _SIMPLE.items():
        if issubclass(tp, base):
            return dict(schema)
    return {}


_SIMPLE: dict[type, JSONSchema] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    list: {"type": "array"},
    tuple: {"type": "array"},
    dict: {"type": "object"},
    datetime: {"type": "string", "format": "date-time"},
    date: {"type": "string", "format": "date"},
    time: {"type": "string"},
    timedelta: {"type": "number"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    Decimal: {"type": "string"},
    bytes: {"type": "string"},
}

_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
}


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    for name, kinds in _TYPES.items():
        if isinstance(value, kinds) and not (
            isinstance(value, bool) and name in ("integer", "number")
        ):
            return name
    return type(value).__name__


def _is_type(value: object, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(name, (object,)))


def first_problem(value: object, schema: JSONSchema, path: str = "$") -> str | None:
    """The first way ``value`` violates ``schema``, or ``None`` when it conforms."""
    return _check(value, schema, path, schema)


def _check(value: Any, schema: Any, path: str, root: JSONSchema) -> str | None:
    if schema is True or schema == {}:
        return None
    if schema is False:
        return f"{path}: not allowed here"
    if not isinstance(schema, dict):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve(ref, root)
        if target is None:
            return f"{path}: schema reference {ref!r} cannot be resolved"
        problem = _check(value, target, path, root)
        if problem:
            return problem
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, n) for n in names):
            return f"{path}: expected {' or '.join(names)}, got {_type_name(value)}"
    if "const" in schema and value != schema["const"]:
        return f"{path}: expected {schema['const']!r}, got {value!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: expected one of {schema['enum']!r}, got {value!r}"
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            results = [_check(value, s, path, root) for s in options]
            passing = sum(r is None for r in results)
            if passing == 0:
                reasons = "; ".join(filter(None, results))
                return f"{path}: matches none of the allowed forms ({reasons})"
            if key == "oneOf" and passing > 1:
                return f"{path}: matches more than one of the allowed forms"
    for sub in schema.get("allOf", []) or []:
        problem = _check(value, sub, path, root)
        if problem:
            return problem
    if isinstance(value, dict):
        problem = _check_object(value, schema, path, root)
        if problem:
            return problem
    elif isinstance(value, list):
        problem = _check_array(value, schema, path, root)
        if problem:
            return problem
    elif isinstance(value, str):
        problem = _check_string(value, schema, path)
        if problem:
            return problem
    elif isinstance(value, int | float) and not isinstance(value, bool):
        problem = _check_number(value, schema, path)
        if problem:
            return problem
    return None


def _check_object(
    value: dict[str, Any], schema: JSONSchema, path: str, root: JSONSchema
) -> str | None:
    for name in schema.get("required", []) or []:
        if name not in value:
            return f"{path}: missing required property {name!r}"
    properties = schema.get("properties", {}) or {}
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            problem = _check(item, properties[key], f"{path}.{key}", root)
        elif extra is False:
            return f"{path}: unexpected property {key!r}"
        else:
            problem = _check(item, extra, f"{path}.{key}", root)
        if problem:
            return problem
    return None


def _check_array(value: list[Any], schema: JSONSchema, path: str, root: JSONSchema) -> str | None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        return f"{path}: expected at least {schema['minItems']} items, got {len(value)}"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"{path}: expected at most {schema['maxItems']} items, got {len(value)}"
    prefix = schema.get("prefixItems", []) or []
    for i, item in enumerate(value):
        sub = prefix[i] if i < len(prefix) else schema.get("items", True)
        problem = _check(item, sub, f"{path}[{i}]", root)
        if problem:
            return problem
    return None


def _check_string(value: str, schema: JSONSchema, path: str) -> str | None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        return f"{path}: shorter than {schema['minLength']} characters"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"{path}: longer than {schema['maxLength']} characters"
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and re.search(pattern, value) is None:
        return f"{path}: does not match pattern {pattern!r}"
    fmt = schema.get("format")
    parse = _FORMATS.get(fmt) if isinstance(fmt, str) else None
    if parse is not None:
        try:
            parse(value)
        except ValueError:
            return f"{path}: {value!r} is not a valid {fmt}"
    return None


def _check_number(value: float, schema: JSONSchema, path: str) -> str | None:
    if "minimum" in schema and value < schema["minimum"]:
        return f"{path}: {value} is less than the minimum {schema['minimum']}"
    if "maximum" in schema and value > schema["maximum"]:
        return f"{path}: {value} is more than the maximum {schema['maximum']}"
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        return f"{path}: {value} must be more than {schema['exclusiveMinimum']}"
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        return f"{path}: {value} must be less than {schema['exclusiveMaximum']}"
    return None


_FORMATS: dict[str, typing.Callable[[str], object]] = {
    "date-time": lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")),
    "date": date.fromisoformat,
    "uuid": uuid.UUID,
}


def _resolve(ref: str, root: JSONSchema) -> Any:
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
