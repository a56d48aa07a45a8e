"""Screenshots of the dashboard's main pages, for the README (issue 12).

    .venv/bin/python bench/screenshots.py [--out docs/screenshots]

Starts a real worker and ``stepstone serve`` on a fresh SQLite file with the workflows of
tests/apps/dash_app.py, makes some history (refunds answered and one waiting at its form, a
publication waiting for an approval, checkouts that failed, runs queued on a queue no worker
serves, two schedules), and has Debian's Chromium (``/usr/bin/chromium``, driven by Playwright)
write 1280x800 PNGs of the runs list, a run waiting at its form, the queues, the schedules and
the dead letters, and the run page at a phone's width.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.apps import dash_app  # noqa: E402
from tests.dashboard_harness import dashboard, launch_chromium, missing_browser  # noqa: E402

from stepstone import Client, Schedule  # noqa: E402

WIDTH, HEIGHT = 1280, 800


def _wait_state(client: Client, run_id: str, states: set[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get(run_id).state.value not in states:
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id} did not reach {states} in {timeout_s} s")
        time.sleep(0.05)


def seed(db: str) -> None:
    """Some history to look at: every page has rows."""
    with Client(db, workflows=dash_app) as client:
        for n, amount in ((101, 40.0), (102, 12.5), (103, 99.0)):
            run_id = f"refund-ord-{n}"
            client.start(dash_app.refund, f"ord-{n}", run_id=run_id)
            _wait_state(client, run_id, {"waiting"})
            answer = {"answer": {"amount": amount, "reason": "damaged"}, "by": "ana"}
            client.signal(run_id, "refund", answer)
            _wait_state(client, run_id, {"completed"})
        for n in (7, 8):
            client.start(dash_app.checkout, f"ord-{n}", run_id=f"checkout-ord-{n}")
            _wait_state(client, f"checkout-ord-{n}", {"failed"})
        client.start(dash_app.publish, "Q4 report", run_id="publish-q4-report")
        client.start(dash_app.refund, "ord-104", run_id="refund-ord-104")
        for n in range(3):
            client.start(dash_app.nightly_report, run_id=f"report-backlog-{n}", queue="reports")
        _wait_state(client, "publish-q4-report", {"waiting"})
        _wait_state(client, "refund-ord-104", {"waiting"})
        nightly = dash_app.nightly_report
        client.add_schedule(
            Schedule("nightly-report", nightly, "0 6 * * *", timezone="Europe/Paris")
        )
        client.add_schedule(Schedule("weekly-refund-audit", nightly, "30 8 * * 1", overlap="skip"))
        client.pause_schedule("weekly-refund-audit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    missing = missing_browser()
    if missing is not None:
        raise SystemExit(f"screenshots need {missing}")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'dash.db'}"
        with dashboard(db, Path(tmp)) as base, sync_playwright() as pw:
            seed(db)
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            shots = {
                "runs": "/",
                "run-waiting": "/runs/refund-ord-104",
                "queues": "/queues",
                "schedules": "/schedules",
                "dead-letters": "/dead-letters",
            }
            for name, path in shots.items():
                page.goto(base + path)
                page.wait_for_timeout(400)  # the run page's event stream draws its first events
                page.screenshot(path=str(args.out / f"{name}.png"))
                print(f"wrote {args.out / name}.png")
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            phone.goto(base + "/runs/refund-ord-104")
            phone.wait_for_timeout(400)
            phone.screenshot(path=str(args.out / "run-phone.png"))
            print(f"wrote {args.out / 'run-phone.png'}")
            browser.close()


if __name__ == "__main__":
    main()
