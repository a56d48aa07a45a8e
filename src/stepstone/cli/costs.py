"""``stepstone cost`` (what model calls cost, from the ledger, grouped as asked) and
``stepstone budget`` (the budgets checked against it)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

from stepstone.cli.output import Output
from stepstone.cli.parser import BadValue
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.errors import InvalidArgument

if TYPE_CHECKING:
    from stepstone.core.ledger import Budget, BudgetSpec

__all__ = ["cmd_budget", "cmd_cost"]


def cmd_cost(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        lines = client.cost(
            ns.run_id, workflow=ns.workflow, queue=ns.queue, since=ns.since, by=ns.by
        )
    data = [dataclasses.asdict(line) for line in lines]

    def human(screen: Screen) -> None:
        if not lines:
            screen.line("no model calls recorded" + (" for these filters" if _filtered(ns) else ""))
            return
        rows = [
            (
                line.key if line.key is not None else "total",
                str(line.calls),
                str(line.input_tokens),
                str(line.output_tokens),
                f"{line.cache_read_tokens}/{line.cache_write_tokens}",
                f"{line.cost_usd:.6f}",
                f"{line.latency_s:.2f} s",
            )
            for line in lines
        ]
        if len(lines) > 1:
            rows.append(
                (
                    "total",
                    str(sum(x.calls for x in lines)),
                    str(sum(x.input_tokens for x in lines)),
                    str(sum(x.output_tokens for x in lines)),
                    f"{sum(x.cache_read_tokens for x in lines)}/"
                    f"{sum(x.cache_write_tokens for x in lines)}",
                    f"{sum(x.cost_usd for x in lines):.6f}",
                    f"{sum(x.latency_s for x in lines):.2f} s",
                )
            )
        first = ns.by or "group"
        columns = (first, "calls", "tokens in", "tokens out", "cache r/w", "USD", "latency")
        screen.table(columns, rows, no_wrap=(columns[0],))

    return Output(data, human)


def _filtered(ns: argparse.Namespace) -> bool:
    return any(v is not None for v in (ns.run_id, ns.workflow, ns.queue, ns.since))


def cmd_budget(ns: argparse.Namespace, session: Session) -> Output:
    if ns.budget_command == "list":
        return _list_budgets(ns, session)
    scope = {"run_id": ns.run, "workflow": ns.workflow, "queue": ns.queue, "key": ns.key}
    budget = None
    if ns.budget_command == "set":
        budget = _budget_of(ns)
    with session.client() as client:
        client.set_budget(budget, **scope)
        specs = client.budgets()
    data = [_spec_json(s) for s in specs]

    def human(screen: Screen) -> None:
        which = next(f"{k.removesuffix('_id')} {v!r}" for k, v in scope.items() if v)
        screen.line(f"budget of {which} {'set' if budget else 'cleared'}")

    return Output(data, human)


def _budget_of(ns: argparse.Namespace) -> Budget:
    from stepstone.core.ledger import Budget

    alerts = tuple(ns.alert) if ns.alert else (0.8,)
    for value in alerts:
        if isinstance(value, BadValue):
            raise InvalidArgument(f"--alert {value.text!r}: {value.problem}")
    return Budget(
        usd=ns.usd,
        tokens=ns.tokens,
        alerts=alerts,
        downgrade_at=ns.downgrade_at if ns.downgrade_at is not None else 0.8,
        period_s=ns.period,
        on_limit="wait" if ns.wait else "pause",
    )


def _list_budgets(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        if ns.run:
            uses = client.budget_use(ns.run)
            data = [
                {
                    **_spec_json(u.spec),
                    "spent_usd": u.spent_usd,
                    "spent_tokens": u.spent_tokens,
                    "used": u.fraction(),
                }
                for u in uses
            ]
        else:
            data = [_spec_json(s) for s in client.budgets()]

    def human(screen: Screen) -> None:
        if not data:
            screen.line("no budgets")
            return
        rows = [
            (
                f"{d['scope']} {d['name']}",
                "" if d["usd"] is None else f"{d['usd']:g}",
                "" if d["tokens"] is None else str(d["tokens"]),
                "" if d["period_s"] is None else f"{d['period_s']:g} s",
                ", ".join(f"{a:g}" for a in d["alerts"]),
                "" if "used" not in d else f"{d['used']:.0%}",
            )
            for d in data
        ]
        screen.table(("budget", "USD", "tokens", "period", "alerts", "used"), rows)

    return Output(data, human)


def _spec_json(spec: BudgetSpec) -> dict[str, Any]:
    b = spec.budget
    return {
        "scope": spec.scope,
        "name": spec.name,
        "usd": b.usd,
        "tokens": b.tokens,
        "alerts": list(b.alerts),
        "downgrade_at": b.downgrade_at,
        "period_s": b.period_s,
        "on_limit": b.on_limit,
    }
