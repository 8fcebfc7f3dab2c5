"""gochan.retry, gochan.retrying, gochan.Backoff and gochan.Permanent (API.md, "Patterns").

The schedule of delays is checked with the sleep replaced by a recorder (`slept`), so that those
tests take no time; the others sleep for real, and the ctx tests use real contexts.
"""

import inspect
import itertools
import math
import random
import signal
import textwrap
import time

import pytest

import gochan
from conftest import LONG, SETTLE, wait_until
from gochan import Backoff, Permanent, _retry, retry, retrying



@pytest.fixture
def slept(monkeypatch):
    """The delays retry sleeps, recorded instead of slept."""
    delays = []
    monkeypatch.setattr(_retry, "_sleep", lambda seconds, ctx: delays.append(seconds))
    return delays


class Flaky:
    """A callable that raises `errors` one after the other, then returns `result`."""

    def __init__(self, *errors, result="ok"):
        self.errors = list(errors)
        self.result = result
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.errors:
            raise self.errors.pop(0)
        return self.result


# --- retry ---------------------------------------------------------------------------------


def test_returns_the_result_of_the_first_success(slept):
    fn = Flaky()
    assert retry(fn, 1, 2, key="v") == "ok"
    assert fn.calls == [((1, 2), {"key": "v"})]
    assert slept == []


def test_retries_until_success_sleeping_between_attempts(slept):
    fn = Flaky(OSError("1"), OSError("2"), result=42)
    assert retry(fn, backoff=Backoff(jitter=0)) == 42
    assert len(fn.calls) == 3
    assert slept == [0.1, 0.2]


def test_attempts_exhausted_reraises_the_last_exception(slept):
    errors = [ValueError(i) for i in range(5)]
    fn = Flaky(*errors)
    with pytest.raises(ValueError) as info:
        retry(fn, attempts=3, backoff=Backoff(jitter=0))
    assert info.value is errors[2]
    assert len(fn.calls) == 3
    assert slept == [0.1, 0.2]  # no sleep after the last attempt


def test_default_is_five_attempts_with_the_default_backoff(slept):
    fn = Flaky(*[KeyError(i) for i in range(10)])
    with pytest.raises(KeyError):
        retry(fn)
    assert len(fn.calls) == 5
    assert len(slept) == 4
    for k, delay in enumerate(slept):  # Backoff(): 0.1 s doubling, jitter 10%
        assert 0.1 * 2**k * 0.9 <= delay <= 0.1 * 2**k * 1.1


def test_single_attempt_never_sleeps(slept):
    fn = Flaky(OSError())
    with pytest.raises(OSError):
        retry(fn, attempts=1)
    assert slept == []


def test_exception_outside_retry_on_propagates_at_once(slept):
    fn = Flaky(KeyError("not retried"))
    with pytest.raises(KeyError):
        retry(fn, retry_on=(OSError, ValueError))
    assert len(fn.calls) == 1 and slept == []


def test_retry_on_takes_a_class_or_a_tuple_and_subclasses_match(slept):
    fn = Flaky(ConnectionResetError(), TimeoutError(), result="done")
    assert retry(fn, retry_on=OSError, backoff=[0, 0]) == "done"
    fn = Flaky(ZeroDivisionError(), result="done")
    assert retry(fn, retry_on=(KeyError, ArithmeticError), backoff=[0]) == "done"


def test_base_exceptions_are_not_retried_by_default(slept):
    fn = Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        retry(fn)
    assert len(fn.calls) == 1


def test_permanent_stops_at_once_and_raises_the_wrapped_exception(slept):
    cause = LookupError("no such page")
    fn = Flaky(OSError(), Permanent(cause), OSError())
    with pytest.raises(LookupError) as info:
        retry(fn, attempts=10, retry_on=OSError)
    assert info.value is cause
    assert isinstance(cause.__cause__, Permanent)
    assert cause.__cause__.exception is cause
    assert len(fn.calls) == 2 and len(slept) == 1


def test_permanent_stops_even_outside_retry_on(slept):
    fn = Flaky(Permanent(KeyError("k")))
    with pytest.raises(KeyError):
        retry(fn, retry_on=())
    assert len(fn.calls) == 1


def test_finite_backoff_schedule_ends_the_retries(slept):
    fn = Flaky(*[OSError(i) for i in range(10)])
    with pytest.raises(OSError) as info:
        retry(fn, attempts=10, backoff=[0.5, 1.5])
    assert str(info.value) == "2"
    assert slept == [0.5, 1.5]


def test_any_iterable_is_a_backoff_and_starts_afresh_each_call(slept):
    schedule = [0.25, 0.75]
    for _ in range(2):
        retry(Flaky(OSError(), OSError()), backoff=schedule)
    assert slept == [0.25, 0.75, 0.25, 0.75]
    retry(Flaky(OSError(), OSError()), backoff=itertools.repeat(3.0))
    assert slept[-2:] == [3.0, 3.0]


def test_negative_delay_from_a_schedule_raises_value_error(slept):
    with pytest.raises(ValueError, match="delays must be >= 0"):
        retry(Flaky(OSError()), backoff=[-1])


