#!/usr/bin/env bash
# Create the peers' virtualenv at bench/.peers/venv (gitignored) and install the pinned peers:
# DBOS Transact, LangGraph with its SQLite checkpointer, sayiir, checkpointflow (its `cpf` CLI
# runs the YAML benchmark's peer side) and psycopg (for the PostgreSQL bench plumbing and
# DBOS's Postgres driver). They are never project dependencies.
# Usage: bench/peers/setup.sh [--force]     (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/../.peers/venv"
PYTHON="${PYTHON:-python3}"

# Versions measured in bench/RESULTS.md; bump deliberately and re-run bench/run.py.
PINS=(
  "dbos==3.4.0"
  "langgraph==1.2.22"
  "langgraph-checkpoint==4.3.2"
  "langgraph-checkpoint-sqlite==3.1.2"
  "sayiir==1.0.0"
  "checkpointflow==1.10.0"
  "psycopg[binary]==3.3.9"
)

if [[ "${1:-}" == "--force" ]]; then
  rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
"$VENV/bin/python" -m pip freeze | grep -iE '^(checkpointflow|dbos|langgraph|langgraph-checkpoint|langgraph-checkpoint-sqlite|langchain-core|sqlalchemy|aiosqlite|sayiir|psycopg|psycopg-binary)=='
