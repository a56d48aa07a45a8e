"""The one exception tree of stepstone: every error a user can catch, and the unwinding signals.

Errors carry their data as attributes. Driver errors (sqlite3, psycopg) are converted once, at the
store adapter's edge, with the original kept in ``__cause__``. Control flow that must unwind user
code (suspending a run, losing a lease, cancelling or pausing at a step boundary) derives from
``BaseException`` so that ``except Exception`` in a workflow cannot swallow it.
"""

from __future__ import annotations

__all__ = [
    "AlreadyResumed",
    "ApiCallFailed",
    "ApiTimeout",
    "AppNotFound",
    "BlockedAddress",
    "BudgetExhausted",
    "ChecksFailed",
    "CancelRequested",
    "CheckFrontier",
    "CheckpointFailed",
    "DeadlinePassed",
    "DeadlineExceeded",
    "DecodeError",
    "DuplicateRun",
    "EncodeError",
    "HandBack",
    "FlowError",
    "InvalidArgument",
    "LeaseHeld",
    "LeaseLost",
    "MalformedOutput",
    "ModelAuthError",
    "ModelError",
    "ModelInvalidRequest",
    "ModelOverloaded",
    "ModelRateLimited",
    "ModelUnavailable",
    "MaxRecoveriesExceeded",
    "MemoryConflict",
    "MemoryNotFound",
    "NonDeterminismError",
    "OutcomeUnknown",
    "PauseRequested",
    "PromptError",
    "RunFailed",
    "RunNotFound",
    "ScheduleNotFound",
    "WebhookNotFound",
    "RunStateError",
    "ReplayDiverged",
    "RunsNotCopied",
    "SchemaError",
    "SignalPayloadError",
    "SkillError",
    "SkillNotFound",
    "SpecError",
    "SpecStepError",
    "TemplateError",
    "UnknownSignal",
    "UnsupportedShell",
    "StepError",
    "StepFailed",
    "StepTimeout",
    "StillWaiting",
    "StepstoneError",
    "StoreCorrupt",
    "StoreError",
    "StoreReadOnly",
    "StoreUnavailable",
    "UsageError",
    "Suspend",
    "Unwind",
    "WaitTimeout",
    "WorkflowNotFound",
]


class StepstoneError(Exception):
    """Base of every error stepstone raises on purpose."""


# --- bad input from the caller -------------------------------------------------------------


class InvalidArgument(StepstoneError, ValueError):
    """An argument given to the API or the CLI is malformed; the message names which and why."""


class SpecError(InvalidArgument):
    """A YAML workflow document (or a value checked against it) is wrong; ``str`` names where:
    ``flow.yaml:12:7: $.workflow.steps[2].next: no step 'aply' (did you mean 'apply'?)``.

    ``line`` and ``column`` are 1-based (0 when the place is not in a file, e.g. a run input)."""

    def __init__(self, file: str, line: int, column: int, path: str, problem: str) -> None:
        super().__init__(file, line, column, path, problem)
        self.file, self.line, self.column, self.path, self.problem = (
            file,
            line,
            column,
            path,
            problem,
        )

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}: " if self.line else ""
        if not self.line and self.file:
            where = f"{self.file}: "
        return f"{where}{self.path}: {self.problem}" if self.path else f"{where}{self.problem}"


class SpecStepError(StepstoneError):
    """A step of a YAML workflow failed by the document's rules: a command's exit code, output
    that does not match its ``outputs`` schema, an expression that cannot be evaluated, an event
    no transition takes. ``code`` is checkpointflow's error code (``ERR_STEP_FAILED``,
    ``ERR_STEP_OUTPUT_INVALID``, ...)."""

    def __init__(self, step_id: str, problem: str, code: str = "ERR_STEP_FAILED") -> None:
        super().__init__(step_id, problem, code)
        self.step_id, self.problem, self.code = step_id, problem, code

    def __str__(self) -> str:
        return f"step {self.step_id!r}: {self.problem}"


