"""JSON Schema for payloads: made from annotations, checked with jsonschema-rs and jsonschema.

``schema_for(tp)`` turns an annotation into the JSON Schema (Draft 2020-12) of the JSON the codec
writes for it; it is stored with a wait so that ``signal()`` can reject a malformed payload in any
process, without the workflow's code. Pydantic models get Pydantic's own schema (their ``$defs``
hoisted to the root, where ``$ref`` finds them); the rest (dataclasses, primitives, containers,
``Optional``, ``Literal``, enums, datetimes ...) is written here, because the codec, not Pydantic,
decides how those are encoded (a ``timedelta`` is seconds, a dataclass refuses unknown fields).

``first_problem(value, schema)`` returns the first violation as ``"$.path: what is wrong"``. Every
keyword of Draft 2020-12 is enforced. Two validators, each imported where first needed, never by
``import stepstone``, and each schema checked and compiled once by each:

- ``jsonschema-rs`` (Rust; ~10 ms to import, a schema compiles in ~0.2 ms) says whether a schema is
  valid and whether a value conforms: a CLI process whose schemas and values all conform never
  imports more. It is trusted only where it decides as ``jsonschema`` does: schemas without
  ``format``, ``pattern``, ``multipleOf``, content keywords, ``$schema``/``$id``/``$vocabulary``
  (regex dialects, float division and format checks differ), values of plain JSON types only
  (it takes a tuple for an array), and no reference it cannot resolve offline.
- ``jsonschema`` (Python; ~40-80 ms to import) explains every problem (``best_match``, stepstone's
  wording below) and decides wherever ``jsonschema-rs`` is not trusted. The messages therefore are
  ``jsonschema``'s, whichever validator said no first.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import types
import typing
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from stepstone.core.codec import is_pydantic_model
from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema import FormatChecker
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["check_schema", "first_problem", "schema_for"]

JSONSchema = dict[str, Any]


# --- checking values ---------------------------------------------------------------------------


def first_problem(value: object, schema: JSONSchema) -> str | None:
    """The first way ``value`` (plain JSON) violates ``schema``, or ``None`` when it conforms.

    >>> first_problem({"approved": "yes"}, {"properties": {"approved": {"type": "boolean"}}})
    '$.approved: expected boolean, got string'

    Raises :class:`InvalidArgument` when ``schema`` itself is not a valid JSON Schema.
    """
    trivial = _type_only(schema)
    if trivial is not None and _plain_json(value) and trivial(value):
        return None
    text = _schema_key(schema)
    fast = _fast(text)
    if fast is not None and _plain_json(value):
        try:
            if fast.is_valid(value):
                return None
        except ValueError:  # a value jsonschema-rs cannot convert: jsonschema decides
            pass
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    validator = _compiled(text)
    try:
        error = best_match(validator.iter_errors(typing.cast(Any, value)))
    except Unresolvable as exc:
        ref = getattr(exc, "ref", str(exc))
        raise InvalidArgument(
            f"JSON Schema reference {ref!r} cannot be resolved (only references inside the"
            " schema are followed)"
        ) from None
    return None if error is None else f"{_json_path(error.absolute_path)}: {_describe(error)}"


def check_schema(schema: JSONSchema) -> None:
    """Raise :class:`InvalidArgument`, naming the bad part, unless ``schema`` is Draft 2020-12."""
    if _type_only(schema) is not None:
        return
    text = _schema_key(schema)
    if _fast(text) is None:
        _compiled(text)


def _schema_key(schema: JSONSchema) -> str:
    """The canonical text of ``schema``: equal schemas share one compiled validator."""
    try:
        return json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"a JSON Schema must be plain JSON: {exc}") from None


# A schema of one ``type`` name (with a title or description at most), the commonest there is
# (``inputs: {type: object}``), is decided here: importing jsonschema-rs for it would be 3% of a
# short ``stepstone run -f``. Only a value that conforms is decided; a problem is still worded
# by jsonschema.
_TYPE_CHECKS: dict[str, Callable[[object], bool]] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "number": lambda v: type(v) is int or type(v) is float,
    "integer": lambda v: type(v) is int or (type(v) is float and v.is_integer()),
}


def _type_only(schema: JSONSchema) -> Callable[[object], bool] | None:
    """The check of a schema that says only ``type: NAME`` (or nothing), else ``None``."""
    if not isinstance(schema, dict) or not schema.keys() <= {"type", "title", "description"}:
        return None
    if not all(isinstance(schema.get(k, ""), str) for k in ("title", "description")):
        return None
    kind = schema.get("type")
    if kind is None:
        return _anything
    return _TYPE_CHECKS.get(kind) if isinstance(kind, str) else None


def _anything(_: object) -> bool:
    return True


# Keys where jsonschema-rs may accept what jsonschema refuses (a match anywhere, even a property
# of that name, only sends the schema to jsonschema).
_UNTRUSTED_KEYS = re.compile(
    r'"(?:format|pattern|patternProperties|multipleOf|contentEncoding|contentMediaType'
    r'|contentSchema|\$schema|\$id|\$vocabulary)":'
)


@lru_cache(maxsize=256)
def _fast(schema_text: str) -> jsonschema_rs.Validator | None:
    """jsonschema-rs's validator of a valid schema it decides as jsonschema does, else ``None``."""
    if _UNTRUSTED_KEYS.search(schema_text):
        return None
    import jsonschema_rs

    schema = json.loads(schema_text)
    try:
        if not jsonschema_rs.meta.is_valid(schema):
            return None
        # offline: a reference outside the schema fails here, and jsonschema says so
        return jsonschema_rs.Draft202012Validator(schema, offline=True)
    except (ValueError, jsonschema_rs.ReferencingError):
        return None


