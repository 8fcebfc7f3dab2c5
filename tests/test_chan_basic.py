"""Single-thread behaviour of gochan.Chan: construction, the non-blocking paths, close, iteration,
`with`, len/cap/closed, repr, statistics, generics, pickling and copying (API.md, "Channels")."""

import copy
import gc
import pickle
import re
import sys
import typing

import pytest

import gochan

from conftest import drain_nowait


# --- construction -------------------------------------------------------------------------------

def test_module_exports_the_channel_names():
    for name in ("Chan", "SendChan", "RecvChan", "ChanStats", "GochanError", "ChannelClosed",
                 "WouldBlock", "ContextError", "Cancelled", "DeadlineExceeded"):
        assert hasattr(gochan, name), name


def test_default_capacity_is_zero():
    assert gochan.Chan().cap == 0


@pytest.mark.parametrize("capacity", [0, 1, 2, 1024])
def test_cap_is_the_capacity_given(capacity):
    assert gochan.Chan(capacity).cap == capacity


def test_capacity_can_be_passed_by_keyword():
    assert gochan.Chan(capacity=3).cap == 3


def test_negative_capacity_raises_value_error():
    with pytest.raises(ValueError):
        gochan.Chan(-1)


@pytest.mark.parametrize("capacity", ["x", "3", 1.5, 2.0, None, [], object()])
def test_non_integer_capacity_raises_type_error(capacity):
    with pytest.raises(TypeError):
        gochan.Chan(capacity)


@pytest.mark.parametrize("capacity", [2**48, 2**62, sys.maxsize])
def test_huge_capacity_raises_instead_of_crashing(capacity):
    with pytest.raises((ValueError, MemoryError)):
        gochan.Chan(capacity)


def test_capacity_beyond_ssize_t_raises_instead_of_crashing():
    # OverflowError is what CPython raises for an int that does not fit a C size.
    with pytest.raises((ValueError, MemoryError, OverflowError)):
        gochan.Chan(2**100)


def test_chan_is_usable_after_a_failed_huge_allocation():
    with pytest.raises((ValueError, MemoryError)):
        gochan.Chan(2**48)
    ch = gochan.Chan(1)
    ch.send_nowait("ok")
    assert ch.recv_nowait() == "ok"


# --- len, cap, closed ---------------------------------------------------------------------------

def test_new_channel_is_empty_and_open():
    ch = gochan.Chan(4)
    assert len(ch) == 0
    assert ch.closed is False


def test_len_counts_buffered_items():
    ch = gochan.Chan(4)
    ch.send_nowait("a")
    ch.send_nowait("b")
    assert len(ch) == 2
    ch.recv_nowait()
    assert len(ch) == 1


def test_closed_is_true_after_close():
    ch = gochan.Chan(1)
    ch.close()
    assert ch.closed is True


def test_cap_is_read_only():
    ch = gochan.Chan(2)
    with pytest.raises(AttributeError):
        ch.cap = 5
    assert ch.cap == 2


def test_closed_is_read_only():
    ch = gochan.Chan(2)
    with pytest.raises(AttributeError):
        ch.closed = True
    assert ch.closed is False


# --- values -------------------------------------------------------------------------------------

def test_recv_returns_the_very_object_sent():
    ch = gochan.Chan(1)
    obj = object()
    ch.send(obj)
    assert ch.recv() is obj


def test_none_is_an_ordinary_value():
    ch = gochan.Chan(2)
    ch.send(None)
    ch.send(None)
    assert ch.recv() is None
    assert ch.recv_ok() == (None, True)


def test_buffered_channel_is_fifo():
    ch = gochan.Chan(5)
    for i in range(5):
        ch.send(i)
    assert [ch.recv() for _ in range(5)] == [0, 1, 2, 3, 4]


def test_buffer_wraps_around_in_fifo_order():
    ch = gochan.Chan(3)
    out = []
    for i in range(20):
        ch.send_nowait(i)
        if len(ch) == 3:
            out.append(ch.recv_nowait())
    out.extend(drain_nowait(ch))
    assert out == list(range(20))


def test_recv_ok_returns_value_and_true():
    ch = gochan.Chan(1)
    ch.send("v")
    assert ch.recv_ok() == ("v", True)


def test_recv_ok_result_is_a_tuple():
    ch = gochan.Chan(1)
    ch.send(1)
    assert type(ch.recv_ok()) is tuple


# --- non-blocking operations ----------------------------------------------------------------------

