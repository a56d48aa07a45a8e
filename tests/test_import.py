"""`import stepstone` is light: no database driver, no rich, no pydantic, and fast."""

from __future__ import annotations

import json
import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out))


# jsonschema costs ~80 ms to import (jsonschema-rs ~10 ms): both come at the first schema checked
HEAVY = (
    "psycopg",
    "psycopg_pool",
    "rich",
    "pydantic",
    "jsonschema",
    "jsonschema_rs",
    "opentelemetry",
)


def test_import_stepstone_loads_no_driver_or_heavy_dependency() -> None:
    loaded = _modules_after("import stepstone")
    for heavy in (*HEAVY, "sqlite3", "asyncio"):
        assert heavy not in loaded, f"import stepstone imported {heavy}"


def test_using_the_client_loads_sqlite_but_no_other_driver() -> None:
    loaded = _modules_after("from stepstone import Client, Worker, WorkflowContext, open_store")
    assert "sqlite3" in loaded or "stepstone.store" in loaded
    for heavy in HEAVY:
        assert heavy not in loaded, f"the client imported {heavy}"
