"""The worker process: claim loop, concurrency slots, leases, graceful shutdown."""

from stepstone.worker.worker import Worker

__all__ = ["Worker"]
