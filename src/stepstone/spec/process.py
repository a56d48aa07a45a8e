"""One child process run to its end in a session of its own: its exit code and both outputs.

:func:`run_process` waits on the calling thread; :func:`run_process_async` waits on the event
loop without a thread (readers on the two pipes and on a pidfd, the timeout a loop timer), or
on a thread where pidfds or loop readers are missing. Either way, past ``timeout_s`` the whole
process group is killed (grandchildren too), and so it is when the wait is cancelled or
interrupted: nothing the child started outlives the step that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from stepstone.core.frozen import frozen

__all__ = ["CliResult", "run_process", "run_process_async"]

_DRAIN_S = 2.0  # after a timeout kill: how long to wait for the pipes to close
_READ = 65536


@frozen
class CliResult:
    """What a command did. ``exit_code`` is negative when a signal ended it (-9: killed)."""

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool


def run_process(
    args: Sequence[str],
    *,
    cwd: str | None = None,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """Run ``args`` (this process's environment plus ``env``; stdin ``/dev/null``) and wait
    for it here. Raises :class:`OSError` when it cannot be started."""
    started = time.monotonic()
    return _finish(_popen(args, cwd, env), started, timeout_s)


async def run_process_async(
    args: Sequence[str],
    *,
    cwd: str | None = None,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """:func:`run_process`, awaited: the child is started on the loop's thread (a fork and an
    exec, a fraction of a millisecond) and waited for by the loop. Cancelling the awaiting
    task kills the child's process group."""
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    proc = _popen(args, cwd, env)
    try:
        watch = _Watch.start(loop, proc, timeout_s)
    except BaseException:
        _kill_group(proc.pid)
        raise
    if watch is None:
        return await _finish_on_thread(proc, started, timeout_s)
    try:
        await watch.done
    except BaseException:
        watch.abandon()
        raise
    out, err = watch.output()
    return _result(proc.wait(), out, err, started, watch.timed_out)  # it has exited: no wait


def _popen(
    args: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env={**os.environ, **env} if env else None,
        start_new_session=True,  # its own process group: a timeout kills grandchildren too
    )


def _result(code: int, out: bytes, err: bytes, started: float, timed_out: bool) -> CliResult:
    return CliResult(
        exit_code=code,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
    )


# --- waiting on the event loop ---------------------------------------------------------------


