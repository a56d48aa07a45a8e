"""``python -m tests.apps.memory_worker DB_URL``: a worker serving tests.apps.memory_app."""

from __future__ import annotations

from tests.apps import memory_app
from tests.apps.worker_main import main

if __name__ == "__main__":
    main(memory_app)