def test_send_nowait_fills_free_slots():
    ch = gochan.Chan(2)
    ch.send_nowait(1)
    ch.send_nowait(2)
    assert len(ch) == 2


def test_send_nowait_on_full_channel_raises_would_block():
    ch = gochan.Chan(1)
    ch.send_nowait(1)
    with pytest.raises(gochan.WouldBlock):
        ch.send_nowait(2)


def test_send_nowait_that_would_block_leaves_buffer_unchanged():
    ch = gochan.Chan(2)
    ch.send_nowait("a")
    ch.send_nowait("b")
    with pytest.raises(gochan.WouldBlock):
        ch.send_nowait("c")
    assert drain_nowait(ch) == ["a", "b"]


def test_send_nowait_on_unbuffered_channel_without_receiver_raises_would_block():
    ch = gochan.Chan(0)
    with pytest.raises(gochan.WouldBlock):
        ch.send_nowait(1)
    assert ch.statistics().waiting_senders == 0


def test_recv_nowait_on_empty_channel_raises_would_block():
    with pytest.raises(gochan.WouldBlock):
        gochan.Chan(3).recv_nowait()


def test_recv_nowait_on_unbuffered_channel_without_sender_raises_would_block():
    ch = gochan.Chan(0)
    with pytest.raises(gochan.WouldBlock):
        ch.recv_nowait()
    assert ch.statistics().waiting_receivers == 0


def test_recv_nowait_returns_the_next_buffered_value():
    ch = gochan.Chan(2)
    ch.send_nowait("a")
    ch.send_nowait("b")
    assert ch.recv_nowait() == "a"


# --- send_many / recv_many ----------------------------------------------------------------------

def test_send_many_returns_the_count_sent():
    ch = gochan.Chan(5)
    assert ch.send_many([1, 2, 3]) == 3


def test_send_many_sends_in_order():
    ch = gochan.Chan(5)
    ch.send_many(["a", "b", "c"])
    assert drain_nowait(ch) == ["a", "b", "c"]


def test_send_many_accepts_any_iterable():
    ch = gochan.Chan(5)
    assert ch.send_many(x * 10 for x in range(4)) == 4
    assert drain_nowait(ch) == [0, 10, 20, 30]


def test_send_many_of_empty_iterable_returns_zero():
    ch = gochan.Chan(1)
    assert ch.send_many([]) == 0
    assert len(ch) == 0


def test_send_many_of_non_iterable_raises_type_error():
    with pytest.raises(TypeError):
        gochan.Chan(1).send_many(42)


def test_send_many_propagates_an_exception_from_the_iterable():
    def items():
        yield 1
        raise LookupError("boom")

    ch = gochan.Chan(4)
    with pytest.raises(LookupError):
        ch.send_many(items())
    assert drain_nowait(ch) in ([], [1])
    ch.send_nowait(2)
    assert ch.recv_nowait() == 2


def test_recv_many_returns_up_to_max_items_in_order():
    ch = gochan.Chan(5)
    ch.send_many([1, 2, 3, 4, 5])
    assert ch.recv_many(3) == [1, 2, 3]


def test_recv_many_returns_only_what_is_ready():
    ch = gochan.Chan(5)
    ch.send_many([1, 2])
    assert ch.recv_many(10) == [1, 2]


def test_recv_many_accepts_max_items_by_keyword():
    ch = gochan.Chan(3)
    ch.send_many([1, 2, 3])
    assert ch.recv_many(max_items=2) == [1, 2]


def test_recv_many_returns_a_list():
    ch = gochan.Chan(2)
    ch.send(1)
    assert type(ch.recv_many(1)) is list


def test_recv_many_with_huge_max_items_returns_the_ready_items():
    ch = gochan.Chan(3)
    ch.send_many("abc")
    assert ch.recv_many(sys.maxsize) == ["a", "b", "c"]


@pytest.mark.parametrize("max_items", [0, -1, -(2**40)])
def test_recv_many_with_non_positive_max_items_raises_value_error(max_items):
    ch = gochan.Chan(2)
    ch.send(1)
    with pytest.raises(ValueError):
        ch.recv_many(max_items)
    assert len(ch) == 1


@pytest.mark.parametrize("max_items", ["2", 1.5, None, [1]])
def test_recv_many_with_non_integer_max_items_raises_type_error(max_items):
    ch = gochan.Chan(2)
    ch.send(1)
    with pytest.raises(TypeError):
        ch.recv_many(max_items)
    assert len(ch) == 1


