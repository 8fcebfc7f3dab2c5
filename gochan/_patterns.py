"""Concurrency patterns on top of gochan's channels, contexts and goroutines.

- ``Group``: Go's errgroup: run functions in goroutines, wait for all of them, get the first
  exception, and cancel the others' context as soon as one fails.
- ``Pool``: a fixed set of worker goroutines fed through a bounded queue (back-pressure), with
  ``submit`` for one call and ``map`` for many.
- ``generate``, ``stage``, ``merge``: pipeline building blocks that return receive-only
  channels, each run by goroutines that end when their input ends or their context is cancelled.

Everything here is plain Python: the waiting, the hand-offs and the cancellation happen in the
C core underneath (channels, contexts, goroutines), so these classes hold no locks of their own
while anything blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import islice
from time import perf_counter
from types import GenericAlias
from typing import Any, Literal

from gochan import _core

__all__ = ["Group", "Pool", "PoolJob", "generate", "merge", "stage"]


def _gochan():
    # The package, imported late: this module is imported by gochan/__init__.py itself.
    import gochan

    return gochan


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_callable(fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")


def _check_capacity(cap: object) -> int:
    return _check_count("cap", cap, 0)


def _check_ctx(ctx: object) -> None:
    # Checked by the caller: a goroutine would only report the error after the fact.
    if ctx is not None and not isinstance(ctx, _core.Context):
        raise TypeError(f"ctx must be a gochan Context or None, got {type(ctx).__name__}")


# --------------------------------------------------------------------------------------------
# Group


class Group:
    """Run functions in goroutines and wait for them all, as Go's ``errgroup.Group``.

    ``g.ctx`` is a context derived from ``ctx`` that is cancelled as soon as one function raises
    (its ``cause()`` is that exception) and, in any case, when ``wait()`` returns. ``limit``
    bounds how many functions run at once: ``go()`` then blocks until one ends, ``try_go()``
    returns False instead. ``wait()`` waits for every function, then raises the first exception
    any of them raised (again on every later call). As a context manager the group waits on
    exit::

        import gochan

        results = {}

        def fetch(name):
            results[name] = len(name)

        with gochan.Group(limit=2) as g:
            for name in ["alpha", "beta", "gamma"]:
                g.go(fetch, name)
        assert results == {"alpha": 5, "beta": 4, "gamma": 5}
    """

    __slots__ = ("ctx", "_cancel", "_tokens", "_lock", "_running", "_idle", "_error", "_failed",
                 "_threads")

    def __init__(self, ctx=None, *, limit: int | None = None) -> None:
        gochan = _gochan()
        if limit is not None:
            _check_count("limit", limit, 1)
        _check_ctx(ctx)
        parent = gochan.background() if ctx is None else ctx
        self.ctx, self._cancel = gochan.with_cancel_cause(parent)
        # One token per running function when limited: sending one blocks at the limit.
        self._tokens = None if limit is None else _core.Chan(limit)
        self._lock = threading.Lock()
        self._running = 0
        self._idle = _core.Chan(0)  # closed whenever nothing runs; replaced on the next go()
        self._idle.close()
        self._error: BaseException | None = None
        self._failed = False
        self._threads: set[int] = set()  # threads running the group's functions now

    def go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` in a goroutine, first waiting while ``limit`` run.

        ::

            g = gochan.Group()
            g.go(print, "hello from a goroutine")
            g.wait()
        """
        _check_callable(fn)
        if self._tokens is not None:
            self._tokens.send(None)
        self._start(fn, args, kwargs)

    def try_go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> bool:
        """Like ``go()``, but return False at once (starting nothing) if ``limit`` run already.

        ::

            g = gochan.Group(limit=1)
            assert g.try_go(gochan.sleep, 0.01)
            assert not g.try_go(print, "not now")
            g.wait()
        """
        _check_callable(fn)
        if self._tokens is not None:
            try:
                self._tokens.send_nowait(None)
            except _core.WouldBlock:
                return False
        self._start(fn, args, kwargs)
        return True

    def _start(self, fn, args, kwargs) -> None:
        with self._lock:
            if self._running == 0:
                self._idle = _core.Chan(0)
            self._running += 1
        try:
            _gochan().go(self._run, fn, args, kwargs)
        except BaseException:
            self._finished()
            raise

    def _run(self, fn, args, kwargs) -> None:
        me = threading.get_ident()
        self._threads.add(me)
        try:
            fn(*args, **kwargs)
        except BaseException as exc:  # the group reports it from wait()
            with self._lock:
                first = not self._failed
                if first:
                    self._failed = True
                    self._error = exc
            if first:
                self._cancel(exc)
        finally:
            self._threads.discard(me)
            self._finished()

    def _finished(self) -> None:
        if self._tokens is not None:
            self._tokens.recv_nowait()
        with self._lock:
            self._running -= 1
            idle = self._idle if self._running == 0 else None
        if idle is not None:
            idle.close()

    def wait(self) -> None:
        """Wait for every function started so far; raise the first exception one raised.

        ``g.ctx`` is cancelled when this returns, whether or not anything failed.

        ::

            g = gochan.Group()
            g.go(int, "not a number")
            try:
                g.wait()
            except ValueError as exc:
                print("failed:", exc)
        """
        if threading.get_ident() in self._threads:
            raise RuntimeError("Group.wait() called from one of the group's own functions: "
                               "it would wait for itself for ever")
        while True:
            with self._lock:
                idle = self._idle
            for _ in idle:  # returns once idle is closed
                pass
            with self._lock:
                if self._running == 0:
                    break
        self._cancel(None)
        if self._failed:
            raise self._error  # type: ignore[misc]

    def __enter__(self) -> Group:
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc is not None:
            # The body failed: stop the goroutines, wait for them, let the body's error through.
            self._cancel(exc)
            try:
                self.wait()
            except BaseException:
                pass
            return False
        self.wait()
        return False

    def __repr__(self) -> str:
        limit = "" if self._tokens is None else f" limit={self._tokens.cap}"
        state = " failed" if self._failed else ""
        return f"<gochan.Group running={self._running}{limit}{state}>"


