"""The PostgreSQL adapter's SQL: its named query blocks, loaded once."""

from __future__ import annotations

from stepstone.store.queries import Queries

__all__ = ["Q"]

Q = Queries.for_package("stepstone.store.postgres")
