"""A buffered channel (capacity 1..5) driven by hypothesis against a deque model: every outcome,
value and exception of the non-blocking and timeout=0 operations must match the model. Each
operation goes through the channel itself or through one of its views, chosen at random."""

from collections import deque

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import gochan

values = st.one_of(st.integers(-1000, 1000), st.text(max_size=3), st.none(),
                   st.tuples(st.integers()))


class BufferedChannelMachine(RuleBasedStateMachine):
    @initialize(capacity=st.integers(1, 5))
    def create(self, capacity):
        self.ch = gochan.Chan(capacity)
        self.capacity = capacity
        self.model = deque()
        self.is_closed = False

    # Helpers ------------------------------------------------------------------------------------

    def sender(self, via_view):
        return self.ch.send_only() if via_view else self.ch

    def receiver(self, via_view):
        return self.ch.recv_only() if via_view else self.ch

    def full(self):
        return len(self.model) == self.capacity

    def outcome(self, fn, *args, **kwargs):
        """('ok', result) or ('raise', exception class)."""
        try:
            return ("ok", fn(*args, **kwargs))
        except (gochan.GochanError, TimeoutError) as exc:
            return ("raise", type(exc))

    # Sends --------------------------------------------------------------------------------------

    @rule(value=values, via_view=st.booleans())
    def send_nowait(self, value, via_view):
        got = self.outcome(self.sender(via_view).send_nowait, value)
        if self.is_closed:
            assert got == ("raise", gochan.ChannelClosed)
        elif self.full():
            assert got == ("raise", gochan.WouldBlock)
        else:
            assert got == ("ok", None)
            self.model.append(value)

    @rule(value=values, via_view=st.booleans())
    def send_timeout_zero(self, value, via_view):
        got = self.outcome(self.sender(via_view).send, value, timeout=0)
        if self.is_closed:
            assert got == ("raise", gochan.ChannelClosed)
        elif self.full():
            assert got == ("raise", TimeoutError)
        else:
            assert got == ("ok", None)
            self.model.append(value)

    @rule(items=st.lists(values, min_size=1, max_size=7), via_view=st.booleans())
    def send_many_timeout_zero(self, items, via_view):
        got = self.outcome(self.sender(via_view).send_many, items, timeout=0)
        room = self.capacity - len(self.model)
        if self.is_closed:
            assert got == ("raise", gochan.ChannelClosed)
        elif len(items) <= room:
            assert got == ("ok", len(items))
            self.model.extend(items)
        else:
            # Items are sent in order until one cannot be: the ones that fit are sent.
            assert got == ("raise", TimeoutError)
            self.model.extend(items[:room])

    # Receives -----------------------------------------------------------------------------------

    @rule(via_view=st.booleans())
    def recv_nowait(self, via_view):
        got = self.outcome(self.receiver(via_view).recv_nowait)
        if self.model:
            assert got == ("ok", self.model.popleft())
        elif self.is_closed:
            assert got == ("raise", gochan.ChannelClosed)
        else:
            assert got == ("raise", gochan.WouldBlock)

    @rule(via_view=st.booleans())
    def recv_timeout_zero(self, via_view):
        got = self.outcome(self.receiver(via_view).recv, timeout=0)
        if self.model:
            assert got == ("ok", self.model.popleft())
        elif self.is_closed:
            assert got == ("raise", gochan.ChannelClosed)
        else:
            assert got == ("raise", TimeoutError)

    @rule(via_view=st.booleans())
    def recv_ok_timeout_zero(self, via_view):
        got = self.outcome(self.receiver(via_view).recv_ok, timeout=0)
        if self.model:
            assert got == ("ok", (self.model.popleft(), True))
        elif self.is_closed:
            assert got == ("ok", (None, False))
        else:
            assert got == ("raise", TimeoutError)

    @rule(max_items=st.integers(1, 7), via_view=st.booleans())
    def recv_many_timeout_zero(self, max_items, via_view):
        got = self.outcome(self.receiver(via_view).recv_many, max_items, timeout=0)
        if self.model:
            expected = [self.model.popleft() for _ in range(min(max_items, len(self.model)))]
            assert got == ("ok", expected)
        elif self.is_closed:
            assert got == ("raise", gochan.ChannelClosed)
        else:
            assert got == ("raise", TimeoutError)

    @precondition(lambda self: self.is_closed)
    @rule(via_view=st.booleans())
    def drain_by_iteration(self, via_view):
        assert list(self.receiver(via_view)) == list(self.model)
        self.model.clear()

    # Close --------------------------------------------------------------------------------------

    @rule(via_view=st.booleans())
    def close(self, via_view):
        got = self.outcome(self.sender(via_view).close)
        if self.is_closed:
            assert got == ("raise", gochan.ChannelClosed)
        else:
            assert got == ("ok", None)
            self.is_closed = True

    @rule()
    def close_with_block(self):
        with self.ch as entered:
            assert entered is self.ch
        self.is_closed = True

    # Observations -------------------------------------------------------------------------------

    @invariant()
    def length_matches(self):
        assert len(self.ch) == len(self.model)
        assert len(self.ch.send_only()) == len(self.model)
        assert len(self.ch.recv_only()) == len(self.model)

    @invariant()
    def closed_matches(self):
        assert self.ch.closed is self.is_closed
        assert self.ch.recv_only().closed is self.is_closed

    @invariant()
    def statistics_match(self):
        s = self.ch.statistics()
        assert (s.capacity, s.size, s.waiting_senders, s.waiting_receivers, bool(s.closed)) == \
            (self.capacity, len(self.model), 0, 0, self.is_closed)

    @invariant()
    def cap_is_constant(self):
        assert self.ch.cap == self.capacity


BufferedChannelMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40,
                                                    deadline=None)
test_buffered_channel_matches_a_deque_model = BufferedChannelMachine.TestCase
