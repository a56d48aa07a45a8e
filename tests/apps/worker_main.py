"""Run a real worker process for the tests: ``python -m tests.apps.worker_main DB_URL [lease_s]
[grace_s]``. Logs go to stderr; the worker's ``serving`` log line tells the test it is ready."""

from __future__ import annotations

import logging
import sys
from typing import Any

from stepstone import Settings, Worker
from tests.apps import crash_app


def main(workflows: Any = crash_app) -> None:
    url = sys.argv[1]
    lease_s = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    grace_s = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
    settings = Settings(lease_s=lease_s, poll_s=0.05, grace_s=grace_s)
    Worker(url, workflows=workflows, settings=settings, concurrency=8).run()


if __name__ == "__main__":
    main()
