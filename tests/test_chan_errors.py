"""The exception hierarchy and every bad input to a channel (API.md, "Exceptions", "Conventions
for every blocking call", "Channels"). A rejected call has no effect on the channel."""

import math
import textwrap

import pytest

import gochan

from conftest import run_python


# --- the hierarchy ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ChannelClosed", "WouldBlock", "ContextError"])
def test_direct_subclasses_of_gochan_error(name):
    assert issubclass(getattr(gochan, name), gochan.GochanError)


def test_gochan_error_is_an_exception():
    assert issubclass(gochan.GochanError, Exception)


@pytest.mark.parametrize("name", ["Cancelled", "DeadlineExceeded"])
def test_context_errors_derive_from_context_error(name):
    assert issubclass(getattr(gochan, name), gochan.ContextError)


def test_deadline_exceeded_is_also_a_builtin_timeout_error():
    assert issubclass(gochan.DeadlineExceeded, TimeoutError)


def test_cancelled_is_not_a_timeout_error():
    assert not issubclass(gochan.Cancelled, TimeoutError)


def test_channel_errors_are_not_timeout_errors():
    assert not issubclass(gochan.ChannelClosed, TimeoutError)
    assert not issubclass(gochan.WouldBlock, TimeoutError)


def test_would_block_and_channel_closed_are_distinct():
    assert not issubclass(gochan.WouldBlock, gochan.ChannelClosed)
    assert not issubclass(gochan.ChannelClosed, gochan.WouldBlock)


@pytest.mark.parametrize("name", ["GochanError", "ChannelClosed", "WouldBlock", "ContextError",
                                  "Cancelled", "DeadlineExceeded"])
def test_exceptions_can_be_raised_and_caught_as_gochan_error(name):
    with pytest.raises(gochan.GochanError, match="message"):
        raise getattr(gochan, name)("message")


def test_exceptions_raised_by_channels_are_instances_of_the_documented_classes():
    ch = gochan.Chan(0)
    with pytest.raises(gochan.WouldBlock) as wb:
        ch.recv_nowait()
    ch.close()
    with pytest.raises(gochan.ChannelClosed) as cc:
        ch.send(1)
    assert isinstance(wb.value, gochan.GochanError)
    assert isinstance(cc.value, gochan.GochanError)


# --- timeout= validation ------------------------------------------------------------------------
#
# Each case builds a channel on which the operation could proceed at once, so that a call which
# is wrongly accepted is visible as a change of the channel's length.

def _ready(op):
    """(channel, call(**kwargs), length the channel keeps if the call is rejected)."""
    if op == "send":
        ch = gochan.Chan(1)
        return ch, lambda **kw: ch.send("v", **kw), 0
    if op == "send_many":
        ch = gochan.Chan(2)
        return ch, lambda **kw: ch.send_many(["v"], **kw), 0
    ch = gochan.Chan(1)
    ch.send("v")
    if op == "recv":
        return ch, lambda **kw: ch.recv(**kw), 1
    if op == "recv_ok":
        return ch, lambda **kw: ch.recv_ok(**kw), 1
    if op == "recv_many":
        return ch, lambda **kw: ch.recv_many(1, **kw), 1
    raise AssertionError(op)


