# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The sync queue's decisions, apart from Odoo (models/emboux_sync_job.py
holds the records and the transactions): which pending jobs may go now
(lanes), which go out together, how long a job backs off, and what an
answer means. Jobs here are anything with `lane`, `kind`,
`next_attempt_at` and `last_error` attributes; tested without a server in
tests/unit/test_sync_queue.py."""

from .connector_client import ConnectorRefused, ConnectorUnavailable
from .platform_adapter import PARALLEL_KINDS

PARALLEL = 8          # concurrent HTTP calls for a run of independent jobs
MAX_BACKOFF = 3600    # seconds


def backoff_seconds(attempts):
    """Delay before the next attempt of a job that has failed `attempts`
    times before this failure: 10 s, 20 s, 40 s ... at most an hour."""
    return min(MAX_BACKOFF, 10 * 2 ** min(attempts, 12))


def select_ready(jobs, now):
    """Pending jobs (in id order) -> (ready, blocked lanes, reasons).

    A lane (one customer) is applied strictly in order: a job backing off
    holds back every later job of its lane, which then says why (the
    reason is the first waiting job's last error)."""
    blocked, reasons, ready = set(), {}, []
    for job in jobs:
        if job.lane in blocked:
            continue
        if job.next_attempt_at and job.next_attempt_at > now:
            blocked.add(job.lane)  # an earlier job of this lane is backing off
            if job.last_error:
                reasons.setdefault(job.lane, job.last_error)
            continue
        ready.append(job)
    return ready, blocked, reasons


def runs(ready):
    """Split the ready jobs into runs sent one after the other: consecutive
    jobs of one parallel-safe kind form one run (sent concurrently), any
    other job is a run of its own."""
    i = 0
    while i < len(ready):
        run = [ready[i]]
        if ready[i].kind in PARALLEL_KINDS:
            while i + len(run) < len(ready) and ready[i + len(run)].kind == ready[i].kind:
                run.append(ready[i + len(run)])
        i += len(run)
        yield run


def send(client, call):
    """One HTTP call through the client seam (runs in worker threads: never
    touches a cursor or a record). `call` is (method, path, body), or the
    ConnectorRefused raised while addressing it.
    Returns ('done'|'refused'|'unavailable', result or exception)."""
    if isinstance(call, ConnectorRefused):  # could not even be addressed
        return "refused", call
    method, path, body = call
    try:
        return "done", client.call(method, path, body)
    except ConnectorRefused as exc:
        return "refused", exc
    except ConnectorUnavailable as exc:
        return "unavailable", exc
