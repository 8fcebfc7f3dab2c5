"""Graceful shutdown: one cancel() stops every worker, and after_func cleans up.

    python docs/examples/context_shutdown.py

A service runs a few workers that take jobs from a channel. Each worker gets a child context of
the service's context and a value with its name. Stopping the service is one cancel() with a
cause: every worker blocked in jobs.recv(ctx=...) wakes at once, sees the cause, and returns;
an after_func registered at start-up releases the shared resource once the context is done.
"""

import threading

import gochan


class Shutdown(Exception):
    """Why the service stopped."""


def worker(
    ctx: gochan.Context, jobs: gochan.RecvChan[int], done: gochan.SendChan[tuple[str, int]]
) -> None:
    name = ctx.value("worker")
    handled = 0
    try:
        for _ in iter(int, 1):  # for ever, until the context says stop
            job = jobs.recv(ctx=ctx)
            handled += 1
            done.send((name, job * job))
    except gochan.Cancelled:
        print(f"{name}: stopping after {handled} jobs ({ctx.cause()!r})")


def main() -> None:
    jobs: gochan.Chan[int] = gochan.Chan(16)
    done: gochan.Chan[tuple[str, int]] = gochan.Chan(64)
    service, stop = gochan.with_cancel_cause(gochan.background())

    released = threading.Event()

    def on_release() -> None:
        print("pool released")
        released.set()

    service.after_func(on_release)

    workers = []
    for i in range(3):
        ctx = gochan.with_value(service, "worker", f"worker-{i}")
        t = threading.Thread(target=worker, args=(ctx, jobs.recv_only(), done.send_only()))
        t.start()
        workers.append(t)

    jobs.send_many(range(10))
    results = sorted(square for _, square in (done.recv(timeout=5) for _ in range(10)))
    print("results:", results)
    assert results == [n * n for n in range(10)]

    stop(Shutdown("maintenance window"))
    for t in workers:
        t.join(5)
        assert not t.is_alive()
    assert released.wait(5)
    assert isinstance(service.cause(), Shutdown)


if __name__ == "__main__":
    main()
