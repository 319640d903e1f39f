"""The durable job queue (docs/adr/0002-durable-job-queue.md).

Enqueue in the transaction that makes the job necessary; a ``Worker`` claims it, runs its
handler, and completes it in the handler's own transaction.
"""

from highseas.jobs.enqueue import enqueue
from highseas.jobs.registry import JobContext, LeaseLost, PermanentJobError, Queue, Registry
from highseas.jobs.worker import Worker, run_worker_process

__all__ = [
    "JobContext",
    "LeaseLost",
    "PermanentJobError",
    "Queue",
    "Registry",
    "Worker",
    "enqueue",
    "run_worker_process",
]
