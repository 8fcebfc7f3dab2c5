"""Channels between threads: blocking, waking, close, and the semantics that API.md pins down
(FIFO waiters, direct handoff to a waiting receiver, a freed slot going to the first queued
sender, statistics counting waiters)."""

import threading
import time

import pytest

import gochan

from conftest import LONG, SETTLE, drain_nowait, wait_for_receivers, wait_for_senders, wait_until


# --- blocking until the other side arrives ------------------------------------------------------

@pytest.mark.parametrize("capacity", [0, 1, 4])
def test_recv_blocks_until_a_value_is_sent(spawn, capacity):
    ch = gochan.Chan(capacity)
    receiver = spawn(ch.recv, timeout=LONG)
    wait_for_receivers(ch, 1)
    time.sleep(SETTLE)
    assert not receiver.done
    ch.send("hello", timeout=LONG)
    assert receiver.join() == "hello"


def test_unbuffered_send_blocks_until_a_receiver_takes_the_value(spawn):
    ch = gochan.Chan(0)
    sender = spawn(ch.send, "hello", timeout=LONG)
    wait_for_senders(ch, 1)
    time.sleep(SETTLE)
    assert not sender.done
    assert ch.recv(timeout=LONG) == "hello"
    assert sender.join() is None


def test_unbuffered_send_returns_only_after_the_value_is_taken(spawn):
    ch = gochan.Chan(0)
    taken = []

    def receive_later():
        wait_for_senders(ch, 1)
        time.sleep(SETTLE)
        taken.append(ch.recv(timeout=LONG))

    receiver = spawn(receive_later)
    ch.send("v", timeout=LONG)
    receiver.join()
    assert taken == ["v"]


@pytest.mark.parametrize("capacity", [1, 3])
def test_send_on_full_channel_blocks_until_a_slot_is_free(spawn, capacity):
    ch = gochan.Chan(capacity)
    ch.send_many(range(capacity))
    sender = spawn(ch.send, "last", timeout=LONG)
    wait_for_senders(ch, 1)
    time.sleep(SETTLE)
    assert not sender.done
    assert ch.recv(timeout=LONG) == 0
    sender.join()
    assert drain_nowait(ch) == list(range(1, capacity)) + ["last"]


def test_unbuffered_channel_holds_nothing_while_a_sender_waits(spawn):
    ch = gochan.Chan(0)
    sender = spawn(ch.send, "v", timeout=LONG)
    wait_for_senders(ch, 1)
    assert len(ch) == 0
    assert ch.statistics().size == 0
    assert ch.recv(timeout=LONG) == "v"
    sender.join()


def test_send_nowait_hands_off_to_a_blocked_receiver_on_unbuffered_channel(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv, timeout=LONG)
    wait_for_receivers(ch, 1)
    ch.send_nowait("now")
    assert receiver.join() == "now"


def test_recv_nowait_takes_from_a_blocked_sender_on_unbuffered_channel(spawn):
    ch = gochan.Chan(0)
    sender = spawn(ch.send, "now", timeout=LONG)
    wait_for_senders(ch, 1)
    assert ch.recv_nowait() == "now"
    sender.join()


def test_zero_timeout_send_hands_off_to_a_blocked_receiver(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv, timeout=LONG)
    wait_for_receivers(ch, 1)
    ch.send("now", timeout=0)
    assert receiver.join() == "now"


def test_zero_timeout_recv_takes_from_a_blocked_sender(spawn):
    ch = gochan.Chan(0)
    sender = spawn(ch.send, "now", timeout=LONG)
    wait_for_senders(ch, 1)
    assert ch.recv(timeout=0) == "now"
    sender.join()


def test_send_nowait_reaches_a_receiver_blocked_in_recv_many(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv_many, 3, timeout=LONG)
    wait_for_receivers(ch, 1)
    ch.send_nowait("one")
    assert receiver.join() == ["one"]


def test_recv_ok_blocks_until_a_value_is_sent(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv_ok, timeout=LONG)
    wait_for_receivers(ch, 1)
    ch.send("v", timeout=LONG)
    assert receiver.join() == ("v", True)


# --- send_many / recv_many across threads -------------------------------------------------------

