"""Rate limiting: `Limiter`, a token bucket with the semantics of Go's golang.org/x/time/rate.

A limiter holds up to `burst` tokens and gains `rate` tokens per second; every event takes
tokens. `allow()` takes them if they are there (and never waits), `reserve()` books them even
ahead of time and says how long to wait, `wait()` books them and sleeps until they are due
(cancellable by a context, bounded by a timeout). The bucket itself (`allow`, `tokens`,
`set_rate`, `set_burst` and the `_reserve`/`_cancel` primitives) is the C type
`gochan._core._TokenBucket` when the extension provides it, else `_PyTokenBucket` below, which
does the same arithmetic in Python: times are integer nanoseconds inside, as in Go, so that
both give the same answers to the same calls::

    import gochan

    limiter = gochan.Limiter(2, burst=3)  # 2 events per second, bursts of up to 3
    assert [limiter.allow(now=0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow(now=0.5)  # half a second later: one more token
"""

import math
import threading
import time

from gochan import _core

_monotonic_ns = time.monotonic_ns

_INF = math.inf  # one global lookup in allow()

#: "Never", and the bound of every time sum (Go's InfDuration; the core's GC_FOREVER).
_FOREVER = 2**63 - 1

#: Times given as now= stay within +-2**62 ns, so that two of them subtract without overflow.
_NOW_LIMIT = 2.0**62


# --- argument checks (the same messages as csrc/py/limiter.c) -----------------------------------


def _as_float(obj, what):
    """float(obj) for a number (an int beyond the floats is an infinity; a str is not a number)."""
    if not isinstance(obj, (str, bytes, bytearray)):
        try:
            return float(obj)
        except OverflowError:  # an int beyond the floats
            return math.inf if obj > 0 else -math.inf
        except TypeError:
            pass
    raise TypeError(f"{what}, not {type(obj).__name__}")


def _now_ns(now):
    """now= (seconds on the time.monotonic() clock, or None for the clock now) in nanoseconds."""
    if now is None:
        return _monotonic_ns()
    what = "now must be a number (seconds on the time.monotonic() clock) or None"
    ns = _as_float(now, what) * 1e9
    if not abs(ns) < _NOW_LIMIT:
        raise ValueError(f"now must be a finite time.monotonic() value, got {now!r}")
    return round(ns)


def _check_n(n):
    """n: an int >= 0; one beyond any burst is clamped so that it converts to a float."""
    if not isinstance(n, int):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    return n if n < _FOREVER else _FOREVER


def _check_rate(rate):
    value = _as_float(rate, "rate must be a number of events per second")
    if not value >= 0:
        raise ValueError(
            f"rate must be >= 0 events per second (float('inf') for no limit), got {rate!r}"
        )
    return value


def _check_burst(burst):
    if not isinstance(burst, int):
        raise TypeError(f"burst must be an int, not {type(burst).__name__}")
    if not 0 <= burst <= _FOREVER:
        raise ValueError(f"burst must be between 0 and 2**63 - 1, got {burst!r}")
    return int(burst)


def _timeout_ns(timeout):
    """timeout= in nanoseconds, rounded up; _FOREVER for None (the API.md convention)."""
    if timeout is None:
        return _FOREVER
    seconds = _as_float(timeout, "timeout must be a number or None")
    if not seconds >= 0:
        raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
    ns = seconds * 1e9
    return _FOREVER if ns >= _FOREVER else math.ceil(ns)


def _check_ctx(ctx):
    """TypeError unless ctx is None or looks like a gochan context."""
    if ctx is not None and not (hasattr(ctx, "check") and hasattr(ctx, "deadline")):
        raise TypeError(f"ctx must be a gochan Context or None, not {type(ctx).__name__}")


def _sleep(seconds, ctx):
    """gochan.sleep(seconds, ctx=ctx): the GIL released, Ctrl-C interrupts it, ctx wakes it with
    ctx.err(); math.inf sleeps until ctx is done. Looked up at call time, as the timers are
    another part of gochan."""
    import gochan

    gochan.sleep(seconds, ctx=ctx)


# --- the bucket in Python: the arithmetic of csrc/core/gc_limiter.c, line for line ---------------


