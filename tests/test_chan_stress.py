"""Producers and consumers hammering one channel, with close racing the senders: every value is
received exactly once, or its sender was told ChannelClosed and it is received by nobody; each
sender's values arrive in the order sent. Kept short: the whole file runs in a few seconds."""

import random
import threading
import time

import pytest

import gochan

from conftest import LONG, wait_until

#: Values per producer.
PER_PRODUCER = 3000
#: Bound for every blocking call in the workers, so a lost wakeup fails instead of hanging.
CALL_TIMEOUT = 20.0

SHAPES = [(1, 1), (4, 4), (8, 2)]
CAPACITIES = [0, 1, 2, 1024]


def _check_per_producer(received_by_consumer, sent_counts):
    """Every sent value received once, nothing else received, per-sender order kept."""
    for p, n_sent in enumerate(sent_counts):
        everywhere = []
        for got in received_by_consumer:
            mine = [i for q, i in got if q == p]
            assert mine == sorted(mine), f"producer {p}: out of order at one consumer"
            everywhere.extend(mine)
        assert len(everywhere) == len(set(everywhere)), f"producer {p}: duplicates"
        assert sorted(everywhere) == list(range(n_sent)), \
            f"producer {p}: sent {n_sent}, received {len(everywhere)}"


def _run(spawn, capacity, producers, consumers, close_after=None):
    """Run the workload; close the channel once `close_after` values were received (or after
    all producers finished if None). Returns (received per consumer, sent count per producer)."""
    ch = gochan.Chan(capacity)
    received = [[] for _ in range(consumers)]

    def produce(p):
        for i in range(PER_PRODUCER):
            try:
                ch.send((p, i), timeout=CALL_TIMEOUT)
            except gochan.ChannelClosed:
                return i
        return PER_PRODUCER

    def consume(c):
        out = received[c]
        while True:
            try:
                out.append(ch.recv(timeout=CALL_TIMEOUT))
            except gochan.ChannelClosed:
                return

    consumer_workers = [spawn(consume, c) for c in range(consumers)]
    producer_workers = [spawn(produce, p) for p in range(producers)]
    if close_after is None:
        sent = [w.join(timeout=CALL_TIMEOUT + 5) for w in producer_workers]
        ch.close()
    else:
        wait_until(lambda: sum(map(len, received)) >= close_after or
                   all(w.done for w in producer_workers), timeout=CALL_TIMEOUT)
        ch.close()
        sent = [w.join(timeout=CALL_TIMEOUT + 5) for w in producer_workers]
    for w in consumer_workers:
        w.join(timeout=CALL_TIMEOUT + 5)
    assert ch.statistics().waiting_senders == 0
    assert ch.statistics().waiting_receivers == 0
    return received, sent


@pytest.mark.parametrize("capacity", CAPACITIES)
@pytest.mark.parametrize("producers,consumers", SHAPES, ids=[f"{p}x{c}" for p, c in SHAPES])
def test_every_value_is_received_exactly_once(spawn, capacity, producers, consumers):
    received, sent = _run(spawn, capacity, producers, consumers)
    assert sent == [PER_PRODUCER] * producers
    _check_per_producer(received, sent)


