"""Patterns (API.md, "Patterns"): Group (errgroup), Pool, and the pipeline stages generate,
stage and merge. Every test checks that the goroutines a pattern starts have ended by the time
it is done (gochan.testing.verify_none). Tests headed "Port of" follow Go's errgroup tests
(golang.org/x/sync/errgroup/errgroup_test.go)."""

import gc
import threading
import time

import pytest

import gochan
from conftest import LONG
from gochan import Chan, Group, Pool, generate, merge, stage
from gochan.testing import verify_none


@pytest.fixture(autouse=True)
def no_goroutine_left():
    yield
    verify_none(timeout=LONG)


# --- Group ---------------------------------------------------------------------------------


def test_port_of_errgroup_zero_group():
    """Port of TestZeroGroup: the first error is returned; later ones are not."""
    cases = [[], [None], [ValueError("1")], [ValueError("1"), None],
             [ValueError("1"), None, ValueError("2")]]
    for errs in cases:
        g = Group()
        first = None
        for i, err in enumerate(errs):
            if err is not None and first is None:
                first = err

            def fn(err=err, delay=i * 0.002):
                time.sleep(delay)  # keep the order of failures
                if err is not None:
                    raise err

            g.go(fn)
        if first is None:
            g.wait()
        else:
            with pytest.raises(ValueError) as info:
                g.wait()
            assert info.value is first


def test_port_of_errgroup_with_context_cancels_on_first_error():
    """Port of TestWithContext: the group's ctx is cancelled by the first error, with it as
    its cause, and wait() raises it."""
    boom = RuntimeError("boom")
    g = Group()

    def fail():
        raise boom

    def wait_for_cancel():
        g.ctx.done().recv_ok(timeout=LONG)
        return g.ctx.err()

    g.go(wait_for_cancel)
    g.go(fail)
    with pytest.raises(RuntimeError) as info:
        g.wait()
    assert info.value is boom
    assert isinstance(g.ctx.err(), gochan.Cancelled)
    assert g.ctx.cause() is boom


def test_wait_cancels_the_context_even_without_errors():
    g = Group()
    g.go(lambda: None)
    g.wait()
    assert isinstance(g.ctx.err(), gochan.Cancelled)
    assert isinstance(g.ctx.cause(), gochan.Cancelled)


def test_wait_again_raises_the_same_exception():
    g = Group()
    g.go(int, "x")
    with pytest.raises(ValueError) as first:
        g.wait()
    with pytest.raises(ValueError) as second:
        g.wait()
    assert first.value is second.value


def test_group_with_parent_context_is_cancelled_with_it():
    parent, cancel = gochan.with_cancel(gochan.background())
    g = Group(parent)
    g.go(lambda: g.ctx.done().recv_ok(timeout=LONG))
    cancel()
    g.wait()
    assert g.ctx.err() is not None


def test_port_of_errgroup_limit():
    """Port of TestGoLimit: with a limit, never more than `limit` functions run at once."""
    limit = 3
    g = Group(limit=limit)
    active = [0]
    peak = [0]
    lock = threading.Lock()

    def work():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.002)
        with lock:
            active[0] -= 1

    for _ in range(20):
        g.go(work)
    g.wait()
    assert 1 <= peak[0] <= limit


def test_port_of_errgroup_try_go():
    """Port of TestTryGo: try_go refuses at the limit and accepts once a slot is free."""
    g = Group(limit=1)
    release = Chan(0)
    assert g.try_go(release.recv, timeout=LONG)
    assert not g.try_go(lambda: None)
    release.send(None, timeout=LONG)
    g.wait()
    assert g.try_go(lambda: None)
    g.wait()


def test_group_as_context_manager_waits_and_raises():
    out = []
    with Group() as g:
        for i in range(5):
            g.go(out.append, i)
    assert sorted(out) == list(range(5))
    with pytest.raises(KeyError):
        with Group() as g:
            g.go(lambda: {}["missing"])