class WorkflowNotFound(StepstoneError, LookupError):
    """No workflow of this name is registered with the client, worker or app in use."""

    def __init__(self, name: str, known: tuple[str, ...] = ()) -> None:
        hint = f"; known: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown workflow {name!r}{hint}")
        self.name, self.known = name, known


class ScheduleNotFound(StepstoneError, LookupError):
    """No schedule has this name in the store."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}")
        self.name = name


class SkillNotFound(StepstoneError, LookupError):
    """No skill of this name in any folder of the skills path."""

    def __init__(self, name: str, searched: tuple[str, ...], known: tuple[str, ...] = ()) -> None:
        where = ", ".join(searched) or "no skills folder"
        hint = f"; found: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"no skill {name!r} (looked in {where}){hint}")
        self.name, self.searched, self.known = name, searched, known


class SkillError(InvalidArgument):
    """A skill folder cannot be used: no ``skill.py``, an import that fails, no workflow or
    several in it, a bad ``skill.toml``, a run-folder path outside the run's folder. The
    message names the file."""


class PromptError(InvalidArgument):
    """A prompt cannot be filled: no such prompt file, bad front matter, or a ``$variable`` the
    call did not give (named, with the file)."""


class WebhookNotFound(StepstoneError, LookupError):
    """No webhook binding has this name."""

    def __init__(self, name: str, where: str) -> None:
        super().__init__(f"no webhook named {name!r} in {where}")
        self.name = name


class MemoryNotFound(StepstoneError, LookupError):
    """No memory document at this scope, owner and key."""


class RunNotFound(StepstoneError, LookupError):
    """No run has this id in the store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class RunStateError(StepstoneError):
    """The operation does not apply to the run in its current state (e.g. unpausing a finished
    run)."""

    def __init__(self, run_id: str, state: str, action: str, expected: str = "") -> None:
        want = f" (needs {expected})" if expected else ""
        super().__init__(f"cannot {action} run {run_id}: it is {state}{want}")
        self.run_id, self.state, self.action, self.expected = run_id, state, action, expected


class AlreadyResumed(RunStateError):
    """A resume found the run no longer waiting for the event: another resume (or signal) was
    delivered first and the run is continuing. Nothing was stored by this resume."""

    def __init__(self, run_id: str, state: str, name: str) -> None:
        super().__init__(run_id, state, f"resume with event {name!r}", "a run waiting for it")
        self.args = (
            f"run {run_id} was already resumed: it no longer waits for event {name!r} (it is "
            f"{state}; another resume or signal was delivered first)",
        )
        self.name = name


class MemoryConflict(StepstoneError):
    """A memory write was computed from a version another run has since replaced (the write
    did not land). ``Memory.update`` runs its step again on the new value; ``Memory.set``
    after a read raises this."""

    def __init__(self, where: str, expected: int, found: int) -> None:
        super().__init__(where, expected, found)
        self.where, self.expected, self.found = where, expected, found

    def __str__(self) -> str:
        return (
            f"memory {self.where} changed under this write: it was computed from version "
            f"{self.expected}, the document is now at version {self.found} (another run wrote "
            "it; Memory.update retries on the new value)"
        )


class DuplicateRun(StepstoneError):
    """A start found an unfinished run with the same dedup key (or run id) and was told to raise."""

    def __init__(self, run_id: str, dedup_key: str | None = None) -> None:
        by = f"dedup key {dedup_key!r}" if dedup_key else "this run id"
        super().__init__(f"run {run_id} already holds {by}")
        self.run_id, self.dedup_key = run_id, dedup_key


class LeaseHeld(StepstoneError):
    """Another holder has the lease on ``name`` (a worker started with ``exclusive=name``
    while one already serves under it; its ``holder`` is alive)."""

    def __init__(self, name: str, holder: str) -> None:
        super().__init__(f"the lease {name!r} is held by {holder}")
        self.name, self.holder = name, holder


