"""JSON codec for every value that crosses the store, decoded by type annotations.

Values are stored as plain JSON (never pickle): primitives, lists, tuples, sets, dicts, dataclasses,
Pydantic models, datetimes, dates, times, timedeltas (seconds), enums (their value), UUIDs,
Decimals (strings), paths and bytes (base64). Decoding is guided by the annotation of the place
the value goes back to (a step's return type, a workflow parameter), so a step annotated
``-> Order`` replays as an ``Order``. Without an annotation the plain JSON value comes back.

A value that cannot be encoded raises :class:`EncodeError` naming where it came from and the path
inside it; nothing is ever stored as its ``repr``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
import types
import typing
from collections import abc
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import PurePath
from typing import Any

from stepstone.errors import DecodeError, EncodeError

__all__ = ["decode", "decode_value", "encode", "is_pydantic_model", "surrogate_path", "to_jsonable"]

_NO_HINT = object()


def is_pydantic_model(tp: object) -> bool:
    """True for a Pydantic v2 model class, detected without importing Pydantic."""
    return isinstance(tp, type) and hasattr(tp, "model_validate") and hasattr(tp, "model_fields")


def _is_a(tp: type, module: str, name: str) -> bool:
    """Whether ``tp`` is (a subclass of) ``module.name``, without importing ``module``: no value
    of a class exists before its module is imported (uuid and decimal cost a CLI ~2 ms)."""
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None)
    return isinstance(cls, type) and issubclass(tp, cls)


def _default(obj: object) -> object:
    """``json.dumps`` hook: turn one non-JSON value into JSON-able parts (json recurses)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    tp = type(obj)
    if is_pydantic_model(tp):
        return obj.model_dump(mode="json")  # type: ignore[attr-defined]
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, PurePath) or _is_a(tp, "uuid", "UUID") or _is_a(tp, "decimal", "Decimal"):
        return str(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        import base64  # on use: a run that stores no bytes never imports it

        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, set | frozenset):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    raise TypeError(tp.__qualname__)


