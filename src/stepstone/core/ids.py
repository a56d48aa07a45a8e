"""Identifiers: time-sortable run ids, and the stable key a step hands to outside systems."""

from __future__ import annotations

import os
import time

__all__ = ["child_run_id", "idempotency_key", "new_run_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_run_id() -> str:
    """A 26-character id: 48 bits of milliseconds then 80 random bits, so ids sort by creation."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def child_run_id(parent_run_id: str, seq: int) -> str:
    """The id of the child run started at ``seq``: deterministic, so a replay finds it again."""
    return f"{parent_run_id}.{seq}"


def idempotency_key(run_id: str, seq: int) -> str:
    """The key a step passes to outside systems; the same on every attempt and every replay."""
    return f"{run_id}:{seq}"