class SignalPayloadError(StepstoneError, ValueError):
    """A signal payload does not match the schema its wait declared (or the workflow's declared
    signal type); the run was not touched, and the signal is on record as rejected."""

    def __init__(self, run_id: str, name: str, problem: str) -> None:
        super().__init__(f"signal {name!r} for run {run_id}: {problem}")
        self.run_id, self.name, self.problem = run_id, name, problem


class UnknownSignal(StepstoneError, ValueError):
    """A signal name the run neither waits for now nor declares (``signals=``), sent without
    ``buffer=True``; nothing was stored. ``known``: the names it would take now."""

    def __init__(
        self,
        run_id: str,
        name: str,
        workflow: str,
        known: tuple[str, ...],
        suggestion: str | None = None,
        workflow_known: bool = True,
    ) -> None:
        did = f"; did you mean {suggestion!r}?" if suggestion else ""
        takes = "waits for now or declares" if workflow_known else "waits for now"
        blind = "" if workflow_known else "; this client cannot see what it declares: use --app"
        super().__init__(
            f"run {run_id} (workflow {workflow!r}) does not take signal {name!r}{did} (the names "
            f"it {takes}: {', '.join(map(repr, known)) or 'none'}{blind}). To send it ahead of a "
            "wait the workflow reaches later, pass buffer=True (CLI: --buffer)"
        )
        self.run_id, self.name, self.workflow, self.known = run_id, name, workflow, known
        self.suggestion, self.workflow_known = suggestion, workflow_known


# --- values ----------------------------------------------------------------------------------


class EncodeError(StepstoneError, TypeError):
    """A value cannot be stored as JSON; ``where`` names the step or input, ``path`` the place."""

    def __init__(self, where: str, path: str, type_name: str, hint: str | None = None) -> None:
        super().__init__(
            f"{where}: value at {path} of type {type_name} cannot be encoded as JSON ("
            + (
                hint
                or "use primitives, lists, dicts, dataclasses, Pydantic models, datetimes, "
                "enums, UUIDs, Decimals or bytes"
            )
            + ")"
        )
        self.where, self.path, self.type_name, self.hint = where, path, type_name, hint


class DecodeError(StepstoneError, ValueError):
    """A stored value does not fit the type it is decoded into."""

    def __init__(self, where: str, path: str, problem: str) -> None:
        super().__init__(f"{where}: value at {path}: {problem}")
        self.where, self.path, self.problem = where, path, problem


# --- replay and execution -------------------------------------------------------------------


class NonDeterminismError(StepstoneError):
    """The workflow called a different step than the one recorded at this position."""

    def __init__(self, run_id: str, seq: int, recorded: str, called: str) -> None:
        super().__init__(f"run {run_id} step #{seq}: recorded {recorded!r}, now {called!r}")
        self.run_id, self.seq, self.recorded, self.called = run_id, seq, recorded, called


class OutcomeUnknown(StepstoneError):
    """An at-most-once step started but its outcome was never recorded; it is not run again."""

    def __init__(self, run_id: str, seq: int, name: str) -> None:
        super().__init__(
            f"run {run_id} step #{seq} {name!r}: outcome unknown (at_most_once step was started "
            "but the worker stopped before recording its result; it will not be run again)"
        )
        self.run_id, self.seq, self.name = run_id, seq, name


class StepTimeout(StepstoneError, TimeoutError):
    """One attempt of a step ran longer than its ``timeout_s``."""

    def __init__(self, name: str, timeout_s: float) -> None:
        super().__init__(f"step {name!r} timed out after {timeout_s:g}s")
        self.name, self.timeout_s = name, timeout_s