# --------------------------------------------------------------------------------------------
# Pool

#: Jobs a pool queues per worker before submit() blocks (API.md: "a few thousand at most").
QUEUE_PER_WORKER = 1024
#: Most jobs a worker takes from the queue at once (it takes a share of what is queued).
WORKER_BATCH = 64
#: map() hands items to workers in chunks that take about this long to run (seconds), learnt
#: from the time the chunks already run took: tiny tasks go by the hundred, slow ones one by one.
CHUNK_SECONDS = 50e-6
#: The largest chunk, and how many chunks of one map() may be queued or unread at once.
MAX_CHUNK = 256
CHUNKS_PER_WORKER = 4

_PENDING = object()


class PoolJob:
    """The handle ``Pool.submit`` returns: ``join()`` gives the call's result or re-raises its
    exception, ``done()`` is a channel closed when it has finished::

        with gochan.Pool(2) as pool:
            job = pool.submit(pow, 2, 10)
            assert job.join(timeout=5) == 1024
    """

    __slots__ = ("_fn", "_args", "_kwargs", "_finished", "_result", "_error", "_retrieved",
                 "__weakref__")

    @classmethod
    def __class_getitem__(cls, item: Any, /) -> GenericAlias:
        """Generic for typing, as Chan is: PoolJob[int] is the job of a call returning an int."""
        return GenericAlias(cls, item)

    def __init__(self, fn, args, kwargs) -> None:
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._finished = _core.Chan(0)
        self._result: Any = _PENDING
        self._error: BaseException | None = None
        self._retrieved = False

    def _run(self) -> None:
        fn, args, kwargs = self._fn, self._args, self._kwargs
        self._fn = self._args = self._kwargs = None
        try:
            self._result = fn(*args, **kwargs)
        except BaseException as exc:
            self._error = exc
            self._result = None
        self._finished.close()

    def _abandon(self, error: BaseException) -> None:
        """The pool was cancelled before the job ran."""
        self._fn = self._args = self._kwargs = None
        self._error = error
        self._retrieved = True  # nothing to report: the caller cancelled it
        self._result = None
        self._finished.close()

    def done(self) -> _core.RecvChan:
        """A channel closed when the job has finished (usable in ``select``)::

            gochan.select(gochan.Recv(job.done()), timeout=5)
        """
        return self._finished.recv_only()

    def join(self, *, timeout: float | None = None, ctx=None) -> Any:
        """Wait for the job; return its result or re-raise its exception.

        ``timeout`` expiry raises ``TimeoutError``; ``ctx`` cancellation raises ``ctx.err()``;
        the job itself goes on either way::

            result = job.join(timeout=1.0)
        """
        self._finished.recv_ok(timeout=timeout, ctx=ctx)
        self._retrieved = True
        if self._error is not None:
            raise self._error
        return self._result

    def __del__(self) -> None:
        if self._error is not None and not self._retrieved:
            _report_unretrieved(self._error, "a Pool job")

    def __repr__(self) -> str:
        if self._result is _PENDING:
            state = "pending"
        elif self._error is not None:
            state = f"raised {type(self._error).__name__}"
        else:
            state = "finished"
        return f"<gochan.PoolJob {state}>"


