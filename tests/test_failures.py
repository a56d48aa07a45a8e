"""Replayed step failures: rebuilt only from trusted types, never by importing what the database
names; anything else comes back as StepFailed with the original type name and message."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import types
from pathlib import Path

import pytest

from stepstone import (
    AsyncClient,
    InvalidArgument,
    StepError,
    StepFailed,
    WorkflowContext,
    step,
    workflow,
)
from stepstone.core.definitions import Registry
from stepstone.core.failures import error_info, rebuild_error
from stepstone.core.model import ErrorInfo, RunState
from tests.test_waits import wait_for_state


class PaymentDeclined(Exception):
    """An app's own exception, defined in the module of the workflows below."""


def _stored(exc: BaseException) -> ErrorInfo:
    return error_info(exc, with_traceback=False)


def test_builtins_come_back_as_themselves() -> None:
    value = rebuild_error(_stored(ValueError("bad", 3)), Registry())
    assert type(value) is ValueError and value.args == ("bad", 3)
    key = rebuild_error(_stored(KeyError("k")), Registry())
    assert type(key) is KeyError and key.args == ("k",)


def test_stepstones_own_errors_come_back_as_themselves() -> None:
    exc = rebuild_error(_stored(InvalidArgument("no such thing")), Registry())
    assert type(exc) is InvalidArgument and str(exc) == "no such thing"


def test_a_stored_module_is_never_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "stepstone_side_effects.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Boom(Exception):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    error = ErrorInfo("Boom", "kaboom", module="stepstone_side_effects", args_json='["kaboom"]')
    exc = rebuild_error(error, Registry())
    assert isinstance(exc, StepFailed) and isinstance(exc, StepError)
    assert (exc.type_name, exc.message) == ("Boom", "kaboom")
    assert not marker.exists()
    assert "stepstone_side_effects" not in sys.modules


def test_an_untrusted_class_is_not_built_even_when_its_module_is_loaded() -> None:
    os_error = ErrorInfo("system", "rm -rf /", module="os", args_json='["rm -rf /"]')
    exc = rebuild_error(os_error, Registry())
    assert isinstance(exc, StepFailed) and exc.type_name == "system"
    called = _stored(subprocess.CalledProcessError(1, "ls"))
    exc = rebuild_error(called, Registry())
    assert isinstance(exc, StepFailed) and exc.type_name == "CalledProcessError"


def test_registered_app_errors_come_back_as_themselves() -> None:
    stored = _stored(PaymentDeclined("card 42"))
    assert isinstance(rebuild_error(stored, Registry()), StepFailed)  # not registered
    for registry in (Registry(errors=[PaymentDeclined]), Registry(errors=[sys.modules[__name__]])):
        exc = rebuild_error(stored, registry)
        assert type(exc) is PaymentDeclined and exc.args == ("card 42",)


def test_a_registered_workflows_module_makes_its_errors_known() -> None:
    stored = _stored(PaymentDeclined("card 42"))
    assert type(rebuild_error(stored, Registry([checkout]))) is PaymentDeclined
    # a stored error naming another module is not matched by the name alone
    spoofed = ErrorInfo("PaymentDeclined", "x", module="elsewhere", args_json='["x"]')
    assert isinstance(rebuild_error(spoofed, Registry([checkout])), StepFailed)


def test_errors_takes_only_exception_classes_and_modules() -> None:
    with pytest.raises(InvalidArgument, match="errors="):
        Registry(errors=[object])  # type: ignore[list-item]


# --- end to end: a replay takes the same except branch --------------------------------------

offbeat = types.ModuleType("stepstone_test_offbeat")
exec("class Offbeat(Exception):\n    pass\n", offbeat.__dict__)
sys.modules[offbeat.__name__] = offbeat


@step
async def pay(kind: str) -> None:
    if kind == "declined":
        raise PaymentDeclined("card 42")
    raise offbeat.Offbeat("from a module nobody registered")


@workflow
async def checkout(ctx: WorkflowContext, kind: str) -> str:
    try:
        await pay(kind)
        caught = "nothing"
    except PaymentDeclined as exc:
        caught = f"PaymentDeclined: {exc}"
    except StepFailed as exc:
        caught = f"StepFailed: {exc.type_name}"
    except Exception as exc:
        caught = type(exc).__name__
    await ctx.wait_for_signal("go")  # the run suspends; the signal resumes it by replay
    return caught


@pytest.mark.parametrize(
    ("kind", "replayed"),
    [("declined", "PaymentDeclined: card 42"), ("offbeat", "StepFailed: Offbeat")],
)
async def test_a_replay_raises_the_app_error_it_may_rebuild(
    client: AsyncClient, kind: str, replayed: str
) -> None:
    run_id = f"checkout-{kind}"
    task = asyncio.create_task(client.run(checkout, kind, run_id=run_id))
    await wait_for_state(client, run_id, RunState.WAITING)
    await client.signal(run_id, "go")
    assert await task == replayed
