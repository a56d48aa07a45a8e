"""Webhook signatures: check a delivery's HMAC-SHA256, its age and its delivery id, per preset.

Three schemes, all HMAC-SHA256 with the hook's secret, all compared in constant time
(:func:`hmac.compare_digest`):

- ``stepstone`` (the default): ``X-Stepstone-Timestamp: <unix seconds>`` and
  ``X-Stepstone-Signature: sha256=<hex>`` over ``f"{timestamp}.{body}"``; an optional
  ``X-Stepstone-Delivery`` id (else the signature itself identifies the delivery).
- ``github``: ``X-Hub-Signature-256: sha256=<hex>`` over the body, ``X-GitHub-Delivery`` as
  the delivery id. GitHub signs no timestamp: a replayed delivery carries its old delivery id,
  which names a run that exists already, so it starts nothing.
- ``stripe``: ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`` over
  ``f"{t}.{body}"``; the event's ``id`` in the body is the delivery id (Stripe resends an event
  with the same id).

A timestamp more than :data:`REPLAY_WINDOW_S` away from now is refused. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "PRESETS",
    "REPLAY_WINDOW_S",
    "BadPayload",
    "BadSignature",
    "Delivery",
    "sign",
    "verify_delivery",
]

PRESETS = ("stepstone", "github", "stripe")
REPLAY_WINDOW_S = 300.0
"""How far a signed timestamp may be from now (either way), in seconds: five minutes."""

_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class BadSignature(Exception):
    """A delivery whose signature is missing, wrong or stale; ``str`` says which (never the
    secret or the expected digest)."""


class BadPayload(Exception):
    """A correctly signed delivery whose body is not the JSON its preset expects."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery: its id (unique per sender delivery) and its JSON body."""

    delivery_id: str
    payload: object


def _digest(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int, preset: str = "stepstone") -> dict[str, str]:
    """The headers a sender of ``preset`` would attach to ``body`` (for tests and clients of
    the ``stepstone`` scheme).

    >>> headers = sign("s3cret", b'{"x": 1}', timestamp=int(time.time()))
    """
    key = secret.encode()
    if preset == "github":
        return {"X-Hub-Signature-256": "sha256=" + _digest(key, body)}
    signed = f"{timestamp}.".encode() + body
    if preset == "stripe":
        return {"Stripe-Signature": f"t={timestamp},v1={_digest(key, signed)}"}
    return {
        "X-Stepstone-Timestamp": str(timestamp),
        "X-Stepstone-Signature": "sha256=" + _digest(key, signed),
    }


def verify_delivery(
    preset: str, secret: str, headers: Mapping[str, str], body: bytes, *, now_s: float
) -> Delivery:
    """Check ``body`` and ``headers`` (lower-case names) against ``secret``; the delivery, or
    :class:`BadSignature`. ``now_s`` is the current Unix time (injected for tests)."""
    key = secret.encode()
    if preset == "github":
        given = _header(headers, "x-hub-signature-256").removeprefix("sha256=")
        _compare(given, _digest(key, body))
        delivery = _header(headers, "x-github-delivery")
        return Delivery(_clean_id(delivery), _json(body))
    if preset == "stripe":
        fields = _stripe_fields(_header(headers, "stripe-signature"))
        timestamp = _timestamp(fields.get("t", [""])[0], now_s)
        expected = _digest(key, f"{timestamp}.".encode() + body)
        if not any(hmac.compare_digest(v, expected) for v in fields.get("v1", [])):
            raise BadSignature("signature does not match")
        payload = _json(body)
        event_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(event_id, str) or not event_id:
            raise BadPayload("Stripe event has no id")
        return Delivery(_clean_id(event_id), payload)
    timestamp = _timestamp(_header(headers, "x-stepstone-timestamp"), now_s)
    given = _header(headers, "x-stepstone-signature").removeprefix("sha256=")
    _compare(given, _digest(key, f"{timestamp}.".encode() + body))
    delivery = headers.get("x-stepstone-delivery") or given
    return Delivery(_clean_id(delivery), _json(body))


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise BadSignature(f"missing header {name}")
    return value


def _compare(given: str, expected: str) -> None:
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadSignature("signature does not match")


def _timestamp(text: str, now_s: float) -> int:
    try:
        timestamp = int(text)
    except ValueError:
        raise BadSignature("timestamp is not an integer") from None
    if abs(now_s - timestamp) > REPLAY_WINDOW_S:
        raise BadSignature(
            f"timestamp is {abs(now_s - timestamp):.0f} s away from now "
            f"(the window is {REPLAY_WINDOW_S:.0f} s): a replay?"
        )
    return timestamp


def _stripe_fields(header: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    return fields


def _clean_id(delivery_id: str) -> str:
    """The delivery id as it goes into the run id: kept when it is up to 100 of
    ``[A-Za-z0-9._:-]`` (GitHub's GUIDs, Stripe's event ids), else ``~`` and the SHA-256 of it.
    One to one (``~`` is never kept), so two deliveries never share a run; replacing characters
    or cutting the id short would make ``a/b`` and ``a_b`` one delivery."""
    if not delivery_id:
        raise BadSignature("empty delivery id")
    if _DELIVERY_ID.fullmatch(delivery_id):
        return delivery_id
    return "~" + hashlib.sha256(delivery_id.encode("utf-8", "surrogatepass")).hexdigest()


def _json(body: bytes) -> object:
    try:
        return json.loads(body) if body else None
    except ValueError:
        raise BadPayload("body is not JSON") from None
