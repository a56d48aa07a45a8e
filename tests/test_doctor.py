"""`stepstone doctor`: each failing check names the command that fixes it, and running those
commands makes it pass (exit 9 until then, 0 after)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.test_cli import READY_TIMEOUT_S, Cli
from tests.test_cli_desk import skills_worker


def checks(cli: Cli, code: int, *extra: str) -> dict[str, dict[str, str]]:
    data = cli.data("doctor", *extra, code=code, ok=True)
    return {c["check"]: c for c in data}


def test_failing_checks_print_their_fix_and_the_fixes_work(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("skill", "new", "hello", db=False)
    cli("migrate")
    found = checks(cli, 9)
    assert found["store"]["status"] == "ok" and found["skills"]["detail"] == "hello"
    assert found["disk"]["status"] == "ok" and found["wal"]["status"] == "ok"
    assert found["worker"]["status"] == "fail"
    assert found["worker"]["fix"].startswith("stepstone daemon start")
    assert found["hook"]["fix"] == f"stepstone hook install --db {cli.db}"
    assert found["clock"]["status"] == "skip"
    human = cli("doctor", code=9).stdout
    assert f"fix hook: stepstone hook install --db {cli.db}" in human
    cli("hook", "install")
    with skills_worker(cli):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (doctor := _doctor(cli)).returncode != 0:
            assert '"check": "worker", "status": "fail"' in doctor.stdout, doctor.stdout
            assert time.monotonic() < deadline, "the worker never showed up as live"
            time.sleep(0.1)
        assert {c["status"] for c in checks(cli, 0).values()} == {"ok", "skip"}


def _doctor(cli: Cli) -> subprocess.CompletedProcess[str]:
    argv = cli.argv("doctor", "--json")
    return subprocess.run(argv, cwd=cli.cwd, env=cli.env, capture_output=True, text=True)


def test_a_store_behind_and_a_broken_skill_are_failures_naming_them(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.db_path.write_bytes(b"")  # an SQLite file with no schema
    broken = tmp_path / "skills" / "broken"
    broken.mkdir(parents=True)
    (broken / "skill.py").write_text("import nothing_here\n")
    found = checks(cli, 9)
    assert found["store"]["fix"] == f"stepstone migrate --db {cli.db}"
    assert found["skills"]["detail"].startswith("broken: ")
    assert "ModuleNotFoundError" in found["skills"]["detail"]
    assert found["skills"]["fix"] == "stepstone skills"


@pytest.mark.postgres
def test_the_clock_is_compared_with_postgresql(tmp_path: Path, pg_url: str) -> None:
    cli = Cli(tmp_path)
    cli.db = pg_url
    found = checks(cli, 9)
    assert found["store"]["status"] == "ok" and found["clock"]["status"] == "ok"
    assert found["clock"]["detail"].endswith("s against the database server")
    assert "disk" not in found and "wal" not in found


def test_the_model_check_is_offline_or_one_free_call_that_names_the_problem(
    tmp_path: Path,
) -> None:
    from tests.llm_server import Answer, llm_server

    cli = Cli(tmp_path)
    cli("migrate")
    assert checks(cli, 9)["model"] == {
        "check": "model",
        "status": "ok",
        "detail": "offline: scripted provider",
        "fix": None,
    }
    with llm_server() as server:
        cli.env.update(
            STEPSTONE_LLM_PROVIDER="openai",
            STEPSTONE_OPENAI_BASE_URL=f"{server.url}/v1",
            STEPSTONE_OPENAI_API_KEY="sk-doctor-secret",
        )
        server.queue(
            Answer(body={"data": [{"id": "m1"}, {"id": "m2"}]}),
            Answer(401, {"error": {"message": "invalid api key"}}),
        )
        ok = checks(cli, 9)["model"]
        assert ok["status"] == "ok" and ok["detail"].endswith("/v1 answers (2 models)")
        bad = checks(cli, 9)["model"]
        assert bad["status"] == "fail" and "HTTP 401: invalid api key" in bad["detail"]
        assert bad["fix"] is not None and "STEPSTONE_OPENAI_API_KEY" in bad["fix"]
        assert [r["path"] for r in server.requests] == ["/v1/models", "/v1/models"]
        assert all("sk-doctor-secret" not in str(c) for c in (ok, bad))
    down = checks(cli, 9)["model"]  # the server is gone
    assert down["status"] == "fail" and "cannot reach" in down["detail"]