_JSON_SCALARS = (str, int, float, bool, type(None))


def _plain_json(value: object) -> bool:
    """Whether ``value`` is made of dicts with str keys, lists and JSON scalars only."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if kind is list:
        return all(_plain_json(item) for item in typing.cast(list[object], value))
    if kind is dict:
        items = typing.cast(dict[object, object], value).items()
        return all(type(k) is str and _plain_json(v) for k, v in items)
    return False


@lru_cache(maxsize=256)
def _compiled(schema_text: str) -> Validator:
    """Check one schema and build its validator, once (a failure is not cached)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from referencing import Registry

    schema = json.loads(schema_text)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = _json_path(exc.absolute_path)
        raise InvalidArgument(
            f"not a valid JSON Schema (Draft 2020-12): at {where}: {exc.message}"
        ) from None
    # An empty registry: a payload check never fetches a remote "$ref" over the network.
    return Draft202012Validator(schema, registry=Registry(), format_checker=_format_checker())


@lru_cache(maxsize=1)
def _format_checker() -> FormatChecker:
    """jsonschema's format checks, with times read the way the codec writes them.

    The codec writes ``datetime.isoformat()``, which may have no UTC offset (naive datetimes), so
    "date-time" and "time" are checked by Python's ISO parser instead of strict RFC 3339 (which
    jsonschema only checks when an optional package is installed).
    """
    from jsonschema import FormatChecker

    checker = FormatChecker()
    checker.checks("date-time", raises=ValueError)(_parses(datetime.fromisoformat))
    checker.checks("time", raises=ValueError)(_parses(time.fromisoformat))
    return checker


def _parses(parse: typing.Callable[[str], object]) -> typing.Callable[[object], bool]:
    def check(instance: object) -> bool:
        if isinstance(instance, str):
            parse(instance)
        return True  # a format says nothing about values of other types

    return check


