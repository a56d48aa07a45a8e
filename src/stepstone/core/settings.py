"""Settings: the tunables of workers and in-process runs, built once at the edge and passed down."""

from __future__ import annotations

from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument

__all__ = ["Settings"]


@frozen
class Settings:
    """How executions hold and renew leases and how they wait.

    ``lease_s``: how long a claim is valid without a heartbeat; another host's worker takes a run
    over after that (a worker on the same host takes it at once when the holder's process is gone).
    ``heartbeat_s``: how often leases are renewed (default: a third of ``lease_s``).
    ``poll_s``: the longest an idle worker waits before looking for work when no notification comes.
    ``max_recoveries``: how many times a run may lose its worker before it fails.
    ``retry_suspend_after_s``: retry back-offs longer than this suspend the run instead of holding
    a worker slot. ``grace_s``: on shutdown, how long running steps may finish before their runs
    are handed back. ``schedule_check_s``: how often an idle worker reads when the next schedule
    is due (between those reads it wakes at the due time it knows; a schedule added by another
    process is seen within this).
    """

    lease_s: float = 30.0
    heartbeat_s: float | None = None
    poll_s: float = 1.0
    max_recoveries: int = 5
    retry_suspend_after_s: float = 5.0
    grace_s: float = 10.0
    schedule_check_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("lease_s", "poll_s", "grace_s", "schedule_check_s"):
            if getattr(self, name) <= 0 and name != "grace_s":
                raise InvalidArgument(f"Settings.{name} must be > 0")
        if self.heartbeat_s is not None and not 0 < self.heartbeat_s < self.lease_s:
            raise InvalidArgument("Settings.heartbeat_s must be > 0 and shorter than lease_s")
        if self.max_recoveries < 0:
            raise InvalidArgument("Settings.max_recoveries must be >= 0")
        if self.grace_s < 0 or self.retry_suspend_after_s < 0:
            raise InvalidArgument("Settings durations must be >= 0")

    @property
    def heartbeat_interval_s(self) -> float:
        return self.heartbeat_s if self.heartbeat_s is not None else self.lease_s / 3
