"""Library choices (issue 7): the codec vs msgspec vs Pydantic's TypeAdapter; jsonschema's cost.

Run ``.venv/bin/python bench/codec_choice.py [--runs 3]`` (with msgspec installed in the venv:
``.venv/bin/pip install msgspec``): it prints the markdown tables of the
"Library choices (issue 7)" section of bench/RESULTS.md (per-value encode+decode cost on the
shapes a step returns, import costs from ``python -X importtime``, what each candidate does to the
values the codec's tests round-trip, and what a JSON Schema check costs, compiled once or not).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import statistics
import subprocess
import sys
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import PurePosixPath
from typing import Any, Literal

import msgspec
import pydantic

from stepstone.core import codec
from stepstone.core.jsonschema import first_problem, schema_for


@dataclasses.dataclass
class Line:
    sku: str
    qty: int
    price: float


@dataclasses.dataclass
class Order:
    order_id: str
    lines: list[Line]
    note: str | None = None


class Invoice(pydantic.BaseModel):
    invoice_id: str
    total: float
    paid_at: datetime | None = None
    lines: list[dict[str, int]] = []


class Mood(enum.Enum):
    HAPPY = "happy"


LINES = [Line("sku-1", 2, 9.5), Line("sku-2", 1, 3.25), Line("sku-3", 5, 1.0)]
SHAPES: list[tuple[str, Any, Any]] = [
    ("small dict", {"id": 7, "name": "ana", "ok": True, "tags": ["a", "b"]}, dict[str, Any]),
    ("dataclass, nested list", Order("o-1", LINES), Order),
    ("Pydantic model", Invoice(invoice_id="i-1", total=12.5, lines=[{"a": 1}]), Invoice),
    ("datetime", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime),
    ("100 dataclasses", [Order(f"o-{i}", LINES[:1]) for i in range(100)], list[Order]),
]

# --- the three codecs, each with its per-type objects built once (as the codec caches decoders)


def stepstone_round_trip(value: Any, tp: Any) -> Any:
    return codec.decode(codec.encode(value, "bench"), tp, "bench")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, pydantic.BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, PurePosixPath):
        return str(obj)
    raise NotImplementedError(type(obj).__name__)


def _dec_hook(tp: type, obj: Any) -> Any:
    if issubclass(tp, pydantic.BaseModel):
        return tp.model_validate(obj)
    if issubclass(tp, PurePosixPath):
        return tp(obj)
    raise NotImplementedError(tp.__name__)


_MSGSPEC_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)


@cache
def _msgspec_decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(tp, dec_hook=_dec_hook)


def msgspec_round_trip(value: Any, tp: Any) -> Any:
    return _msgspec_decoder(tp).decode(_MSGSPEC_ENCODER.encode(value))


@cache
def _adapter(tp: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(tp)


def pydantic_round_trip(value: Any, tp: Any) -> Any:
    adapter = _adapter(tp)
    return adapter.validate_json(adapter.dump_json(value))


CODECS: dict[str, Callable[[Any, Any], Any]] = {
    "stepstone codec": stepstone_round_trip,
    "msgspec": msgspec_round_trip,
    "Pydantic TypeAdapter": pydantic_round_trip,
}


def per_value_us(fn: Callable[[Any, Any], Any], value: Any, tp: Any) -> tuple[float, float, float]:
    """Median (min, max) µs of one encode+decode over 7 timed batches."""
    fn(value, tp)  # build the per-type objects outside the timing
    timer = timeit.Timer(lambda: fn(value, tp))
    number, _ = timer.autorange()
    samples = [t / number * 1e6 for t in timer.repeat(repeat=7, number=number)]
    return statistics.median(samples), min(samples), max(samples)


# --- import cost: python -X importtime, the modules a statement adds over a baseline ----------


def import_ms(statement: str, baseline: str) -> float:
    """Milliseconds of import self-time of the modules ``statement`` loads beyond ``baseline``."""

    def modules(code: str) -> dict[str, int]:
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        out = {}
        for line in err.splitlines():
            if line.startswith("import time:") and "|" in line and "self" not in line:
                self_us, _, name = (part.strip() for part in line[12:].split("|"))
                out[name] = int(self_us)
        return out

    before = modules(baseline)
    return sum(us for name, us in modules(statement).items() if name not in before) / 1000


CLIENT = "from stepstone import Client, Worker, WorkflowContext, open_store"


def wall_ms(statement: str, baseline: str) -> float:
    """Wall milliseconds of ``statement`` in a fresh process after ``baseline`` (no importtime)."""
    code = (
        f"{baseline}\nimport time\nt = time.perf_counter()\n{statement}\n"
        "print((time.perf_counter() - t) * 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


IMPORTS = [
    ("import stepstone", "import stepstone", "pass"),
    ("the client (codec and core.jsonschema included)", CLIENT, "pass"),
    ("msgspec (+ msgspec.json)", "import stepstone, msgspec.json", "import stepstone"),
    (
        "pydantic TypeAdapter",
        "import stepstone; from pydantic import TypeAdapter",
        "import stepstone",
    ),
    ("jsonschema", "import stepstone, jsonschema", "import stepstone"),
]

# --- behaviour: the values tests/test_codec.py round-trips ------------------------------------

VALUES: list[tuple[str, Any, Any]] = [
    ("tuple[int, str]", (1, "a"), tuple[int, str]),
    ("set[str]", {"b", "a"}, set[str]),
    ("dict[int, float]", {1: 0.5}, dict[int, float]),
    ("datetime (UTC)", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime),
    ("date", date(2026, 1, 2), date),
    ("timedelta", timedelta(seconds=90), timedelta),
    ("enum", Mood.HAPPY, Mood),
    ("UUID", uuid.UUID(int=7), uuid.UUID),
    ("Decimal", Decimal("0.10"), Decimal),
    ("bytes", b"\x00\x01", bytes),
    ("path", PurePosixPath("/a/b"), PurePosixPath),
    ("Literal", "sad", Literal["happy", "sad"]),
    ("Pydantic model", SHAPES[2][1], Invoice),
    ("union of two dataclasses", LINES[0], Order | Line),
]


def behaviour(label: str, value: Any, tp: Any) -> str:
    """Round trip, and whether the candidate reads what the codec has already stored."""
    try:
        back = CODECS[label](value, tp)
    except Exception as exc:
        return f"fails: {type(exc).__name__}"
    same = "ok" if back == value else f"differs ({back!r:.30})"
    try:
        old = DECODERS[label](codec.encode(value, "bench"), tp)
    except Exception as exc:
        return f"{same}; stored journal: {type(exc).__name__}"
    return same if old == value else f"{same}; stored journal read as {old!r:.30}"


def stepstone_decode_stored(text: str, tp: Any) -> Any:
    return codec.decode(text, tp)


def msgspec_decode_stored(text: str, tp: Any) -> Any:
    return _msgspec_decoder(tp).decode(text)


def pydantic_decode_stored(text: str, tp: Any) -> Any:
    return _adapter(tp).validate_json(text)


DECODERS: dict[str, Callable[[str, Any], Any]] = {
    "stepstone codec": stepstone_decode_stored,
    "msgspec": msgspec_decode_stored,
    "Pydantic TypeAdapter": pydantic_decode_stored,
}


@dataclasses.dataclass
class Priced:
    items: list[Line]


def error_texts() -> dict[str, str]:
    bad = '{"items": [{"sku": "a", "qty": 1, "price": 1}, {"sku": "b", "qty": 1, "price": 2},'
    bad += ' {"sku": "c", "qty": 1, "price": "x"}]}'
    out = {}
    for label, decode in DECODERS.items():
        try:
            decode(bad, Priced)
        except Exception as exc:
            out[label] = " ".join(str(exc).split())[:90]
    return out


# --- jsonschema: check cost, compiled once vs compiled per check -------------------------------


def schema_costs() -> list[tuple[str, float]]:
    from jsonschema import Draft202012Validator

    schema = schema_for(Order)
    payload = json.loads(codec.encode(Order("o-1", LINES), "bench"))
    first_problem(payload, schema)

    def uncached() -> None:
        Draft202012Validator.check_schema(schema)
        Draft202012Validator(schema).is_valid(payload)

    compiled = Draft202012Validator(schema)
    bad = {**payload, "lines": [{**payload["lines"][0], "qty": "2"}]}
    rows = []
    for label, fn in (
        (
            "canonical text of the schema (the cache key)",
            lambda: json.dumps(schema, sort_keys=True, separators=(",", ":")),
        ),
        (
            "first_problem (compiled once, cached by canonical text)",
            lambda: first_problem(payload, schema),
        ),
        ("first_problem, a payload with one bad field", lambda: first_problem(bad, schema)),
        ("compiled validator alone (is_valid)", lambda: compiled.is_valid(payload)),
        ("check_schema + compile + validate, every time", uncached),
        ("schema_for(Order) (cached per type)", lambda: schema_for(Order)),
    ):
        timer = timeit.Timer(fn)
        number, _ = timer.autorange()
        rows.append((label, statistics.median(t / number * 1e6 for t in timer.repeat(5, number))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="import-time runs per statement")
    args = parser.parse_args()
    print(
        f"Python {sys.version.split()[0]}, msgspec {msgspec.__version__}, "
        f"pydantic {pydantic.VERSION}\n"
    )
    print("| shape | " + " | ".join(CODECS) + " |")
    print("|---|" + "---|" * len(CODECS))
    for label, value, tp in SHAPES:
        cells = []
        for fn in CODECS.values():
            try:
                med, lo, hi = per_value_us(fn, value, tp)
                cells.append(f"{med:,.1f} ({lo:,.1f}-{hi:,.1f})")
            except Exception as exc:
                cells.append(f"fails: {type(exc).__name__}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\n| import, ms (median of {args.runs}, min-max) | -X importtime | wall |")
    print("|---|---|---|")
    for label, statement, baseline in IMPORTS:
        cells = []
        for measure in (import_ms, wall_ms):
            runs = [measure(statement, baseline) for _ in range(args.runs)]
            cells.append(f"{statistics.median(runs):.1f} ({min(runs):.1f}-{max(runs):.1f})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n| value | " + " | ".join(CODECS) + " |")
    print("|---|" + "---|" * len(CODECS))
    for label, value, tp in VALUES:
        cells = [behaviour(c, value, tp) for c in CODECS]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n| error for a bad `$.items[2].price` | text |\n|---|---|")
    for label, text in error_texts().items():
        print(f"| {label} | `{text}` |")
    print("\n| JSON Schema check of an `Order` payload | µs |\n|---|---|")
    for label, us in schema_costs():
        print(f"| {label} | {us:,.1f} |")


if __name__ == "__main__":
    main()