def test_fn_and_keywords_named_like_retry_arguments_pass_through(slept):
    def fn(fn, /, *, key):
        return fn, key

    assert retry(fn, "positional", key="kw") == ("positional", "kw")


def test_sleeps_for_real_between_attempts():
    fn = Flaky(OSError(), OSError())
    start = time.monotonic()
    assert retry(fn, backoff=[0.05, 0.1]) == "ok"
    assert 0.14 <= time.monotonic() - start < 1.5


def test_done_context_raises_before_the_first_attempt():
    ctx, cancel = gochan.with_cancel(gochan.background())
    cancel()
    fn = Flaky()
    with pytest.raises(gochan.Cancelled):
        retry(fn, ctx=ctx)
    assert fn.calls == []


def test_cancelling_the_context_wakes_the_backoff_sleep_at_once(spawn):
    ctx, cancel = gochan.with_cancel(gochan.background())
    failure = OSError("down")
    fn = Flaky(failure, OSError("again"))
    worker = spawn(retry, fn, backoff=[30.0], ctx=ctx)
    wait_until(lambda: len(fn.calls) == 1)
    time.sleep(SETTLE)
    start = time.monotonic()
    cancel()
    exc = worker.exception()
    assert isinstance(exc, gochan.Cancelled)
    assert time.monotonic() - start < LONG / 2  # woke long before the 30 s delay
    assert exc.__context__ is failure
    assert len(fn.calls) == 1


def test_context_deadline_during_the_backoff_raises_deadline_exceeded():
    with gochan.with_timeout(gochan.background(), 0.1) as ctx:
        start = time.monotonic()
        with pytest.raises(gochan.DeadlineExceeded):
            retry(Flaky(OSError(), OSError()), backoff=[10.0], ctx=ctx)
        assert time.monotonic() - start < 5.0


def test_ctrl_c_interrupts_the_backoff_sleep(child):
    proc = child(textwrap.dedent("""
        import gochan

        def down():
            print("attempt", flush=True)
            raise OSError("down")

        try:
            gochan.retry(down, backoff=[60.0])
        except KeyboardInterrupt as exc:
            print("interrupted", type(exc.__context__).__name__, flush=True)
    """))
    proc.expect("attempt")
    time.sleep(SETTLE)
    proc.send_signal(signal.SIGINT)
    proc.expect("interrupted OSError")
    assert proc.finish()[0] == 0


# --- retrying ------------------------------------------------------------------------------


def test_decorator_retries_every_call(slept):
    fn = Flaky(OSError(), result="a")

    @retrying(attempts=3, backoff=[0, 0])
    def call(*args, **kwargs):
        return fn(*args, **kwargs)

    assert call(1, x=2) == "a"
    assert fn.calls == [((1,), {"x": 2})] * 2
    fn.errors = [OSError()] * 3
    with pytest.raises(OSError):
        call()


def test_decorator_keeps_name_doc_and_wrapped():
    @retrying(attempts=2)
    def fetch(url, *, timeout=5):
        """Fetch a page."""

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a page."
    assert fetch.__qualname__.endswith("fetch")
    assert fetch.__wrapped__.__name__ == "fetch"
    assert str(inspect.signature(fetch)) == "(url, *, timeout=5)"


def test_decorator_without_parentheses_uses_the_defaults(slept):
    fn = Flaky(OSError(), OSError())

    @retrying
    def call():
        return fn()

    assert call.__name__ == "call"
    assert call() == "ok" and len(slept) == 2


def test_decorated_function_takes_keywords_named_like_retry_arguments(slept):
    @retrying(attempts=2)
    def configure(*, attempts, backoff, retry_on, ctx):
        return attempts, backoff, retry_on, ctx

    assert configure(attempts=1, backoff=2, retry_on=3, ctx=4) == (1, 2, 3, 4)


def test_decorator_checks_its_arguments_when_decorating():
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        retrying(attempts=0)
    with pytest.raises(TypeError, match="retry_on"):
        retrying(retry_on="OSError")
    with pytest.raises(TypeError, match="decorates a callable"):
        retrying(attempts=2)(42)


def test_decorated_method_binds_self(slept):
    class Client:
        def __init__(self):
            self.calls = 0

        @retrying(backoff=[0])
        def get(self):
            self.calls += 1
            if self.calls == 1:
                raise OSError("first")
            return self

    client = Client()
    assert client.get() is client and client.calls == 2


# --- Backoff -------------------------------------------------------------------------------


def test_backoff_delays_grow_exponentially():
    policy = Backoff(initial=0.5, multiplier=3.0, max_delay=1000.0, jitter=0)
    assert list(itertools.islice(policy, 5)) == [0.5, 1.5, 4.5, 13.5, 40.5]
    assert [policy.delay(k) for k in range(5)] == [0.5, 1.5, 4.5, 13.5, 40.5]