def test_group_body_exception_cancels_and_propagates():
    with pytest.raises(ZeroDivisionError):
        with Group() as g:
            g.go(lambda: g.ctx.done().recv_ok(timeout=LONG))
            1 / 0
    assert g.ctx.err() is not None


def test_group_bad_arguments():
    with pytest.raises(ValueError):
        Group(limit=0)
    with pytest.raises(TypeError):
        Group(limit="2")
    with pytest.raises(TypeError):
        Group().go(42)
    with pytest.raises(TypeError):
        Group(ctx=42)


# --- Pool ---------------------------------------------------------------------------------


def test_pool_map_keeps_order():
    with Pool(4) as pool:
        assert list(pool.map(lambda x: x * x, range(1000))) == [x * x for x in range(1000)]


def test_pool_map_unordered_gives_every_result():
    with Pool(3) as pool:
        assert sorted(pool.map(str, range(500), ordered=False)) == sorted(map(str, range(500)))


def test_pool_map_runs_concurrently():
    barrier = threading.Barrier(4, timeout=LONG)
    with Pool(4) as pool:
        assert list(pool.map(lambda _: barrier.wait() >= 0, range(4))) == [True] * 4


def test_pool_map_raises_at_the_failing_item():
    def fn(x):
        if x == 50:
            raise ValueError("fifty")
        return x

    with Pool(2) as pool:
        got = []
        with pytest.raises(ValueError, match="fifty"):
            for value in pool.map(fn, range(100)):
                got.append(value)
        assert got == list(range(50))


def test_pool_map_abandoned_early_stops_feeding():
    fed = []

    def items():
        for i in range(100000):
            fed.append(i)
            yield i

    with Pool(2) as pool:
        it = pool.map(lambda x: x, items())
        assert next(it) == 0
        del it
        gc.collect()
    assert len(fed) < 100000


def test_pool_submit_and_join():
    with Pool(2) as pool:
        job = pool.submit(pow, 2, 10)
        assert job.join(timeout=LONG) == 1024
        failing = pool.submit(int, "nope")
        with pytest.raises(ValueError):
            failing.join(timeout=LONG)
        assert gochan.select(gochan.Recv(job.done())).ok is False


def test_pool_submit_blocks_when_the_queue_is_full():
    pool = Pool(1)
    gate = Chan(0)
    pool.submit(gate.recv, timeout=LONG)  # occupies the worker
    def flood():
        try:
            for _ in range(10 ** 6):
                pool.submit(lambda: None)
        except gochan.Cancelled:
            pass

    worker = threading.Thread(target=flood, daemon=True)
    worker.start()
    time.sleep(0.2)
    queued = len(pool._jobs)
    assert queued == pool._jobs.cap  # full, and the submitting thread is blocked
    assert worker.is_alive()
    pool.cancel()
    gate.send(None, timeout=LONG)
    worker.join(LONG)
    assert pool.wait(timeout=LONG)


def test_pool_close_refuses_new_work_and_wait_finishes_queued():
    pool = Pool(2)
    jobs = [pool.submit(time.sleep, 0.001) for _ in range(20)]
    assert pool.wait(timeout=LONG)
    assert all(j.join(timeout=0) is None for j in jobs)
    with pytest.raises(RuntimeError):
        pool.submit(print)
    with pytest.raises(RuntimeError):
        pool.map(print, [1])


def test_pool_cancel_drops_queued_jobs():
    ctx, cancel = gochan.with_cancel(gochan.background())
    pool = Pool(1, ctx=ctx)
    gate, started = Chan(0), Chan(0)

    def blocker():
        started.close()
        return gate.recv(timeout=LONG)

    first = pool.submit(blocker)
    started.recv_ok(timeout=LONG)  # the worker is busy with it
    queued = [pool.submit(lambda: "ran") for _ in range(10)]
    cancel()
    gate.send("released", timeout=LONG)
    assert first.join(timeout=LONG) == "released"
    assert pool.wait(timeout=LONG)
    for job in queued:
        with pytest.raises(gochan.Cancelled):
            job.join(timeout=LONG)


