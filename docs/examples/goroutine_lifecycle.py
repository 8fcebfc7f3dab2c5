"""The life of a goroutine: start it, stop it with a context, join it, check that nothing is left.

    python docs/examples/goroutine_lifecycle.py

Nothing can stop a goroutine from outside, so a goroutine meant to run until told otherwise takes
a context and passes it as `ctx=` to every call that may block. Its owner starts it with `go()`,
cancels the context when the work is no longer wanted, and joins it: the goroutine wakes at once
wherever it was blocked, returns, and `join()` hands back what it returned. `verify_none()` at the
end proves that no goroutine outlived its owner.
"""

import gochan
from gochan import testing


def ticker(ctx: gochan.Context, out: gochan.SendChan[int]) -> int:
    """Sends 0, 1, 2, ... about every millisecond until ctx is cancelled; returns how many."""
    sent = 0
    try:
        while True:
            gochan.sleep(0.001, ctx=ctx)  # the work, cancellable
            out.send(sent, ctx=ctx)  # blocked here while nobody reads: also cancellable
            sent += 1
    except gochan.ContextError:  # Cancelled, or DeadlineExceeded
        return sent


def main() -> None:
    before = gochan.num_goroutines()
    ticks: gochan.Chan[int] = gochan.Chan()  # unbuffered: a send completes only when received

    # 1. Start.
    ctx, cancel = gochan.with_cancel(gochan.background())
    g = gochan.go(ticker, ctx, ticks.send_only())
    assert gochan.num_goroutines() == before + 1

    received = [ticks.recv(timeout=5) for _ in range(5)]

    # 2. Stop: the goroutine is now blocked sending tick 5, which nobody will take.
    cancel()

    # 3. Join: wait for it to return, and collect its result.
    sent = g.join(timeout=5)
    print(f"received {received}; the goroutine sent {sent} and returned")
    assert received == [0, 1, 2, 3, 4] and sent == 5
    assert g.done().closed

    # The same with a deadline: the context stops the goroutine by itself.
    with gochan.with_timeout(gochan.background(), 0.02) as ctx:
        g = gochan.go(ticker, ctx, gochan.Chan(1000).send_only())
        sent = g.join(timeout=5)
        assert isinstance(ctx.err(), gochan.DeadlineExceeded)  # stopped by the deadline
    print(f"with a 20 ms deadline it sent {sent} ticks, then stopped")

    # 4. No leak: every goroutine started here has finished.
    testing.verify_none(timeout=1.0)
    assert gochan.num_goroutines() == before
    print("no goroutine left running")


if __name__ == "__main__":
    main()
