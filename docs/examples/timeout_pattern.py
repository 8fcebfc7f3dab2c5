"""A timeout for each operation, and a deadline for a whole job.

    python docs/examples/timeout_pattern.py

1. Per operation: `select` on the reply and on `gochan.after(limit)`, and take whichever comes
   first. Each call has its own limit, however long the others took. The caller stops waiting,
   but the lookup it gave up on runs on to its end (it replies into a one-slot channel, so it
   never blocks on an answer that nobody reads any more).
2. For the whole job: `with_timeout` makes one context whose deadline bounds all the steps
   together. Every step is given it as `ctx=`, and so is the lookup itself, so when time is up
   the step under way stops at once, on both sides. (timeouts.py shows `recv(timeout=...)`.)
"""

import gochan
from gochan import Recv, testing


def lookup(key: str, delay: float, ctx: gochan.Context | None = None) -> gochan.RecvChan[str]:
    """Starts a lookup that takes `delay` seconds; the answer arrives on the returned channel."""
    reply: gochan.Chan[str] = gochan.Chan(1)

    def run() -> None:
        try:
            gochan.sleep(delay, ctx=ctx)  # the slow part: a network call, say
        except gochan.ContextError:
            return  # nobody wants the answer any more
        reply.send(f"{key}:ok")

    gochan.go(run)
    return reply.recv_only()


def get(key: str, delay: float, limit: float) -> str | None:
    index, value, _ = gochan.select(Recv(lookup(key, delay)), Recv(gochan.after(limit)))
    return value if index == 0 else None  # index 1: the timer fired first


def job(keys: list[str], ctx: gochan.Context, done: list[str]) -> None:
    for key in keys:  # five steps of 20 ms each, one after the other
        done.append(lookup(key, 0.02, ctx).recv(ctx=ctx))


def main() -> None:
    answers = [get("a", 0.0, 0.1), get("b", 0.5, 0.1), get("c", 0.005, 0.1)]
    print("1. per-operation timeout:", answers)
    assert answers == ["a:ok", None, "c:ok"]

    keys = ["k1", "k2", "k3", "k4", "k5"]
    for budget in (1.0, 0.05):
        done: list[str] = []
        with gochan.with_timeout(gochan.background(), budget) as ctx:
            try:
                job(keys, ctx, done)
                outcome = "finished"
            except gochan.DeadlineExceeded:
                outcome = "deadline passed"
        print(f"2. job with a {budget} s budget: {outcome} after {len(done)} of 5 steps")
        if budget == 1.0:
            assert outcome == "finished" and len(done) == 5
        else:  # the five steps need at least 0.1 s
            assert outcome == "deadline passed" and len(done) < 5

    testing.verify_none(timeout=1.0)  # "b", given up on in part 1, has finished by now too
    print("every lookup has ended")


if __name__ == "__main__":
    main()