def test_pool_unretrieved_exception_is_reported_once(monkeypatch):
    import sys

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: seen.append(args.exc_value))
    with Pool(1) as pool:
        job = pool.submit(int, "bad")
        job.done().recv_ok(timeout=LONG)
    del job
    gc.collect()
    assert len(seen) == 1 and isinstance(seen[0], ValueError)


def test_pool_bad_arguments():
    with pytest.raises(ValueError):
        Pool(0)
    with pytest.raises(TypeError):
        Pool(1.5)
    with Pool(1) as pool:
        with pytest.raises(TypeError):
            pool.submit("not callable")
        with pytest.raises(TypeError):
            pool.map(len, 5)


# --- pipelines ------------------------------------------------------------------------------


def test_generate_sends_every_item_then_closes():
    ch = generate(range(100), cap=10)
    assert isinstance(ch, gochan.RecvChan)
    assert list(ch) == list(range(100))


def test_generate_stops_when_its_context_is_cancelled():
    ctx, cancel = gochan.with_cancel(gochan.background())
    ch = generate(iter(int, 1), ctx=ctx)  # endless
    assert ch.recv(timeout=LONG) == 0
    cancel()
    for _ in ch:  # drains what was in flight, then ends: the channel is closed
        pass
    assert ch.closed


@pytest.mark.parametrize("workers,ordered", [(1, True), (3, True), (3, False)])
def test_stage_applies_fn_to_every_item(workers, ordered):
    out = stage(lambda x: x + 1, generate(range(300)), workers=workers, ordered=ordered)
    got = list(out)
    assert (got if ordered else sorted(got)) == list(range(1, 301))


def test_stage_accepts_an_iterable():
    assert list(stage(str.upper, ["a", "b"])) == ["A", "B"]


def test_three_stage_pipeline_cancelled_mid_stream_leaves_no_goroutine():
    ctx, cancel = gochan.with_cancel(gochan.background())
    src = generate(iter(int, 1), ctx=ctx)
    mid = stage(lambda x: x * 2, src, workers=3, ctx=ctx)
    out = stage(str, mid, ctx=ctx)
    for _ in range(50):
        out.recv(timeout=LONG)
    cancel()
    for _ in out:
        pass
    verify_none(timeout=LONG)


def test_stage_exception_closes_output_and_is_reported(monkeypatch):
    import threading as th

    reported = []
    monkeypatch.setattr(th, "excepthook", lambda args: reported.append(args.exc_value))
    for workers in (1, 3):
        reported.clear()
        out = stage(lambda x: 1 // (x - 5), generate(range(10)), workers=workers)
        got = list(out)  # ends: the output is closed
        assert len(got) <= 5
        verify_none(timeout=LONG)
        gc.collect()
        assert any(isinstance(e, ZeroDivisionError) for e in reported), reported


def test_merge_forwards_everything_and_closes():
    srcs = [generate(range(i * 100, i * 100 + 50)) for i in range(4)]
    got = sorted(merge(*srcs, cap=8))
    assert got == sorted(x for i in range(4) for x in range(i * 100, i * 100 + 50))


def test_merge_with_no_sources_is_closed_at_once():
    assert list(merge()) == []


def test_merge_stops_on_cancel():
    ctx, cancel = gochan.with_cancel(gochan.background())
    out = merge(generate(iter(int, 1), ctx=ctx), Chan(0), ctx=ctx)
    out.recv(timeout=LONG)
    cancel()
    for _ in out:
        pass


def test_pipeline_bad_arguments():
    with pytest.raises(TypeError):
        generate(5)
    with pytest.raises(ValueError):
        generate([], cap=-1)
    with pytest.raises(TypeError):
        stage(42, generate([]))
    with pytest.raises(ValueError):
        stage(str, generate([]), workers=0)
    with pytest.raises(TypeError):
        merge([1, 2])
