"""The JSON forms in which every adapter stores errors and waits (one format for all dialects)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stepstone.core.model import ErrorInfo, Wait, WaitInfo

__all__ = ["dump_error", "dump_waits", "load_error", "load_waits"]


def dump_error(error: ErrorInfo | None) -> str | None:
    if error is None:
        return None
    data: dict[str, Any] = {"type": error.type, "message": error.message}
    if error.traceback:
        data["traceback"] = error.traceback
    if error.module:
        data["module"] = error.module
    if error.args_json is not None:
        data["args"] = error.args_json
    if error.step_seqs:
        data["step_seqs"] = list(error.step_seqs)
    return json.dumps(data, separators=(",", ":"))


def load_error(text: str | dict[str, Any] | None) -> ErrorInfo | None:
    if text is None:
        return None
    data = json.loads(text) if isinstance(text, str) else text
    return ErrorInfo(
        type=data.get("type", "Error"),
        message=data.get("message", ""),
        traceback=data.get("traceback"),
        module=data.get("module"),
        args_json=data.get("args"),
        step_seqs=tuple(data.get("step_seqs", ())),
    )


def dump_waits(waits: tuple[Wait, ...]) -> str | None:
    if not waits:
        return None
    items = []
    for w in waits:
        item: dict[str, Any] = {"kind": w.kind, "seq": w.seq}
        if w.name is not None:
            item["name"] = w.name
        if w.until is not None:
            item["until"] = w.until.isoformat()
        if w.schema_json is not None:
            item["schema"] = w.schema_json
        if w.info is not None:
            item["info"] = w.info.to_json()
        items.append(item)
    return json.dumps(items, separators=(",", ":"))


def load_waits(text: str | list[Any] | None) -> tuple[Wait, ...]:
    if not text:
        return ()
    items = json.loads(text) if isinstance(text, str) else text
    return tuple(
        Wait(
            kind=i["kind"],
            seq=i["seq"],
            name=i.get("name"),
            until=datetime.fromisoformat(i["until"]) if i.get("until") else None,
            schema_json=i.get("schema"),
            info=WaitInfo.from_json(i.get("info")),
        )
        for i in items
    )
