"""A stand-in for the `confpub` CLI of checkpointflow's Quick Start: `plan` writes a plan file
and prints it as JSON; `apply` reads a plan file and prints the page URL it "published"."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(prog="confpub")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan")
    plan.add_argument("--page-id", required=True)
    plan.add_argument("--file", required=True)
    plan.add_argument("--format", default="json")
    apply = sub.add_parser("apply")
    apply.add_argument("--plan", required=True)
    apply.add_argument("--format", default="json")
    args = parser.parse_args()
    if args.command == "plan":
        plan_file = Path(tempfile.gettempdir()) / f"confpub-plan-{args.page_id}.json"
        plan_file.write_text(json.dumps({"page_id": args.page_id, "source": args.file}))
        summary = f"update page {args.page_id} from {args.file}"
        print(json.dumps({"plan_file": str(plan_file), "summary": summary}))
    else:
        planned = json.loads(Path(args.plan).read_text())
        print(json.dumps({"page_url": f"https://wiki.example.com/pages/{planned['page_id']}"}))


if __name__ == "__main__":
    main()
