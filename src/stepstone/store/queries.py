"""Named SQL blocks: each store keeps its statements in one ``queries.sql``, loaded once.

A block starts with ``-- name: block_name`` and runs to the next such line. Comment lines inside a
block are dropped. Both dialects use the same block names with different bodies.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
from pathlib import Path

__all__ = ["Queries", "list_migrations", "load_migrations", "read_snapshot"]

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$")
_MIGRATION = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class Queries:
    """The named blocks of one ``queries.sql``; ``queries.claim_run`` is the text of that block."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.blocks: dict[str, str] = {}
        name: str | None = None
        lines: list[str] = []
        for line in text.splitlines():
            if not line.lstrip().startswith("--"):
                if name is not None:
                    lines.append(line)
                continue
            match = _NAME.match(line.strip()) if "name:" in line else None
            if match:  # a comment line that is no block's name is dropped
                self._add(name, lines)
                name, lines = match.group(1), []
        self._add(name, lines)

    def _add(self, name: str | None, lines: list[str]) -> None:
        if name is None:
            return
        if name in self.blocks:
            raise ValueError(f"{self.source}: block {name!r} is defined twice")
        body = "\n".join(lines).strip().rstrip(";").strip()
        if not body:
            raise ValueError(f"{self.source}: block {name!r} is empty")
        self.blocks[name] = body

    @classmethod
    def for_package(cls, package: str) -> Queries:
        text = (_folder(package) / "queries.sql").read_text(encoding="utf-8")
        return cls(text, f"{package}/queries.sql")

    def __getattr__(self, name: str) -> str:
        try:
            return self.blocks[name]
        except KeyError:
            raise AttributeError(f"{self.source} has no block {name!r}") from None


def _folder(package: str) -> Path:
    """The folder of an installed store package (files beside its modules: wheels install
    unzipped; importlib.resources, which also reads zips, costs ~4 ms of imports per process)."""
    return Path(str(importlib.import_module(package).__file__)).parent


@functools.cache
def load_migrations(package: str) -> tuple[tuple[int, str, str], ...]:
    """(version, name, sql) for every ``migrations/NNNN_name.sql`` of a store package, in order
    (read once, when a store is first migrated)."""
    folder = _folder(package) / "migrations"
    return tuple(
        (version, name, (folder / f"{version:04d}_{name}.sql").read_text(encoding="utf-8"))
        for version, name in list_migrations(package)
    )


@functools.cache
def list_migrations(package: str) -> tuple[tuple[int, str], ...]:
    """(version, name) of every ``migrations/NNNN_name.sql`` of a store package, in order, from
    the folder's listing alone (an existing store only needs the latest version)."""
    folder = _folder(package) / "migrations"
    found = []
    for entry in os.listdir(folder):
        match = _MIGRATION.fullmatch(entry)
        if match:
            found.append((int(match.group(1)), match.group(2)))
    found.sort()
    versions = [v for v, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(
            f"{package}/migrations: versions must be 1..N without gaps, got {versions}"
        )
    return tuple(found)


def read_snapshot(package: str) -> str:
    """The package's ``schema.sql``: the schema as all its migrations leave it."""
    return (_folder(package) / "schema.sql").read_text(encoding="utf-8")