def test_backoff_delays_stop_at_max_delay():
    policy = Backoff(initial=1.0, multiplier=2.0, max_delay=5.0, jitter=0)
    assert list(itertools.islice(policy.delays(), 6)) == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert policy.delay(10_000) == 5.0  # no overflow however far
    assert list(itertools.islice(policy, 2000))[-1] == 5.0


def test_backoff_default_policy():
    policy = Backoff()
    assert (policy.initial, policy.multiplier, policy.max_delay, policy.jitter) == (
        0.1, 2.0, 30.0, 0.1)
    assert repr(policy) == (
        "gochan.Backoff(initial=0.1, multiplier=2.0, max_delay=30.0, jitter=0.1)")


def test_backoff_multiplier_one_is_a_constant_delay():
    assert list(itertools.islice(Backoff(0.2, 1, jitter=0), 3)) == [0.2, 0.2, 0.2]


def test_jitter_stays_within_its_fraction_and_under_max_delay():
    policy = Backoff(initial=1.0, multiplier=2.0, max_delay=10.0, jitter=0.25,
                     rng=random.Random(7))
    for k, delay in enumerate(itertools.islice(policy, 500)):
        base = min(10.0, 2.0**k)
        assert base * 0.75 <= delay <= min(10.0, base * 1.25)
    spread = {round(policy.delay(0), 3) for _ in range(200)}
    assert len(spread) > 50  # really random


def test_jitter_is_reproducible_with_a_seeded_rng():
    def run(seed):
        return list(itertools.islice(Backoff(rng=random.Random(seed)), 10))

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_full_jitter_is_never_negative():
    policy = Backoff(initial=1.0, multiplier=1.0, jitter=1.0, rng=random.Random(3))
    delays = list(itertools.islice(policy, 1000))
    assert min(delays) >= 0.0 and max(delays) <= 2.0
    assert min(delays) < 0.1 and max(delays) > 1.9


def test_each_iteration_of_a_backoff_starts_from_the_first_delay():
    policy = Backoff(initial=1.0, jitter=0)
    first = iter(policy)
    next(first), next(first)
    assert next(iter(policy)) == 1.0 and next(first) == 4.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": -0.1}, "initial must be a finite number >= 0"),
        ({"initial": math.nan}, "initial must be a finite number >= 0"),
        ({"initial": math.inf}, "initial must be a finite number >= 0"),
        ({"multiplier": 0.5}, "multiplier must be a finite number >= 1"),
        ({"multiplier": math.nan}, "multiplier must be a finite number >= 1"),
        ({"max_delay": -1}, "max_delay must be a finite number >= 0"),
        ({"max_delay": math.inf}, "max_delay must be a finite number >= 0"),
        ({"jitter": -0.1}, "jitter must be a finite number >= 0 and <= 1"),
        ({"jitter": 1.5}, "jitter must be a finite number >= 0 and <= 1"),
    ],
)
def test_bad_backoff_parameters_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)


@pytest.mark.parametrize("kwargs", [{"initial": "1"}, {"multiplier": None}, {"jitter": True},
                                    {"rng": 42}])
def test_backoff_parameters_of_the_wrong_type_raise_type_error(kwargs):
    with pytest.raises(TypeError):
        Backoff(**kwargs)


def test_backoff_delay_checks_the_attempt():
    with pytest.raises(ValueError, match="attempt must be >= 0"):
        Backoff().delay(-1)
    with pytest.raises(TypeError, match="attempt must be an int"):
        Backoff().delay(1.0)


# --- Permanent -----------------------------------------------------------------------------


def test_permanent_wraps_an_exception():
    inner = ValueError("bad")
    p = Permanent(inner)
    assert p.exception is inner and p.args == (inner,)
    assert isinstance(p, Exception)
    with pytest.raises(TypeError, match="wraps an exception instance"):
        Permanent("not an exception")
    with pytest.raises(TypeError, match="wraps an exception instance"):
        Permanent(ValueError)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("attempts", [0, -3])
def test_attempts_below_one_raise_value_error(attempts):
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        retry(Flaky(), attempts=attempts)


@pytest.mark.parametrize("attempts", [2.0, "3", None, True])
def test_attempts_that_are_not_an_int_raise_type_error(attempts):
    with pytest.raises(TypeError, match="attempts must be an int"):
        retry(Flaky(), attempts=attempts)


def test_fn_that_is_not_callable_raises_type_error():
    with pytest.raises(TypeError, match="fn must be callable"):
        retry(42)


@pytest.mark.parametrize("retry_on", ["OSError", OSError("x"), (OSError, 3), int])
def test_retry_on_that_is_not_exception_classes_raises_type_error(retry_on):
    with pytest.raises(TypeError, match="retry_on must be an exception class"):
        retry(Flaky(), retry_on=retry_on)


def test_backoff_that_is_not_iterable_raises_type_error():
    with pytest.raises(TypeError, match="backoff must be a Backoff"):
        retry(Flaky(), backoff=0.5)


def test_ctx_that_is_not_a_context_raises_type_error():
    with pytest.raises(TypeError, match="ctx must be a gochan Context or None"):
        retry(Flaky(), ctx="ctx")

