"""The HTTP edge of the API: error classes to status codes, JSON bodies in and out, limits."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from stepstone.errors import (
    AlreadyResumed,
    DecodeError,
    DuplicateRun,
    EncodeError,
    InvalidArgument,
    RunNotFound,
    RunStateError,
    ScheduleNotFound,
    SignalPayloadError,
    StoreError,
    UnknownSignal,
    WorkflowNotFound,
)

__all__ = [
    "HTTP_STATUS",
    "HttpError",
    "error_response",
    "label_filter",
    "read_body",
    "read_json",
    "status_for",
]

# The one table from error class to HTTP status; the first match wins (subclasses first).
HTTP_STATUS: dict[type[BaseException], int] = {
    RunNotFound: 404,
    ScheduleNotFound: 404,
    WorkflowNotFound: 404,
    AlreadyResumed: 409,
    DuplicateRun: 409,
    RunStateError: 409,
    SignalPayloadError: 422,
    UnknownSignal: 422,
    EncodeError: 422,
    DecodeError: 422,
    InvalidArgument: 422,
    StoreError: 503,
}


class HttpError(Exception):
    """An error answered as is: ``status`` and a one-line message."""

    def __init__(self, status: int, message: str, type_: str = "HttpError") -> None:
        super().__init__(message)
        self.status, self.type = status, type_


def status_for(exc: BaseException) -> int:
    if isinstance(exc, HttpError):
        return exc.status
    for cls, status in HTTP_STATUS.items():
        if isinstance(exc, cls):
            return status
    return 500


def error_response(exc: BaseException) -> JSONResponse:
    """``{"error": {"type", "message"}}`` with the status of ``exc`` (500: no details)."""
    status = status_for(exc)
    kind = exc.type if isinstance(exc, HttpError) else type(exc).__name__
    message = str(exc) if status != 500 else "internal error (see the server log)"
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or 413 past ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, f"body of {declared} bytes is over the limit of {limit}", "TooLarge")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"body is over the limit of {limit} bytes", "TooLarge")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``); 400 naming line and column."""
    body = await read_body(request, limit)
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise HttpError(400, f"request body is not JSON: {exc}", "BadJSON") from None
    if not isinstance(data, dict):
        raise HttpError(400, "request body must be a JSON object", "BadJSON")
    return data


def label_filter(values: list[str], what: str = "label") -> dict[str, str]:
    """``label=key=value`` query parameters as a labels filter (422 naming a bad one)."""
    labels = {}
    for text in values:
        key, eq, value = text.partition("=")
        if not eq or not key.strip():
            raise InvalidArgument(f"{what} {text!r}: write it as key=value")
        labels[key.strip()] = value.strip()
    return labels