def _report_unretrieved(error: BaseException, what: str) -> None:
    """Report an exception nobody retrieved, once, the way threading reports a thread's."""
    import sys

    hook = getattr(sys, "unraisablehook", None)
    if hook is None:  # pragma: no cover - every supported CPython has it
        return
    if hook is sys.__unraisablehook__:
        # The default hook accepts only the interpreter's own argument type, which Python code
        # cannot build: print what it would print.
        if sys.stderr is not None:
            import traceback

            print(f"Exception in {what} that was never joined:", file=sys.stderr)
            traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
        return
    args = type("UnraisableHookArgs", (), {})()
    args.exc_type = type(error)
    args.exc_value = error
    args.exc_traceback = error.__traceback__
    args.err_msg = f"Exception in {what} that was never joined"
    args.object = None
    hook(args)


class _Pace:
    """How long one call of a function takes, learnt from the batches already run (seconds
    per item; None until the first batch has run), and the batch size it calls for: tiny tasks
    go by the hundred, slow ones one by one. `measured` is closed once a first figure exists."""

    __slots__ = ("per_item", "measured")

    def __init__(self) -> None:
        self.per_item: float | None = None
        self.measured = _core.Chan(0)

    def batch_size(self) -> int:
        per_item = self.per_item
        if per_item is None:
            return 1
        if per_item <= CHUNK_SECONDS / MAX_CHUNK:
            return MAX_CHUNK
        return max(1, int(CHUNK_SECONDS / per_item))

    def learn(self, seconds: float, items: int) -> None:
        if items == 0:
            return
        per_item = seconds / items
        first = self.per_item is None
        # An even mix of the old estimate and the new sample follows a change of pace within
        # a few batches. (Races between workers only lose a sample.)
        if first or self.per_item is None:
            self.per_item = per_item
        else:
            self.per_item = (self.per_item + per_item) / 2
        if first:
            try:
                self.measured.close()
            except _core.ChannelClosed:
                pass


def _apply(fn, items: list, pace: _Pace) -> tuple[list, BaseException | None]:
    """fn over items, timed for `pace`: the results up to the first exception, and it."""
    done: list = []
    append = done.append
    error = None
    began = perf_counter()
    try:
        for item in items:
            append(fn(item))
    except BaseException as exc:
        error = exc
    pace.learn(perf_counter() - began, len(done) + (error is not None))
    return done, error


class _MapRun:
    """One map() call in flight.

    The feeder goroutine cuts the input into chunks (run, start, items) and queues them; the
    workers run each chunk and send (start, results, exception) on `results`; the caller's
    iterator reassembles them. `tokens` bounds the chunks in flight (queued, running or unread),
    so a map cannot pile up unbounded work or results; `pace` sizes the chunks."""

    __slots__ = ("fn", "ctx", "cancel", "results", "tokens", "pace")

    def __init__(self, fn, ctx, cancel, workers: int) -> None:
        self.fn = fn
        self.ctx = ctx
        self.cancel = cancel
        self.tokens = _core.Chan(workers * CHUNKS_PER_WORKER)
        self.results = _core.Chan(workers * CHUNKS_PER_WORKER)
        self.pace = _Pace()


