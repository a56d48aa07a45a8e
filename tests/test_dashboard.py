"""The dashboard's pages over HTTP (a real uvicorn server, a real SQLite file): every page renders
with its Content-Security-Policy, values are escaped, search and filters work, the waiting form is
built from the wait's schema, and the writes the pages use keep the CSRF guard. The browser side
is tests/test_dashboard_browser.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stepstone import Client, RunFailed
from stepstone.client.views import SignalWait
from stepstone.core.asking import plan_ask
from stepstone.core.model import Wait, WaitInfo
from stepstone.web import ServeSettings
from stepstone.web.forms import form_for
from tests.apps import dash_app, web_app
from tests.webserver import serving

JSON = {"content-type": "application/json"}
PAGES = ("/", "/queues", "/workers", "/dead-letters", "/schedules")


@pytest.fixture
def db(sqlite_url: str) -> str:
    with Client(sqlite_url, workflows=web_app):  # migrates the file
        pass
    return sqlite_url


@pytest.fixture
def http(db: str) -> Iterator[httpx.Client]:
    with (
        serving(db, workflows=web_app) as url,
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        yield c


def test_every_page_renders_with_its_csp(http: httpx.Client) -> None:
    for path in PAGES:
        r = http.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert '<script src="/static/dashboard.js" defer>' in r.text
    for asset, kind in (("dashboard.js", "javascript"), ("dashboard.css", "text/css")):
        r = http.get(f"/static/{asset}")
        assert r.status_code == 200
        assert kind in r.headers["content-type"]


def test_values_are_escaped(http: httpx.Client, db: str) -> None:
    evil = "<script>alert(1)</script>"
    with Client(db, workflows=web_app) as client:
        client.run(web_app.greet, evil, run_id="g-evil")
    page = http.get("/runs/g-evil").text
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert evil not in http.get("/").text


def test_search_by_id_and_unknown_runs(http: httpx.Client, db: str) -> None:
    with Client(db, workflows=web_app) as client:
        client.run(web_app.greet, "ana", run_id="g-1")
    found = http.get("/", params={"q": "g-1"}, follow_redirects=False)
    assert found.status_code == 303
    assert found.headers["location"] == "/runs/g-1"
    missing = http.get("/", params={"q": "nope"})
    assert missing.status_code == 404
    assert "no run has the id &#39;nope&#39;" in missing.text
    page = http.get("/runs/nope")
    assert page.status_code == 404
    assert "no run with id &#39;nope&#39;" in page.text


def test_the_runs_list_filters(http: httpx.Client, db: str) -> None:
    with Client(db, workflows=web_app) as client:
        client.run(web_app.greet, "ana", run_id="g-1")
        client.start(web_app.greet, "bo", run_id="g-ops", labels={"team": "ops"})
        with pytest.raises(RunFailed):
            client.run(web_app.broken, run_id="b-1")
    page = http.get("/", params={"state": "failed"}).text
    assert "b-1" in page and "g-1" not in page
    page = http.get("/", params={"label": "team=ops"}).text
    assert "g-ops" in page and "g-1" not in page
    assert "write it as key=value" in http.get("/", params={"label": "team"}).text
    runs = http.get("/api/runs", params={"label": "team=ops"}).json()["runs"]
    assert [r["run_id"] for r in runs] == ["g-ops"]
    bad = http.get("/api/runs", params={"label": "team"})
    assert bad.status_code == 422
    assert "label 'team': write it as key=value" in bad.json()["error"]["message"]


def test_a_waiting_run_shows_the_form_of_its_schema(http: httpx.Client, db: str) -> None:
    with Client(db, workflows=dash_app) as client:
        client.run_until_wait(dash_app.refund, "ord-9", run_id="r-9")
    page = http.get("/runs/r-9").text
    assert 'data-gate="refund"' in page
    assert "Refund order ord-9? How much, and why?" in page
    assert 'data-path="[&#34;answer&#34;, &#34;amount&#34;]" data-widget="number"' in page
    assert '<option value="&#34;late&#34;">late</option>' in page
    assert 'data-widget="checkbox"' in page


def test_purge_dead_letters_over_the_guarded_api(http: httpx.Client, db: str) -> None:
    with Client(db, workflows=web_app) as client, pytest.raises(RunFailed):
        client.run(web_app.broken, run_id="b-1")
    assert "b-1" in http.get("/dead-letters").text
    form = http.post("/api/dead-letters/purge", data={"older_than_s": "0"})
    assert form.status_code == 415  # a cross-site form cannot purge
    bad = http.post(
        "/api/dead-letters/purge", content=json.dumps({"older_than_s": "x"}), headers=JSON
    )
    assert bad.status_code == 422
    r = http.post("/api/dead-letters/purge", content=json.dumps({"older_than_s": 0}), headers=JSON)
    assert r.json() == {"purged": 1}
    assert http.get("/api/runs/b-1").status_code == 404


def test_sign_in_where_serve_has_a_token(db: str) -> None:
    """A page without the token goes to /login; the cookie it sets reads, but writes still need
    JSON (or the token header): the CSRF rule holds for a signed-in browser."""
    token = "t0ken-for-the-dashboard-0123"
    settings = ServeSettings(host="127.0.0.1", token=token)
    with (
        serving(db, workflows=web_app, settings=settings) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        away = http.get("/runs/g-1", follow_redirects=False)
        assert (away.status_code, away.headers["location"]) == (303, "/login?next=/runs/g-1")
        assert http.get("/api/runs").status_code == 401
        assert http.get("/login").status_code == 200
        assert http.get("/static/dashboard.js").status_code == 200
        wrong = http.post("/login", content=json.dumps({"token": token + "x"}), headers=JSON)
        assert wrong.status_code == 401
        assert wrong.json()["error"]["message"] == "wrong token"
        assert http.post("/login", data={"token": token}).status_code == 415
        assert "stepstone_token" not in http.cookies
        signed = http.post("/login", content=json.dumps({"token": token}), headers=JSON)
        assert signed.status_code == 204
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert http.get("/").status_code == 200
        assert http.get("/api/runs").status_code == 200
        form = http.post("/api/runs", data={"workflow": "greet"})
        assert form.status_code == 415  # a cross-site form riding the cookie is refused
        started = http.post(
            "/api/runs", content=json.dumps({"workflow": "greet", "args": ["x"]}), headers=JSON
        )
        assert started.status_code == 201
        assert http.post("/logout", content="{}", headers=JSON).status_code == 200
        assert http.get("/", follow_redirects=False).status_code == 303


def _hold(kind: str, **kw: Any) -> SignalWait:
    plan = plan_ask("Go?", kind, **kw)
    info = WaitInfo(prompt="Go?", ask=plan.kind)
    return SignalWait(
        "r", Wait("signal", 3, plan.gate, schema_json=json.dumps(plan.schema), info=info)
    )


def test_forms_follow_the_gate_schema() -> None:
    approval = form_for(_hold("approval", approvers=["ana", "bo"]))
    assert approval.approval and approval.fields == () and approval.approvers == ("ana", "bo")
    [text] = form_for(_hold("text", skippable=True)).fields
    assert text.widget == "textarea" and text.path == ("answer",)
    assert form_for(_hold("text", skippable=True)).skippable
    [choice] = form_for(_hold("choice", options=["a", 2])).fields
    assert (choice.widget, choice.options) == ("select", ('"a"', "2"))
    [custom] = form_for(_hold("choice", options=["a"], allow_custom=True)).fields
    assert (custom.widget, custom.options) == ("text", ('"a"',))
    [many] = form_for(_hold("choice", options=["a", "b"], multiple=True)).fields
    assert many.widget == "multi"
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "at": {"type": "object"}},
        "required": ["n"],
    }
    n, at = form_for(_hold("form", schema=schema)).fields
    assert (n.path, n.widget, n.required) == (("answer", "n"), "integer", True)
    assert (at.path, at.widget, at.required) == (("answer", "at"), "json", False)
    plain = form_for(SignalWait("r", Wait("signal", 0, "go")))
    assert plain.kind is None
    assert [(f.path, f.widget) for f in plain.fields] == [((), "json")]