class DeadlineExceeded(StepstoneError, TimeoutError):
    """The run passed its ``deadline_s``."""

    def __init__(self, run_id: str, deadline_s: float | None = None) -> None:
        extra = f" of {deadline_s:g}s" if deadline_s is not None else ""
        super().__init__(f"run {run_id} passed its deadline{extra}")
        self.run_id, self.deadline_s = run_id, deadline_s


class WaitTimeout(StepstoneError, TimeoutError):
    """A ``wait_for_signal`` (or child wait) was not satisfied in time; catch it for a fallback."""

    def __init__(self, what: str, timeout_s: float | None, *, run_id: str | None = None) -> None:
        after = f" within {timeout_s:g}s" if timeout_s is not None else ""
        super().__init__(f"{what} did not arrive{after}")
        self.what, self.timeout_s, self.run_id = what, timeout_s, run_id


class MaxRecoveriesExceeded(StepstoneError):
    """The run lost its worker more times than ``max_recoveries`` allows."""

    def __init__(self, run_id: str, recoveries: int, limit: int) -> None:
        super().__init__(
            f"run {run_id} was recovered {recoveries} times after its worker died "
            f"(max_recoveries={limit}); giving up"
        )
        self.run_id, self.recoveries, self.limit = run_id, recoveries, limit


class FlowError(StepstoneError):
    """A Flow's own rule failed at run time: a route key with no branch, a loop past its
    ``max_iterations``, a loop body that returned no ``LoopResult``."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"{node}: {message}")
        self.node = node


class StepFailed(StepstoneError):
    """A recorded step failure whose exception class is not one stepstone may rebuild on replay.

    Replay rebuilds only the app's registered exception types, stepstone's own and Python's
    builtins (never importing a module named in the database); any other failure comes back as
    this, carrying the original ``type_name`` (qualified name) and ``message``.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message = type_name, message


StepError = StepFailed  # the earlier name of StepFailed, kept importable


class RunFailed(StepstoneError):
    """The run ended failed, cancelled or blocked; carries the run's recorded error."""

    def __init__(
        self,
        run_id: str,
        state: str,
        error_type: str,
        message: str,
        traceback: str | None = None,
    ) -> None:
        super().__init__(f"run {run_id} {state}: {error_type}: {message}")
        self.run_id, self.state = run_id, state
        self.error_type, self.message, self.traceback = error_type, message, traceback


# --- YAML steps: shell commands and HTTP calls ---------------------------------------------


class TemplateError(InvalidArgument):
    """A ``${...}`` template cannot be parsed, or one of its expressions stands where stepstone
    cannot pass a value safely (``$'...'``, ``$((...))``, a quoted here-document, right after a
    backslash). ``column`` counts from 1 in ``text``."""

    def __init__(self, text: str, column: int, problem: str) -> None:
        super().__init__(f"column {column}: {problem} (in {text!r})")
        self.text, self.column, self.problem = text, column, problem


class UnsupportedShell(InvalidArgument):
    """A ``cli`` step names a shell stepstone does not run commands with, or one not installed."""

    def __init__(self, shell: str, problem: str) -> None:
        super().__init__(f"shell {shell!r}: {problem}")
        self.shell, self.problem = shell, problem


class BlockedAddress(InvalidArgument):
    """An ``api`` step's URL (or a redirect) leads to an address it may not reach: loopback,
    private, link-local (cloud metadata), multicast, reserved... unless the host is allowed."""

    def __init__(
        self, url: str, host: str, address: str, why: str, redirected_from: str | None = None
    ) -> None:
        via = f" (a redirect from {redirected_from})" if redirected_from else ""
        super().__init__(
            f"{url}{via}: host {host!r} resolves to {address}, a {why} address; refused (add "
            "the host to allow_hosts to call it on purpose)"
        )
        self.url, self.host, self.address, self.why = url, host, address, why
        self.redirected_from = redirected_from


