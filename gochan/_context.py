"""The Python-shaped side of gochan's contexts: the ``with_*`` functions that return a
``(ctx, cancel)`` pair, and that pair, which is a tuple and also a context manager.

The contexts themselves (``Context``, ``CancelFunc``, ``background()``, ``todo()``,
``with_value()``, ``without_cancel()``) are implemented in C, in ``gochan._core``::

    with gochan.with_timeout(gochan.background(), 5.0) as ctx:
        reply = replies.recv(ctx=ctx)      # DeadlineExceeded after 5 s
"""

from __future__ import annotations

from typing import Literal

from gochan import _core

__all__ = ["CancelPair", "with_cancel", "with_cancel_cause", "with_deadline", "with_timeout"]


class CancelPair(tuple):
    """``(ctx, cancel)``, as the ``with_*`` functions return it: unpack it like Go's two
    results, or use it in a ``with`` statement, which gives ``ctx`` and calls ``cancel()`` at
    the end of the block (whatever happens in it)::

        ctx, cancel = gochan.with_cancel(parent)     # as in Go: call cancel() when done

        with gochan.with_cancel(parent) as ctx:      # cancel() runs on exit
            worker(ctx)
    """

    __slots__ = ()

    def __enter__(self) -> _core.Context:
        return self[0]

    def __exit__(self, exc_type, exc_value, traceback) -> Literal[False]:
        self[1]()
        return False


def with_cancel(parent: _core.Context) -> CancelPair:
    """A child of ``parent`` and the function that cancels it: ``(ctx, cancel)``.

    ``cancel()`` cancels ``ctx`` and every context derived from it, which wakes every call
    blocked with one of them as ``ctx=``; cancelling ``parent`` does the same. Call ``cancel()``
    once the work is done, as in Go, or use the pair in a ``with`` statement::

        ctx, cancel = gochan.with_cancel(gochan.background())
        gochan.go(worker, ctx)
        ...
        cancel()                        # worker's ch.recv(ctx=ctx) raises Cancelled
    """
    return CancelPair(_core._with_cancel(parent))


def with_cancel_cause(parent: _core.Context) -> CancelPair:
    """Like :func:`with_cancel`, but ``cancel(cause=None)`` takes the exception that
    explains why, which ``ctx.cause()`` (and the ``cause()`` of every context cancelled by this
    one) then returns; ``ctx.err()`` is still ``Cancelled``::

        ctx, cancel = gochan.with_cancel_cause(gochan.background())
        cancel(ConnectionError("peer went away"))
        assert isinstance(ctx.err(), gochan.Cancelled)
        assert isinstance(ctx.cause(), ConnectionError)
    """
    return CancelPair(_core._with_cancel_cause(parent))


def with_deadline(parent: _core.Context, deadline: float) -> CancelPair:
    """A child of ``parent`` cancelled at ``deadline`` (seconds on the ``time.monotonic()``
    clock) with ``DeadlineExceeded``, or earlier by ``cancel()`` or ``parent``.

    ``ctx.deadline()`` is the earlier of ``deadline`` and the parent's. A deadline already past
    gives a context that is already done. The runtime's one timer thread enforces it::

        ctx, cancel = gochan.with_deadline(parent, time.monotonic() + 0.5)
    """
    return CancelPair(_core._with_deadline(parent, deadline))


def with_timeout(parent: _core.Context, seconds: float) -> CancelPair:
    """``with_deadline(parent, time.monotonic() + seconds)``: a child of ``parent`` cancelled
    with ``DeadlineExceeded`` once ``seconds`` have passed (rounded up). A timeout of ``0`` or
    less gives a context that is already done; NaN raises ``ValueError``::

        with gochan.with_timeout(gochan.background(), 2.0) as ctx:
            reply = replies.recv(ctx=ctx)   # raises DeadlineExceeded after 2 s
    """
    return CancelPair(_core._with_timeout(parent, seconds))
