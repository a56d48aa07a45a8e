"""YAML workflows: ``checkpointflow/v1`` documents run unchanged on stepstone's engine, and
``stepstone/v1`` is the same format plus extras (``python`` steps, ``argv`` commands, inline
parallel branches, ``allow_hosts``).

>>> from stepstone import Client
>>> from stepstone.spec import load_workflow
>>> wf = load_workflow("examples/yaml/quickstart.yaml")
>>> client = Client("runs.db", workflows=wf.registry())
>>> handle = client.start(wf, {"page_id": "123456", "source_file": "docs/a.md"})

A document is checked whole before anything runs; every problem is a
:class:`~stepstone.errors.SpecError` naming ``file:line:column`` and the JSON path. The compiled
:class:`SpecWorkflow` is an ordinary workflow: each step a checkpointed ``ctx.step`` named by its
id, each ``await_event`` a ``ctx.wait_for_signal``, each sub-workflow a child run.
Importing this package imports neither PyYAML nor CEL: they load with the first file.
"""

from stepstone.errors import SpecError, SpecStepError
from stepstone.spec.loader import load_folder, load_workflow
from stepstone.spec.steps import StepLog, step_logs
from stepstone.spec.workflow import SpecWorkflow, source_of

__all__ = [
    "SpecError",
    "SpecStepError",
    "SpecWorkflow",
    "StepLog",
    "load_folder",
    "load_workflow",
    "source_of",
    "step_logs",
]