def test_recv_many_requires_max_items():
    with pytest.raises(TypeError):
        gochan.Chan(1).recv_many()


# --- close --------------------------------------------------------------------------------------

@pytest.mark.parametrize("capacity", [0, 3])
def test_close_twice_raises_channel_closed(capacity):
    ch = gochan.Chan(capacity)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.close()
    assert ch.closed


@pytest.mark.parametrize("capacity", [0, 3])
def test_send_on_closed_channel_raises_channel_closed(capacity):
    ch = gochan.Chan(capacity)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.send(1)
    assert len(ch) == 0


@pytest.mark.parametrize("capacity", [0, 3])
def test_send_nowait_on_closed_channel_raises_channel_closed(capacity):
    ch = gochan.Chan(capacity)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.send_nowait(1)


def test_send_nowait_on_closed_full_channel_raises_channel_closed_not_would_block():
    ch = gochan.Chan(1)
    ch.send(1)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.send_nowait(2)


def test_send_with_zero_timeout_on_closed_channel_raises_channel_closed():
    ch = gochan.Chan(1)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.send(1, timeout=0)


def test_send_many_on_closed_channel_raises_channel_closed():
    ch = gochan.Chan(3)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.send_many([1, 2])
    assert len(ch) == 0


@pytest.mark.parametrize("capacity", [0, 3])
def test_recv_on_closed_drained_channel_raises_channel_closed(capacity):
    ch = gochan.Chan(capacity)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.recv()


@pytest.mark.parametrize("capacity", [0, 3])
def test_recv_nowait_on_closed_drained_channel_raises_channel_closed(capacity):
    ch = gochan.Chan(capacity)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.recv_nowait()


@pytest.mark.parametrize("capacity", [0, 3])
def test_recv_ok_on_closed_drained_channel_returns_none_false(capacity):
    ch = gochan.Chan(capacity)
    ch.close()
    assert ch.recv_ok() == (None, False)


def test_recv_ok_with_zero_timeout_on_closed_drained_channel_returns_none_false():
    ch = gochan.Chan(1)
    ch.close()
    assert ch.recv_ok(timeout=0) == (None, False)


def test_recv_with_zero_timeout_on_closed_drained_channel_raises_channel_closed():
    ch = gochan.Chan(1)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.recv(timeout=0)


@pytest.mark.parametrize("capacity", [0, 3])
def test_recv_many_on_closed_drained_channel_raises_channel_closed(capacity):
    ch = gochan.Chan(capacity)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.recv_many(5)


def test_buffered_items_stay_receivable_after_close():
    ch = gochan.Chan(3)
    ch.send_many([1, 2, 3])
    ch.close()
    assert ch.recv() == 1
    assert ch.recv_ok() == (2, True)
    assert ch.recv_nowait() == 3
    with pytest.raises(gochan.ChannelClosed):
        ch.recv()


def test_recv_many_after_close_returns_remaining_items_then_raises():
    ch = gochan.Chan(3)
    ch.send_many([1, 2, 3])
    ch.close()
    assert ch.recv_many(2) == [1, 2]
    assert ch.recv_many(2) == [3]
    with pytest.raises(gochan.ChannelClosed):
        ch.recv_many(2)


def test_len_after_close_counts_remaining_items():
    ch = gochan.Chan(3)
    ch.send_many([1, 2])
    ch.close()
    assert len(ch) == 2


# --- iteration ----------------------------------------------------------------------------------

def test_iteration_yields_buffered_values_until_closed_and_drained():
    ch = gochan.Chan(4)
    ch.send_many([1, 2, 3])
    ch.close()
    assert list(ch) == [1, 2, 3]


def test_iteration_over_closed_empty_channel_yields_nothing():
    ch = gochan.Chan(0)
    ch.close()
    assert list(ch) == []


def test_iterator_raises_stop_iteration_once_drained():
    ch = gochan.Chan(1)
    ch.send(1)
    ch.close()
    it = iter(ch)
    assert next(it) == 1
    with pytest.raises(StopIteration):
        next(it)


def test_iteration_can_stop_early_and_resume():
    ch = gochan.Chan(4)
    ch.send_many([1, 2, 3, 4])
    ch.close()
    for v in ch:
        if v == 2:
            break
    assert list(ch) == [3, 4]


# --- with ---------------------------------------------------------------------------------------

def test_with_returns_the_channel():
    ch = gochan.Chan(1)
    with ch as entered:
        assert entered is ch