class ApiCallFailed(StepstoneError):
    """An ``api`` step's request got no HTTP response: the connection, TLS or protocol failed,
    or it was redirected too many times."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"{url}: {problem}")
        self.url, self.problem = url, problem


class ApiTimeout(ApiCallFailed, TimeoutError):
    """An ``api`` step's connect or read took longer than its ``timeout_s``."""

    def __init__(self, url: str, timeout_s: float) -> None:
        super().__init__(url, f"no response within {timeout_s:g}s")
        self.timeout_s = timeout_s


# --- the command line ------------------------------------------------------------------------


# --- model calls (ctx.llm) -------------------------------------------------------------------


class ModelError(StepstoneError):
    """A model provider refused or failed a call. ``provider`` names it; the message never
    holds an API key. Subclasses say whether another attempt may help (``retryable``)."""

    retryable = False

    def __init__(self, provider: str, problem: str, retry_after_s: float | None = None) -> None:
        super().__init__(provider, problem, retry_after_s)
        self.provider, self.problem, self.retry_after_s = provider, problem, retry_after_s

    def __str__(self) -> str:
        return f"{self.provider}: {self.problem}"


class ModelRateLimited(ModelError):
    """The provider said too many requests (HTTP 429); ``retry_after_s`` is its retry-after."""

    retryable = True


class ModelOverloaded(ModelError):
    """The provider is overloaded or failed on its side (HTTP 5xx, 529); retried."""

    retryable = True


class ModelUnavailable(ModelError):
    """The provider could not be reached or did not answer in time; retried."""

    retryable = True


class ModelAuthError(ModelError):
    """The provider refused the credentials (HTTP 401/403): never retried."""


class ModelInvalidRequest(ModelError):
    """The provider refused the request itself (HTTP 400/404/422, an unknown model, no scripted
    reply): never retried."""


class MalformedOutput(ModelError):
    """The model's reply does not match the requested output schema, even after one repair
    turn. ``path`` is the JSON path of the first problem (``$`` when the reply is not JSON)."""

    def __init__(self, provider: str, problem: str, path: str = "$") -> None:
        StepstoneError.__init__(self, provider, problem, path)
        self.provider, self.problem, self.retry_after_s = provider, problem, None
        self.path = path

    def __str__(self) -> str:
        return f"{self.provider}: malformed output at {self.path}: {self.problem}"


class UsageError(StepstoneError):
    """The command line itself is wrong: an unknown flag, a missing argument, a bad combination."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class AppNotFound(StepstoneError, LookupError):
    """``--app`` names a module that cannot be imported (missing, or it raised while importing)."""

    def __init__(self, app: str, problem: str) -> None:
        super().__init__(f"cannot import app {app!r}: {problem}")
        self.app, self.problem = app, problem


class ChecksFailed(StepstoneError):
    """``stepstone check`` found runs that the code now loaded cannot continue; ``output`` is
    the report the CLI prints before exiting with this error's code."""

    def __init__(self, failed: int, total: int, output: object) -> None:
        super().__init__(
            f"{failed} of {total} unfinished run(s) cannot continue with the code now loaded "
            "(deploying it would block them)"
        )
        self.failed, self.total, self.output = failed, total, output


class ReplayDiverged(StepstoneError):
    """``stepstone replay`` found where the code now loaded leaves the run's journal: ``seq``,
    ``step``, what was recorded (``expected``) and what the code did (``got``); ``output`` is
    the report the CLI prints before exiting with this error's code."""

    def __init__(
        self, run_id: str, seq: int | None, step: str, expected: str, got: str, output: object
    ) -> None:
        at = f"step {step!r} #{seq}" if seq is not None else step or "the result"
        super().__init__(
            f"run {run_id} diverges from its journal at {at}: expected {expected}, got {got}"
        )
        self.run_id, self.seq, self.step = run_id, seq, step
        self.expected, self.got, self.output = expected, got, output