class _Watch:
    """The loop's readers on a child's pipes and pidfd, and its timeout timer; ``done`` is set
    once the child has exited and both pipes are closed (or abandoned after a timeout)."""

    __slots__ = ("chunks", "done", "loop", "pidfd", "proc", "timed_out", "timer", "waiting")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], pidfd: int
    ) -> None:
        assert proc.stdout is not None
        assert proc.stderr is not None
        self.loop, self.proc, self.pidfd = loop, proc, pidfd
        self.chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
        self.waiting: set[int] = set()
        self.done: asyncio.Future[None] = loop.create_future()
        self.timed_out = False
        self.timer: asyncio.TimerHandle | None = None

    @classmethod
    def start(
        cls, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], timeout_s: float | None
    ) -> _Watch | None:
        """Watch ``proc`` on ``loop``; None (nothing registered) where the platform or the
        loop cannot (no pidfd, no ``add_reader``): the caller waits on a thread instead."""
        try:
            pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            return None
        watch = cls(loop, proc, pidfd)
        try:
            for fd in (pidfd, *watch.chunks):
                loop.add_reader(fd, watch.readable, fd)
                watch.waiting.add(fd)
        except NotImplementedError:
            for fd in watch.waiting:
                loop.remove_reader(fd)
            os.close(pidfd)
            return None
        for fd in watch.chunks:
            os.set_blocking(fd, False)
        if timeout_s is not None:
            watch.timer = loop.call_later(timeout_s, watch.time_out)
        return watch

    def readable(self, fd: int) -> None:
        if fd != self.pidfd:
            try:
                data = os.read(fd, _READ)
            except BlockingIOError:
                return
            if data:
                self.chunks[fd].append(data)
                return
        self.unwatch(fd)
        if not self.waiting and not self.done.done():
            self.cancel_timer()
            self.done.set_result(None)

    def unwatch(self, fd: int) -> None:
        if fd in self.waiting:
            self.loop.remove_reader(fd)
            self.waiting.discard(fd)

    def time_out(self) -> None:
        self.timed_out = True
        _kill_group(self.proc.pid)
        self.timer = self.loop.call_later(_DRAIN_S, self.give_up)

    def give_up(self) -> None:
        """Something left the group and holds the pipes: stop reading them."""
        self.timer = None
        self.proc.kill()
        for fd in self.chunks:
            self.unwatch(fd)
        if not self.waiting and not self.done.done():
            self.done.set_result(None)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def output(self) -> tuple[bytes, bytes]:
        """Both outputs as read; closes the pipes and the pidfd (the child has exited)."""
        self.close()
        os.close(self.pidfd)
        out, err = (b"".join(chunks) for chunks in self.chunks.values())
        return out, err

    def close(self) -> None:
        self.cancel_timer()
        for fd in self.chunks:
            self.unwatch(fd)
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.proc.stdout.close()
        self.proc.stderr.close()

    def abandon(self) -> None:
        """The wait was cancelled: kill the group, stop reading, reap the child once it is
        gone (now, or when its pidfd says so) without blocking the loop."""
        _kill_group(self.proc.pid)  # not reaped yet: the group id is still its own
        self.close()
        self.unwatch(self.pidfd)
        if self.proc.poll() is not None:
            os.close(self.pidfd)
            return
        self.loop.add_reader(self.pidfd, self.reap)

    def reap(self) -> None:
        self.loop.remove_reader(self.pidfd)
        os.close(self.pidfd)
        self.proc.wait()


async def _finish_on_thread(
    proc: subprocess.Popen[bytes], started: float, timeout_s: float | None
) -> CliResult:
    try:
        return await asyncio.to_thread(_finish, proc, started, timeout_s)
    except asyncio.CancelledError:
        if proc.returncode is None:  # not reaped yet: its group id is still its own
            _kill_group(proc.pid)
        raise


# --- waiting on a thread ---------------------------------------------------------------------


def _finish(proc: subprocess.Popen[bytes], started: float, timeout_s: float | None) -> CliResult:
    with proc:
        try:
            out, err, timed_out = _collect(proc, timeout_s)
        except BaseException:
            _kill_group(proc.pid)
            raise
    return _result(proc.wait(), out, err, started, timed_out)


def _collect(proc: subprocess.Popen[bytes], timeout_s: float | None) -> tuple[bytes, bytes, bool]:
    """Both outputs, once the child has exited and its pipes are closed; past ``timeout_s`` its
    process group is killed first (the third value says so)."""
    if timeout_s is None:
        out, err = proc.communicate()
        return out, err, False
    try:
        # Waiting on a pidfd beside the pipes: communicate(timeout=) would poll for the exit
        # with sleeps, a millisecond more per step.
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = -1
    if pidfd < 0:
        try:
            out, err = proc.communicate(timeout=timeout_s)
            return out, err, False
        except subprocess.TimeoutExpired:
            return (*_kill_and_drain(proc), True)
    assert proc.stdout is not None
    assert proc.stderr is not None
    chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        for fd in (pidfd, *chunks):
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map() and (remaining := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(remaining):
                    data = b"" if key.fd == pidfd else os.read(key.fd, _READ)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        selector.unregister(key.fd)
            timed_out = bool(selector.get_map())
        finally:
            os.close(pidfd)
    out, err = (b"".join(part) for part in chunks.values())
    if not timed_out:
        proc.wait()
        return out, err, False
    rest_out, rest_err = _kill_and_drain(proc)
    return out + rest_out, err + rest_err, True


def _kill_and_drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    _kill_group(proc.pid)
    try:
        return proc.communicate(timeout=_DRAIN_S)
    except subprocess.TimeoutExpired:  # something left the group and holds the pipes
        proc.kill()
        proc.wait()
        return b"", b""


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
