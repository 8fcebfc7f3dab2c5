"""select and contexts, two ways: `ctx.done()` as a case, or `ctx=` on the call.

    python docs/examples/select_with_context.py

1. A worker loops on a select over its jobs and `ctx.done()`, Go's `case <-ctx.Done():`. Being
   cancelled is then an ordinary branch of the loop, with no exception. Every send of the worker
   is a select with `ctx.done()` too, so it cannot get stuck on a result nobody reads.
2. A caller waits for the first of two replies with `select(..., ctx=ctx)`: when the context's
   deadline passes first, select raises `DeadlineExceeded` and no case has completed.
"""

import gochan
from gochan import Recv, Send


def worker(ctx: gochan.Context, jobs: gochan.RecvChan[int], out: gochan.SendChan[int]) -> str:
    """Doubles jobs until `jobs` is closed or ctx is cancelled; says which ended it."""
    while True:
        index, job, ok = gochan.select(Recv(jobs), Recv(ctx.done()))
        if index == 1:
            return "cancelled"
        if not ok:
            return "jobs closed"
        index, _, _ = gochan.select(Send(out, 2 * job), Recv(ctx.done()))
        if index == 1:
            return "cancelled while sending"


def stop_a_worker() -> None:
    jobs: gochan.Chan[int] = gochan.Chan()
    out: gochan.Chan[int] = gochan.Chan()
    ctx, cancel = gochan.with_cancel(gochan.background())
    g = gochan.go(worker, ctx, jobs.recv_only(), out.send_only())
    results = []
    for n in range(3):
        jobs.send(n, timeout=5)
        results.append(out.recv(timeout=5))
    jobs.send(99, timeout=5)  # the worker now waits to send 198, which nobody will take
    cancel()
    reason = g.join(timeout=5)
    print(f"1. results {results}; the worker stopped: {reason}")
    assert results == [0, 2, 4] and reason == "cancelled while sending"


def first_reply_or_deadline(delays: tuple[float, float], budget: float) -> str:
    # One slot: a late reply never blocks its sender.
    replies: list[gochan.Chan[str]] = [gochan.Chan(1), gochan.Chan(1)]
    for reply, delay in zip(replies, delays):
        gochan.after_func(delay, reply.send, f"reply after {delay}s")
    with gochan.with_timeout(gochan.background(), budget) as ctx:
        try:
            _, value, _ = gochan.select(Recv(replies[0]), Recv(replies[1]), ctx=ctx)
            assert isinstance(value, str)
        except gochan.DeadlineExceeded:
            return "deadline passed"
    return value


def wait_for_replies() -> None:
    fast = first_reply_or_deadline((0.5, 0.01), budget=1.0)
    slow = first_reply_or_deadline((0.5, 0.5), budget=0.02)
    print(f"2. {fast!r}, then {slow!r}")
    assert fast == "reply after 0.01s" and slow == "deadline passed"


if __name__ == "__main__":
    stop_a_worker()
    wait_for_replies()