class RunsNotCopied(StepstoneError):
    """``db copy`` copied what it could but the target could not hold some runs (named, with
    why); ``output`` is the copy's report."""

    def __init__(self, refused: tuple[tuple[str, str], ...], output: object) -> None:
        first = "; ".join(f"run {run_id}: {why}" for run_id, why in refused[:3])
        more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
        super().__init__(f"{len(refused)} run(s) not copied: {first}{more}")
        self.refused, self.output = refused, output


class StillWaiting(WaitTimeout):
    """``--timeout-s`` ran out before the run finished; says what the run is doing."""

    def __init__(self, run_id: str, state: str, doing: str, timeout_s: float | None) -> None:
        super().__init__(f"the result of run {run_id}", timeout_s)
        self.args = (f"{self.args[0]}; it is still {state} ({doing})",)
        self.run_id, self.state, self.doing = run_id, state, doing


# --- the store -------------------------------------------------------------------------------


class StoreError(StepstoneError):
    """The store could not do what was asked. ``url`` names the store (without credentials)."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"{url}: {problem}")
        self.url, self.problem = url, problem


class StoreUnavailable(StoreError):
    """The database cannot be reached or stayed locked/busy past the timeout."""


class StoreCorrupt(StoreError):
    """The file is not a database, or not a stepstone database."""


class StoreReadOnly(StoreError):
    """The database refuses writes (read-only file, directory or server)."""


class SchemaError(StoreError):
    """The schema is missing, behind or ahead of this version of stepstone."""


# --- store internals (never reach users) ----------------------------------------------------


class Transient(Exception):
    """Internal to the stores, never raised to users: a write found the database changed under it
    (a guarded update matched nothing because another transaction moved the run first). Its
    transaction is rolled back and the write runs again; a store converts one that outlasts its
    retries into :class:`StoreUnavailable`. A plain ``Exception``, not a :class:`StoreError`: the
    PostgreSQL writer retries it, where it passes a StoreError straight to the caller."""


# --- control flow: unwinds user code, never caught by ``except Exception`` --------------------


class Unwind(BaseException):
    """Base of the signals that unwind a workflow: suspend, lease lost, cancel or pause."""


# --- internal signals: unwind user code; never raised to users ---


class Suspend(Unwind):
    """The run must wait (timer, signal, child, retry back-off); unwinds to the executor."""


class CancelRequested(Unwind):
    """A cancel was requested; the run stops at this step boundary."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason or "cancelled")
        self.reason = reason


class PauseRequested(Unwind):
    """A pause was requested; the run stops at this step boundary until unpaused."""


class BudgetExhausted(PauseRequested):
    """A model call would go past a budget: the run pauses before it, with this reason, until
    the budget is raised and the run unpaused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeadlinePassed(Unwind):
    """The run's ``deadline_s`` passed; the run fails."""


class HandBack(Unwind):
    """The worker is shutting down: stop at this step boundary and hand the run back."""


class CheckFrontier(Unwind):
    """``stepstone check`` reached a call with no recorded outcome: the replay fits so far."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"reached seq {seq}")
        self.seq = seq


class LeaseLost(Unwind):
    """This worker's lease on the run is gone (another worker took it, or it was finished)."""

    def __init__(self, run_id: str, lease_token: int) -> None:
        super().__init__(f"lease on run {run_id} (token {lease_token}) is no longer held")
        self.run_id, self.lease_token = run_id, lease_token


class CheckpointFailed(Unwind):
    """The store refused a write the run needs (a step's record, a wait, a child's start, an
    event): not the workflow's failure, so never an ordinary exception its code could catch.
    When the store is unavailable (down, full, read-only) the run is handed back and tried again
    with a back-off; any other store error fails the run with it. ``error`` is the store's."""

    def __init__(self, error: StoreError) -> None:
        super().__init__(f"checkpoint not written: {error}")
        self.error = error

    @property
    def store_unavailable(self) -> bool:
        """Whether the same write may succeed later (the store is down, full or read-only)."""
        return isinstance(self.error, StoreUnavailable | StoreReadOnly)
