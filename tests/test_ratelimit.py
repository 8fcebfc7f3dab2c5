"""gochan.Limiter (API.md, "Patterns"): the token bucket of Go's golang.org/x/time/rate.

Most tests drive the limiter with a fake clock (now=) and run against both buckets: the C type
gochan._core._TokenBucket (when the extension provides it) and the pure-Python _PyTokenBucket,
which must give the same answers. The tests headed "Port of" follow Go's own tests in
golang.org/x/time/rate/rate_test.go, with its times t0..t9 spaced d = 100 ms apart.
"""

import math
import random
import signal
import textwrap
import threading
import time
import weakref

import pytest

import gochan
from conftest import LONG, SETTLE, wait_until
from gochan import _core, _ratelimit




@pytest.fixture(params=["c", "python"])
def Limiter(request):
    """Each limiter implementation: gochan.Limiter over the C bucket, and over the Python one."""
    if request.param == "python":
        return _ratelimit._PyLimiter
    assert issubclass(gochan.Limiter, _core._TokenBucket)
    return gochan.Limiter


# The fake clock of Go's tests: t[k] = t0 + k * d.
D = 0.1
T0 = 100.0
t = [T0 + k * D for k in range(10)]


def d_since(seconds):
    """Whole multiples of D since t0, rounded to the nearest (Go's dSince)."""
    return round((seconds - T0) / D)


def run(lim, allows):
    """Go's run(): each step checks tokens() then allow() at the step's time."""
    for i, (at, toks, n, ok) in enumerate(allows):
        assert lim.tokens(now=at) == pytest.approx(toks), f"step {i}: tokens"
        assert lim.allow(n, now=at) is ok, f"step {i}: allow({n}) at t{d_since(at)}"


def run_reserve(lim, at, n, act, ok):
    """Go's runReserve(): reserve n at time `at`; ok, and the time to act in multiples of D."""
    r = lim.reserve(n, now=at)
    assert r.ok is ok, f"reserve({n}) at t{d_since(at)}: ok"
    if ok:
        assert d_since(r.time_to_act) == d_since(act), f"reserve({n}) at t{d_since(at)}"
    return r


def run_reserve_max(lim, at, n, act, ok, max_wait):
    """Go's runReserveMax(), through the internal primitive both buckets share."""
    granted, tokens, time_to_act, _ = lim._reserve(n, round(at * 1e9), round(max_wait * 1e9))
    assert granted is ok
    if ok:
        assert tokens == n
        assert d_since(time_to_act / 1e9) == d_since(act)


# --- Port of TestLimiterBurst1, TestLimiterBurst3, TestLimiterJumpBackwards -------------------


def test_burst_1(Limiter):
    # Port of Go's TestLimiterBurst1 (golang.org/x/time/rate/rate_test.go).
    run(Limiter(10, 1), [
        (t[0], 1, 1, True),
        (t[0], 0, 1, False),
        (t[0], 0, 1, False),
        (t[1], 1, 1, True),
        (t[1], 0, 1, False),
        (t[1], 0, 1, False),
        (t[2], 1, 2, False),  # burst size is 1, so n=2 always fails
        (t[2], 1, 1, True),
        (t[2], 0, 1, False),
    ])


def test_burst_3(Limiter):
    # Port of Go's TestLimiterBurst3 (golang.org/x/time/rate/rate_test.go).
    run(Limiter(10, 3), [
        (t[0], 3, 2, True),
        (t[0], 1, 2, False),
        (t[0], 1, 1, True),
        (t[0], 0, 1, False),
        (t[1], 1, 4, False),
        (t[2], 2, 1, True),
        (t[3], 2, 1, True),
        (t[4], 2, 1, True),
        (t[4], 1, 1, True),
        (t[4], 0, 1, False),
        (t[4], 0, 1, False),
        (t[9], 3, 3, True),
        (t[9], 0, 0, True),
    ])


def test_clock_jumping_backwards_refills_nothing(Limiter):
    # Port of Go's TestLimiterJumpBackwards (golang.org/x/time/rate/rate_test.go).
    run(Limiter(10, 3), [
        (t[1], 3, 1, True),  # start at t1
        (t[0], 2, 1, True),  # jump back to t0, two tokens remain
        (t[0], 1, 1, True),
        (t[0], 0, 1, False),
        (t[0], 0, 1, False),
        (t[1], 1, 1, True),  # got a token
        (t[1], 0, 1, False),
        (t[1], 0, 1, False),
        (t[2], 1, 1, True),  # got another token
        (t[2], 0, 1, False),
        (t[2], 0, 1, False),
    ])


