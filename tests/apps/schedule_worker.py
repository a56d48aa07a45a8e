"""``python -m tests.apps.schedule_worker DB_URL``: a worker serving tests.apps.schedule_app."""

from __future__ import annotations

from tests.apps import schedule_app
from tests.apps.worker_main import main

if __name__ == "__main__":
    main(schedule_app)