@pytest.mark.parametrize("capacity", CAPACITIES)
@pytest.mark.parametrize("producers,consumers", SHAPES, ids=[f"{p}x{c}" for p, c in SHAPES])
def test_close_racing_senders_loses_and_duplicates_nothing(spawn, capacity, producers, consumers):
    close_after = random.randrange(1, producers * PER_PRODUCER // 2)
    received, sent = _run(spawn, capacity, producers, consumers, close_after=close_after)
    _check_per_producer(received, sent)


@pytest.mark.parametrize("capacity", [0, 1, 1024])
def test_batched_transfers_with_close_racing_keep_each_sender_a_prefix(spawn, capacity):
    ch = gochan.Chan(capacity)
    producers, consumers, batch = 4, 4, 16
    received = [[] for _ in range(consumers)]

    def produce(p):
        values = [(p, i) for i in range(PER_PRODUCER)]
        for start in range(0, PER_PRODUCER, batch):
            chunk = values[start:start + batch]
            try:
                assert ch.send_many(chunk, timeout=CALL_TIMEOUT) == len(chunk)
            except gochan.ChannelClosed:
                return

    def consume(c):
        while True:
            try:
                got = ch.recv_many(batch * 2, timeout=CALL_TIMEOUT)
            except gochan.ChannelClosed:
                return
            assert 1 <= len(got) <= batch * 2
            received[c].extend(got)

    workers = [spawn(consume, c) for c in range(consumers)]
    workers += [spawn(produce, p) for p in range(producers)]
    target = random.randrange(1, producers * PER_PRODUCER // 2)
    producing = workers[consumers:]
    wait_until(lambda: sum(map(len, received)) >= target or all(w.done for w in producing),
               timeout=CALL_TIMEOUT)
    ch.close()
    for w in workers:
        w.join(timeout=CALL_TIMEOUT + 5)
    for p in range(producers):
        everywhere = []
        for got in received:
            mine = [i for q, i in got if q == p]
            assert mine == sorted(mine)
            everywhere.extend(mine)
        # Whatever send_many managed to send before the close is a prefix of its input.
        assert sorted(everywhere) == list(range(len(everywhere))), f"producer {p}"


@pytest.mark.parametrize("capacity", [0, 1])
def test_timed_out_sends_are_never_delivered(spawn, capacity):
    """A sender and a receiver with tiny timeouts: the values received are exactly the values
    whose send returned normally."""
    ch = gochan.Chan(capacity)
    delivered = []
    received = []
    stop = threading.Event()

    def produce():
        i = 0
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                ch.send(i, timeout=0.0002)
                delivered.append(i)
            except TimeoutError:
                pass
            i += 1

    def consume():
        while True:
            try:
                received.append(ch.recv(timeout=0.0002))
            except TimeoutError:
                if stop.is_set():
                    return
            except gochan.ChannelClosed:
                return

    consumers = [spawn(consume) for _ in range(2)]
    producer = spawn(produce)
    producer.join()
    ch.close()
    stop.set()
    for c in consumers:
        c.join()
    assert sorted(received) == delivered
    assert len(delivered) > 0


@pytest.mark.parametrize("capacity", [0, 4])
def test_close_racing_timed_waits_wakes_everyone(spawn, capacity):
    rng = random.Random()
    for _ in range(30):
        ch = gochan.Chan(capacity)
        receivers = [spawn(ch.recv, timeout=rng.choice([0.0005, 0.002, LONG])) for _ in range(3)]
        senders = [spawn(ch.send, "x", timeout=rng.choice([0.0005, 0.002, LONG]))
                   for _ in range(2)]
        time.sleep(rng.choice([0, 0.0005, 0.001, 0.003]))
        ch.close()
        delivered = 0
        for s in senders:
            exc = s.exception(timeout=LONG)
            assert exc is None or isinstance(exc, (gochan.ChannelClosed, TimeoutError)), exc
            delivered += exc is None
        got = 0
        for r in receivers:
            exc = r.exception(timeout=LONG)
            assert exc is None or isinstance(exc, (gochan.ChannelClosed, TimeoutError)), exc
            got += exc is None
        leftover = len(list(ch))
        assert got + leftover == delivered
        st = ch.statistics()
        assert (st.waiting_senders, st.waiting_receivers) == (0, 0)


def test_ping_pong_on_unbuffered_channels(spawn):
    ping, pong = gochan.Chan(0), gochan.Chan(0)
    rounds = 5000

    def echo():
        for v in ping:
            pong.send(v + 1, timeout=CALL_TIMEOUT)

    echoer = spawn(echo)
    v = 0
    for _ in range(rounds):
        ping.send(v, timeout=CALL_TIMEOUT)
        v = pong.recv(timeout=CALL_TIMEOUT)
    ping.close()
    echoer.join()
    assert v == rounds
