"""``stepstone approve`` and ``stepstone answer``: answering a run's ``ctx.ask`` gates.

The answer is sent as the gate's signal, ``{"answer": ..., "by": WHO, "comment": ...}``, and
checked against the schema stored with the wait before it reaches the run: an answer the gate
does not take (a name not among its approvers, an option it does not offer, a form that fails
its schema) is exit 4 naming the path, and the run keeps waiting.
"""

from __future__ import annotations

import argparse
from typing import Any

from stepstone.cli.inputs import parse_json_flag
from stepstone.cli.output import Output
from stepstone.cli.session import Session
from stepstone.client.views import SignalWait
from stepstone.errors import InvalidArgument

__all__ = ["cmd_answer", "cmd_approve", "who"]


def who(ns: argparse.Namespace, session: Session) -> str:
    """``--as WHO``, else the login name of whoever runs the command."""
    name: str = ns.as_ or session.env.get("USER") or session.env.get("LOGNAME") or "unknown"
    return name


def cmd_approve(ns: argparse.Namespace, session: Session) -> Output:
    return _answer(ns, session, not ns.reject, kinds=("approval",))


def cmd_answer(ns: argparse.Namespace, session: Session) -> Output:
    return _answer(ns, session, parse_json_flag("--input", ns.input), kinds=None)


def _answer(
    ns: argparse.Namespace, session: Session, value: Any, kinds: tuple[str, ...] | None
) -> Output:
    by = who(ns, session)
    payload: dict[str, Any] = {"answer": value, "by": by}
    if ns.comment is not None:
        payload["comment"] = ns.comment
    with session.client() as client:
        run = client.get(ns.run_id)
        held = _gate(ns.run_id, client.signal_waits(run), ns.gate, kinds)
        client.signal(held.run_id, held.event, payload)
    kind = held.wait.info.ask if held.wait.info is not None else None
    data = {"run_id": ns.run_id, "gate": held.event, "kind": kind, **payload}
    if held.run_id != ns.run_id:
        data["waiting_run_id"] = held.run_id
    verdict = ("approved" if value else "rejected") if kind == "approval" else "answered"
    line = f"{verdict} gate {held.event!r} of run {ns.run_id} as {by}"
    return Output(data, lambda s: s.line(line))


def _gate(
    run_id: str, holds: list[SignalWait], gate: str | None, kinds: tuple[str, ...] | None
) -> SignalWait:
    """The ``ctx.ask`` gate the run waits at: ``gate`` by name, or the only one there is."""
    asks = [h for h in holds if h.wait.info is not None and h.wait.info.ask is not None]
    if kinds is not None:
        asks = [h for h in asks if h.wait.info is not None and h.wait.info.ask in kinds]
    what = "an approval gate" if kinds == ("approval",) else "a gate"
    names = ", ".join(repr(h.event) for h in asks) or "none"
    if gate is not None:
        for held in asks:
            if held.event == gate:
                return held
        raise InvalidArgument(
            f"--gate {gate!r}: run {run_id} is not waiting at {what} of that name "
            f"(waiting at: {names})"
        )
    if len(asks) == 1:
        return asks[0]
    if not asks:
        raise InvalidArgument(f"run {run_id} is not waiting at {what}")
    raise InvalidArgument(f"run {run_id} waits at several gates ({names}): name one with --gate")
