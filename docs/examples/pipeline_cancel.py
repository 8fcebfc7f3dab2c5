"""Stopping a pipeline mid-stream: the consumer has seen enough, cancels, and every stage ends.

    python docs/examples/pipeline_cancel.py

An endless generator of numbers feeds a squaring stage; the consumer wants only the first three
squares above 1000. When it has them it stops reading, and without more, both stages would block
for ever on a send that nobody takes. So every stage passes one shared context to its sends:
`cancel()` wakes the stage blocked in `send` at once, it returns and closes its output, and the
close ends the loop of the stage downstream. First by hand, then with `generate` and `stage`,
which do the same when given `ctx=`. `verify_none()` shows that no goroutine was left behind.
"""

import itertools

import gochan
from gochan import testing


def numbers(ctx: gochan.Context, out: gochan.SendChan[int]) -> None:
    try:
        for n in itertools.count():  # endless
            out.send(n, ctx=ctx)
    except gochan.Cancelled:
        pass  # the consumer has gone: stop
    finally:
        out.close()


def squares(ctx: gochan.Context, src: gochan.RecvChan[int], out: gochan.SendChan[int]) -> None:
    try:
        for n in src:  # ends when `numbers` closes its output
            out.send(n * n, ctx=ctx)
    except gochan.Cancelled:
        pass
    finally:
        out.close()


def first_big_squares(stream: gochan.RecvChan[int]) -> list[int]:
    return list(itertools.islice((sq for sq in stream if sq > 1000), 3))


def by_hand() -> list[int]:
    nums: gochan.Chan[int] = gochan.Chan()
    sqs: gochan.Chan[int] = gochan.Chan()
    ctx, cancel = gochan.with_cancel(gochan.background())
    stages = [
        gochan.go(numbers, ctx, nums.send_only()),
        gochan.go(squares, ctx, nums.recv_only(), sqs.send_only()),
    ]
    found = first_big_squares(sqs.recv_only())
    cancel()  # mid-stream: both stages are still running
    for stage in stages:
        stage.join(timeout=5)
    assert nums.closed and sqs.closed
    return found


def with_builders() -> list[int]:
    with gochan.with_cancel(gochan.background()) as ctx:
        src = gochan.generate(itertools.count(), ctx=ctx)
        stream = gochan.stage(lambda n: n * n, src, workers=2, ctx=ctx)
        found = first_big_squares(stream)
    for _ in stream:  # drop what was already on its way: the loop ends, as the stage closed it
        pass
    assert stream.closed
    return found


def main() -> None:
    for name, run in (("by hand", by_hand), ("generate + stage", with_builders)):
        found = run()
        print(f"{name}: {found}, then cancelled")
        assert found == [1024, 1089, 1156]
    testing.verify_none(timeout=1.0)
    print("every stage has ended")


if __name__ == "__main__":
    main()
