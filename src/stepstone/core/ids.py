"""Identifiers: time-sortable run ids, and the stable key a step hands to outside systems."""

from __future__ import annotations

import base64
import os
import time

__all__ = ["child_run_id", "idempotency_key", "new_run_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def new_run_id() -> str:
    """A 26-character id: 48 bits of milliseconds then 80 random bits, so ids sort by creation.

    Base32 keeps the byte order, and the Crockford alphabet is in ASCII order, so the text sorts
    like the number.
    """
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return base64.b32encode(raw)[:26].translate(_FROM_RFC4648).decode("ascii")


def child_run_id(parent_run_id: str, seq: int) -> str:
    """The id of the child run started at ``seq``: deterministic, so a replay finds it again."""
    return f"{parent_run_id}.{seq}"


def idempotency_key(run_id: str, seq: int) -> str:
    """The key a step passes to outside systems; the same on every attempt and every replay."""
    return f"{run_id}:{seq}"