@pytest.mark.parametrize("capacity", [0, 1, 2, 16])
def test_send_many_blocks_as_needed_and_delivers_everything_in_order(spawn, capacity):
    ch = gochan.Chan(capacity)
    sender = spawn(ch.send_many, range(100), timeout=LONG)
    received = [ch.recv(timeout=LONG) for _ in range(100)]
    assert sender.join() == 100
    assert received == list(range(100))


def test_recv_many_waits_for_at_least_one_item(spawn):
    ch = gochan.Chan(4)
    receiver = spawn(ch.recv_many, 5, timeout=LONG)
    wait_for_receivers(ch, 1)
    time.sleep(SETTLE)
    assert not receiver.done
    ch.send("first", timeout=LONG)
    assert receiver.join() == ["first"]


def test_recv_many_on_unbuffered_channel_takes_from_blocked_senders_in_order(spawn):
    ch = gochan.Chan(0)
    senders = []
    for i in range(3):
        senders.append(spawn(ch.send, i, timeout=LONG))
        wait_for_senders(ch, i + 1)
    batch = ch.recv_many(5, timeout=LONG)
    assert 1 <= len(batch) <= 3
    rest = [ch.recv(timeout=LONG) for _ in range(3 - len(batch))]
    assert batch + rest == [0, 1, 2]
    for s in senders:
        s.join()


def test_recv_many_on_full_channel_with_blocked_sender_keeps_order(spawn):
    ch = gochan.Chan(2)
    ch.send_many(["a", "b"])
    sender = spawn(ch.send, "c", timeout=LONG)
    wait_for_senders(ch, 1)
    batch = ch.recv_many(10, timeout=LONG)
    assert batch in (["a", "b"], ["a", "b", "c"])
    sender.join()
    assert batch + drain_nowait(ch) == ["a", "b", "c"]


# --- close wakes everybody ----------------------------------------------------------------------

@pytest.mark.parametrize("capacity", [0, 2])
def test_close_wakes_every_blocked_receiver_with_channel_closed(spawn, capacity):
    ch = gochan.Chan(capacity)
    receivers = [spawn(ch.recv, timeout=LONG) for _ in range(5)]
    wait_for_receivers(ch, 5)
    ch.close()
    for r in receivers:
        assert isinstance(r.exception(timeout=2.0), gochan.ChannelClosed)
    assert ch.statistics().waiting_receivers == 0


def test_close_wakes_sixty_four_blocked_receivers_and_senders(spawn):
    receive_on, send_on = gochan.Chan(0), gochan.Chan(0)
    receivers = [spawn(receive_on.recv, timeout=LONG) for _ in range(64)]
    senders = [spawn(send_on.send, i, timeout=LONG) for i in range(64)]
    wait_for_receivers(receive_on, 64)
    wait_for_senders(send_on, 64)
    receive_on.close()
    send_on.close()
    for w in receivers + senders:
        assert isinstance(w.exception(timeout=2.0), gochan.ChannelClosed)


def test_close_wakes_blocked_recv_ok_with_none_false(spawn):
    ch = gochan.Chan(0)
    receivers = [spawn(ch.recv_ok, timeout=LONG) for _ in range(3)]
    wait_for_receivers(ch, 3)
    ch.close()
    for r in receivers:
        assert r.join(timeout=2.0) == (None, False)


def test_close_wakes_blocked_recv_many_with_channel_closed(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv_many, 4, timeout=LONG)
    wait_for_receivers(ch, 1)
    ch.close()
    assert isinstance(receiver.exception(timeout=2.0), gochan.ChannelClosed)


def test_close_wakes_every_blocked_unbuffered_sender_without_delivering(spawn):
    ch = gochan.Chan(0)
    senders = [spawn(ch.send, i, timeout=LONG) for i in range(5)]
    wait_for_senders(ch, 5)
    ch.close()
    for s in senders:
        assert isinstance(s.exception(timeout=2.0), gochan.ChannelClosed)
    assert ch.statistics().waiting_senders == 0
    assert ch.recv_ok(timeout=0) == (None, False)


def test_close_wakes_every_sender_blocked_on_full_channel_without_delivering(spawn):
    ch = gochan.Chan(2)
    ch.send_many(["a", "b"])
    senders = [spawn(ch.send, f"late{i}", timeout=LONG) for i in range(3)]
    wait_for_senders(ch, 3)
    ch.close()
    for s in senders:
        assert isinstance(s.exception(timeout=2.0), gochan.ChannelClosed)
    assert list(ch) == ["a", "b"]


