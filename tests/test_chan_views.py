"""The direction-restricted views of a channel: Chan.send_only() -> SendChan and
Chan.recv_only() -> RecvChan (API.md, "Channels"): exactly the listed members, shared state."""

import gc
import pickle

import pytest

import gochan

from conftest import LONG, drain_nowait, wait_for_receivers

SEND_MEMBERS = ["send", "send_nowait", "send_many", "close", "closed", "cap"]
RECV_MEMBERS = ["recv", "recv_ok", "recv_nowait", "recv_many", "closed", "cap"]
SEND_FORBIDDEN = ["recv", "recv_ok", "recv_nowait", "recv_many", "statistics", "send_only",
                  "recv_only"]
RECV_FORBIDDEN = ["send", "send_nowait", "send_many", "close", "statistics", "send_only",
                  "recv_only"]


# --- types --------------------------------------------------------------------------------------

def test_send_only_returns_a_send_chan():
    assert isinstance(gochan.Chan(1).send_only(), gochan.SendChan)


def test_recv_only_returns_a_recv_chan():
    assert isinstance(gochan.Chan(1).recv_only(), gochan.RecvChan)


def test_views_are_not_chans():
    ch = gochan.Chan(1)
    assert not isinstance(ch.send_only(), gochan.Chan)
    assert not isinstance(ch.recv_only(), gochan.Chan)


# --- members ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SEND_MEMBERS)
def test_send_chan_has_member(name):
    assert hasattr(gochan.Chan(1).send_only(), name)


@pytest.mark.parametrize("name", SEND_FORBIDDEN)
def test_send_chan_lacks_member(name):
    view = gochan.Chan(1).send_only()
    with pytest.raises(AttributeError):
        getattr(view, name)


@pytest.mark.parametrize("name", RECV_MEMBERS)
def test_recv_chan_has_member(name):
    assert hasattr(gochan.Chan(1).recv_only(), name)


@pytest.mark.parametrize("name", RECV_FORBIDDEN)
def test_recv_chan_lacks_member(name):
    view = gochan.Chan(1).recv_only()
    with pytest.raises(AttributeError):
        getattr(view, name)


def test_send_chan_is_not_iterable():
    with pytest.raises(TypeError):
        iter(gochan.Chan(1).send_only())


def test_send_chan_has_len():
    ch = gochan.Chan(3)
    ch.send_many([1, 2])
    assert len(ch.send_only()) == 2


def test_recv_chan_has_len():
    ch = gochan.Chan(3)
    ch.send_many([1, 2])
    assert len(ch.recv_only()) == 2


@pytest.mark.parametrize("view", ["send_only", "recv_only"])
def test_view_cap_is_the_channel_capacity(view):
    assert getattr(gochan.Chan(5), view)().cap == 5


@pytest.mark.parametrize("view", ["send_only", "recv_only"])
def test_view_closed_follows_the_channel(view):
    ch = gochan.Chan(1)
    v = getattr(ch, view)()
    assert v.closed is False
    ch.close()
    assert v.closed is True


# --- shared state -------------------------------------------------------------------------------

def test_value_sent_through_send_chan_is_received_through_recv_chan():
    ch = gochan.Chan(2)
    s, r = ch.send_only(), ch.recv_only()
    s.send("x")
    s.send_nowait("y")
    assert r.recv() == "x"
    assert r.recv_ok() == ("y", True)


def test_send_many_and_recv_many_through_views():
    ch = gochan.Chan(4)
    assert ch.send_only().send_many([1, 2, 3]) == 3
    assert ch.recv_only().recv_many(5) == [1, 2, 3]


def test_close_through_send_chan_closes_the_channel():
    ch = gochan.Chan(2)
    ch.send(1)
    ch.send_only().close()
    assert ch.closed
    assert list(ch.recv_only()) == [1]


def test_close_through_send_chan_twice_raises_channel_closed():
    s = gochan.Chan(1).send_only()
    s.close()
    with pytest.raises(gochan.ChannelClosed):
        s.close()


def test_send_through_send_chan_after_close_raises_channel_closed():
    ch = gochan.Chan(1)
    ch.close()
    with pytest.raises(gochan.ChannelClosed):
        ch.send_only().send(1)


def test_recv_nowait_through_recv_chan_raises_would_block_when_empty():
    with pytest.raises(gochan.WouldBlock):
        gochan.Chan(1).recv_only().recv_nowait()


def test_send_nowait_through_send_chan_raises_would_block_when_full():
    ch = gochan.Chan(1)
    ch.send(0)
    with pytest.raises(gochan.WouldBlock):
        ch.send_only().send_nowait(1)


def test_recv_chan_iterates_until_closed_and_drained():
    ch = gochan.Chan(3)
    ch.send_many("abc")
    ch.close()
    assert list(ch.recv_only()) == ["a", "b", "c"]


def test_recv_through_closed_drained_recv_chan_raises_channel_closed():
    ch = gochan.Chan(1)
    ch.close()
    r = ch.recv_only()
    with pytest.raises(gochan.ChannelClosed):
        r.recv()
    assert r.recv_ok() == (None, False)


def test_view_timeouts_work_like_the_channel():
    ch = gochan.Chan(0)
    with pytest.raises(TimeoutError):
        ch.recv_only().recv(timeout=0)
    with pytest.raises(TimeoutError):
        ch.send_only().send(1, timeout=0.01)
    with pytest.raises(ValueError):
        ch.recv_only().recv(timeout=-1)


def test_views_accept_ctx_none():
    ch = gochan.Chan(1)
    ch.send_only().send(1, ctx=None)
    assert ch.recv_only().recv(ctx=None) == 1


def test_views_on_unbuffered_channel_hand_off_between_threads(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv_only().recv, timeout=LONG)
    wait_for_receivers(ch, 1)
    ch.send_only().send("handoff", timeout=LONG)
    assert receiver.join() == "handoff"


def test_views_keep_the_channel_alive():
    ch = gochan.Chan(1)
    s, r = ch.send_only(), ch.recv_only()
    del ch
    gc.collect()
    s.send_nowait("still here")
    assert r.recv_nowait() == "still here"


def test_views_of_the_same_channel_see_each_others_items():
    ch = gochan.Chan(3)
    ch.send_only().send(1)
    ch.send_only().send(2)
    assert drain_nowait(ch.recv_only()) == [1, 2]


# --- pickle -------------------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["send_only", "recv_only"])
def test_pickling_a_view_raises_type_error(view):
    with pytest.raises(TypeError, match="(?i)pickl"):
        pickle.dumps(getattr(gochan.Chan(1), view)())
