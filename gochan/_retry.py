"""Retrying with exponential back-off: `retry`, the `retrying` decorator, `Backoff`, `Permanent`.

`retry(fn, *args, **kwargs)` calls `fn` until it returns, sleeping between failed attempts as a
back-off policy says: by default `Backoff()`, 0.1 s doubling up to 30 s, each delay jittered by
up to 10% so that clients that failed together do not come back together. The sleep is
`gochan.sleep`, so a context cancels it at once and Ctrl-C interrupts it. An exception outside
`retry_on` is not retried, nor one wrapped in `Permanent`::

    import gochan

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("try again")
        return "ok"

    assert gochan.retry(flaky, backoff=gochan.Backoff(initial=0.001)) == "ok"
    assert len(calls) == 3
"""

import functools
import itertools
import math
import random

from gochan._ratelimit import _check_ctx, _sleep


def _check_number(value, name, low, *, high=math.inf):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    value = float(value)
    if not low <= value <= high or math.isinf(value):
        above = "" if high == math.inf else f" and <= {high:g}"
        raise ValueError(f"{name} must be a finite number >= {low:g}{above}, got {value!r}")
    return value


class Backoff:
    """An exponential back-off policy: the delays to sleep between attempts.

    Delay k (k = 0 after the first failure) is `min(max_delay, initial * multiplier**k)`,
    multiplied by a factor drawn uniformly from [1 - jitter, 1 + jitter] and then capped by
    `max_delay` again: max_delay bounds every sleep, and at the cap the jitter only shortens.
    Delays are never negative (jitter is at most 1). `rng` is the random source, anything with a
    `random()` method such as a seeded `random.Random` (default: the `random` module).

    A Backoff is an immutable policy: iterating it (or calling `delays()`) starts a fresh,
    endless sequence of delays, so one policy may serve many calls and threads. `delay(k)` is
    one delay on its own::

        policy = gochan.Backoff(initial=0.5, multiplier=2.0, max_delay=3.0, jitter=0.0)
        assert list(itertools.islice(policy, 5)) == [0.5, 1.0, 2.0, 3.0, 3.0]

    Raises TypeError for a value that is not a number, ValueError for a negative or
    non-finite one, a multiplier below 1 or a jitter above 1.
    """

    __slots__ = ("_initial", "_multiplier", "_max_delay", "_jitter", "_rng")

    def __init__(self, initial=0.1, multiplier=2.0, max_delay=30.0, jitter=0.1, *, rng=None):
        self._initial = _check_number(initial, "initial", 0)
        self._multiplier = _check_number(multiplier, "multiplier", 1)
        self._max_delay = _check_number(max_delay, "max_delay", 0)
        self._jitter = _check_number(jitter, "jitter", 0, high=1)
        if rng is not None and not callable(getattr(rng, "random", None)):
            raise TypeError(
                f"rng must have a random() method (a random.Random), not {type(rng).__name__}"
            )
        self._rng = random if rng is None else rng

    @property
    def initial(self):
        """The first delay, before jitter (seconds): `Backoff(initial=0.5).initial == 0.5`."""
        return self._initial

    @property
    def multiplier(self):
        """The factor from one delay to the next (>= 1): `Backoff().multiplier == 2.0`."""
        return self._multiplier

    @property
    def max_delay(self):
        """The longest delay, jitter included (seconds): `Backoff().max_delay == 30.0`."""
        return self._max_delay

    @property
    def jitter(self):
        """The fraction by which a delay may randomly grow or shrink (0 to 1): `Backoff().jitter
        == 0.1`, so a delay of 1 s becomes anything from 0.9 to 1.1 s."""
        return self._jitter

    def delay(self, attempt):
        """The delay after failed attempt number `attempt` (0 for the first failure), jittered.

            assert gochan.Backoff(jitter=0).delay(3) == 0.8
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int):
            raise TypeError(f"attempt must be an int, not {type(attempt).__name__}")
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        try:
            base = self._initial * self._multiplier**attempt
        except OverflowError:
            base = math.inf
        return self._jittered(min(self._max_delay, base))

    def _jittered(self, base):
        if not self._jitter:
            return base
        factor = 1.0 + self._jitter * (2.0 * self._rng.random() - 1.0)
        return min(self._max_delay, max(0.0, base * factor))

    def delays(self):
        """An endless iterator of delays: delay(0), delay(1), ... (each jittered anew).

            for delay in itertools.islice(gochan.Backoff().delays(), 3):
                print(f"would sleep {delay:.3f} s")
        """
        base = self._initial
        while True:
            yield self._jittered(base)
            # Stop growing at the cap, so the product never overflows.
            base = min(self._max_delay, base * self._multiplier)

    __iter__ = delays

    def __repr__(self):
        return (
            f"gochan.Backoff(initial={self._initial!r}, multiplier={self._multiplier!r}, "
            f"max_delay={self._max_delay!r}, jitter={self._jitter!r})"
        )


_DEFAULT_BACKOFF = Backoff()

#: What next() gives once a finite back-off schedule has run out.
_END = object()


class Permanent(Exception):
    """Raised inside a retried function: do not retry, fail at once with `exception`.

    `retry` then raises the wrapped exception itself, chained to the Permanent
    (`raise exc from permanent`), so the traceback still shows where the function gave up::

        def fetch():
            status = 404
            if status == 404:
                raise gochan.Permanent(LookupError("no such page"))  # retrying will not help

        try:
            gochan.retry(fetch)
        except LookupError as exc:
            assert isinstance(exc.__cause__, gochan.Permanent)
    """

    def __init__(self, exception):
        if not isinstance(exception, BaseException):
            raise TypeError(
                f"Permanent wraps an exception instance, not {type(exception).__name__}"
            )
        super().__init__(exception)

    @property
    def exception(self):
        """The wrapped exception, which retry raises: `Permanent(KeyError("k")).exception`."""
        return self.args[0]


def _check_retry_on(retry_on):
    classes = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(
                "retry_on must be an exception class or a tuple of them, "
                f"not {retry_on!r}"
            )
    return classes


def _check_attempts(attempts):
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        raise TypeError(f"attempts must be an int, not {type(attempts).__name__}")
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    return attempts


def _check_backoff(backoff):
    if backoff is None:
        return _DEFAULT_BACKOFF
    try:
        iter(backoff)
    except TypeError:
        raise TypeError(
            f"backoff must be a Backoff, an iterable of delays or None, not "
            f"{type(backoff).__name__}"
        ) from None
    return backoff


def _run(fn, args, kwargs, attempts, backoff, retry_on, ctx):
    """The loop of retry(), with its arguments already checked."""
    delays = iter(backoff)
    if ctx is not None:
        ctx.check()  # already done: not even one attempt (later, the sleeps check it)
    for attempt in itertools.count(1):
        try:
            return fn(*args, **kwargs)
        except Permanent as permanent:
            raise permanent.exception from permanent
        except retry_on:
            if attempt >= attempts:
                raise
            delay = next(delays, _END)
            if delay is _END:  # a finite schedule has run out
                raise
            if isinstance(delay, bool) or not isinstance(delay, (int, float)):
                raise TypeError(f"backoff gave a delay of {delay!r}; delays must be numbers of "
                                f"seconds")
            if not delay >= 0:
                raise ValueError(f"backoff gave a delay of {delay!r}; delays must be >= 0")
            # Inside the except block: a cancellation raised here has the failure as context.
            _sleep(delay, ctx)


def retry(fn, /, *args, attempts=5, backoff=None, retry_on=(Exception,), ctx=None, **kwargs):
    """Call fn(*args, **kwargs) until it returns, and return what it returns.

    When it raises an exception that `retry_on` matches (an exception class or a tuple of
    them, as in an `except` clause), sleep the next delay of `backoff` and call it again, at
    most `attempts` calls in all; then the last exception propagates, with its traceback.
    Anything else propagates at once, and so does the exception wrapped in a `Permanent`
    (raised chained to it).

    `backoff` is a `Backoff` (default `Backoff()`), or any iterable of delays in seconds such
    as `[0.1, 1, 5]` or `itertools.repeat(1.0)`; a finite one ends the retries when it runs out.
    Each call to retry iterates it afresh. `ctx`, a gochan context, cancels the sleep between
    attempts at once: retry then raises ctx.err(), whose `__context__` is the last failure; a
    ctx already done raises before the first call.

        def fetch():
            return urllib.request.urlopen("https://example.com", timeout=5).read()

        page = gochan.retry(fetch, attempts=3, retry_on=OSError)

    Raises TypeError if fn is not callable, ValueError if attempts < 1.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, not {type(fn).__name__}")
    attempts = _check_attempts(attempts)
    backoff = _check_backoff(backoff)
    retry_on = _check_retry_on(retry_on)
    _check_ctx(ctx)
    return _run(fn, args, kwargs, attempts, backoff, retry_on, ctx)


def retrying(fn=None, /, *, attempts=5, backoff=None, retry_on=(Exception,), ctx=None):
    """Decorator form of `retry`: every call of the decorated function is retried.

    The arguments are retry's, checked once when decorating; the wrapper keeps the function's
    name, docstring and signature (functools.wraps), and passes every argument through, even
    keywords named like retry's own. `@gochan.retrying` without parentheses uses the defaults::

        @gochan.retrying(attempts=3, retry_on=ConnectionError)
        def connect(host):
            ...

        connect("db.example.com")   # up to 3 attempts
    """
    attempts = _check_attempts(attempts)
    backoff = _check_backoff(backoff)
    retry_on = _check_retry_on(retry_on)
    _check_ctx(ctx)

    def decorate(fn):
        if not callable(fn):
            raise TypeError(f"retrying decorates a callable, not {type(fn).__name__}")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return _run(fn, args, kwargs, attempts, backoff, retry_on, ctx)

        return wrapper

    return decorate if fn is None else decorate(fn)