def test_odd_rate_allows_the_first_event(Limiter):
    # Port of Go's TestLimiter_noTruncationErrors (golang.org/x/time/rate/rate_test.go).
    assert Limiter(0.7692307692307693, 1).allow()


def test_simultaneous_requests_take_exactly_the_burst(Limiter, spawn):
    # Port of Go's TestSimultaneousRequests (golang.org/x/time/rate/rate_test.go), on a fake
    # clock so that no token can come in while the threads run, and with more of them.
    lim = Limiter(1, 500)
    start = threading.Barrier(8)

    def requests():
        start.wait(LONG)
        return sum(lim.allow(now=t[0]) for _ in range(200))

    workers = [spawn(requests) for _ in range(8)]
    assert sum(w.join() for w in workers) == 500
    assert lim.tokens(now=t[0]) == 0


def test_simultaneous_requests_on_the_real_clock(Limiter, spawn):
    # Port of Go's TestSimultaneousRequests (golang.org/x/time/rate/rate_test.go): a bucket that
    # refills once in 1000 s gives 15 threads exactly its burst.
    lim = Limiter(0.001, 5)
    start = threading.Barrier(15)

    def request():
        start.wait(LONG)
        return lim.allow()

    workers = [spawn(request) for _ in range(15)]
    assert sum(w.join() for w in workers) == 5


def test_long_running_qps_stays_within_the_rate(Limiter):
    # Port of Go's TestLongRunningQPS (golang.org/x/time/rate/rate_test.go): 5 fake seconds of
    # requests every 2 ms against 100 per second with a burst of 100.
    lim = Limiter(100, 100)
    now_ns, end_ns = 0, 5_000_000_000
    allowed = 0
    while now_ns < end_ns:
        allowed += lim.allow(now=now_ns / 1e9)
        now_ns += 2_000_000
    ideal = 100 + 100 * now_ns / 1e9
    assert allowed <= int(ideal + 1)
    assert allowed >= int(0.999 * ideal)


# --- Port of the reservation tests ----------------------------------------------------------


def test_simple_reserve(Limiter):
    # Port of Go's TestSimpleReserve (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve(lim, t[0], 2, t[0], True)
    run_reserve(lim, t[0], 2, t[2], True)
    run_reserve(lim, t[3], 2, t[4], True)


def test_mix_of_reserve_and_allow(Limiter):
    # Port of Go's TestMix (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve(lim, t[0], 3, t[1], False)  # n > burst
    run_reserve(lim, t[0], 2, t[0], True)
    run(lim, [(t[1], 1, 2, False)])  # not enough tokens: don't allow
    run_reserve(lim, t[1], 2, t[2], True)
    run(lim, [(t[1], -1, 1, False)])  # negative tokens: don't allow
    run(lim, [(t[3], 1, 1, True)])


def test_cancel_of_a_reservation_that_is_not_ok_does_nothing(Limiter):
    # Port of Go's TestCancelInvalid (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve(lim, t[0], 2, t[0], True)
    r = run_reserve(lim, t[0], 3, t[3], False)
    r.cancel(t[0])
    run_reserve(lim, t[0], 2, t[2], True)  # did not get extra tokens


def test_cancel_of_the_last_reservation_gives_its_tokens_back(Limiter):
    # Port of Go's TestCancelLast (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve(lim, t[0], 2, t[0], True)
    r = run_reserve(lim, t[0], 2, t[2], True)
    r.cancel(t[1])  # 2 tokens back
    run_reserve(lim, t[1], 2, t[2], True)


def test_cancel_after_the_time_to_act_does_nothing(Limiter):
    # Port of Go's TestCancelTooLate (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve(lim, t[0], 2, t[0], True)
    r = run_reserve(lim, t[0], 2, t[2], True)
    r.cancel(t[3])  # too late
    run_reserve(lim, t[3], 2, t[4], True)


def test_cancel_gives_back_nothing_that_later_reservations_count_on(Limiter):
    # Port of Go's TestCancel0Tokens (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve(lim, t[0], 2, t[0], True)
    r = run_reserve(lim, t[0], 1, t[1], True)
    run_reserve(lim, t[0], 1, t[2], True)
    r.cancel(t[0])  # 0 tokens back
    run_reserve(lim, t[0], 1, t[3], True)


