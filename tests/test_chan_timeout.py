"""timeout= on channel operations (API.md, "Conventions for every blocking call"): None waits
forever, 0 tries once, a positive timeout is rounded up and never down, and expiry raises the
builtin TimeoutError with no effect on the channel."""

import math
import time

import pytest

import gochan

from conftest import LONG, SETTLE, drain_nowait, wait_for_receivers, wait_for_senders


def _blocked(op):
    """(channel, call(**kwargs), buffered items) for an operation that cannot proceed."""
    if op == "recv_unbuffered":
        ch = gochan.Chan(0)
        return ch, lambda **kw: ch.recv(**kw), []
    if op == "recv_buffered":
        ch = gochan.Chan(2)
        return ch, lambda **kw: ch.recv(**kw), []
    if op == "recv_ok":
        ch = gochan.Chan(2)
        return ch, lambda **kw: ch.recv_ok(**kw), []
    if op == "recv_many":
        ch = gochan.Chan(0)
        return ch, lambda **kw: ch.recv_many(3, **kw), []
    if op == "send_unbuffered":
        ch = gochan.Chan(0)
        return ch, lambda **kw: ch.send("v", **kw), []
    if op == "send_full":
        ch = gochan.Chan(1)
        ch.send("old")
        return ch, lambda **kw: ch.send("v", **kw), ["old"]
    if op == "send_many_full":
        ch = gochan.Chan(1)
        ch.send("old")
        return ch, lambda **kw: ch.send_many(["v", "w"], **kw), ["old"]
    raise AssertionError(op)


BLOCKED_OPS = ["recv_unbuffered", "recv_buffered", "recv_ok", "recv_many", "send_unbuffered",
               "send_full", "send_many_full"]


def _assert_untouched(ch, items):
    st = ch.statistics()
    assert (st.waiting_senders, st.waiting_receivers) == (0, 0)
    assert not ch.closed
    assert drain_nowait(ch) == items


# --- timeout=0: try once ------------------------------------------------------------------------

@pytest.mark.parametrize("op", BLOCKED_OPS)
def test_zero_timeout_raises_builtin_timeout_error_when_it_cannot_proceed(op):
    ch, call, items = _blocked(op)
    with pytest.raises(TimeoutError) as excinfo:
        call(timeout=0)
    assert excinfo.type is TimeoutError
    _assert_untouched(ch, items)


@pytest.mark.parametrize("op", BLOCKED_OPS)
def test_zero_timeout_does_not_wait(op):
    ch, call, items = _blocked(op)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        call(timeout=0)
    assert time.monotonic() - start < 1.0


# --- positive timeouts --------------------------------------------------------------------------

@pytest.mark.parametrize("op", BLOCKED_OPS)
def test_expired_timeout_raises_builtin_timeout_error_and_has_no_effect(op):
    ch, call, items = _blocked(op)
    with pytest.raises(TimeoutError) as excinfo:
        call(timeout=0.01)
    assert excinfo.type is TimeoutError
    _assert_untouched(ch, items)


@pytest.mark.parametrize("op", BLOCKED_OPS)
@pytest.mark.parametrize("timeout", [0.0015, 0.0105, 0.05])
def test_timeout_is_never_shorter_than_requested(op, timeout):
    ch, call, items = _blocked(op)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        call(timeout=timeout)
    elapsed = time.monotonic() - start
    assert elapsed >= timeout, f"returned after {elapsed:.6f}s for timeout={timeout}"


@pytest.mark.parametrize("op", ["recv_unbuffered", "send_unbuffered"])
def test_tiny_positive_timeout_still_expires(op):
    ch, call, items = _blocked(op)
    with pytest.raises(TimeoutError):
        call(timeout=1e-9)
    _assert_untouched(ch, items)


@pytest.mark.parametrize("op", BLOCKED_OPS)
def test_timeout_expires_reasonably_soon(op):
    ch, call, items = _blocked(op)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        call(timeout=0.05)
    assert time.monotonic() - start < 0.05 + 2.0


