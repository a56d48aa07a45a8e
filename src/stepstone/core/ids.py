"""Identifiers: time-sortable run ids, and the stable key a step hands to outside systems."""

from __future__ import annotations

import os
import time

__all__ = ["base32", "child_run_id", "idempotency_key", "new_run_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_run_id() -> str:
    """A 26-character id: 48 bits of milliseconds then 80 random bits, so ids sort by creation.

    Base32 keeps the byte order, and the Crockford alphabet is in ASCII order, so the text sorts
    like the number.
    """
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return base32(raw)


def base32(raw: bytes) -> str:
    """``raw`` (16 bytes) in 26 base32 digits, five bits each from the first byte on, the last
    two bits zero: ``base64.b32encode(raw)[:26]`` in :data:`_ALPHABET` (without importing
    base64, 0.5% of a ``stepstone run -f`` process)."""
    number = int.from_bytes(raw, "big") << 2
    return "".join(_ALPHABET[(number >> shift) & 31] for shift in range(125, -1, -5))


def child_run_id(parent_run_id: str, seq: int) -> str:
    """The id of the child run started at ``seq``: deterministic, so a replay finds it again."""
    return f"{parent_run_id}.{seq}"


def idempotency_key(run_id: str, seq: int) -> str:
    """The key a step passes to outside systems; the same on every attempt and every replay."""
    return f"{run_id}:{seq}"