def test_cancel_gives_back_what_later_reservations_leave(Limiter):
    # Port of Go's TestCancel1Token (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve(lim, t[0], 2, t[0], True)
    r = run_reserve(lim, t[0], 2, t[2], True)
    run_reserve(lim, t[0], 1, t[3], True)
    r.cancel(t[2])  # 1 token back
    run_reserve(lim, t[2], 2, t[4], True)


def test_cancel_of_several_reservations(Limiter):
    # Port of Go's TestCancelMulti (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 4)
    run_reserve(lim, t[0], 4, t[0], True)
    a = run_reserve(lim, t[0], 3, t[3], True)
    run_reserve(lim, t[0], 1, t[4], True)
    c = run_reserve(lim, t[0], 1, t[5], True)
    c.cancel(t[1])  # 1 token back
    a.cancel(t[1])  # 2 tokens back, as if C was never reserved
    run_reserve(lim, t[1], 3, t[5], True)


def test_reserve_with_the_clock_jumping_back(Limiter):
    # Port of Go's TestReserveJumpBack (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve(lim, t[1], 2, t[1], True)  # start at t1
    run_reserve(lim, t[0], 1, t[1], True)  # should violate Limit, Burst
    run_reserve(lim, t[2], 2, t[3], True)
    # n above the burst fails and leaves the limiter as it was
    run_reserve(lim, t[0], 3, None, False)
    run_reserve(lim, t[2], 1, t[4], True)
    # too far ahead for the maximum wait: fails and leaves it as it was
    run_reserve_max(lim, t[0], 2, None, False, D)
    run_reserve(lim, t[2], 1, t[5], True)


def test_cancel_with_the_clock_jumping_back(Limiter):
    # Port of Go's TestReserveJumpBackCancel (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve(lim, t[1], 2, t[1], True)  # start at t1
    r = run_reserve(lim, t[1], 2, t[3], True)
    run_reserve(lim, t[1], 1, t[4], True)
    r.cancel(t[0])  # cancel at t0, 1 token back
    run_reserve(lim, t[1], 2, t[4], True)  # should violate Limit, Burst


def test_set_rate_applies_to_reservations_made_after(Limiter):
    # Port of Go's TestReserveSetLimit (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(5, 2)
    run_reserve(lim, t[0], 2, t[0], True)
    run_reserve(lim, t[0], 2, t[4], True)
    lim.set_rate(10, now=t[2])
    run_reserve(lim, t[2], 1, t[4], True)  # violates Limit and Burst


def test_set_burst_applies_to_reservations_made_after(Limiter):
    # Port of Go's TestReserveSetBurst (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(5, 2)
    run_reserve(lim, t[0], 2, t[0], True)
    run_reserve(lim, t[0], 2, t[4], True)
    lim.set_burst(4, now=t[3])
    run_reserve(lim, t[0], 4, t[9], True)  # violates Limit and Burst


def test_cancel_after_set_rate_uses_the_rate_of_the_reservation(Limiter):
    # Port of Go's TestReserveSetLimitCancel (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(5, 2)
    run_reserve(lim, t[0], 2, t[0], True)
    r = run_reserve(lim, t[0], 2, t[4], True)
    lim.set_rate(10, now=t[2])
    r.cancel(t[2])  # 2 tokens back
    run_reserve(lim, t[2], 2, t[3], True)


def test_reserve_within_a_maximum_wait(Limiter):
    # Port of Go's TestReserveMax (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 2)
    run_reserve_max(lim, t[0], 2, t[0], True, D)
    run_reserve_max(lim, t[0], 1, t[1], True, D)  # reserve for close future
    run_reserve_max(lim, t[0], 1, t[2], False, D)  # time to act too far in the future


def test_zero_rate_allows_the_burst_then_nothing(Limiter):
    # Port of Go's TestZeroLimit (golang.org/x/time/rate/rate_test.go), with a larger burst.
    lim = Limiter(0, 3)
    assert [lim.allow(now=t[k]) for k in range(5)] == [True, True, True, False, False]
    assert not lim.allow(now=1e6)
    assert lim.reserve(now=t[0]).delay(t[9]) == math.inf


def test_rate_set_after_a_zero_rate_refills(Limiter):
    # Port of Go's TestSetAfterZeroLimit (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(0, 1)
    assert lim.allow(now=t[0])
    assert not lim.allow(now=t[0])
    lim.set_rate(10, now=t[0])
    r = lim.reserve(now=t[0])  # at 10 per second, the next token is 100 ms away
    assert r.ok and d_since(r.time_to_act) == 1


