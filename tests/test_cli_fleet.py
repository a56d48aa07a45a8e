"""The fleet commands end to end: workers, queues, dead letters, routing flags and `db copy`."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepstone import Client
from tests.conftest import postgres_problem
from tests.test_cli import APP, Cli

FLEET_APP = (
    APP
    + """

from stepstone import Pool, Queue

payments = Queue("payments", concurrency=3, rate_limit=(50, 1.0))
render = Pool("render", strategy="round_robin")
"""
)


@pytest.fixture
def migrated(tmp_path: Path) -> Cli:
    (tmp_path / "app.py").write_text(FLEET_APP)
    cli = Cli(tmp_path)
    cli("migrate")
    return cli


def test_worker_flags_and_registry(migrated: Cli) -> None:
    gpu_run = migrated("start", "pipeline", "--app", "app", "--arg", "n=1", "--label", "gpu=true")
    run_id = gpu_run.stdout.strip()
    with migrated.worker("--queue", "payments", "--queue", "default", "--label", "gpu=true"):
        migrated.wait_state(run_id, "completed")
        [worker] = migrated.data("workers")
        assert worker["queues"] == ["payments", "default"]
        assert worker["labels"] == {"gpu": "true"} and worker["alive"] is True
        assert "payments" in migrated("workers").stdout
    assert migrated.data("workers") == [], "a stopped worker leaves the registry"
    queues = {q["queue"]: q for q in migrated.data("queues")}
    assert queues["payments"]["limits"]["concurrency"] == 3, "declared by the app, stored"
    assert queues["default"]["completed_recently"] == 1
    assert "concurrency 3" in migrated("queues").stdout


def test_start_routing_flags(migrated: Cli) -> None:
    first = migrated("start", "pipeline", "--app", "app", "--arg", "n=2", "--dedup-key", "k1")
    again = migrated("start", "pipeline", "--app", "app", "--arg", "n=2", "--dedup-key", "k1")
    assert first.stdout == again.stdout
    error = migrated.json(
        "start",
        "pipeline",
        "--app",
        "app",
        "--arg",
        "n=2",
        "--dedup-key",
        "k1",
        "--on-conflict",
        "raise",
        code=4,
    )
    assert error["error"]["type"] == "DuplicateRun"
    run = migrated.data(
        "start",
        "pipeline",
        "--app",
        "app",
        "--arg",
        "n=3",
        "--concurrency-key",
        "user-9",
        "--worker-id",
        "w-7",
        "--pool",
        "render",
        "--priority",
        "5",
    )
    assert run["concurrency_key"] == "user-9" and run["target_worker"] == "w-7"
    assert run["pool"] == "render" and run["priority"] == 5
    migrated("start", "pipeline", "--app", "app", "--label", "oops", code=4)


def test_dead_letters_list_retry_and_purge(migrated: Cli) -> None:
    proc = migrated("run", "flaky", "--app", "app", "--arg", "n=1", code=7)
    assert "not fixed yet" in proc.stderr
    [dead] = migrated.data("dlq", "list")
    assert dead["state"] == "failed" and dead["error"]["type"] == "RuntimeError"
    assert dead["run_id"] in migrated("dlq", "list").stdout
    fresh_id = migrated("dlq", "retry", dead["run_id"], "--fresh", "--app", "app").stdout.strip()
    fresh = migrated.data("show", fresh_id)
    assert fresh["retry_of"] == dead["run_id"] and fresh["state"] == "pending"
    assert migrated.data("dlq", "purge", "--older-than-s", "3600") == {"purged": 0}
    assert migrated.data("dlq", "purge", "--older-than-s", "0") == {"purged": 1}
    assert migrated.data("dlq", "list") == []
    migrated("dlq", "frobnicate", code=2)


def test_db_copy_sqlite_to_sqlite(migrated: Cli, tmp_path: Path) -> None:
    run_id = migrated("start", "approve", "--app", "app", "--arg", "name=x").stdout.strip()
    payload = '{"approved": true, "by": "me"}'
    migrated("signal", run_id, "approval", "--data", payload, "--buffer")  # no worker: early
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    migrated("migrate", "--db", target, db=False)
    report = migrated.data("db", "copy", migrated.db, target, db=False)
    assert report["runs_added"] == 1 and report["signals"] == 1
    assert report["queues"] == 0
    again = migrated.data("db", "copy", migrated.db, target, db=False)
    assert again["runs_added"] == 0 and again["runs_seen"] == 1
    with Client(target) as client:
        copied = client.describe(run_id)
        assert copied.run.workflow == "approve" and len(copied.pending_signals) == 1


def test_db_copy_sqlite_to_postgres_and_back(
    migrated: Cli, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if postgres_problem() is not None:
        pytest.skip(str(postgres_problem()))
    pg = request.getfixturevalue("pg_url")
    assert migrated.value("run", "pipeline", "--app", "app", "--arg", "n=4") == 9
    report = migrated.data("db", "copy", migrated.db, pg, db=False)
    assert report["runs_added"] == 1 and report["steps"] == 2
    back = f"sqlite:///{tmp_path / 'back.db'}"
    migrated("migrate", "--db", back, db=False)
    assert migrated.data("db", "copy", pg, back, db=False)["runs_added"] == 1
    with Client(back) as client:
        [run] = client.list()
        assert client.result(run.run_id) == 9


CREDENTIAL_APP = (
    APP
    + """

from stepstone import worker_credentials


@step
async def use_key() -> str:
    key = worker_credentials()["PSP_KEY"]
    return f"key of {len(key)} chars ending {key[-2:]}"


@workflow
async def charge(ctx: WorkflowContext) -> str:
    return await use_key()
"""
)


def test_worker_credential_flag_reads_the_environment(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(CREDENTIAL_APP)
    cli = Cli(tmp_path)
    cli("migrate")
    run_id = cli("start", "charge", "--app", "app").stdout.strip()
    cli.env["PSP_SECRET"] = "sk-live-0123456789"
    with cli.worker("--credential", "PSP_KEY=PSP_SECRET", workflows="approve, charge, flaky"):
        cli.wait_state(run_id, "completed")
    assert cli.value("result", run_id) == "key of 18 chars ending 89"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    assert b"sk-live-0123456789" not in stored
    # a variable that is not set is named (never its value), exit 4
    del cli.env["PSP_SECRET"]
    error = cli.json("worker", "--app", "app", "--credential", "PSP_KEY=PSP_SECRET", code=4)
    assert "PSP_SECRET is not set" in error["error"]["message"]
