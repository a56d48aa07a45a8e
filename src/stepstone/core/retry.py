"""Retry policy of a step: how many attempts, how long between them, which errors count."""

from __future__ import annotations

from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument

__all__ = ["NO_RETRY", "RetryPolicy"]


@frozen
class RetryPolicy:
    """How a failing step is retried.

    The delay before attempt ``n + 1`` is ``initial_delay_s * backoff ** (n - 1)``, capped at
    ``max_delay_s``; with ``jitter`` it is drawn uniformly from ``[delay / 2, delay]`` so that many
    runs failing together do not retry in lockstep. An exception is retried when it is an instance
    of ``retry_on`` and not of ``give_up_on`` (``give_up_on`` wins), unless its class says
    ``retryable = False`` (a model provider's auth or invalid-request error: another attempt cannot
    help). An error carrying ``retry_after_s`` (a rate-limited model call) waits at least that.

    >>> RetryPolicy(max_attempts=5, initial_delay_s=0.5, give_up_on=(ValueError,))
    """

    max_attempts: int = 1
    initial_delay_s: float = 1.0
    backoff: float = 2.0
    max_delay_s: float = 60.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    give_up_on: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidArgument(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_delay_s < 0 or self.max_delay_s < 0:
            raise InvalidArgument("RetryPolicy delays must be >= 0")
        if self.backoff < 1:
            raise InvalidArgument(f"RetryPolicy.backoff must be >= 1, got {self.backoff}")
        for name in ("retry_on", "give_up_on"):
            kinds = getattr(self, name)
            if not isinstance(kinds, tuple) or not all(
                isinstance(k, type) and issubclass(k, BaseException) for k in kinds
            ):
                raise InvalidArgument(f"RetryPolicy.{name} must be a tuple of exception classes")

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether ``error`` from attempt number ``attempt`` (1-based) gets another attempt."""
        if attempt >= self.max_attempts or isinstance(error, self.give_up_on):
            return False
        if getattr(error, "retryable", True) is False:
            return False
        return isinstance(error, self.retry_on)

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        delay = min(self.initial_delay_s * self.backoff ** (attempt - 1), self.max_delay_s)
        if self.jitter and delay > 0:
            import random

            delay = random.uniform(delay / 2, delay)
        return delay

    def delay_after(self, error: BaseException, attempt: int) -> float:
        """Seconds to wait after ``error`` failed attempt ``attempt``: :meth:`delay_s`, or the
        ``retry_after_s`` the error carries (a provider's retry-after) when that is longer."""
        delay = self.delay_s(attempt)
        after = getattr(error, "retry_after_s", None)
        if isinstance(after, int | float) and after > delay:
            return float(after)
        return delay


NO_RETRY = RetryPolicy()