def test_tiny_rate_does_not_overflow(Limiter):
    # Port of Go's TestTinyLimit (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(1e-10, 1)
    assert lim.allow()
    assert not lim.allow()
    assert lim.reserve().delay() == math.inf  # 1e10 s is beyond the clock: "never"


def test_infinite_rate_allows_everything_whatever_the_burst(Limiter):
    lim = Limiter(math.inf, 0)
    assert all(lim.allow(1000, now=t[0]) for _ in range(100))
    r = lim.reserve(10**6, now=t[0])
    assert r.ok and r.delay(t[0]) == 0.0
    assert lim.wait(3, timeout=0)  # Port of Go's TestWaitInf: above the burst, no error


# --- reservations -------------------------------------------------------------------------


def test_reservation_delay_counts_down_to_zero(Limiter):
    lim = Limiter(10, 1)
    assert lim.allow(now=t[0])
    r = lim.reserve(now=t[0])
    assert r.delay(t[0]) == pytest.approx(D)
    assert r.delay(t[0] + D / 2) == pytest.approx(D / 2)
    assert r.delay(t[1]) == 0.0 and r.delay(t[9]) == 0.0
    assert r.time_to_act == pytest.approx(t[1])


def test_reservation_above_the_burst_is_not_ok_and_takes_nothing(Limiter):
    lim = Limiter(10, 2)
    r = lim.reserve(3, now=t[0])
    assert not r.ok
    assert r.delay(t[0]) == math.inf and r.time_to_act == math.inf
    assert lim.tokens(now=t[0]) == 2
    assert repr(r) == "<gochan.Reservation ok=False>"


def test_only_the_first_cancel_has_an_effect(Limiter):
    lim = Limiter(10, 2)
    lim.reserve(2, now=t[0])
    r = lim.reserve(2, now=t[0])
    r.cancel(t[0])
    assert lim.tokens(now=t[0]) == pytest.approx(0)
    r.cancel(t[0])
    r.cancel(t[0])
    assert lim.tokens(now=t[0]) == pytest.approx(0)


def test_concurrent_cancels_give_the_tokens_back_once(Limiter, spawn):
    for _ in range(20):
        lim = Limiter(10, 4)
        lim.reserve(4, now=t[0])
        r = lim.reserve(4, now=t[0])  # 4 tokens in debt
        start = threading.Barrier(4)

        def cancel():
            start.wait(LONG)
            r.cancel(t[0])

        for w in [spawn(cancel) for _ in range(4)]:
            w.join()
        assert lim.tokens(now=t[0]) == pytest.approx(0)


def test_reservation_repr_shows_the_delay(Limiter):
    lim = Limiter(10, 1)
    lim.allow()
    assert repr(lim.reserve()).startswith("<gochan.Reservation ok=True delay=0.")


def test_reserve_on_the_real_clock_says_when_to_act(Limiter):
    lim = Limiter(20, 1)
    before = time.monotonic()
    assert lim.allow()
    r = lim.reserve()
    after = time.monotonic()
    assert before + 0.05 <= r.time_to_act <= after + 0.05
    assert 0 < r.delay() <= 0.05


# --- tokens, set_rate, set_burst, properties ---------------------------------------------------


def test_a_new_limiter_is_full(Limiter):
    lim = Limiter(10, 7)
    assert lim.tokens() == 7.0 and lim.tokens(now=-5.0) == 7.0
    assert lim.rate == 10.0 and lim.burst == 7
    assert Limiter(10).burst == 1


def test_tokens_refill_at_the_rate_up_to_the_burst(Limiter):
    lim = Limiter(4, 8)
    assert lim.allow(8, now=0.0)
    assert lim.tokens(now=0.0) == 0
    assert lim.tokens(now=0.5) == pytest.approx(2.0)
    assert lim.tokens(now=1.25) == pytest.approx(5.0)
    assert lim.tokens(now=60.0) == 8.0


def test_tokens_go_negative_while_reserved_ahead(Limiter):
    lim = Limiter(10, 1)
    lim.reserve(now=0.0)
    lim.reserve(now=0.0)
    lim.reserve(now=0.0)
    assert lim.tokens(now=0.0) == pytest.approx(-2.0)
    assert lim.tokens(now=0.3) == pytest.approx(1.0)


