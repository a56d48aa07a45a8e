"""`stepstone serve`'s JSON API on a real uvicorn server over real SQLite and PostgreSQL stores:
each route, Server-Sent Events resumed with Last-Event-ID, errors as status codes, the token
and the CSRF rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stepstone import Client, RunFailed, Schedule
from stepstone.web import ServeSettings
from stepstone.web.api import ROUTES
from tests.apps import web_app
from tests.webserver import serving

JSON = {"content-type": "application/json"}


@pytest.fixture
def base(store_url: str) -> Iterator[str]:
    with Client(store_url, workflows=web_app):  # migrates the SQLite file
        pass
    with serving(store_url, workflows=web_app) as url:
        yield url


@pytest.fixture
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as c:
        yield c


def _post(http: httpx.Client, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return http.post(path, content=json.dumps(body or {}), headers=JSON)


def test_health_and_openapi(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"ok": True}
    doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for route in ROUTES:
        assert route.method.lower() in doc["paths"][route.path]
    assert "post" in doc["paths"]["/hooks/{name}"]


def test_start_list_describe_timeline(http: httpx.Client, store_url: str) -> None:
    r = _post(http, "/api/runs", {"workflow": "greet", "args": ["ana"], "run_id": "g-1"})
    assert r.status_code == 201, r.text
    assert r.json()["run_id"] == "g-1"
    assert r.json()["state"] == "pending"
    with Client(store_url, workflows=web_app) as client:
        assert client.run(web_app.greet, "ana", run_id="g-1") == "hello ANA"
    runs = http.get("/api/runs", params={"workflow": "greet"}).json()["runs"]
    assert [x["run_id"] for x in runs] == ["g-1"]
    assert http.get("/api/runs", params={"state": "pending"}).json()["runs"] == []
    desc = http.get("/api/runs/g-1").json()
    assert desc["state"] == "completed"
    assert desc["output"] == "hello ANA"
    assert [s["name"] for s in desc["steps"] if s["kind"] == "step"] == ["shout"]
    kinds = [e["kind"] for e in http.get("/api/runs/g-1/timeline").json()["timeline"]]
    assert kinds[0] == "created"
    assert "completed" in kinds


def _sse(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        messages.append(fields)
    return messages


def test_events_stream_and_resume_with_last_event_id(http: httpx.Client, store_url: str) -> None:
    with Client(store_url, workflows=web_app) as client:
        client.run(web_app.greet, "bo", run_id="g-2")
    with http.stream("GET", "/api/runs/g-2/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        messages = _sse(r.read().decode())
    progress = [m for m in messages if m.get("event") == "progress"]
    assert [json.loads(m["data"])["data"]["at"] for m in progress] == ["start", "shouted", "done"]
    assert messages[-1]["event"] == "end"
    assert json.loads(messages[-1]["data"]) == {"state": "completed"}
    first = progress[0]["id"]
    with http.stream("GET", "/api/runs/g-2/events", headers={"Last-Event-ID": first}) as r:
        resumed = _sse(r.read().decode())
    ats = [json.loads(m["data"])["data"]["at"] for m in resumed if m.get("event") == "progress"]
    assert ats == ["shouted", "done"]


def test_events_follow_a_live_run(http: httpx.Client, store_url: str) -> None:
    """The stream stays open while the run waits and ends when it finishes."""
    assert _post(http, "/api/runs", {"workflow": "approve", "args": ["x"], "run_id": "a-1"})
    with Client(store_url, workflows=web_app) as client:
        client.run_until_wait(web_app.approve, "x", run_id="a-1")
        with http.stream("GET", "/api/runs/a-1/events", params={"system": "true"}) as r:
            lines = r.iter_lines()
            for line in lines:  # the stream is live: it already carries the wait
                if line.startswith("event: ") and "wait" in line:
                    break
            assert _post(http, "/api/runs/a-1/signal", {"name": "approval", "payload": "yes"})
            client.run(web_app.approve, "x", run_id="a-1")
            rest = "\n".join(lines)
    assert "event: end" in rest
    assert '"state": "completed"' in rest


def test_signal_cancel_pause_unpause(http: httpx.Client, store_url: str) -> None:
    with Client(store_url, workflows=web_app) as client:
        client.run_until_wait(web_app.approve, "doc", run_id="a-2")
        r = _post(http, "/api/runs/a-2/signal", {"name": "aproval", "payload": "ok"})
        assert r.status_code == 422
        assert "did you mean 'approval'" in r.json()["error"]["message"]
        r = _post(http, "/api/runs/a-2/signal", {"name": "approval", "payload": "ok"})
        assert r.status_code == 202, r.text
        assert client.run(web_app.approve, "doc", run_id="a-2") == "doc: ok"
    for action, state in (("pause", "paused"), ("unpause", "pending"), ("cancel", "cancelled")):
        if action == "pause":
            _post(http, "/api/runs", {"workflow": "greet", "args": ["c"], "run_id": "c-1"})
        r = _post(http, f"/api/runs/c-1/{action}", {"reason": "test"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == state
    r = _post(http, "/api/runs/c-1/pause")
    assert r.status_code == 409  # cancelled for good


def test_retry_fork_and_dead_letters(http: httpx.Client, store_url: str) -> None:
    with Client(store_url, workflows=web_app) as client:
        with pytest.raises(RunFailed):
            client.run(web_app.broken, run_id="b-1")
        client.run(web_app.greet, "di", run_id="g-3")
    dead = http.get("/api/dead-letters").json()["runs"]
    assert [d["run_id"] for d in dead] == ["b-1"]
    assert dead[0]["error"]["message"] == "boom"
    r = _post(http, "/api/runs/b-1/retry")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "pending"
    r = _post(http, "/api/runs/b-1/retry", {"fresh": True})
    assert r.status_code == 409
    r = _post(http, "/api/runs/g-3/fork", {"from_seq": 1, "patch": {"0": "X"}, "run_id": "f-1"})
    assert r.status_code == 201, r.text
    assert r.json()["forked_from"] == "g-3"
    r = _post(http, "/api/runs/g-3/fork", {"from_seq": 99})
    assert r.status_code == 422
    assert "past its recorded steps" in r.json()["error"]["message"]


def test_queues_workers_schedules(http: httpx.Client, store_url: str) -> None:
    _post(http, "/api/runs", {"workflow": "greet", "args": ["q"], "queue": "mail"})
    queues = {q["queue"]: q for q in http.get("/api/queues").json()["queues"]}
    assert queues["mail"]["pending"] == 1
    assert http.get("/api/workers").json() == {"workers": []}
    with Client(store_url, workflows=web_app) as client:
        client.add_schedule(Schedule("nightly", web_app.greet, "0 3 * * *", args=("n",)))
    names = [s["name"] for s in http.get("/api/schedules").json()["schedules"]]
    assert names == ["nightly"]
    assert _post(http, "/api/schedules/nightly/pause").json()["paused"] is True
    assert http.get("/api/schedules/nightly").json()["paused"] is True
    assert _post(http, "/api/schedules/nightly/resume").json()["paused"] is False
    r = _post(http, "/api/schedules/nightly/trigger")
    assert r.status_code == 201, r.text
    assert http.get(f"/api/runs/{r.json()['run_id']}").json()["workflow"] == "greet"
    assert http.get("/api/schedules/nope").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("GET", "/api/runs/nope", None, 404, "nope"),
        ("GET", "/api/runs/nope/events", None, 404, "nope"),
        ("POST", "/api/runs/nope/cancel", {}, 404, "nope"),
        ("GET", "/api/runs?limit=0", None, 422, "limit=0"),
        ("GET", "/api/runs?state=bogus", None, 422, "bogus"),
        ("POST", "/api/runs", {"workflow": "nope"}, 404, "nope"),
        ("POST", "/api/runs", {"workflow": "greet", "args": [1, 2]}, 422, "greet"),
        ("POST", "/api/runs", {"workflow": "greet", "color": "red"}, 422, "color"),
    ],
)
def test_bad_requests_are_status_codes(
    http: httpx.Client, method: str, path: str, body: Any, status: int, says: str
) -> None:
    r = http.request(
        method, path, content=json.dumps(body) if body is not None else None, headers=JSON
    )
    assert r.status_code == status, r.text
    assert says in r.json()["error"]["message"]
    assert http.get("/api/runs").json()["runs"] == []


def test_bad_json_and_oversized_bodies(store_url: str) -> None:
    with Client(store_url, workflows=web_app):
        pass
    settings = ServeSettings(max_body_bytes=100)
    with serving(store_url, workflows=web_app, settings=settings) as url:
        r = httpx.post(url + "/api/runs", content=b"{oops", headers=JSON)
        assert r.status_code == 400
        assert "not JSON" in r.json()["error"]["message"]
        big = json.dumps({"workflow": "greet", "args": ["x" * 200]})
        r = httpx.post(url + "/api/runs", content=big, headers=JSON)
        assert r.status_code == 413
        assert httpx.get(url + "/api/runs").json()["runs"] == []


def test_writes_need_json_or_the_token_header(http: httpx.Client) -> None:
    """A cross-site form post (text/plain, form-encoded) cannot start a run."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    body = json.dumps({"workflow": "greet", "args": ["x"]})
    r = http.post("/api/runs", content=body, headers=form)
    assert r.status_code == 415
    r = http.post("/api/runs", content=body)
    assert r.status_code == 415
    assert http.get("/api/runs").json()["runs"] == []


