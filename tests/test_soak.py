"""The soak: 8 threads hammer a few channels with every kind of operation at once (send, recv,
recv_ok, recv_many, the *_nowait forms, select with Send and Recv cases, close, context
cancellation, deadlines and timeouts) for at least a million operations, and a ledger then
proves that every value was received exactly once or was reported as not sent (API.md: "A value
sent is received exactly once"; a send that raised, timed out or lost a select delivered
nothing).

The ledger: every value is a unique int (thread number and sequence number). A thread records
each value whose send reported success (send returned, a select chose its Send case) in its own
`sent` array; a value whose send failed is simply never recorded, and never retried. Every value
received goes to the receiving thread's `received` array. At the end, after the channels are
closed and drained, the two multisets must be equal: nothing lost, nothing received twice,
nothing received that a failed send offered.

Channels are closed and replaced while in use (the closer drains the old one), and the shared
context is cancelled and replaced, so that blocked calls are woken by close and by cancellation
as well as by partners and timeouts.

Size: SOAK_OPERATIONS (10**6) operations by default, about 10-20 s here; GOCHAN_SOAK=N runs N
times as many (e.g. GOCHAN_SOAK=20 for a long soak before a release).
"""

import faulthandler
import os
import random
import threading
import time
from array import array

import pytest

import gochan

#: Operations in all by default (each channel call, select or close counts as one).
SOAK_OPERATIONS = 1_000_000
THREADS = 8
#: Capacities of the channels the threads share.
CAPACITIES = [0, 1, 8, 64]
#: Timeouts the blocking calls use (0: try once).
TIMEOUTS = [0, 0, 0, 0.0001, 0.0005, 0.002]
#: The run fails (rather than hangs) if it takes longer than this many seconds per million.
SECONDS_PER_MILLION_LIMIT = 240


def _scale():
    raw = os.environ.get("GOCHAN_SOAK", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"GOCHAN_SOAK must be a number (a multiplier), got {raw!r}") from None
    if not scale > 0:
        raise ValueError(f"GOCHAN_SOAK must be > 0, got {raw!r}")
    return scale


class Soak:
    """The shared state: channel slots, the current context, the ledgers."""

    def __init__(self, operations):
        self.slots = [gochan.Chan(cap) for cap in CAPACITIES]
        self.ctx, self.cancel = gochan.with_cancel(gochan.background())
        self.per_thread = operations // THREADS + 1
        self.sent = [array("q") for _ in range(THREADS)]
        self.received = [array("q") for _ in range(THREADS)]
        self.ops = [0] * THREADS
        self.outcomes = [dict() for _ in range(THREADS)]
        self.stop = threading.Event()
        self.replace_lock = threading.Lock()

    def replace_channel(self, index, received):
        """Close the channel of slot `index`, put a new one in its place, and drain the old."""
        with self.replace_lock:
            old = self.slots[index]
            self.slots[index] = gochan.Chan(old.cap)
        try:
            old.close()
        except gochan.ChannelClosed:
            return
        while True:
            try:
                received.extend(old.recv_many(64, timeout=10))
            except gochan.ChannelClosed:
                return

    def replace_context(self):
        with self.replace_lock:
            cancel = self.cancel
            self.ctx, self.cancel = gochan.with_cancel(gochan.background())
        cancel()