def _sat_add(a, b):
    """a + b within +-_FOREVER, as the core's int64 sums saturate."""
    s = a + b
    return _FOREVER if s > _FOREVER else -_FOREVER if s < -_FOREVER else s


def _tokens_from_duration(rate, d):
    # A zero duration gains nothing even at an infinite rate (0 * inf would be NaN).
    if not rate > 0 or d == 0:
        return 0.0
    return d / 1e9 * rate


def _duration_from_tokens(rate, tokens):
    if not rate > 0:
        return _FOREVER
    ns = tokens / rate * 1e9
    if ns >= 9223372036854775808.0:
        return _FOREVER
    if ns <= -9223372036854775808.0:
        return -_FOREVER
    return int(ns)  # truncated, as Go converts a float to a Duration


class _PyTokenBucket:
    """The token bucket of gochan.Limiter in pure Python (see the module docstring).

    Invariant: every field is read and written with `_lock` held.
    """

    __slots__ = ("_lock", "_rate", "_burst", "_cap", "_tokens", "_last", "_last_event")

    def __init__(self, rate, burst=1):
        self._lock = threading.Lock()
        self._rate = _check_rate(rate)
        self._burst = _check_burst(burst)
        self._cap = float(self._burst)  # the burst as the C core compares it
        self._tokens = self._cap  # the bucket starts full
        self._last = 0
        self._last_event = 0

    def _advance(self, now):
        """Tokens at time now (the lock held): a clock gone backwards refills nothing."""
        last = self._last if self._last < now else now
        tokens = self._tokens + _tokens_from_duration(self._rate, _sat_add(now, -last))
        return self._cap if tokens > self._cap else tokens

    def _reserve(self, n, now, max_wait):
        """Reserve n tokens at now (ns), granted only if due within max_wait (ns).

        Returns (ok, tokens, time_to_act, rate) as the C type does; not ok changes nothing.
        """
        with self._lock:
            rate = self._rate
            if rate == math.inf:
                return True, n, now, rate
            tokens = self._advance(now) - n
            wait = _duration_from_tokens(rate, -tokens) if tokens < 0 else 0
            if n > self._burst or wait > max_wait:
                return False, 0, _FOREVER, rate
            time_to_act = _sat_add(now, wait)
            self._last = now
            self._tokens = tokens
            self._last_event = time_to_act
            return True, n, time_to_act, rate

    def _cancel(self, held, time_to_act, rate, now):
        """Give back the `held` tokens of a reservation as far as later ones allow."""
        with self._lock:
            if self._rate == math.inf or rate == math.inf or held == 0 or time_to_act < now:
                return
            # Reservations made after this one counted from its time to act on: the tokens of
            # that time span are theirs.
            restore = held - _tokens_from_duration(rate, _sat_add(self._last_event, -time_to_act))
            if restore <= 0:
                return
            tokens = self._advance(now) + restore
            self._tokens = self._cap if tokens > self._cap else tokens
            self._last = now
            if time_to_act == self._last_event:
                prev = _sat_add(time_to_act, _duration_from_tokens(rate, -float(held)))
                if prev >= now:
                    self._last_event = prev

    def allow(self, n=1, *, now=None):
        """Take n tokens if the bucket holds them now; return whether it did.

        Never waits: use it to drop or skip the events over the limit. now is a
        time.monotonic() value (default: the clock now).

            if not limiter.allow():
                return "busy, try later"
        """
        if n.__class__ is not int or not 0 <= n <= _FOREVER:
            n = _check_n(n)
        now = _monotonic_ns() if now is None else _now_ns(now)
        # _reserve(n, now, 0) inlined; acquire/release cost less than a with statement.
        lock = self._lock
        lock.acquire()
        try:
            rate = self._rate
            if rate == _INF:
                return True
            last = self._last
            tokens = self._tokens
            if now > last and rate > 0:
                tokens += (now - last) / 1e9 * rate
            if tokens > self._cap:
                tokens = self._cap
            tokens -= n
            # A deficit too small to wait a whole nanosecond for is allowed, as in Go.
            if n > self._burst or tokens < 0 and _duration_from_tokens(rate, -tokens) > 0:
                return False
            self._last = self._last_event = now
            self._tokens = tokens
            return True
        finally:
            lock.release()

    def tokens(self, *, now=None):
        """The tokens in the bucket at time now (default: the clock now), negative while
        reservations have taken more than it held.

            assert gochan.Limiter(10, burst=3).tokens() == 3.0
        """
        now = _now_ns(now)
        with self._lock:
            return self._advance(now)

    def set_rate(self, rate, *, now=None):
        """Refill at `rate` tokens per second from time now on (the tokens gained until now count
        at the old rate). Reservations made before keep the times they were given.

            limiter.set_rate(100)   # busy hours are over
        """
        rate = _check_rate(rate)
        now = _now_ns(now)
        with self._lock:
            self._tokens = self._advance(now)
            self._last = now
            self._rate = rate

    def set_burst(self, burst, *, now=None):
        """Make the bucket hold at most `burst` tokens from time now on.

            limiter.set_burst(10)
        """
        burst = _check_burst(burst)
        now = _now_ns(now)
        with self._lock:
            self._tokens = self._advance(now)
            self._last = now
            self._burst = burst
            self._cap = float(burst)

    @property
    def rate(self):
        """Tokens added per second (float('inf'): every event is allowed).

            assert gochan.Limiter(2.5).rate == 2.5
        """
        return self._rate

    @property
    def burst(self):
        """The most tokens the bucket holds, and so the largest n allowed.

            assert gochan.Limiter(10, burst=4).burst == 4
        """
        return self._burst