OPS = ["send", "recv", "recv_ok", "send_many", "recv_many"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("timeout", [-1, -0.001, -1e-9, -math.inf, math.nan],
                         ids=["-1", "-0.001", "-1e-9", "-inf", "nan"])
def test_negative_or_nan_timeout_raises_value_error_without_effect(op, timeout):
    ch, call, length = _ready(op)
    with pytest.raises(ValueError):
        call(timeout=timeout)
    assert len(ch) == length


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("timeout", ["1", b"1", [1], object()],
                         ids=["str", "bytes", "list", "object"])
def test_non_number_timeout_raises_type_error_without_effect(op, timeout):
    ch, call, length = _ready(op)
    with pytest.raises(TypeError):
        call(timeout=timeout)
    assert len(ch) == length


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("timeout", [None, 0, 0.0, 1, 1.5, math.inf], ids=str)
def test_valid_timeouts_are_accepted_when_the_operation_can_proceed(op, timeout):
    ch, call, length = _ready(op)
    call(timeout=timeout)
    assert len(ch) == 1 - length


@pytest.mark.parametrize("op", OPS)
def test_ctx_none_is_accepted(op):
    ch, call, length = _ready(op)
    call(ctx=None)
    assert len(ch) == 1 - length


@pytest.mark.parametrize("op", OPS)
def test_unknown_keyword_argument_raises_type_error_without_effect(op):
    ch, call, length = _ready(op)
    with pytest.raises(TypeError):
        call(timout=1)
    assert len(ch) == length


def test_timeout_of_send_is_keyword_only():
    ch = gochan.Chan(1)
    with pytest.raises(TypeError):
        ch.send("v", 1.0)
    assert len(ch) == 0


def test_timeout_of_recv_is_keyword_only():
    ch = gochan.Chan(1)
    ch.send("v")
    with pytest.raises(TypeError):
        ch.recv(1.0)
    assert len(ch) == 1


def test_timeout_of_recv_many_is_keyword_only():
    ch = gochan.Chan(1)
    ch.send("v")
    with pytest.raises(TypeError):
        ch.recv_many(1, 1.0)
    assert len(ch) == 1


# --- missing and surplus arguments --------------------------------------------------------------

def test_send_without_a_value_raises_type_error():
    with pytest.raises(TypeError):
        gochan.Chan(1).send()


def test_send_nowait_without_a_value_raises_type_error():
    with pytest.raises(TypeError):
        gochan.Chan(1).send_nowait()


def test_send_many_without_an_iterable_raises_type_error():
    with pytest.raises(TypeError):
        gochan.Chan(1).send_many()


def test_recv_nowait_takes_no_arguments():
    ch = gochan.Chan(1)
    ch.send("v")
    with pytest.raises(TypeError):
        ch.recv_nowait(0)
    assert len(ch) == 1


def test_send_nowait_takes_no_timeout():
    ch = gochan.Chan(1)
    with pytest.raises(TypeError):
        ch.send_nowait("v", timeout=1)
    assert len(ch) == 0


def test_close_takes_no_arguments():
    ch = gochan.Chan(1)
    with pytest.raises(TypeError):
        ch.close(True)
    assert not ch.closed


def test_chan_takes_one_capacity():
    with pytest.raises(TypeError):
        gochan.Chan(1, 2)


def test_unbound_method_with_a_foreign_self_raises_type_error():
    with pytest.raises(TypeError):
        gochan.Chan.send(object(), 1)
    with pytest.raises(TypeError):
        gochan.Chan.recv_nowait([])


# --- direct construction of the other types never crashes ---------------------------------------

@pytest.mark.parametrize("name", ["SendChan", "RecvChan", "ChanStats"])
def test_constructing_a_helper_type_directly_does_not_crash(name):
    script = textwrap.dedent(f"""
        import gochan
        cls = gochan.{name}
        try:
            obj = cls()
        except TypeError:
            print("rejected")
        else:
            for attr in dir(obj):
                if attr.startswith("__"):
                    continue
                try:
                    value = getattr(obj, attr)
                    if callable(value):
                        value()
                except Exception:
                    pass
            try:
                repr(obj); len(obj)
            except Exception:
                pass
            print("usable")
    """)
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("rejected", "usable")


def test_subclass_instance_created_without_init_does_not_crash():
    script = textwrap.dedent("""
        import gochan
        try:
            class Sub(gochan.Chan):
                def __init__(self):
                    pass
        except TypeError:
            print("final")
            raise SystemExit(0)
        try:
            ch = Sub.__new__(Sub)
        except TypeError:
            print("rejected")
            raise SystemExit(0)
        ops = [lambda: ch.send_nowait(1), ch.recv_nowait, ch.close, lambda: len(ch),
               ch.statistics, lambda: repr(ch), lambda: ch.cap, lambda: ch.closed]
        for op in ops:
            try:
                op()
            except Exception:
                pass
        print("usable")
    """)
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("final", "rejected", "usable")