def test_a_foreign_host_header_is_refused_on_loopback(http: httpx.Client) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: refused."""
    r = http.get("/api/runs", headers={"host": "evil.example:8420"})
    assert r.status_code == 403
    assert http.get("/api/runs", headers={"host": "localhost:8420"}).status_code == 200


TOKEN = "t0ken-for-the-tests-0123456789"


def _example_path(path: str) -> str:
    return path.replace("{run_id}", "r-1").replace("{name}", "n-1")


def test_the_token_is_required_on_every_route_but_health(sqlite_url: str) -> None:
    with Client(sqlite_url, workflows=web_app):
        pass
    settings = ServeSettings(host="127.0.0.1", token=TOKEN)
    with serving(sqlite_url, workflows=web_app, settings=settings) as url:
        paths = [(r.method, _example_path(r.path)) for r in ROUTES]
        paths.append(("GET", "/openapi.json"))
        for method, path in paths:
            r = httpx.request(method, url + path, content="{}", headers=JSON)
            if path == "/health":
                assert r.status_code == 200
                continue
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"]["message"] == "missing or wrong token"
            wrong = {**JSON, "authorization": "Bearer " + TOKEN[:-1] + "x"}
            r = httpx.request(method, url + path, content="{}", headers=wrong)
            assert r.status_code == 401, (method, path)
        bearer = {"authorization": f"Bearer {TOKEN}"}
        assert httpx.get(url + "/api/runs", headers=bearer).status_code == 200
        r = httpx.post(
            url + "/api/runs",
            content=json.dumps({"workflow": "greet", "args": ["t"]}),
            headers={"x-stepstone-token": TOKEN},  # the token header stands in for JSON
        )
        assert r.status_code == 201, r.text


def test_a_public_bind_without_a_token_is_refused() -> None:
    from stepstone.errors import UsageError

    with pytest.raises(UsageError, match="not a loopback address"):
        ServeSettings(host="0.0.0.0")
    assert ServeSettings(host="::1").token is None
    assert ServeSettings(host="0.0.0.0", token=TOKEN).host == "0.0.0.0"


def test_cors_is_off_by_default_and_on_for_named_origins(sqlite_url: str) -> None:
    with Client(sqlite_url, workflows=web_app):
        pass
    preflight = {
        "origin": "https://ops.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    with serving(sqlite_url, workflows=web_app) as url:
        r = httpx.get(url + "/api/runs", headers={"origin": "https://ops.example"})
        assert "access-control-allow-origin" not in r.headers
        r = httpx.options(url + "/api/runs", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    settings = ServeSettings(cors_origins=("https://ops.example",))
    with serving(sqlite_url, workflows=web_app, settings=settings) as url:
        r = httpx.options(url + "/api/runs", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "https://ops.example"
        other = {**preflight, "origin": "https://evil.example"}
        r = httpx.options(url + "/api/runs", headers=other)
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"


def test_a_quiet_stream_sends_keepalives_and_a_client_may_leave(sqlite_url: str) -> None:
    with Client(sqlite_url, workflows=web_app) as client:
        client.run_until_wait(web_app.approve, "k", run_id="k-1")
    settings = ServeSettings(keepalive_s=0.05)
    with serving(sqlite_url, workflows=web_app, settings=settings) as url:
        with httpx.stream("GET", url + "/api/runs/k-1/events", timeout=30) as r:
            lines = r.iter_lines()
            assert next(line for line in lines if line) == ": keepalive"
        # the stream was left while the run still waits; the server goes on answering
        assert httpx.get(url + "/api/runs/k-1").json()["state"] == "waiting"
