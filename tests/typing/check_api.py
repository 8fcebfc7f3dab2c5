"""What mypy infers for the main API, checked by `make typecheck` (mypy --strict).

Not a pytest file and never run: every line states, with typing.assert_type, the type that the
stubs in gochan/__init__.pyi give an expression. A stub change that loses a type parameter, or
widens a result to Any, fails `make typecheck` here. The `type: ignore[...]` lines are misuses
that mypy must reject: were one accepted, mypy would report the comment as unused (--strict sets
--warn-unused-ignores).
"""

from collections.abc import Iterator
from typing import Any, Literal, assert_type

import gochan


def channels(ch: gochan.Chan[int]) -> None:
    assert_type(gochan.Chan[str](3), gochan.Chan[str])
    assert_type(ch.recv(), int)
    assert_type(ch.recv(timeout=1.0), int)
    assert_type(ch.recv_nowait(), int)
    assert_type(ch.recv_many(10), list[int])
    assert_type(ch.send(1), None)
    assert_type(ch.send_many([1, 2, 3]), int)
    assert_type(ch.cap, int)
    assert_type(ch.closed, bool)
    assert_type(len(ch), int)
    assert_type(ch.statistics().waiting_senders, int)
    for item in ch:
        assert_type(item, int)
    with ch as same:
        assert_type(same, gochan.Chan[int])
    ch.send("one")  # type: ignore[arg-type]


def recv_ok_narrows(ch: gochan.Chan[int]) -> int:
    result = ch.recv_ok()
    assert_type(
        result, tuple[int, Literal[True]] | tuple[None, Literal[False]]
    )
    if result[1]:
        # Checking the flag tells mypy which of the two tuples came back.
        assert_type(result, tuple[int, Literal[True]])
        return result[0]
    assert_type(result, tuple[None, Literal[False]])
    return -1


def views(ch: gochan.Chan[bytes]) -> None:
    sender = ch.send_only()
    receiver = ch.recv_only()
    assert_type(sender, gochan.SendChan[bytes])
    assert_type(receiver, gochan.RecvChan[bytes])
    assert_type(receiver.recv(), bytes)
    sender.send(b"x")
    sender.recv()  # type: ignore[attr-defined]
    receiver.send(b"x")  # type: ignore[attr-defined]


def produce(out: gochan.SendChan[int]) -> None:
    out.send(1)


def consume(src: gochan.RecvChan[int]) -> list[int]:
    return list(src)


def select_cases(a: gochan.Chan[int], b: gochan.Chan[str]) -> None:
    assert_type(gochan.Recv(a), gochan.Recv[int])
    assert_type(gochan.Send(b, "x"), gochan.Send[str])
    chosen = gochan.select(gochan.Recv(a), gochan.Send(b, "x"), default=True)
    assert_type(chosen, gochan.Selected)
    index, value, ok = chosen
    assert_type(index, int)
    assert_type(value, Any)
    assert_type(ok, bool)
    assert_type(chosen.index, int)
    gochan.select(gochan.Recv(None), timeout=0.1)


def contexts() -> None:
    root = gochan.background()
    assert_type(root, gochan.Context)
    ctx, cancel = gochan.with_timeout(root, 1.0)
    assert_type(ctx, gochan.Context)
    assert_type(cancel, gochan.CancelFunc)
    assert_type(ctx.done(), gochan.RecvChan[None])
    assert_type(ctx.err(), gochan.ContextError | None)
    assert_type(ctx.deadline(), float | None)
    with gochan.with_cancel(root) as inner:
        assert_type(inner, gochan.Context)
    cancel()


def timers() -> None:
    assert_type(gochan.after(0.1), gochan.RecvChan[float])
    assert_type(gochan.Timer(1.0).c, gochan.RecvChan[float])
    assert_type(gochan.Timer(1.0).stop(), bool)
    with gochan.Ticker(0.5) as ticker:
        for tick in ticker:
            assert_type(tick, float)
            break


def goroutines() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    g = gochan.go(add, 1, 2)
    assert_type(g, gochan.Goroutine[int])
    assert_type(g.join(timeout=1.0), int)
    assert_type(g.done(), gochan.RecvChan[None])
    gochan.go(add, 1, "2")  # type: ignore[arg-type]
    wg = gochan.WaitGroup()
    assert_type(wg.go(add, 1, 2), gochan.Goroutine[int])
    assert_type(wg.wait(timeout=1.0), bool)


def sync() -> None:
    mu = gochan.Mutex()
    assert_type(mu.lock(timeout=1.0), bool)
    sem = gochan.Semaphore(3)
    assert_type(sem.acquire(2), bool)
    cache: gochan.Map[str, int] = gochan.Map()
    found = cache.load("a")
    assert_type(found, tuple[int, Literal[True]] | tuple[None, Literal[False]])
    if found[1]:
        assert_type(found[0], int)
    assert_type(cache.load_or_store("a", 1), tuple[int, bool])
    config = gochan.once_value(lambda: {"debug": True})
    assert_type(config(), dict[str, bool])


def patterns() -> None:
    squares = gochan.stage(lambda x: x * x, gochan.generate(range(5)))
    assert_type(gochan.generate(["a"]), gochan.RecvChan[str])
    assert_type(squares, gochan.RecvChan[int])
    assert_type(gochan.merge(gochan.generate([1]), gochan.generate([2])), gochan.RecvChan[int])
    with gochan.Pool(2) as pool:
        job = pool.submit(pow, 2, 10)
        assert_type(job, gochan.PoolJob[int])
        assert_type(pool.map(str, [1, 2]), Iterator[str])
    with gochan.Group(limit=2) as group:
        assert_type(group.ctx, gochan.Context)
        group.go(print, "hello")
    limiter = gochan.Limiter(10.0, burst=2)
    assert_type(limiter.allow(), bool)
    assert_type(limiter.reserve().delay(), float)

    def fetch(url: str) -> bytes:
        return url.encode()

    assert_type(gochan.retry(fetch, "u", attempts=3), bytes)
    assert_type(gochan.retrying(fetch)("u"), bytes)
    gochan.retrying(fetch)(1)  # type: ignore[arg-type]
    assert_type(gochan.retrying(attempts=3)(fetch)("u"), bytes)