def test_set_rate_counts_the_past_at_the_old_rate(Limiter):
    lim = Limiter(1, 100)
    lim.allow(100, now=0.0)
    lim.set_rate(10, now=2.0)  # 2 tokens at 1 per second
    assert lim.rate == 10.0
    assert lim.tokens(now=2.0) == pytest.approx(2.0)
    assert lim.tokens(now=3.0) == pytest.approx(12.0)
    lim.set_rate(math.inf, now=3.0)
    assert lim.allow(100, now=3.0) and lim.allow(100, now=3.0)
    lim.set_rate(0, now=3.0)
    assert lim.rate == 0.0
    assert not lim.allow(13, now=100.0)
    assert lim.allow(12, now=100.0)  # what the bucket held when the rate became 0


def test_set_burst_caps_the_bucket_from_now_on(Limiter):
    lim = Limiter(10, 10)
    lim.set_burst(3, now=0.0)
    assert lim.burst == 3
    assert lim.tokens(now=0.0) == 3.0
    assert lim.allow(4, now=0.0) is False
    assert lim.allow(3, now=0.0)
    assert lim.tokens(now=0.1) == pytest.approx(1.0)
    assert lim.tokens(now=60.0) == 3.0
    lim.set_burst(5, now=60.0)
    assert lim.tokens(now=61.0) == 5.0


def test_allow_of_zero_tokens_is_true_unless_in_debt(Limiter):
    lim = Limiter(10, 1)
    assert lim.allow(0, now=0.0)
    lim.reserve(2, now=0.0)  # above the burst: not booked
    lim.reserve(1, now=0.0)
    lim.reserve(1, now=0.0)
    assert not lim.allow(0, now=0.0)
    assert lim.allow(0, now=0.1)


def test_repr_shows_rate_burst_and_tokens(Limiter):
    assert repr(Limiter(2.5, 3)) == "<gochan.Limiter rate=2.5 burst=3 tokens=3>"
    assert "rate=inf" in repr(Limiter(math.inf))


def test_limiter_supports_weak_references(Limiter):
    lim = Limiter(1)
    ref = weakref.ref(lim)
    assert ref() is lim
    del lim
    assert ref() is None


def test_python_and_c_buckets_agree_on_random_calls():
    rng = random.Random(1234)
    for trial in range(50):
        rate = rng.choice([0.0, 0.5, 3.0, 10.0, 1e6, math.inf])
        burst = rng.randrange(0, 6)
        c, py = gochan.Limiter(rate, burst), _ratelimit._PyLimiter(rate, burst)
        now = 0.0
        reservations = []
        for step in range(200):
            now += rng.choice([0.0, 0.0, 0.001, 0.05, 0.3, -0.2])
            op = rng.randrange(6)
            n = rng.randrange(0, 4)
            where = f"trial {trial} step {step} op {op}"
            if op == 0:
                assert c.allow(n, now=now) == py.allow(n, now=now), where
            elif op == 1:
                rc, rp = c.reserve(n, now=now), py.reserve(n, now=now)
                assert (rc.ok, rc.time_to_act) == (rp.ok, rp.time_to_act), where
                reservations.append((rc, rp))
            elif op == 2 and reservations:
                rc, rp = reservations.pop(rng.randrange(len(reservations)))
                rc.cancel(now)
                rp.cancel(now)
            elif op == 3:
                new = rng.choice([0.0, 1.0, 7.0, math.inf])
                c.set_rate(new, now=now)
                py.set_rate(new, now=now)
            elif op == 4:
                new = rng.randrange(0, 6)
                c.set_burst(new, now=now)
                py.set_burst(new, now=now)
            assert c.tokens(now=now) == py.tokens(now=now), where


# --- wait ---------------------------------------------------------------------------------


def test_wait_takes_available_tokens_at_once(Limiter):
    # Port of Go's TestWaitSimple, "act-now" (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 3)
    start = time.monotonic()
    assert lim.wait(2) is True
    assert time.monotonic() - start < 1.0
    assert lim.tokens() == pytest.approx(1.0, abs=0.2)


def test_wait_above_the_burst_raises_value_error(Limiter):
    # Port of Go's TestWaitSimple, "exceed-burst-error" (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 3)
    with pytest.raises(ValueError, match=r"wait\(n=4\) exceeds the limiter's burst 3"):
        lim.wait(4)
    assert lim.tokens() == 3.0


