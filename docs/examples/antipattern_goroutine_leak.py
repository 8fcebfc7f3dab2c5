"""Anti-pattern: goroutines blocked for ever sending on a channel that nobody reads any more.

    python docs/examples/antipattern_goroutine_leak.py

`first_answer` asks three replicas at once and returns the first reply. The mistake: the replies
share one unbuffered channel, so once the caller has its answer and goes, the two slower replicas
wait for ever in `send`, each holding a thread and everything it references. Nothing fails and
nothing is printed; `gochan.testing.verify_none` is what finds them, with the line each one is
stuck on. The fixes: cancel the context the replicas were given (`with with_cancel(...)` does it
on the way out, whatever happens), or give the channel a slot per replica so that every send
completes whether or not it is read.
"""

import gochan
from gochan import testing

DELAYS = (0.01, 0.02, 0.03)


def replica(ctx: gochan.Context, delay: float, out: gochan.SendChan[str]) -> None:
    try:
        gochan.sleep(delay, ctx=ctx)
        out.send(f"reply after {delay}s", ctx=ctx)  # blocks until read, or ctx is cancelled
    except gochan.ContextError:
        pass  # nobody wants the reply any more


def first_answer(ctx: gochan.Context, capacity: int = 0) -> str:
    replies: gochan.Chan[str] = gochan.Chan(capacity)
    for delay in DELAYS:
        gochan.go(replica, ctx, delay, replies.send_only())
    return replies.recv(timeout=5)  # one reply is read; the others are not


def first_answer_fixed(parent: gochan.Context) -> str:
    with gochan.with_cancel(parent) as ctx:  # cancelled when we return: the others give up
        return first_answer(ctx)


def main() -> None:
    # The mistake: a context that nobody cancels, and an unbuffered channel.
    ctx, cancel = gochan.with_cancel(gochan.background())
    print("leaky:", first_answer(ctx))
    try:
        testing.verify_none(timeout=0.2)
        raise AssertionError("the leak went unnoticed")
    except testing.GoroutineLeak as leak:
        report = str(leak).splitlines()
        stuck = [line.split("#")[0].strip() for line in report if "out.send" in line]
        print(f"  GoroutineLeak: {len(leak.goroutines)} goroutines blocked at {stuck[0]!r}")
        assert len(leak.goroutines) == 2 and len(stuck) == 2
    cancel()  # what the caller forgot: the two stuck replicas return at once
    testing.verify_none()

    # Fix 1: cancel on the way out.
    print("fixed with a context:", first_answer_fixed(gochan.background()))
    testing.verify_none()

    # Fix 2: a slot per replica, so no send ever waits for a reader.
    print("fixed with a buffer:", first_answer(gochan.background(), capacity=len(DELAYS)))
    testing.verify_none()
    print("no goroutine left running")


if __name__ == "__main__":
    main()
