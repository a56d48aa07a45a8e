"""`stepstone serve` and `stepstone webhook` as real processes: bindings written without secrets,
a served webhook starting a run, and the refusals at startup with their exit codes."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import APPS
from tests.test_cli import PROCESS_TIMEOUT_S, Cli, _stderr_line

APP = str(APPS / "web_app.py")
SECRET = "gh-secret-for-the-cli-test"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    c = Cli(tmp_path)
    c("migrate")
    return c


def test_webhook_add_list_remove(cli: Cli) -> None:
    data = cli.data(
        "webhook",
        "add",
        "gh",
        "--workflow",
        "on_push",
        "--secret-env",
        "GH_SECRET",
        "--preset",
        "github",
        db=False,
    )
    assert data["path"] == "/hooks/gh"
    assert data["secret_set"] is False
    text = (cli.cwd / ".stepstone" / "webhooks.toml").read_text()
    assert 'secret_env = "GH_SECRET"' in text
    cli.env["GH_SECRET"] = SECRET
    listed = cli.data("webhook", "list", "--app", APP, db=False)
    by_name = {d["name"]: d for d in listed}
    assert by_name["gh"]["secret_set"] is True
    assert SECRET not in json.dumps(listed)
    # the app's @workflow(webhook=...) bindings are listed too, with their default variable
    assert by_name["stripe"]["secret_env"] == "STEPSTONE_WEBHOOK_STRIPE_SECRET"
    assert by_name["stripe"]["preset"] == "stripe"
    cli("webhook", "remove", "gh", db=False)
    proc = cli("webhook", "remove", "gh", code=3, db=False)
    assert _stderr_line(proc).startswith("stepstone: no webhook named 'gh'")
    proc = cli("webhook", "add", "a/b", "--workflow", "w", "--secret-env", "V", code=4, db=False)
    assert "webhook name 'a/b'" in _stderr_line(proc)


def test_a_public_bind_without_a_token_exits_2(cli: Cli) -> None:
    proc = cli("serve", "--host", "0.0.0.0", code=2)
    line = _stderr_line(proc)
    assert "not a loopback address" in line
    assert "--token" in line


@pytest.mark.parametrize(
    ("flag", "value"), [("--port", "70000"), ("--port", "-1"), ("--max-body-bytes", "0")]
)
def test_bad_serve_flags_exit_4_naming_them(cli: Cli, flag: str, value: str) -> None:
    proc = cli("serve", flag, value, code=4)
    assert _stderr_line(proc).startswith(f"stepstone: {flag} {value}: must be")


def test_a_missing_secret_variable_exits_4_naming_it(cli: Cli) -> None:
    cli("webhook", "add", "gh", "--workflow", "on_push", "--secret-env", "GH_SECRET", db=False)
    proc = cli("serve", "--app", APP, "--port", "0", code=4)
    assert "GH_SECRET" in _stderr_line(proc)
    cli.env["GH_SECRET"] = SECRET
    proc = cli("serve", "--port", "0", code=4)  # no --app: the hook's workflow is unknown
    assert "needs --app" in _stderr_line(proc)


@contextlib.contextmanager
def _serving(cli: Cli, *args: str) -> Iterator[str]:
    proc = subprocess.Popen(
        cli.argv("serve", "--port", "0", *args),
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen = []
    try:
        while True:
            line = lines.get(timeout=PROCESS_TIMEOUT_S)
            assert line is not None, f"serve exited: {''.join(seen)}"
            seen.append(line)
            found = re.search(r"serving on (http://\S+)", line)
            if found:
                break
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=PROCESS_TIMEOUT_S) == 0, "".join(seen)


def test_serve_starts_a_run_from_a_github_delivery(cli: Cli) -> None:
    cli(
        "webhook",
        "add",
        "gh",
        "--workflow",
        "on_push",
        "--secret-env",
        "GH_SECRET",
        "--preset",
        "github",
        db=False,
    )
    cli.env.update(
        GH_SECRET=SECRET,
        STEPSTONE_WEBHOOK_STRIPE_SECRET="s",
        STEPSTONE_WEBHOOK_GITHUB_SECRET="g",
        STEPSTONE_WEBHOOK_PLAIN_SECRET="p",
    )
    with _serving(cli, "--app", APP) as url:
        body = b'{"ref": "refs/heads/main"}'
        mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": f"sha256={mac}", "X-GitHub-Delivery": "del-1"}
        r = httpx.post(url + "/hooks/gh", content=body, headers=headers)
        assert r.status_code == 202, r.text
        assert httpx.get(url + "/health").json() == {"ok": True}
        names = {h["name"] for h in httpx.get(url + "/api/hooks").json()["hooks"]}
        assert names == {"gh", "github", "stripe", "plain"}
    runs = cli.data("runs")
    assert [r["run_id"] for r in runs] == ["hook-gh-del-1"]


def test_serve_with_a_token_from_the_environment(cli: Cli) -> None:
    cli.env["STEPSTONE_TOKEN"] = "env-token-0123456789"
    with _serving(cli) as url:
        assert httpx.get(url + "/api/runs").status_code == 401
        ok = httpx.get(url + "/api/runs", headers={"authorization": "Bearer env-token-0123456789"})
        assert ok.status_code == 200
        assert httpx.get(url + "/health").status_code == 200