def test_wait_sleeps_until_the_tokens_are_due(Limiter):
    # Port of Go's TestWaitSimple, "act-later" (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 3)
    assert lim.wait(2)
    start = time.monotonic()
    assert lim.wait(3) is True  # one token left: two more take 200 ms
    elapsed = time.monotonic() - start
    assert 0.15 <= elapsed < 2.0


def test_wait_that_would_outlast_the_timeout_returns_false_at_once(Limiter):
    lim = Limiter(1, 1)
    assert lim.wait(timeout=0)
    start = time.monotonic()
    assert lim.wait(timeout=0.5) is False  # the next token is 1 s away
    assert time.monotonic() - start < 0.4  # did not wait for the timeout
    assert lim.tokens() == pytest.approx(0.0, abs=0.3)  # and took nothing


def test_wait_within_the_timeout_waits(Limiter):
    lim = Limiter(20, 1)
    assert lim.wait(timeout=0)
    start = time.monotonic()
    assert lim.wait(timeout=1.0) is True
    assert 0.02 <= time.monotonic() - start < 0.5


def test_wait_on_an_exhausted_zero_rate_returns_false_at_once(Limiter):
    lim = Limiter(0, 1)
    assert lim.wait(timeout=0)
    start = time.monotonic()
    assert lim.wait(timeout=5.0) is False  # the token never comes
    assert time.monotonic() - start < 0.5


def test_wait_on_an_exhausted_zero_rate_waits_for_the_context(Limiter, spawn):
    lim = Limiter(0, 1)
    assert lim.allow()
    ctx, cancel = gochan.with_cancel(gochan.background())
    waiter = spawn(lim.wait, ctx=ctx)  # no timeout: only ctx can end it
    wait_until(lambda: lim.tokens() < -0.5)
    time.sleep(SETTLE)
    assert not waiter.done
    cancel()
    assert isinstance(waiter.exception(), gochan.Cancelled)
    assert lim.tokens() == 0.0  # the booking went back


def test_wait_with_a_cancelled_context_raises_before_taking_anything(Limiter):
    # Port of Go's TestWaitSimple, "already-cancelled" (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 3)
    ctx, cancel = gochan.with_cancel(gochan.background())
    cancel()
    with pytest.raises(gochan.Cancelled):
        lim.wait(ctx=ctx)
    assert lim.tokens() == 3.0


def test_cancelling_the_context_wakes_wait_and_gives_the_tokens_back(Limiter, spawn):
    # Port of Go's TestWaitCancel (golang.org/x/time/rate/rate_test.go), with a slower refill so
    # that the tokens given back are visible.
    lim = Limiter(1, 3)
    ctx, cancel = gochan.with_cancel(gochan.background())
    assert lim.wait(2, ctx=ctx)  # one token left
    waiter = spawn(lim.wait, 3, ctx=ctx)  # books the 2 it lacks: due in 2 s
    wait_until(lambda: lim.tokens() < -1.5)
    start = time.monotonic()
    cancel()
    with pytest.raises(gochan.Cancelled):
        waiter.join()
    assert time.monotonic() - start < 1.0  # woke at once
    assert lim.tokens() >= 0.9  # the 3 tokens came back
    assert lim.wait(1, timeout=0)


def test_wait_beyond_the_context_deadline_fails_at_once(Limiter):
    # Port of Go's TestWaitTimeout (golang.org/x/time/rate/rate_test.go).
    lim = Limiter(10, 3)
    ctx, cancel = gochan.with_timeout(gochan.background(), D)
    try:
        assert lim.wait(2, ctx=ctx)
        start = time.monotonic()
        with pytest.raises(gochan.DeadlineExceeded, match="would exceed the context's deadline"):
            lim.wait(3, ctx=ctx)  # two more tokens take 200 ms
        assert time.monotonic() - start < D
        assert lim.tokens() < 2  # took nothing
    finally:
        cancel()


def test_timeout_shorter_than_the_deadline_returns_false(Limiter):
    lim = Limiter(1, 1)
    assert lim.allow()
    with gochan.with_timeout(gochan.background(), 10.0) as ctx:
        assert lim.wait(timeout=0.1, ctx=ctx) is False