def test_close_wakes_a_blocked_send_many(spawn):
    ch = gochan.Chan(1)
    sender = spawn(ch.send_many, ["a", "b", "c"], timeout=LONG)
    wait_for_senders(ch, 1)
    ch.close()
    assert isinstance(sender.exception(timeout=2.0), gochan.ChannelClosed)
    assert list(ch) == ["a"]


def test_close_ends_iteration_in_another_thread(spawn):
    ch = gochan.Chan(0)
    consumer = spawn(list, ch)
    ch.send(1, timeout=LONG)
    ch.send(2, timeout=LONG)
    wait_for_receivers(ch, 1)
    ch.close()
    assert consumer.join(timeout=2.0) == [1, 2]


def test_leaving_a_with_block_wakes_a_blocked_receiver(spawn):
    ch = gochan.Chan(0)
    receiver = spawn(ch.recv_ok, timeout=LONG)
    with ch:
        wait_for_receivers(ch, 1)
    assert receiver.join(timeout=2.0) == (None, False)


def test_iteration_receives_everything_sent_before_close(spawn):
    ch = gochan.Chan(3)
    consumer = spawn(list, ch)
    for i in range(200):
        ch.send(i, timeout=LONG)
    ch.close()
    assert consumer.join() == list(range(200))


def test_several_iterating_consumers_share_the_values(spawn):
    ch = gochan.Chan(8)
    consumers = [spawn(list, ch) for _ in range(3)]
    for i in range(300):
        ch.send(i, timeout=LONG)
    ch.close()
    results = [c.join() for c in consumers]
    assert sorted(v for r in results for v in r) == list(range(300))
    for r in results:
        assert r == sorted(r)


# --- pinned semantics ---------------------------------------------------------------------------

@pytest.mark.parametrize("capacity", [0, 1, 4])
def test_value_sent_while_a_receiver_waits_goes_straight_to_it(spawn, capacity):
    ch = gochan.Chan(capacity)
    receiver = spawn(ch.recv, timeout=LONG)
    wait_for_receivers(ch, 1)
    ch.send("direct", timeout=LONG)
    with pytest.raises(gochan.WouldBlock):
        ch.recv_nowait()
    assert receiver.join() == "direct"


@pytest.mark.parametrize("capacity", [1, 2, 3])
def test_slot_freed_by_a_receive_goes_to_the_first_queued_sender(spawn, capacity):
    ch = gochan.Chan(capacity)
    old = [f"old{i}" for i in range(capacity)]
    ch.send_many(old)
    sender = spawn(ch.send, "queued", timeout=LONG)
    wait_for_senders(ch, 1)
    assert ch.recv(timeout=LONG) == "old0"
    with pytest.raises(gochan.WouldBlock):
        ch.send_nowait("intruder")
    sender.join()
    assert drain_nowait(ch) == old[1:] + ["queued"]


@pytest.mark.parametrize("capacity", [0, 2])
def test_blocked_receivers_are_served_first_in_first_out(spawn, capacity):
    ch = gochan.Chan(capacity)
    receivers = []
    for i in range(3):
        receivers.append(spawn(ch.recv, timeout=LONG))
        wait_for_receivers(ch, i + 1)
    for value in ("first", "second", "third"):
        ch.send(value, timeout=LONG)
    assert [r.join() for r in receivers] == ["first", "second", "third"]


@pytest.mark.parametrize("capacity", [0, 1])
def test_blocked_senders_are_served_first_in_first_out(spawn, capacity):
    ch = gochan.Chan(capacity)
    ch.send_many(["buffered"] * capacity)
    senders = []
    for i in range(3):
        senders.append(spawn(ch.send, i, timeout=LONG))
        wait_for_senders(ch, i + 1)
    received = [ch.recv(timeout=LONG) for _ in range(capacity + 3)]
    assert received == ["buffered"] * capacity + [0, 1, 2]
    for s in senders:
        s.join()