class _MapIterator:
    """What Pool.map returns: its generator, plus a cancel on being dropped.

    A generator dropped before its first next() never runs its `finally`, so the map would go on
    feeding workers whose results nobody reads; this object cancels it instead."""

    __slots__ = ("_run", "_gen")

    def __init__(self, run: _MapRun, gen: Generator[Any, None, None]) -> None:
        self._run = run
        self._gen = gen

    def __iter__(self) -> _MapIterator:
        return self

    def __next__(self) -> Any:
        return next(self._gen)

    def close(self) -> None:
        """Stop the map: the items not yet started are skipped."""
        self._gen.close()
        self._run.cancel()

    def __del__(self) -> None:
        self._run.cancel()


class Pool:
    """A fixed number of worker goroutines fed through a bounded queue.

    ``submit()`` queues one call and returns a ``PoolJob``; ``map()`` runs a function over an
    iterable and yields the results (in input order unless ``ordered=False``). The queue holds
    about a thousand jobs per worker: beyond that, ``submit()`` and ``map()``'s feeding wait, so
    a fast producer cannot pile up unbounded work. ``close()`` stops new submissions; ``wait()``
    waits for everything queued to finish; ``with Pool(n) as pool:`` does both on exit. ``ctx``
    cancels the pool: queued jobs that have not started are dropped (their ``join()`` raises
    the context's error) and the workers end::

        import gochan

        with gochan.Pool(4) as pool:
            squares = list(pool.map(lambda x: x * x, range(10)))
        assert squares == [x * x for x in range(10)]
    """

    __slots__ = ("_workers", "_jobs", "_ctx", "_cancel", "_group", "_lock", "_closed",
                 "_feeders")

    def __init__(self, workers: int, *, ctx=None) -> None:
        gochan = _gochan()
        _check_count("workers", workers, 1)
        _check_ctx(ctx)
        parent = gochan.background() if ctx is None else ctx
        self._ctx, self._cancel = gochan.with_cancel(parent)
        self._workers = workers
        self._jobs = _core.Chan(workers * QUEUE_PER_WORKER)
        self._lock = threading.Lock()
        self._closed = False  # no new submit() or map()
        self._feeders = 0  # map() feeders still queueing: the queue closes after the last
        self._group = Group()
        for _ in range(workers):
            self._group.go(self._work)

    @property
    def workers(self) -> int:
        """How many worker goroutines the pool runs."""
        return self._workers

    # -- the workers ---------------------------------------------------------------------------

    def _work(self) -> None:
        jobs, ctx = self._jobs, self._ctx
        while True:
            try:
                # Take a share of what is queued (at least one, at most WORKER_BATCH): batches
                # make small tasks cheap, shares keep slow tasks spread over the workers.
                want = min(WORKER_BATCH, max(1, -(-len(jobs) // self._workers)))
                batch = jobs.recv_many(want, ctx=ctx)
            except (_core.ChannelClosed, _core.ContextError):
                break
            for i, job in enumerate(batch):
                if ctx.err() is not None:
                    self._drop(batch[i:])
                    break
                if type(job) is PoolJob:
                    job._run()
                else:
                    self._run_chunk(*job)
        # Cancelled (or closed and drained): whatever is still queued will never run.
        self._drop_queued()

    @staticmethod
    def _run_chunk(run: _MapRun, start: int, items: list) -> None:
        if run.ctx.err() is not None:
            return  # the map was abandoned, failed or cancelled: skip
        done, error = _apply(run.fn, items, run.pace)
        try:
            run.results.send((start, done, error), ctx=run.ctx)
        except _core.ContextError:
            pass

    def _drop(self, jobs: list) -> None:
        """Jobs that will never run: their join() raises the pool context's error. (Chunks of
        a map need nothing: the map's iterator raises that error itself.)"""
        err = self._ctx.err()
        for job in jobs:
            if type(job) is PoolJob:
                job._abandon(err if err is not None else _core.Cancelled("pool closed"))

    def _drop_queued(self) -> None:
        while True:
            try:
                job = self._jobs.recv_nowait()
            except (_core.WouldBlock, _core.ChannelClosed):
                return
            self._drop([job])

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> PoolJob:
        """Queue ``fn(*args, **kwargs)`` for a worker; wait while the queue is full.

        Raises ``RuntimeError`` once the pool is closed, and the pool context's error once it
        is cancelled::

            job = pool.submit(sum, [1, 2, 3])
            assert job.join() == 6
        """
        _check_callable(fn)
        job = PoolJob(fn, args, kwargs)
        self._put(job)
        return job

    def _put(self, job) -> None:
        if self._closed:
            raise RuntimeError("submit to a closed gochan.Pool")
        try:
            self._jobs.send(job, ctx=self._ctx)
        except _core.ChannelClosed:
            raise RuntimeError("submit to a closed gochan.Pool") from None

    def map(self, fn: Callable[[Any], Any], iterable: Iterable[Any], *,
            ordered: bool = True) -> Iterator[Any]:
        """Run ``fn`` over every item of ``iterable`` on the workers; yield the results.

        In input order by default, in completion order with ``ordered=False``. If a call raises,
        iteration raises that exception at that item (in order mode: once every earlier result
        has been yielded), and the items not yet started are skipped. Stopping the iteration
        early (``break``, or the iterator being dropped) cancels the rest. The iterable is read
        by a goroutine, as fast as the queue allows::

            with gochan.Pool(4) as pool:
                for length in pool.map(len, ["a", "bb", "ccc"]):
                    print(length)
        """
        _check_callable(fn)
        iterator = iter(iterable)
        with self._lock:
            if self._closed:
                raise RuntimeError("map on a closed gochan.Pool")
            self._feeders += 1
        ctx, cancel = _gochan().with_cancel(self._ctx)
        run = _MapRun(fn, ctx, cancel, self._workers)
        try:
            feeder = _gochan().go(self._feed, run, iterator)
        except BaseException:
            self._feeder_done()
            raise
        return _MapIterator(run, self._results(run, feeder, ordered))

    def _feed(self, run: _MapRun, iterator: Iterator[Any]) -> int:
        """Queue the items as chunks; return how many chunks."""
        chunks = 0
        start = 0
        probes = self._workers  # single items sent before the cost of a call is known
        try:
            while True:
                if probes == 0 and run.pace.per_item is None:
                    run.pace.measured.recv_ok(ctx=run.ctx)  # wait for a first measurement
                items = list(islice(iterator, run.pace.batch_size()))
                if not items:
                    break
                run.tokens.send(None, ctx=run.ctx)
                self._jobs.send((run, start, items), ctx=run.ctx)
                chunks += 1
                start += len(items)
                probes = max(0, probes - 1)
        except _core.ContextError:
            pass
        finally:
            self._feeder_done()
        return chunks

    def _feeder_done(self) -> None:
        with self._lock:
            self._feeders -= 1
            last = self._closed and self._feeders == 0
        if last:
            self._jobs.close()

    def _results(self, run: _MapRun, feeder, ordered: bool) -> Generator[Any, None, None]:
        results, tokens = run.results, run.tokens
        pending: dict[int, tuple[list, BaseException | None]] = {}
        next_start = 0
        received = 0
        total = None  # chunks, once the feeder has finished
        try:
            while total is None or received < total:
                if total is None:
                    # Until the feeder is done, wait for a result or for its end.
                    index, chunk, _ = _core.select(
                        _core.Recv(results), _core.Recv(feeder.done()), ctx=run.ctx
                    )
                    if index == 1:
                        total = feeder.join()
                        continue
                else:
                    chunk = results.recv(ctx=run.ctx)
                received += 1
                tokens.recv_nowait()
                start, done, error = chunk
                if not ordered:
                    yield from done
                    if error is not None:
                        raise error
                    continue
                pending[start] = (done, error)
                while next_start in pending:
                    done, error = pending.pop(next_start)
                    yield from done
                    if error is not None:
                        raise error
                    next_start += len(done)
        finally:
            run.cancel()

    # -- ending --------------------------------------------------------------------------------

    def close(self) -> None:
        """Accept no more jobs; those queued (and every ``map()`` under way) still run.

        Idempotent::

            pool.close()
            pool.wait()
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            last = self._feeders == 0
        if last:
            self._jobs.close()

    def wait(self, *, timeout: float | None = None) -> bool:
        """Close the pool and wait until every queued job has run; False on timeout.

        ::

            if not pool.wait(timeout=10):
                pool.cancel()  # give up on the jobs not started yet
        """
        if threading.get_ident() in self._group._threads:
            raise RuntimeError("Pool.wait() called from one of the pool's own jobs: it would "
                               "wait for itself")
        self.close()
        done = _core.Chan(0)

        def waiter() -> None:
            try:
                self._group.wait()
            finally:
                done.close()

        _gochan().go(waiter)
        try:
            done.recv_ok(timeout=timeout)
        except TimeoutError:
            return False
        return True

    def cancel(self) -> None:
        """Cancel the pool: drop the queued jobs that have not started and end the workers.

        ::

            pool.cancel()
            pool.wait()  # returns once the jobs already running have finished
        """
        self._cancel()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc is not None:
            self.cancel()
        self.wait()
        return False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<gochan.Pool workers={self._workers} queued={len(self._jobs)} {state}>"


# --------------------------------------------------------------------------------------------
# Pipelines


def _receivable(src: object, name: str):
    if isinstance(src, (_core.Chan, _core.RecvChan)):
        return src
    raise TypeError(f"{name} must be a gochan Chan or RecvChan, got {type(src).__name__}")


def generate(iterable: Iterable[Any], *, ctx=None, cap: int = 0) -> _core.RecvChan:
    """Return a channel that a goroutine fills with the items of ``iterable``, then closes.

    The goroutine ends when the iterable is exhausted or ``ctx`` is cancelled (the channel is
    closed either way). An exception raised by the iterable closes the channel and is reported
    as a goroutine's exception is::

        import gochan

        assert list(gochan.generate(range(3))) == [0, 1, 2]
    """
    _check_ctx(ctx)
    iterator = iter(iterable)
    out = _core.Chan(_check_capacity(cap))
    _gochan().go(_generate, iterator, out, ctx)
    return out.recv_only()


def _generate(iterator, out, ctx) -> None:
    with out:
        try:
            out.send_many(iterator, ctx=ctx)
        except _core.ContextError:
            pass


def stage(fn: Callable[[Any], Any], src, *, workers: int = 1, ordered: bool = True, ctx=None,
          cap: int = 0) -> _core.RecvChan:
    """Return a channel of ``fn(item)`` for every item received from ``src``.

    ``workers`` goroutines call ``fn`` concurrently; with ``ordered=True`` (the default) the
    results come out in the order of their items, else as they are ready. The output is closed
    when ``src`` is closed and drained and every result has been sent, or when ``ctx`` is
    cancelled. If ``fn`` raises, the stage stops, closes its output and reports the exception
    as a goroutine's is; it then reads ``src`` to its end, dropping the items, so that the
    goroutines feeding it end too (pass a ``ctx`` to stop them sooner). ``src`` is a channel;
    any other iterable is read through
    ``generate()``. Items move in batches of what is ready (sized from how long ``fn`` takes),
    so a stage costs little more per item than the calls of ``fn`` themselves::

        import gochan

        doubled = gochan.stage(lambda x: 2 * x, gochan.generate(range(5)), workers=2)
        assert list(doubled) == [0, 2, 4, 6, 8]
    """
    _check_callable(fn)
    _check_count("workers", workers, 1)
    _check_ctx(ctx)
    out = _core.Chan(_check_capacity(cap))
    if not isinstance(src, (_core.Chan, _core.RecvChan)):
        src = generate(src, ctx=ctx)
    gochan = _gochan()
    sctx, scancel = gochan.with_cancel(gochan.background() if ctx is None else ctx)
    pace = _Pace()
    if workers == 1 or not ordered:
        left = [workers]
        lock = threading.Lock()
        for _ in range(workers):
            gochan.go(_stage_work, fn, src, out, ctx, sctx, scancel, pace, workers, left, lock)
    else:
        jobs = _core.Chan(2 * workers)
        done = _core.Chan(2 * workers)
        gochan.go(_stage_dispatch, src, jobs, ctx, sctx, pace, workers)
        left = [workers]
        lock = threading.Lock()
        for _ in range(workers):
            gochan.go(_stage_compute, fn, jobs, done, sctx, scancel, pace, left, lock)
        gochan.go(_stage_emit, done, out, sctx, scancel)
    return out.recv_only()


def _take(src, ctx, pace: _Pace, workers: int) -> list:
    """The next batch from src: what is ready, at most what `pace` allows and a fair share for
    `workers` readers; at least one item (waiting for it). [] once src is closed and drained
    or ctx is cancelled."""
    want = min(pace.batch_size(), max(1, -(-len(src) // workers)))
    try:
        return src.recv_many(want, ctx=ctx)
    except (_core.ChannelClosed, _core.ContextError):
        return []


def _drain_after_failure(src, ctx, sctx) -> None:
    """After fn raised, read src to its end (or until the caller's ctx is cancelled), dropping
    the items, so that the goroutines feeding it end too instead of waiting for ever."""
    if sctx.err() is None or (ctx is not None and ctx.err() is not None):
        return  # the stage did not fail: src is drained already, or ctx stops the producers
    recv_many = src.recv_many
    try:
        while True:
            recv_many(MAX_CHUNK, ctx=ctx)
    except (_core.ChannelClosed, _core.ContextError):
        pass


def _stage_work(fn, src, out, user_ctx, ctx, cancel, pace, workers, left, lock) -> None:
    """One worker of an unordered stage (or the only one): batch in, batch out."""
    failed = False
    try:
        while True:
            items = _take(src, ctx, pace, workers)
            if not items:
                break
            done, error = _apply(fn, items, pace)
            out.send_many(done, ctx=ctx)
            if error is not None:
                failed = True
                cancel()  # stop the other workers
                raise error
    except _core.ContextError:
        pass
    finally:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            out.close()
            if failed or ctx.err() is not None:
                _drain_after_failure(src, user_ctx, ctx)
            cancel()


def _stage_dispatch(src, jobs, user_ctx, ctx, pace, workers) -> None:
    """Number the batches of an ordered stage so that the emitter can put them back in order."""
    seq = 0
    try:
        while True:
            items = _take(src, ctx, pace, 1)
            if not items:
                break
            jobs.send((seq, items), ctx=ctx)
            seq += 1
            if pace.per_item is None and seq >= workers:
                pace.measured.recv_ok(ctx=ctx)  # size further batches from a first figure
    except _core.ContextError:
        pass
    finally:
        jobs.close()
    _drain_after_failure(src, user_ctx, ctx)


def _stage_compute(fn, jobs, done, ctx, cancel, pace, left, lock) -> None:
    try:
        while True:
            try:
                seq, items = jobs.recv(ctx=ctx)
            except (_core.ChannelClosed, _core.ContextError):
                break
            results, error = _apply(fn, items, pace)
            done.send((seq, results, error), ctx=ctx)
            if error is not None:
                break  # the emitter raises it once the batches before it are out
    except _core.ContextError:
        pass
    finally:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            done.close()


def _stage_emit(done, out, ctx, cancel) -> None:
    pending: dict[int, tuple[list, BaseException | None]] = {}
    next_seq = 0
    try:
        with out:
            while True:
                try:
                    seq, results, error = done.recv(ctx=ctx)
                except _core.ChannelClosed:
                    break
                pending[seq] = (results, error)
                while next_seq in pending:
                    results, error = pending.pop(next_seq)
                    next_seq += 1
                    out.send_many(results, ctx=ctx)
                    if error is not None:
                        raise error
    except _core.ContextError:
        pass
    finally:
        cancel()


def merge(*srcs, ctx=None, cap: int = 0) -> _core.RecvChan:
    """Return a channel carrying every item of every source channel (fan-in).

    One goroutine forwards items as they come from any source; the output is closed once every
    source is closed and drained, or when ``ctx`` is cancelled::

        import gochan

        merged = gochan.merge(gochan.generate("ab"), gochan.generate("xy"))
        assert sorted(merged) == ["a", "b", "x", "y"]
    """
    chans = [_receivable(src, "merge() sources") for src in srcs]
    _check_ctx(ctx)
    out = _core.Chan(_check_capacity(cap))
    _gochan().go(_merge, chans, out, ctx)
    return out.recv_only()


def _merge(chans, out, ctx) -> None:
    cases = [_core.Recv(ch) for ch in chans]
    live = len(cases)
    select, Recv, send = _core.select, _core.Recv, out.send
    with out:
        try:
            while live:
                index, value, ok = select(*cases, ctx=ctx)
                if not ok:
                    cases[index] = Recv(None)
                    live -= 1
                    continue
                send(value, ctx=ctx)
        except _core.ContextError:
            pass
