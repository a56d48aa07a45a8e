"""Signed webhooks on a real server over real SQLite and PostgreSQL stores: a good signature
starts one run; a bad, missing or stale one is 401 with nothing written; a redelivery starts
nothing new; GitHub's and Stripe's headers, with HMACs computed here as those senders do."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from stepstone import Client, WorkflowContext, workflow
from stepstone.errors import InvalidArgument
from stepstone.web import ServeSettings, WebhookBinding, sign
from tests.apps import web_app
from tests.webserver import serving

SECRET = "whsec_test_0123456789"
HOOKS = [
    WebhookBinding("plain", "on_plain", "stepstone", SECRET),
    WebhookBinding("github", "on_push", "github", SECRET),
    WebhookBinding("stripe", "on_charge", "stripe", SECRET),
]


@pytest.fixture
def base(store_url: str) -> Iterator[str]:
    with Client(store_url, workflows=web_app):
        pass
    with serving(store_url, workflows=web_app, hooks=HOOKS) as url:
        yield url


def _mac(message: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _plain(
    body: bytes, *, ts: int | None = None, delivery: str | None = "d-1", secret: str = SECRET
) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    headers = {
        "X-Stepstone-Timestamp": str(ts),
        "X-Stepstone-Signature": "sha256=" + _mac(f"{ts}.".encode() + body, secret),
    }
    if delivery is not None:
        headers["X-Stepstone-Delivery"] = delivery
    return headers


def _runs(base: str) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = httpx.get(base + "/api/runs").json()["runs"]
    return runs


def test_a_good_signature_starts_one_run_and_a_redelivery_nothing(
    base: str, store_url: str
) -> None:
    body = json.dumps({"order": 7}).encode()
    r = httpx.post(base + "/hooks/plain", content=body, headers=_plain(body))
    assert r.status_code == 202, r.text
    assert r.json() == {"run_id": "hook-plain-d-1", "created": True}
    again = httpx.post(base + "/hooks/plain", content=body, headers=_plain(body))
    assert again.status_code == 200
    assert again.json() == {"run_id": "hook-plain-d-1", "created": False}
    assert [x["run_id"] for x in _runs(base)] == ["hook-plain-d-1"]
    with Client(store_url, workflows=web_app) as client:
        assert client.run(web_app.on_plain, {}, run_id="hook-plain-d-1") == {"order": 7}
    hooks = {h["name"]: h for h in httpx.get(base + "/api/hooks").json()["hooks"]}
    assert (hooks["plain"]["started"], hooks["plain"]["redelivered"]) == (1, 1)


@pytest.mark.parametrize(
    ("headers_for", "says"),
    [
        (lambda body: _plain(body, secret="wrong-secret"), "signature does not match"),
        (lambda body: _plain(body + b" "), "signature does not match"),
        (lambda body: _plain(body, ts=int(time.time()) - 301), "a replay?"),
        (lambda body: _plain(body, ts=int(time.time()) + 400), "a replay?"),
        (lambda body: {"X-Stepstone-Signature": "sha256=00"}, "missing header"),
        (lambda body: {}, "missing header x-stepstone-timestamp"),
    ],
)
def test_a_bad_missing_or_stale_signature_is_401_and_writes_nothing(
    base: str, headers_for: object, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stepstone.web")
    body = json.dumps({"order": 8}).encode()
    r = httpx.post(base + "/hooks/plain", content=body, headers=headers_for(body))  # type: ignore[operator]
    assert r.status_code == 401, r.text
    assert says in r.json()["error"]["message"]
    assert SECRET not in r.text
    assert _runs(base) == []
    hooks = {h["name"]: h for h in httpx.get(base + "/api/hooks").json()["hooks"]}
    assert hooks["plain"]["rejected"] == 1
    assert "secret" not in json.dumps(hooks)
    assert "webhook plain: delivery refused" in caplog.text  # logged, counted...
    assert SECRET not in caplog.text  # ...and never with the secret


def test_without_a_delivery_id_the_signature_is_the_dedup_key(base: str) -> None:
    body = b'{"n": 1}'
    headers = _plain(body, delivery=None)
    first = httpx.post(base + "/hooks/plain", content=body, headers=headers)
    assert first.status_code == 202
    replay = httpx.post(base + "/hooks/plain", content=body, headers=headers)
    assert replay.json() == {"run_id": first.json()["run_id"], "created": False}
    assert len(_runs(base)) == 1


def test_github_preset(base: str, store_url: str) -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    headers = {
        "X-Hub-Signature-256": "sha256=" + _mac(body),
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Event": "push",
        "Content-Type": "application/json",
    }
    r = httpx.post(base + "/hooks/github", content=body, headers=headers)
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    assert run_id == "hook-github-72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert httpx.post(base + "/hooks/github", content=body, headers=headers).status_code == 200
    bad = {**headers, "X-Hub-Signature-256": "sha256=" + _mac(body, "other")}
    assert httpx.post(base + "/hooks/github", content=body, headers=bad).status_code == 401
    with Client(store_url, workflows=web_app) as client:
        assert client.run(web_app.on_push, {}, run_id=run_id) == "refs/heads/main"
    assert len(_runs(base)) == 1


def test_stripe_preset(base: str) -> None:
    body = json.dumps({"id": "evt_1NG8Du2eZvKYlo2C", "type": "charge.succeeded"}).encode()
    ts = int(time.time())
    v1 = _mac(f"{ts}.".encode() + body)
    header = f"t={ts},v1={_mac(b'rotated-out', 'old')},v1={v1}"  # any v1 may match
    r = httpx.post(base + "/hooks/stripe", content=body, headers={"Stripe-Signature": header})
    assert r.status_code == 202, r.text
    assert r.json()["run_id"] == "hook-stripe-evt_1NG8Du2eZvKYlo2C"
    resent = httpx.post(base + "/hooks/stripe", content=body, headers={"Stripe-Signature": header})
    assert resent.json()["created"] is False
    old = ts - 600
    stale = f"t={old},v1={_mac(f'{old}.'.encode() + body)}"
    r = httpx.post(base + "/hooks/stripe", content=body, headers={"Stripe-Signature": stale})
    assert r.status_code == 401
    assert "a replay?" in r.json()["error"]["message"]
    assert len(_runs(base)) == 1


def test_unknown_hook_oversized_body_and_non_json(store_url: str) -> None:
    with Client(store_url, workflows=web_app):
        pass
    settings = ServeSettings(max_body_bytes=64)
    with serving(store_url, workflows=web_app, hooks=HOOKS, settings=settings) as base:
        body = b"{}"
        assert (
            httpx.post(base + "/hooks/nope", content=body, headers=_plain(body)).status_code == 404
        )
        big = json.dumps({"x": "y" * 100}).encode()
        r = httpx.post(base + "/hooks/plain", content=big, headers=_plain(big))
        assert r.status_code == 413
        text = b"not json"
        r = httpx.post(base + "/hooks/plain", content=text, headers=_plain(text))
        assert r.status_code == 400
        assert _runs(base) == []


def test_hooks_need_no_api_token_but_their_signature(sqlite_url: str) -> None:
    with Client(sqlite_url, workflows=web_app):
        pass
    settings = ServeSettings(token="api-token-0123456789")
    with serving(sqlite_url, workflows=web_app, hooks=HOOKS, settings=settings) as base:
        body = b'{"a": 1}'
        r = httpx.post(base + "/hooks/plain", content=body, headers=_plain(body))
        assert r.status_code == 202
        r = httpx.post(base + "/hooks/plain", content=body, headers=_plain(body, secret="x"))
        assert r.status_code == 401


@pytest.mark.parametrize("name", ["", "a/b", "x" * 65, "hé"])
def test_a_bad_webhook_name_fails_at_the_decorator(name: str) -> None:
    with pytest.raises(InvalidArgument, match="webhook= must be 1-64 letters"):

        @workflow(webhook=name)
        def hooked(ctx: WorkflowContext, payload: dict[str, object]) -> None:
            pass


def test_the_signing_helper_matches_what_is_checked() -> None:
    from stepstone.web.signatures import BadSignature, verify_delivery

    body = b'{"k": 1}'
    now = 1_700_000_000
    for preset in ("stepstone", "github", "stripe"):
        payload = b'{"id": "evt_1"}' if preset == "stripe" else body
        headers = {
            k.lower(): v for k, v in sign(SECRET, payload, timestamp=now, preset=preset).items()
        }
        headers["x-github-delivery"] = "g-1"
        assert verify_delivery(preset, SECRET, headers, payload, now_s=now + 299).payload
        with pytest.raises(BadSignature):
            verify_delivery(preset, SECRET + "x", headers, payload, now_s=now)


def test_bindings_and_signatures_import_no_web_framework() -> None:
    """`stepstone webhook` works without the web extra: only `create_app` needs Starlette."""
    import subprocess
    import sys

    probe = "import sys, stepstone.web, stepstone.cli.serve; print('starlette' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_deliveries_whose_ids_differ_start_different_runs(base: str) -> None:
    """Delivery ids outside ``[A-Za-z0-9._:-]{1,100}`` are hashed, not mangled: ``a/b`` and
    ``a_b``, or two long ids sharing their first 100 characters, are different deliveries."""
    body = b'{"n": 2}'
    long = "x" * 120
    ids = ["a/b", "a_b", long + "1", long + "2", "a/b"]
    got = [
        httpx.post(base + "/hooks/plain", content=body, headers=_plain(body, delivery=d)).json()
        for d in ids
    ]
    assert [g["created"] for g in got] == [True, True, True, True, False]
    assert got[1]["run_id"] == "hook-plain-a_b"
    assert got[0]["run_id"].startswith("hook-plain-~") and got[4]["run_id"] == got[0]["run_id"]
    assert len({g["run_id"] for g in got}) == 4