_TokenBucket = getattr(_core, "_TokenBucket", _PyTokenBucket)


# --- the public classes ------------------------------------------------------------------------


class Reservation:
    """Tokens that `Limiter.reserve()` booked, perhaps ahead of time: act after `delay()`.

    `ok` is False when the limiter could not book them at all (n above the burst); such a
    reservation has an infinite delay and holds nothing. `cancel()` gives the tokens back when
    you will not act after all, as far as later reservations have not counted on them::

        limiter = gochan.Limiter(10, burst=1)
        limiter.allow()                    # the bucket is empty now
        r = limiter.reserve()              # the next token, 0.1 s from now
        assert r.ok and 0 < r.delay() <= 0.1
        r.cancel()                         # changed our mind: the token is free again
    """

    __slots__ = ("_limiter", "_ok", "_held", "_time_to_act", "_rate")

    def __init__(self, limiter, ok, tokens, time_to_act, rate):
        self._limiter = limiter
        self._ok = ok
        # cancel() pops the tokens: list.pop is atomic, so only one cancel() can have them.
        self._held = [tokens] if ok else []
        self._time_to_act = time_to_act
        self._rate = rate

    @property
    def ok(self):
        """Whether the tokens were booked (False: n exceeds the limiter's burst).

            assert not gochan.Limiter(1, burst=2).reserve(3).ok
        """
        return self._ok

    @property
    def time_to_act(self):
        """When the tokens are due, in time.monotonic() seconds; math.inf for never.

            r = limiter.reserve()
            time.sleep(max(0.0, r.time_to_act - time.monotonic()))
        """
        if not self._ok or self._time_to_act == _FOREVER:
            return math.inf
        return self._time_to_act / 1e9

    def delay(self, now=None):
        """Seconds to wait from time now (default: the clock now) before acting; 0.0 means act
        now, math.inf never (not ok, or a rate of 0).

            r = limiter.reserve()
            time.sleep(r.delay())
        """
        now = _now_ns(now)
        if not self._ok or self._time_to_act == _FOREVER:
            return math.inf
        wait = self._time_to_act - now
        return wait / 1e9 if wait > 0 else 0.0

    def cancel(self, now=None):
        """Give the tokens back (at time now, default the clock now): x/time/rate's CancelAt.

        Nothing comes back once the time to act has passed, nor what reservations made after
        this one already count on. Only the first call has an effect.

            r = limiter.reserve()
            if r.delay() > 1.0:
                r.cancel()   # too long: do something else
        """
        now = _now_ns(now)
        try:
            held = self._held.pop()
        except IndexError:
            return
        self._limiter._cancel(held, self._time_to_act, self._rate, now)

    def __repr__(self):
        if not self._ok:
            return "<gochan.Reservation ok=False>"
        return f"<gochan.Reservation ok=True delay={self.delay():.6g}>"