@pytest.mark.parametrize("leaver", [0, 1, 2], ids=["first", "middle", "last"])
def test_receiver_that_times_out_leaves_the_others_in_order(spawn, leaver):
    ch = gochan.Chan(0)
    receivers = []
    for i in range(3):
        receivers.append(spawn(ch.recv, timeout=0.3 if i == leaver else LONG))
        wait_for_receivers(ch, i + 1)
    assert isinstance(receivers[leaver].exception(), TimeoutError)
    wait_for_receivers(ch, 2)
    ch.send("a", timeout=LONG)
    ch.send("b", timeout=LONG)
    staying = [r for i, r in enumerate(receivers) if i != leaver]
    assert [r.join() for r in staying] == ["a", "b"]


@pytest.mark.parametrize("leaver", [0, 1, 2], ids=["first", "middle", "last"])
def test_sender_that_times_out_leaves_the_others_in_order(spawn, leaver):
    ch = gochan.Chan(0)
    senders = []
    for i in range(3):
        senders.append(spawn(ch.send, i, timeout=0.3 if i == leaver else LONG))
        wait_for_senders(ch, i + 1)
    assert isinstance(senders[leaver].exception(), TimeoutError)
    wait_for_senders(ch, 2)
    received = [ch.recv(timeout=LONG), ch.recv(timeout=LONG)]
    assert received == [i for i in range(3) if i != leaver]
    for i, s in enumerate(senders):
        if i != leaver:
            s.join()


@pytest.mark.parametrize("capacity", [0, 1, 4])
def test_values_from_each_sender_arrive_in_the_order_sent(spawn, capacity):
    ch = gochan.Chan(capacity)
    n_senders, per_sender = 4, 500

    def produce(sender_id):
        for i in range(per_sender):
            ch.send((sender_id, i), timeout=LONG)

    senders = [spawn(produce, s) for s in range(n_senders)]
    received = [ch.recv(timeout=LONG) for _ in range(n_senders * per_sender)]
    for s in senders:
        s.join()
    for sender_id in range(n_senders):
        assert [i for s, i in received if s == sender_id] == list(range(per_sender))


# --- statistics counts waiters ------------------------------------------------------------------

def test_statistics_counts_blocked_receivers(spawn):
    ch = gochan.Chan(0)
    receivers = [spawn(ch.recv, timeout=LONG) for _ in range(3)]
    wait_for_receivers(ch, 3)
    assert ch.statistics().waiting_senders == 0
    for i in range(3):
        ch.send(i, timeout=LONG)
    for r in receivers:
        r.join()
    assert ch.statistics().waiting_receivers == 0


def test_statistics_counts_blocked_senders(spawn):
    ch = gochan.Chan(1)
    ch.send("full")
    senders = [spawn(ch.send, i, timeout=LONG) for i in range(2)]
    wait_for_senders(ch, 2)
    st = ch.statistics()
    assert (st.capacity, st.size, st.waiting_receivers, st.closed) == (1, 1, 0, False)
    for _ in range(3):
        ch.recv(timeout=LONG)
    for s in senders:
        s.join()
    assert ch.statistics().waiting_senders == 0


def test_statistics_counts_blocked_recv_many_and_send_many(spawn):
    rch, sch = gochan.Chan(0), gochan.Chan(0)
    receiver = spawn(rch.recv_many, 2, timeout=LONG)
    sender = spawn(sch.send_many, [1], timeout=LONG)
    wait_for_receivers(rch, 1)
    wait_for_senders(sch, 1)
    rch.close()
    sch.close()
    assert isinstance(receiver.exception(), gochan.ChannelClosed)
    assert isinstance(sender.exception(), gochan.ChannelClosed)


def test_waiter_is_unregistered_after_a_timeout():
    ch = gochan.Chan(0)
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.01)
    with pytest.raises(TimeoutError):
        ch.send(1, timeout=0.01)
    st = ch.statistics()
    assert (st.waiting_senders, st.waiting_receivers) == (0, 0)


# --- the GIL ------------------------------------------------------------------------------------

def test_blocked_recv_lets_other_threads_run(spawn):
    ch = gochan.Chan(0)
    stop = threading.Event()
    stamps = []

    def busy():
        while not stop.is_set():
            for _ in range(1000):
                pass
            stamps.append(time.monotonic())

    worker = spawn(busy)
    wait_until(lambda: len(stamps) > 0)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.3)
    end = time.monotonic()
    stop.set()
    worker.join()
    during = [t for t in stamps if start + 0.05 < t < end - 0.05]
    assert len(during) > 10, "the other thread made no progress while recv() was blocked"