def test_integer_timeout_is_accepted_for_a_wait(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv, timeout=int(LONG))
    wait_for_receivers(ch, 1)
    ch.send("v", timeout=LONG)
    assert receiver.join() == "v"


def test_value_arriving_before_the_timeout_is_received(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv, timeout=LONG)
    wait_for_receivers(ch, 1)
    time.sleep(SETTLE)
    ch.send("in time", timeout=LONG)
    assert receiver.join() == "in time"


# --- what a timed-out call leaves behind --------------------------------------------------------

def test_timed_out_unbuffered_send_is_not_delivered(spawn):
    ch = gochan.Chan(0)
    with pytest.raises(TimeoutError):
        ch.send("lost?", timeout=0.02)
    with pytest.raises(gochan.WouldBlock):
        ch.recv_nowait()
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.05)


def test_timed_out_unbuffered_recv_does_not_take_a_later_value():
    ch = gochan.Chan(0)
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.02)
    with pytest.raises(gochan.WouldBlock):
        ch.send_nowait("nobody is waiting")


def test_timed_out_buffered_recv_does_not_take_a_later_value():
    ch = gochan.Chan(1)
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.02)
    ch.send_nowait("stays buffered")
    assert len(ch) == 1
    assert ch.recv_nowait() == "stays buffered"


def test_timed_out_send_on_full_channel_does_not_take_a_freed_slot():
    ch = gochan.Chan(1)
    ch.send("old")
    with pytest.raises(TimeoutError):
        ch.send("late", timeout=0.02)
    assert ch.recv_nowait() == "old"
    with pytest.raises(gochan.WouldBlock):
        ch.recv_nowait()


def test_send_many_timeout_leaves_a_prefix_of_the_items():
    ch = gochan.Chan(1)
    with pytest.raises(TimeoutError):
        ch.send_many(["a", "b", "c"], timeout=0.02)
    assert drain_nowait(ch) in ([], ["a"])


# --- waiting forever ----------------------------------------------------------------------------

@pytest.mark.parametrize("timeout", [None, math.inf], ids=["None", "inf"])
def test_recv_with_unbounded_timeout_waits_until_a_value_arrives(spawn, timeout):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv, timeout=timeout)
    wait_for_receivers(ch, 1)
    time.sleep(SETTLE)
    assert not receiver.done
    ch.send("eventually", timeout=LONG)
    assert receiver.join() == "eventually"


@pytest.mark.parametrize("timeout", [None, math.inf], ids=["None", "inf"])
def test_send_with_unbounded_timeout_waits_until_a_receiver_arrives(spawn, timeout):
    ch = gochan.Chan(0)
    sender = spawn(ch.send, "eventually", timeout=timeout)
    wait_for_senders(ch, 1)
    time.sleep(SETTLE)
    assert not sender.done
    assert ch.recv(timeout=LONG) == "eventually"
    sender.join()


@pytest.mark.parametrize("timeout", [None, math.inf], ids=["None", "inf"])
def test_unbounded_wait_ends_on_close(spawn, timeout):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv, timeout=timeout)
    wait_for_receivers(ch, 1)
    ch.close()
    assert isinstance(receiver.exception(), gochan.ChannelClosed)


@pytest.mark.parametrize("timeout", [1e9, 1e18, 1e300])
def test_huge_finite_timeout_does_not_expire_early(spawn, timeout):
    ch = gochan.Chan(0)

    def receive():
        try:
            return ch.recv(timeout=timeout)
        except OverflowError:
            return "overflow"

    receiver = spawn(receive)
    deadline = time.monotonic() + LONG
    while ch.statistics().waiting_receivers == 0 and not receiver.done:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    if receiver.done:
        # Rejecting a timeout too large for the clock is acceptable; expiring at once is not.
        assert receiver.join() == "overflow"
        return
    time.sleep(SETTLE)
    assert not receiver.done
    ch.send("late", timeout=LONG)
    assert receiver.join() == "late"
