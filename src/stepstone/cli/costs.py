"""``stepstone cost``: what model calls cost, from the ledger, grouped as asked."""

from __future__ import annotations

import argparse
import dataclasses

from stepstone.cli.output import Output
from stepstone.cli.render import Screen
from stepstone.cli.session import Session

__all__ = ["cmd_cost"]


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