def test_ctrl_c_interrupts_wait_and_gives_the_tokens_back(child):
    proc = child(textwrap.dedent("""
        import gochan
        lim = gochan.Limiter(0.5, 1)
        lim.allow()
        print("waiting", flush=True)
        try:
            lim.wait()  # the next token is 2 s away
        except KeyboardInterrupt:
            print("interrupted", round(lim.tokens()), flush=True)
    """))
    proc.expect("waiting")
    time.sleep(SETTLE)
    proc.send_signal(signal.SIGINT)
    proc.expect("interrupted 0")  # not -1: the booked token came back
    assert proc.finish()[0] == 0


def test_concurrent_waits_never_exceed_the_rate(Limiter, spawn):
    lim = Limiter(50, 5)
    start = time.monotonic()
    workers = [spawn(lambda: [lim.wait() for _ in range(5)]) for _ in range(4)]
    for w in workers:
        w.join()
    # 20 events: 5 from the burst, then 15 more at 50 per second take at least 0.3 s.
    assert 0.25 <= time.monotonic() - start < 3.0


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [-1, -0.5, math.nan, -math.inf])
def test_negative_or_nan_rate_raises_value_error(Limiter, rate):
    with pytest.raises(ValueError, match="rate must be >= 0"):
        Limiter(rate)
    with pytest.raises(ValueError, match="rate must be >= 0"):
        Limiter(1).set_rate(rate)


@pytest.mark.parametrize("rate", ["10", None, [1]])
def test_rate_that_is_not_a_number_raises_type_error(Limiter, rate):
    with pytest.raises(TypeError, match="rate must be a number"):
        Limiter(rate)


@pytest.mark.parametrize("burst", [-1, 2**63])
def test_burst_out_of_range_raises_value_error(Limiter, burst):
    with pytest.raises(ValueError, match="burst must be between 0 and 2"):
        Limiter(1, burst)
    with pytest.raises(ValueError, match="burst must be between 0 and 2"):
        Limiter(1).set_burst(burst)


@pytest.mark.parametrize("burst", [1.0, "1", None])
def test_burst_that_is_not_an_int_raises_type_error(Limiter, burst):
    with pytest.raises(TypeError, match="burst must be an int"):
        Limiter(1, burst)


@pytest.mark.parametrize("method", ["allow", "reserve", "wait"])
def test_n_that_is_not_an_int_raises_type_error(Limiter, method):
    with pytest.raises(TypeError, match="n must be an int, not float"):
        getattr(Limiter(1), method)(1.0)


@pytest.mark.parametrize("method", ["allow", "reserve", "wait"])
def test_negative_n_raises_value_error(Limiter, method):
    with pytest.raises(ValueError, match="n must be >= 0"):
        getattr(Limiter(1), method)(-1)


def test_huge_n_is_never_allowed(Limiter):
    lim = Limiter(1e9, 10)
    assert not lim.allow(10**30)
    assert not lim.reserve(10**30).ok


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf, 1e300, 10**400])
def test_now_that_is_not_a_finite_time_raises_value_error(Limiter, now):
    lim = Limiter(1)
    for call in (lambda: lim.allow(now=now), lambda: lim.reserve(now=now),
                 lambda: lim.tokens(now=now), lambda: lim.set_rate(2, now=now),
                 lambda: lim.set_burst(2, now=now), lambda: lim.reserve().delay(now)):
        with pytest.raises(ValueError, match="now must be a finite"):
            call()


def test_now_that_is_not_a_number_raises_type_error(Limiter):
    with pytest.raises(TypeError, match="now must be a number"):
        Limiter(1).allow(now="12.5")


@pytest.mark.parametrize("timeout", [-1, math.nan])
def test_bad_timeout_raises_value_error(Limiter, timeout):
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        Limiter(1).wait(timeout=timeout)


def test_timeout_that_is_not_a_number_raises_type_error(Limiter):
    with pytest.raises(TypeError, match="timeout must be a number or None"):
        Limiter(1).wait(timeout="1")


def test_ctx_that_is_not_a_context_raises_type_error(Limiter):
    with pytest.raises(TypeError, match="ctx must be a gochan Context or None"):
        Limiter(1).wait(ctx=object())


def test_unknown_keyword_raises_type_error(Limiter):
    with pytest.raises(TypeError):
        Limiter(1).allow(when=3.0)
    with pytest.raises(TypeError):
        Limiter(1).allow(1, 2)
    with pytest.raises(TypeError):
        Limiter(1).tokens(3.0)
    with pytest.raises(TypeError):
        Limiter(1).set_rate()


def test_limiter_is_not_picklable(Limiter):
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Limiter(1))