_dumps = json.JSONEncoder(
    default=_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def encode(value: object, where: str) -> str:
    """Encode ``value`` to JSON text. ``where`` ("step 'charge' #3 result") names it in errors."""
    if value is None:
        return "null"
    try:
        text: str = _dumps(value)
    except (TypeError, ValueError, OverflowError):
        path, type_name = _find_unencodable(value, "$")
        raise EncodeError(where, path, type_name, _hint_for(type_name)) from None
    except RecursionError:
        raise EncodeError(
            where,
            _deep_path(value),
            type(value).__qualname__,
            "it is nested too deeply: JSON values here may be at most a few hundred levels deep",
        ) from None
    if not text.isascii():  # lone surrogates pass json but no database accepts them
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise EncodeError(
                where,
                surrogate_path(value, "$") or "$",
                "str",
                "it holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text",
            ) from None
    return text


_AWAITABLES = ("StepCall", "JournalCall", "coroutine", "Task", "Future")


def _hint_for(type_name: str) -> str | None:
    if type_name in _AWAITABLES:
        return f"a {type_name} is an unawaited call: did you forget `await`?"
    return None


def _deep_path(value: object, limit: int = 6) -> str:
    """The first few levels of a too-deep value's path, then "..."."""
    path, node = "$", value
    for _ in range(limit):
        if isinstance(node, Mapping) and node:
            key = next(iter(node))
            path, node = f"{path}.{key}", node[key]
        elif isinstance(node, list | tuple) and node:
            path, node = f"{path}[0]", node[0]
        else:
            return path
    return path + "..."


def surrogate_path(value: object, path: str = "$") -> str | None:
    """The JSON path of the first string (or key) holding a lone surrogate, in a value that
    otherwise encodes (parsed JSON, or a value :func:`encode` turned into text)."""
    found, _ = _first_problem(value, path, strings=True)
    return found or None


def _utf8_ok(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def to_jsonable(value: object, where: str) -> Any:
    """The plain JSON value ``value`` encodes to (dicts, lists, strings, numbers, bools, None)."""
    return json.loads(encode(value, where))


def _find_unencodable(value: object, path: str) -> tuple[str, str]:
    """Walk ``value`` the way the encoder does and name the first part that fails."""
    return _first_problem(value, path, strings=False)


def _first_problem(value: object, path: str, *, strings: bool) -> tuple[str, str]:
    """(path, type name) of the first part of ``value`` no store can hold: a type JSON cannot
    encode, and with ``strings`` also a string or key holding a lone surrogate; ``_FINE`` if
    none."""
    if isinstance(value, str):
        return (path, "str") if strings and not _utf8_ok(value) else _FINE
    if value is None or isinstance(value, bool | int):
        return _FINE
    if isinstance(value, float):
        return _FINE if math.isfinite(value) else (path, f"float ({value!r} is not valid JSON)")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return f"{path} (a key)", type(key).__qualname__
            if strings and isinstance(key, str) and not _utf8_ok(key):
                return f"{path} (a key)", "str"
            found = _first_problem(item, f"{path}.{key}", strings=strings)
            if found[0]:
                return found
        return _FINE
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _first_problem(item, f"{path}[{i}]", strings=strings)
            if found[0]:
                return found
        return _FINE
    try:
        converted = _default(value)
    except TypeError:
        return path, type(value).__qualname__
    except Exception as exc:  # a model_dump that raises, for instance
        return path, f"{type(value).__qualname__} ({exc})"
    if converted is value:
        return path, type(value).__qualname__
    return _first_problem(converted, path, strings=strings)


_FINE = ("", "")


# --- decoding ------------------------------------------------------------------------------


def decode(text: str | None, tp: object = _NO_HINT, where: str = "value") -> Any:
    """Decode JSON ``text`` into ``tp`` (or into plain JSON values when no type is given)."""
    if text is None:
        return None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise DecodeError(where, "$", f"not valid JSON ({exc})") from None
    if tp is _NO_HINT:
        return raw
    return decode_value(raw, tp, where)


def decode_value(raw: Any, tp: object, where: str, path: str = "$") -> Any:
    """Convert the plain JSON value ``raw`` into ``tp``."""
    if tp is _NO_HINT or tp is Any or tp is object or tp is typing.Any:
        return raw
    return _decoder(tp)(raw, where, path)


_Decoder = Callable[[Any, str, str], Any]


def _passthrough(raw: Any, where: str, path: str) -> Any:
    return raw


@lru_cache(maxsize=1024)
def _decoder(tp: Any) -> _Decoder:
    """Build (once per type) the function that turns plain JSON into ``tp``."""
    if tp is None or tp is type(None):
        return _expect_none
    if isinstance(tp, typing.TypeVar) or tp in (Any, object):
        return _passthrough
    if isinstance(tp, str):  # an unresolved forward reference: keep the JSON value
        return _passthrough
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _decoder(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return _union_decoder(typing.get_args(tp))
    if origin is typing.Literal:
        return _literal_decoder(typing.get_args(tp))
    if origin in (list, set, frozenset) or origin in _ABSTRACT_SEQUENCES:
        return _sequence_decoder(origin, typing.get_args(tp))
    if origin is tuple:
        return _tuple_decoder(typing.get_args(tp))
    if origin in (dict,) or origin in _ABSTRACT_MAPPINGS:
        args = typing.get_args(tp)
        return _dict_decoder(args[0] if args else Any, args[1] if len(args) > 1 else Any)
    if origin is not None:  # another generic (e.g. a user generic): plain JSON
        return _passthrough
    if not isinstance(tp, type):
        return _passthrough
    if tp is bool:
        return _primitive_decoder(bool, (bool,))
    if tp is int:
        return _int_decoder
    if tp is float:
        return _float_decoder
    if tp is str:
        return _primitive_decoder(str, (str,))
    if tp in (list, tuple, set, frozenset):
        return _sequence_decoder(tp, ())
    if tp is dict:
        return _dict_decoder(Any, Any)
    if is_pydantic_model(tp):
        return _pydantic_decoder(tp)
    if dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp)
    if typing.is_typeddict(tp):
        return _dict_decoder(str, Any)
    if issubclass(tp, enum.Enum):
        return _converter(tp, tp)
    if issubclass(tp, datetime):
        return _converter(tp, tp.fromisoformat)
    if issubclass(tp, date):
        return _converter(tp, tp.fromisoformat)
    if issubclass(tp, time):
        return _converter(tp, tp.fromisoformat)
    if issubclass(tp, timedelta):
        return _converter(tp, lambda raw: timedelta(seconds=raw))
    if _is_a(tp, "uuid", "UUID"):
        return _converter(tp, tp)
    if _is_a(tp, "decimal", "Decimal"):
        return _converter(tp, lambda raw: tp(str(raw)))  # type: ignore[call-arg]
    if issubclass(tp, bytes):
        import base64

        return _converter(tp, lambda raw: tp(base64.b64decode(raw, validate=True)))
    if issubclass(tp, PurePath):
        return _converter(tp, tp)
    return _passthrough


_ABSTRACT_SEQUENCES = (abc.Sequence, abc.MutableSequence, abc.Set, abc.Iterable, abc.Collection)
_ABSTRACT_MAPPINGS = (abc.Mapping, abc.MutableMapping)


def _describe(raw: Any) -> str:
    return "null" if raw is None else type(raw).__name__


def _expect_none(raw: Any, where: str, path: str) -> None:
    if raw is not None:
        raise DecodeError(where, path, f"expected null, got {_describe(raw)}")


def _primitive_decoder(tp: type, accepted: tuple[type, ...]) -> _Decoder:
    def decode_primitive(raw: Any, where: str, path: str) -> Any:
        if isinstance(raw, accepted):
            return raw
        raise DecodeError(where, path, f"expected {tp.__name__}, got {_describe(raw)}")

    return decode_primitive


def _int_decoder(raw: Any, where: str, path: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    raise DecodeError(where, path, f"expected int, got {_describe(raw)}")


def _float_decoder(raw: Any, where: str, path: str) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    raise DecodeError(where, path, f"expected float, got {_describe(raw)}")


def _converter(tp: type, convert: Callable[[Any], Any]) -> _Decoder:
    def decode_converted(raw: Any, where: str, path: str) -> Any:
        if isinstance(raw, tp):
            return raw
        try:
            return convert(raw)
        except (TypeError, ValueError, ArithmeticError) as exc:  # decimal's InvalidOperation
            raise DecodeError(
                where, path, f"cannot make {tp.__name__} from {raw!r}: {exc}"
            ) from None

    return decode_converted


def _union_decoder(arms: tuple[Any, ...]) -> _Decoder:
    optional = type(None) in arms
    others = tuple(a for a in arms if a is not type(None))
    decoders = [_decoder(a) for a in others]

    def decode_union(raw: Any, where: str, path: str) -> Any:
        if raw is None and optional:
            return None
        problems = []
        for arm_decoder in decoders:
            try:
                return arm_decoder(raw, where, path)
            except DecodeError as exc:
                problems.append(exc.problem)
        raise DecodeError(where, path, "matches no member of the union: " + "; ".join(problems))

    return decode_union


def _literal_decoder(values: tuple[Any, ...]) -> _Decoder:
    def decode_literal(raw: Any, where: str, path: str) -> Any:
        for value in values:
            if raw == (value.value if isinstance(value, enum.Enum) else value):
                return value
        raise DecodeError(where, path, f"expected one of {list(values)!r}, got {raw!r}")

    return decode_literal


def _sequence_decoder(origin: Any, args: tuple[Any, ...]) -> _Decoder:
    item = _decoder(args[0]) if args else _passthrough
    make: Callable[[list[Any]], Any]
    if origin in (set, abc.Set):
        make = set
    elif origin is frozenset:
        make = frozenset
    elif origin is tuple:
        make = tuple
    else:
        make = list

    def decode_sequence(raw: Any, where: str, path: str) -> Any:
        if not isinstance(raw, list):
            raise DecodeError(where, path, f"expected a list, got {_describe(raw)}")
        return make([item(v, where, f"{path}[{i}]") for i, v in enumerate(raw)])

    return decode_sequence


def _tuple_decoder(args: tuple[Any, ...]) -> _Decoder:
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        return _sequence_decoder(tuple, args[:1])
    items = [_decoder(a) for a in args]

    def decode_tuple(raw: Any, where: str, path: str) -> tuple[Any, ...]:
        if not isinstance(raw, list) or len(raw) != len(items):
            raise DecodeError(where, path, f"expected a list of {len(items)} items, got {raw!r}")
        return tuple(
            d(v, where, f"{path}[{i}]") for i, (d, v) in enumerate(zip(items, raw, strict=True))
        )

    return decode_tuple


def _dict_decoder(key_tp: Any, value_tp: Any) -> _Decoder:
    key = _decoder(key_tp) if key_tp not in (str, Any) else None
    value = _decoder(value_tp)

    def decode_dict(raw: Any, where: str, path: str) -> dict[Any, Any]:
        if not isinstance(raw, dict):
            raise DecodeError(where, path, f"expected an object, got {_describe(raw)}")
        if key is None:
            return {k: value(v, where, f"{path}.{k}") for k, v in raw.items()}
        out = {}
        for k, v in raw.items():
            try:
                parsed = json.loads(k) if key_tp in (int, float, bool) else k
            except ValueError:
                parsed = k
            out[key(parsed, where, f"{path} (key {k!r})")] = value(v, where, f"{path}.{k}")
        return out

    return decode_dict


def _dataclass_decoder(tp: type) -> _Decoder:
    try:
        hints = typing.get_type_hints(tp)
    except Exception:
        hints = {}
    fields = [(f.name, f.init) for f in dataclasses.fields(tp)]

    def decode_dataclass(raw: Any, where: str, path: str) -> Any:
        if isinstance(raw, tp):
            return raw
        if not isinstance(raw, dict):
            raise DecodeError(
                where, path, f"expected an object for {tp.__name__}, got {_describe(raw)}"
            )
        kwargs = {}
        for name, init in fields:
            if init and name in raw:
                kwargs[name] = decode_value(
                    raw[name], hints.get(name, Any), where, f"{path}.{name}"
                )
        unknown = set(raw) - {n for n, _ in fields}
        if unknown:
            raise DecodeError(where, path, f"unknown field(s) for {tp.__name__}: {sorted(unknown)}")
        try:
            return tp(**kwargs)
        except TypeError as exc:
            raise DecodeError(where, path, f"cannot build {tp.__name__}: {exc}") from None

    return decode_dataclass


def _pydantic_decoder(tp: Any) -> _Decoder:
    def decode_model(raw: Any, where: str, path: str) -> Any:
        if isinstance(raw, tp):
            return raw
        try:
            return tp.model_validate(raw)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            first = str(exc).splitlines()
            raise DecodeError(where, path, " ".join(first[:3])) from None

    return decode_model
