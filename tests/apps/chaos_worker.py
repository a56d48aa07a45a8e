"""A worker process for the chaos test: ``python -m tests.apps.chaos_worker DB_URL``."""

from __future__ import annotations

import logging
import sys

from stepstone import Settings, Worker
from tests.apps import chaos_app


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
    settings = Settings(lease_s=5.0, poll_s=0.05)
    Worker(sys.argv[1], workflows=chaos_app, settings=settings, concurrency=16).run()


if __name__ == "__main__":
    main()