def test_with_closes_the_channel_on_exit():
    ch = gochan.Chan(1)
    with ch:
        assert not ch.closed
    assert ch.closed


def test_with_does_not_raise_if_closed_inside_the_block():
    ch = gochan.Chan(1)
    with ch:
        ch.close()
    assert ch.closed


def test_with_on_an_already_closed_channel_does_not_raise():
    ch = gochan.Chan(1)
    ch.close()
    with ch:
        pass
    assert ch.closed


def test_with_closes_the_channel_and_propagates_an_exception():
    ch = gochan.Chan(1)
    with pytest.raises(KeyError):
        with ch:
            raise KeyError("body")
    assert ch.closed


def test_with_keeps_buffered_items_receivable():
    with gochan.Chan(2) as ch:
        ch.send_many([1, 2])
    assert list(ch) == [1, 2]


# --- repr ---------------------------------------------------------------------------------------

def test_repr_shows_capacity_and_length():
    ch = gochan.Chan(7)
    ch.send_many([1, 2, 3])
    r = repr(ch)
    assert re.search(r"\b7\b", r), r
    assert re.search(r"\b3\b", r), r


def test_repr_follows_the_length():
    ch = gochan.Chan(7)
    before = repr(ch)
    ch.send_many([1, 2, 3, 4, 5])
    after = repr(ch)
    assert before != after
    assert re.search(r"\b5\b", after), after


def test_repr_shows_closed_state():
    ch = gochan.Chan(7)
    ch.send(1)
    open_repr = repr(ch)
    ch.close()
    closed_repr = repr(ch)
    assert open_repr != closed_repr
    assert "closed" in closed_repr.lower(), closed_repr


def test_repr_names_the_type():
    assert "Chan" in repr(gochan.Chan(0))


def test_repr_does_not_show_the_values():
    ch = gochan.Chan(2)
    ch.send("secret-value-xyz")
    assert "secret-value-xyz" not in repr(ch)


# --- statistics ---------------------------------------------------------------------------------

def test_statistics_returns_chan_stats():
    assert isinstance(gochan.Chan(1).statistics(), gochan.ChanStats)


def test_statistics_of_new_channel():
    st = gochan.Chan(3).statistics()
    assert st.capacity == 3
    assert st.size == 0
    assert st.waiting_senders == 0
    assert st.waiting_receivers == 0
    assert not st.closed


def test_statistics_size_is_the_buffered_count():
    ch = gochan.Chan(3)
    ch.send_many([1, 2])
    assert ch.statistics().size == 2


def test_statistics_reports_closed():
    ch = gochan.Chan(3)
    ch.close()
    assert ch.statistics().closed


def test_statistics_is_a_snapshot():
    ch = gochan.Chan(3)
    st = ch.statistics()
    ch.send(1)
    ch.close()
    assert st.size == 0
    assert not st.closed


# --- generics -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls_name", ["Chan", "SendChan", "RecvChan"])
def test_channel_types_are_generic(cls_name):
    cls = getattr(gochan, cls_name)
    alias = cls[int]
    assert typing.get_origin(alias) is cls
    assert typing.get_args(alias) == (int,)


def test_generic_alias_constructs_a_chan():
    ch = gochan.Chan[int](2)
    assert isinstance(ch, gochan.Chan)
    assert ch.cap == 2


def test_generic_alias_works_in_annotations():
    def f(ch: gochan.Chan[int]) -> gochan.RecvChan[int]:
        return ch.recv_only()

    hints = typing.get_type_hints(f)
    assert typing.get_origin(hints["ch"]) is gochan.Chan


# --- pickle and copy ----------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_channel_raises_type_error(protocol):
    with pytest.raises(TypeError, match="(?i)pickl"):
        pickle.dumps(gochan.Chan(1), protocol=protocol)


def test_pickling_a_channel_inside_a_container_raises_type_error():
    with pytest.raises(TypeError, match="(?i)pickl"):
        pickle.dumps({"ch": gochan.Chan(1)})


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_copying_a_channel_raises_or_gives_the_same_channel(copier):
    ch = gochan.Chan(2)
    try:
        other = copier(ch)
    except TypeError:
        return
    other.send_nowait("through the copy")
    assert ch.recv_nowait() == "through the copy"
    ch.close()
    assert other.closed
    del ch
    gc.collect()
    with pytest.raises(gochan.ChannelClosed):
        other.recv_nowait()