def _worker(soak, t, seed):
    rnd = random.Random(seed)
    choice, random_ = rnd.choice, rnd.random
    sent, received = soak.sent[t], soak.received[t]
    outcomes = soak.outcomes[t]
    bg = gochan.background()
    Recv, Send, select = gochan.Recv, gochan.Send, gochan.select
    closed_errors = (gochan.ChannelClosed, TimeoutError, gochan.ContextError, gochan.WouldBlock)
    seq = 0
    ops = 0
    n_slots = len(CAPACITIES)
    while ops < soak.per_thread and not soak.stop.is_set():
        ops += 1
        roll = random_()
        slots = soak.slots
        ch = slots[rnd.randrange(n_slots)]
        timeout = choice(TIMEOUTS)
        # A third of the blocking calls wait on a context: the shared one (cancelled now and
        # then by some thread) or one with a short deadline.
        pick = random_()
        if pick < 0.2:
            ctx = soak.ctx
        elif pick < 0.3:
            ctx = gochan.with_timeout(bg, choice(TIMEOUTS))[0]
        else:
            ctx = None
        try:
            if roll < 0.25:
                value = (t << 40) | seq
                seq += 1
                ch.send(value, timeout=timeout, ctx=ctx)
                sent.append(value)
                kind = "send"
            elif roll < 0.35:
                value = (t << 40) | seq
                seq += 1
                ch.send_nowait(value)
                sent.append(value)
                kind = "send_nowait"
            elif roll < 0.55:
                received.append(ch.recv(timeout=timeout, ctx=ctx))
                kind = "recv"
            elif roll < 0.62:
                value, ok = ch.recv_ok(timeout=timeout, ctx=ctx)
                if ok:
                    received.append(value)
                kind = "recv_ok"
            elif roll < 0.70:
                received.append(ch.recv_nowait())
                kind = "recv_nowait"
            elif roll < 0.78:
                received.extend(ch.recv_many(rnd.randrange(1, 20), timeout=timeout, ctx=ctx))
                kind = "recv_many"
            elif roll < 0.998:
                # select over a few cases: sends of fresh values and receives, some switched
                # off (None), sometimes the context's done channel, sometimes a default.
                cases, values = [], []
                for _ in range(rnd.randrange(1, 5)):
                    target = slots[rnd.randrange(n_slots)] if random_() < 0.9 else None
                    if random_() < 0.5:
                        value = (t << 40) | seq
                        seq += 1
                        cases.append(Send(target, value))
                        values.append(value)
                    else:
                        cases.append(Recv(target))
                        values.append(None)
                done_index = -2
                if ctx is not None and random_() < 0.5:
                    done_index = len(cases)
                    cases.append(Recv(ctx.done()))
                    values.append(None)
                default = random_() < 0.2
                index, value, ok = select(*cases, default=default, timeout=timeout, ctx=ctx,
                                          biased=random_() < 0.2)
                kind = "select"
                if index >= 0:
                    if values[index] is not None:
                        sent.append(values[index])
                    elif ok and index != done_index:
                        received.append(value)
                    else:
                        kind = "select-closed"
                else:
                    kind = "select-default"
            elif roll < 0.999:
                soak.replace_channel(rnd.randrange(n_slots), received)
                kind = "close"
            else:
                soak.replace_context()
                kind = "cancel"
        except closed_errors as exc:
            kind = type(exc).__name__
        outcomes[kind] = outcomes.get(kind, 0) + 1
    soak.ops[t] = ops


def test_soak_every_value_received_exactly_once_or_reported_not_sent():
    scale = _scale()
    operations = int(SOAK_OPERATIONS * scale)
    limit = SECONDS_PER_MILLION_LIMIT * max(operations, 10**6) / 10**6
    # This test may run longer than the suite's per-test watchdog allows.
    faulthandler.dump_traceback_later(limit + 120, exit=True)
    soak = Soak(operations)
    seed = random.randrange(2**32)
    errors = []

    def run(t):
        try:
            _worker(soak, t, seed + t)
        except BaseException as exc:  # reported by the test
            errors.append((t, exc))
            soak.stop.set()

    threads = [threading.Thread(target=run, args=(t,), name=f"soak-{t}", daemon=True)
               for t in range(THREADS)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(max(1.0, limit - (time.monotonic() - start)))
    elapsed = time.monotonic() - start
    if any(th.is_alive() for th in threads):
        soak.stop.set()
        for th in threads:
            th.join(60)
        pytest.fail(f"the soak did not finish within {limit:.0f} s (seed {seed})")
    assert not errors, f"seed {seed}: {errors!r}"

    # Close and drain what is left; then nobody may still be registered anywhere.
    leftovers = array("q")
    for i in range(len(CAPACITIES)):
        ch = soak.slots[i]
        soak.replace_channel(i, leftovers)
        stats = ch.statistics()
        assert (stats.waiting_senders, stats.waiting_receivers) == (0, 0), stats
    soak.cancel()

    total_ops = sum(soak.ops)
    assert total_ops >= operations, total_ops
    sent = sorted(v for a in soak.sent for v in a)
    received = sorted([v for a in soak.received for v in a] + list(leftovers))
    outcomes = {}
    for per_thread in soak.outcomes:
        for kind, n in per_thread.items():
            outcomes[kind] = outcomes.get(kind, 0) + n
    summary = (f"seed {seed}: {total_ops} operations in {elapsed:.1f} s, {len(sent)} values "
               f"sent, {len(received)} received; outcomes {sorted(outcomes.items())}")
    print(summary)
    if sent != received:
        sent_set, received_set = set(sent), set(received)
        lost = sorted(sent_set - received_set)[:10]
        phantom = sorted(received_set - sent_set)[:10]
        twice = len(received) - len(received_set)
        pytest.fail(f"{summary}\nlost (sent, never received): {[hex(v) for v in lost]}\n"
                    f"received but never sent: {[hex(v) for v in phantom]}\n"
                    f"received more than once: {twice}")
    # The mix really was a mix: every kind of operation and of failure happened.
    for kind in ("send", "send_nowait", "recv", "recv_ok", "recv_nowait", "recv_many",
                 "select", "select-default", "close", "cancel", "TimeoutError", "WouldBlock",
                 "ChannelClosed", "Cancelled"):
        assert outcomes.get(kind, 0) > 0, f"no {kind} in {summary}"
    assert len(sent) > operations // 20, summary