class _LimiterMethods:
    """reserve() and wait(), written once over either token bucket."""

    __slots__ = ()

    def reserve(self, n=1, *, now=None):
        """Book n tokens at time now (default: the clock now) even if they are not there yet, and
        return a `Reservation` saying when to act.

        The booking is made at once (later callers wait behind it) unless n exceeds the burst:
        then `ok` is False and nothing is booked. Use it to slow down without dropping events
        when you cannot block in `wait()`, or to decide after seeing the delay.

            r = limiter.reserve()
            if r.ok:
                time.sleep(r.delay())
                act()
        """
        n = _check_n(n)
        return Reservation(self, *self._reserve(n, _now_ns(now), _FOREVER))

    def wait(self, n=1, *, timeout=None, ctx=None):
        """Wait until n tokens are available and take them; True, or False on timeout.

        The tokens are booked at once, then the call sleeps until they are due, releasing the
        GIL. If they would come later than `timeout` seconds from now, it returns False at once
        without taking any; if later than `ctx`'s deadline, it raises `DeadlineExceeded` at once
        in the same way. Cancelling `ctx` while it sleeps wakes it with ctx.err(), and Ctrl-C with
        KeyboardInterrupt; either way the booked tokens are given back. n above the burst raises
        ValueError (unless the rate is infinite), since it could never be satisfied.

            limiter = gochan.Limiter(100)      # at most 100 requests a second
            for url in urls:
                limiter.wait()
                fetch(url)
        """
        n = _check_n(n)
        max_wait = _timeout_ns(timeout)
        _check_ctx(ctx)
        burst = self.burst
        if n > burst and self.rate != math.inf:
            raise ValueError(f"wait(n={n}) exceeds the limiter's burst {burst}")
        deadline = None
        if ctx is not None:
            ctx.check()  # already done: raise before taking anything
            deadline = ctx.deadline()
        now = _monotonic_ns()
        ctx_wait = _FOREVER
        if deadline is not None:
            remaining = deadline * 1e9 - now
            ctx_wait = int(remaining) if remaining < _FOREVER else _FOREVER
        ok, held, time_to_act, rate = self._reserve(n, now, min(max_wait, ctx_wait))
        if not ok:
            if ctx_wait < max_wait:
                raise _core.DeadlineExceeded(f"wait(n={n}) would exceed the context's deadline")
            return False
        if time_to_act <= now:
            return True
        reservation = Reservation(self, ok, held, time_to_act, rate)
        try:
            _sleep(reservation.delay(), ctx)
        except BaseException:
            # Cancelled, or Ctrl-C: the wait has no effect, others may have the tokens.
            reservation.cancel()
            raise
        return True

    def __repr__(self):
        return (
            f"<gochan.Limiter rate={self.rate!r} burst={self.burst!r} "
            f"tokens={self.tokens():.6g}>"
        )


class Limiter(_LimiterMethods, _TokenBucket):  # type: ignore[misc,valid-type]  # C or Python
    """A token bucket that limits how often events happen: Go's golang.org/x/time/rate.Limiter.

    Limiter(rate, burst=1) holds up to `burst` tokens and gains `rate` tokens per second
    (float('inf'): no limit; 0: the first `burst` events, then none). It starts full. Each event
    takes a token (n tokens for a batch of n), in one of three ways:

    - `allow(n=1)` takes them if they are there, else returns False at once;
    - `wait(n=1, *, timeout=None, ctx=None)` waits until they are due;
    - `reserve(n=1)` books them now, due after `Reservation.delay()`.

    `tokens()`, `set_rate()` and `set_burst()` inspect and retune it. Every method with `now=`
    takes a time.monotonic() value, so tests can drive the limiter with a fake clock. It is
    thread-safe; `allow()` is a C call where the extension provides it::

        limiter = gochan.Limiter(5, burst=2)
        assert limiter.allow() and limiter.allow()    # the burst
        assert not limiter.allow()                    # then 5 per second
        assert limiter.wait(timeout=1.0)              # the next token comes within 0.2 s
    """

    __slots__ = ("__weakref__",)


class _PyLimiter(_LimiterMethods, _PyTokenBucket):
    """Limiter over the pure-Python bucket, whatever the extension provides (for the tests)."""

    __slots__ = ("__weakref__",)
