"""The dashboard in a real browser: Debian's Chromium under Playwright, a real worker process and a
real `stepstone serve` process. A run waits at a ``ctx.ask`` form; the test finds it in the runs
list, answers the form (first with a value the wait's schema refuses: the 422 and its path show
in the page), and sees the run complete on its page. Typing into that form survives the page
redrawing itself on new events (the field keeps the focus).

Skipped when Playwright or /usr/bin/chromium is missing, except under CI (CI=true), where that
is a failure: `.ci/run` installs both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard_harness import dashboard, launch_chromium, missing_browser

TIMEOUT_MS = 30_000  # generous for a loaded CI machine; the test takes ~9 s


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    missing = missing_browser()
    if missing is not None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"CI must run the browser test, but {missing} is missing")
        pytest.skip(f"no browser to drive: {missing} is missing")
    from playwright.sync_api import sync_playwright

    with dashboard(f"sqlite:///{tmp_path / 'dash.db'}", tmp_path) as base, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.set_default_timeout(TIMEOUT_MS)
            p = context.new_page()
            errors: list[str] = []
            p.on("pageerror", lambda exc: errors.append(str(exc)))
            yield p, base
            assert errors == [], f"script errors in the page: {errors}"
        finally:
            browser.close()


def _see_completed(p: Any, base: str) -> None:
    """Wait until the run's page shows it completed; say where the run is if it never does."""
    try:
        p.locator(".run-head .badge.st-completed").wait_for()
    except Exception as exc:
        run_id = p.url.rsplit("/", 1)[1]
        state = httpx.get(f"{base}/api/runs/{run_id}").json().get("state")
        raise AssertionError(
            f"the page of run {run_id} never showed it completed ({state})"
        ) from exc


def _start_refund(base: str, order: str, run_id: str) -> None:
    """Start the refund workflow (it waits at a form) through the API."""
    started = httpx.post(
        f"{base}/api/runs",
        content=json.dumps({"workflow": "refund", "args": [order], "run_id": run_id}),
        headers={"content-type": "application/json"},
    )
    assert started.status_code == 201, started.text


@pytest.mark.slow
def test_answer_a_waiting_form_and_see_the_run_complete(page: tuple[Any, str]) -> None:
    p, base = page
    _start_refund(base, "ord-1", "refund-1")

    # the runs list, filtered to waiting runs: the run shows up once the worker parks it
    # (the list refreshes itself)
    p.goto(f"{base}/?state=waiting")
    p.get_by_role("link", name="refund-1").click()
    p.wait_for_url(f"{base}/runs/refund-1")
    form = p.locator("form[data-answer][data-gate='refund']")
    form.wait_for()
    assert "Refund order ord-1?" in form.inner_text()

    # an amount over the schema's maximum: refused by the server, the path shown in the page
    form.get_by_label("amount").fill("900")
    form.get_by_label("reason").select_option(label="late")
    form.get_by_role("button", name="Answer").click()
    problem = form.locator(".form-error")
    problem.wait_for(state="visible")
    assert problem.inner_text().startswith("422: ")
    assert "$.answer.amount: 900 is greater than the maximum of 500" in problem.inner_text()
    assert p.locator(".run-head .badge").inner_text() == "waiting"

    form.get_by_label("amount").fill("12.5")
    form.get_by_label("Answered by").fill("ana")
    form.get_by_role("button", name="Answer").click()
    # the page follows the run's events and redraws itself when the run ends
    _see_completed(p, base)
    assert '"refunded 12.50 on ord-1"' in p.locator("#output").inner_text()
    assert p.locator(".tl-row").count() == 4  # load_order, score_risk, the gate, pay_refund

    run = httpx.get(f"{base}/api/runs/refund-1").json()
    assert run["state"] == "completed"
    answered = [s for s in run["signals"] if not s["rejected"]]
    assert answered[0]["payload"] == {
        "answer": {"amount": 12.5, "reason": "late", "restock": False},
        "by": "ana",
    }
    assert [s["problem"] for s in run["signals"] if s["rejected"]] == [
        "$.answer.amount: 900 is greater than the maximum of 500"
    ]

    # fork from the last step: the new run keeps the answer and pays again, on the worker
    p.on("dialog", lambda dialog: dialog.accept())
    p.locator("button[data-fork='3']").click()
    p.wait_for_url(lambda url: "/runs/" in url and not url.endswith("/runs/refund-1"))
    _see_completed(p, base)
    assert "forked from refund-1" in p.locator(".run-head").inner_text()


@pytest.mark.slow
def test_typing_in_a_form_survives_the_page_redrawing_itself(page: tuple[Any, str]) -> None:
    """The run's page redraws itself after new events and keeps a form being typed into; the
    field being typed into keeps the focus too, so keys typed after a redraw still land in it
    (they went nowhere before: a form could be sent without a name typed into it)."""
    p, base = page
    _start_refund(base, "ord-2", "refund-2")
    held: list[Any] = []  # the run page's event stream, held back until the typing has begun
    p.route("**/api/runs/refund-2/events**", lambda route: held.append(route))
    p.goto(f"{base}/?state=waiting")  # the list shows the run once the worker parks it
    p.get_by_role("link", name="refund-2").click()
    p.wait_for_url(f"{base}/runs/refund-2")
    form = p.locator("form[data-answer][data-gate='refund']")
    form.wait_for()
    by = form.get_by_label("Answered by")
    by.click()
    p.keyboard.type("an")
    for _ in range(200):  # the page asks for its events once it has loaded
        if held:
            break
        p.wait_for_timeout(50)
    p.evaluate("document.getElementById('run').dataset.before = 'redraw'")
    held[0].continue_()  # the events arrive: the page redraws itself
    p.wait_for_function("() => !document.getElementById('run').dataset.before")
    assert p.evaluate("document.activeElement && document.activeElement.id") == "by-refund"
    p.keyboard.type("a")
    assert by.input_value() == "ana"
