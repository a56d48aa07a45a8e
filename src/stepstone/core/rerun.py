"""``stepstone replay``: re-execute a run's code against its journal, writing nothing, and report
the first place the code now diverges from what was recorded.

The journal is the cassette: every recorded outcome (model replies included) is returned as
recorded, so no model is called. A call whose name or kind differs from the entry at its ``seq``,
a journal entry the code never reaches, a completed run whose code now asks for more, or a result
that differs from the recorded one is a divergence. With ``from_seq``, ordinary steps at or after
that ``seq`` are executed again (model calls never are) and their results compared with the
recorded ones, so a changed tool or step shows where it first answers differently.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from stepstone.core import codec
from stepstone.core.definitions import Workflow
from stepstone.core.engine import Execution, Runtime
from stepstone.core.executor import _invoke, decode_input
from stepstone.core.frozen import frozen
from stepstone.core.model import Claim, RunState
from stepstone.core.scope import active_caller
from stepstone.errors import CheckFrontier, CheckpointFailed, NonDeterminismError, Unwind

__all__ = ["Divergence", "ReplayResult", "replay_run"]


@frozen
class Divergence:
    """Where a replay first left the journal: the ``seq`` and step name, what the journal
    recorded (``expected``) and what the code now did (``got``)."""

    seq: int | None
    step: str
    expected: str
    got: str


@frozen
class ReplayResult:
    """The outcome of :func:`replay_run`: ``ok`` when the code matches the journal; ``replayed``
    is how many journal entries it went through; ``reexecuted`` how many steps ran again."""

    run_id: str
    workflow: str
    ok: bool
    replayed: int
    reexecuted: int = 0
    divergence: Divergence | None = None


async def replay_run(
    rt: Runtime, claim: Claim, wf: Workflow[Any, Any], *, from_seq: int | None = None
) -> ReplayResult:
    """Replay the run of ``claim`` (a read-only stand-in, never written with) against ``wf``."""
    run = claim.run
    records = await rt.store.load_steps(run.run_id)
    by_seq = {r.seq: r for r in records}
    exe = Execution(rt, claim, wf, records, check_only=True)
    exe.reexecute_from = from_seq
    divergence: Divergence | None = None
    replayed = len(records)
    try:
        args, kwargs = decode_input(wf, run.input_json)
        token = active_caller.set(exe.steps)
        try:
            exe.task = asyncio.ensure_future(_invoke(exe, args, kwargs))
        finally:
            active_caller.reset(token)
        result = await exe.task
        exe.journal.check_fully_consumed()
        divergence = _result_differs(run.state, run.output_json, result)
    except CheckFrontier as frontier:
        replayed = frontier.seq
        if run.state is RunState.COMPLETED:  # the run ended, yet the code goes on
            divergence = Divergence(frontier.seq, "", "(workflow returned)", "a new call")
    except NonDeterminismError as exc:
        replayed = exc.seq
        record = by_seq.get(exc.seq)
        divergence = Divergence(exc.seq, record.name if record else "", exc.recorded, exc.called)
    except ReplayMismatch as exc:
        replayed = exc.divergence.seq or 0
        divergence = exc.divergence
    except CheckpointFailed as exc:  # a read the replay needs failed: it cannot say
        raise exc.error from exc
    except Unwind:
        pass
    except Exception as exc:  # the recorded history raised it again; the run ended the same?
        if run.state is RunState.COMPLETED:
            divergence = Divergence(None, "", "(completed)", f"{type(exc).__name__}: {exc}")
    return ReplayResult(
        run.run_id,
        wf.name,
        divergence is None,
        replayed,
        exe.reexecuted,
        divergence,
    )


class ReplayMismatch(Unwind):
    """A step executed again by a replay returned something else than its recorded result."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(f"step {divergence.step!r} #{divergence.seq}: result differs")
        self.divergence = divergence


def compare_output(seq: int, name: str, recorded: str | None, value: Any) -> None:
    """Raise :class:`ReplayMismatch` when a re-executed step's ``value`` is not the recorded
    JSON (compared as JSON values, so key order and spacing do not count)."""
    if isinstance(value, Exception):
        raise ReplayMismatch(
            Divergence(seq, name, recorded or "null", f"raised {type(value).__name__}: {value}")
        )
    got = codec.encode(value, f"step {name!r} #{seq} result")
    if json.loads(got) != json.loads(recorded or "null"):
        raise ReplayMismatch(Divergence(seq, name, recorded or "null", got))


def _result_differs(state: RunState, output_json: str | None, result: Any) -> Divergence | None:
    if state is not RunState.COMPLETED:
        return None
    got = codec.encode(result, "workflow result")
    if json.loads(got) == json.loads(output_json or "null"):
        return None
    return Divergence(None, "(result)", output_json or "null", got)