def _json_path(parts: Iterable[str | int]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _describe(error: ValidationError) -> str:
    """Say what is wrong in stepstone's words for the common keywords, jsonschema's otherwise."""
    keyword, value = error.validator, error.instance
    expected: Any = error.validator_value
    if keyword == "type":
        names = expected if isinstance(expected, list) else [expected]
        return f"expected {' or '.join(names)}, got {_type_name(value)}"
    if keyword == "enum":
        return f"expected one of {expected!r}, got {value!r}"
    if keyword == "const":
        return f"expected {expected!r}, got {value!r}"
    if keyword in ("anyOf", "oneOf") and error.context:
        reasons = "; ".join(dict.fromkeys(_describe(e) for e in error.context if not e.path))
        if reasons:
            return f"matches none of the allowed forms ({reasons})"
    if keyword == "format":
        return f"{value!r} is not a valid {expected}"
    if keyword == "required" and isinstance(value, dict):
        missing = [name for name in expected if name not in value]
        return f"missing required property {missing[0]!r}"
    if keyword == "additionalProperties" and expected is False and isinstance(value, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = [key for key in value if key not in allowed]
        if extra and not (isinstance(error.schema, dict) and "patternProperties" in error.schema):
            return f"unexpected property {extra[0]!r}"
    return error.message


_TYPE_NAMES: tuple[tuple[str, type], ...] = (
    ("null", type(None)),
    ("boolean", bool),
    ("integer", int),
    ("number", float),
    ("string", str),
    ("array", list),
    ("object", dict),
)


def _type_name(value: object) -> str:
    """The JSON Schema type name of a plain JSON value."""
    for name, kind in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


# --- making schemas ----------------------------------------------------------------------------


def schema_for(tp: object) -> JSONSchema:
    """The JSON Schema that values of ``tp`` encode to, checked to be a valid schema.

    Made once per type; each call returns a fresh copy the caller may change.
    """
    try:
        text = _schema_text(tp)
    except TypeError:  # an unhashable annotation (Annotated metadata, say): not cached
        text = _schema_text.__wrapped__(tp)
    return typing.cast(JSONSchema, json.loads(text))


@lru_cache(maxsize=512)
def _schema_text(tp: object) -> str:
    if is_pydantic_model(tp):
        from pydantic import TypeAdapter

        schema = TypeAdapter[Any](typing.cast(Any, tp)).json_schema()
    else:
        models: dict[type, JSONSchema] = {}
        schema = _Schemas(models).of(tp)
        if models:
            schema["$defs"] = _pydantic_refs(models)
    check_schema(schema)
    return json.dumps(schema, separators=(",", ":"))


def _pydantic_refs(models: dict[type, JSONSchema]) -> JSONSchema:
    """Fill each model's placeholder with a ``$ref``; return the ``$defs`` they point into.

    All models are generated together so that two classes of one name get distinct entries.
    """
    from pydantic.json_schema import models_json_schema

    refs, top = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/$defs/{model}",
    )
    for model, placeholder in models.items():
        placeholder.update(refs[(model, "validation")])
    return dict(top.get("$defs", {}))


@frozen
class _Schemas:
    """One walk over an annotation; Pydantic models found on the way are collected in ``models``
    (each with the placeholder dict its ``$ref`` goes into)."""

    models: dict[type, JSONSchema]

    def of(self, tp: object) -> JSONSchema:
        if tp is None or tp is type(None):
            return {"type": "null"}
        if tp in (Any, object) or isinstance(tp, typing.TypeVar | str):
            return {}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            return self.of(args[0])
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.of(a) for a in args]}
        if origin is typing.Literal:
            return {"enum": [a.value if isinstance(a, enum.Enum) else a for a in args]}
        if origin in (list, set, frozenset) or (
            origin is tuple and len(args) == 2 and args[1] is ...
        ):
            return {"type": "array", "items": self.of(args[0])} if args else {"type": "array"}
        if origin is tuple:
            return {
                "type": "array",
                "prefixItems": [self.of(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of(args[1]) if args else {}}
        if not isinstance(tp, type):
            return {}
        return self.of_class(tp)

    def of_class(self, tp: type) -> JSONSchema:
        simple = _simple().get(tp)
        if simple is not None:
            return dict(simple)
        if is_pydantic_model(tp):
            return self.models.setdefault(tp, {})
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
                "properties": {f.name: self.of(hints.get(f.name, Any)) for f in fields},
                "required": required,
                "additionalProperties": False,
            }
        if issubclass(tp, enum.Enum):
            return {"title": tp.__name__, "enum": [m.value for m in tp]}
        for base, schema in _simple().items():
            if issubclass(tp, base):
                return dict(schema)
        return {}


@lru_cache(maxsize=1)
def _simple() -> dict[type, JSONSchema]:
    """The schema of each plain class (uuid and decimal imported here: ~2 ms a CLI process
    that never makes a schema need not pay)."""
    import uuid
    from decimal import Decimal

    return {
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
