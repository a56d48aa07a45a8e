"""SHA-256 for code versions and ids, without loading OpenSSL.

``hashlib`` imports ``_hashlib``, which loads OpenSSL's libcrypto: about 11M instructions, 2% of
a whole ``stepstone run -f`` process, to hash a few kilobytes. CPython's own SHA-256 (the
``_sha2`` module, ``_sha256`` before 3.12) gives the same digests; :func:`sha256` uses it when it
is there and ``hashlib`` otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

__all__ = ["Digest", "sha256"]


class Digest(Protocol):
    """What the callers use of a hash object."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


def _builtin_sha256() -> Callable[[bytes], Digest]:
    for name in ("_sha2", "_sha256"):
        try:
            constructor: Callable[[bytes], Digest] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return constructor
    import hashlib

    return hashlib.sha256


_SHA256 = _builtin_sha256()


def sha256(data: bytes = b"") -> Digest:
    """A SHA-256 hash object of ``data`` (``hashlib.sha256``'s digests)."""
    return _SHA256(data)
