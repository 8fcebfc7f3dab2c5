"""Go-style channels for threaded Python.

gochan brings Go's concurrency vocabulary to ordinary threads: a ``Chan`` moves values between
threads, each value received exactly once and in order, with buffered and unbuffered
(rendezvous) channels, ``close()`` to end a stream, timeouts on every blocking call, and views
that can only send (``SendChan``) or only receive (``RecvChan``). The work is done in C; a blocked
call releases the GIL and can be interrupted with Ctrl-C::

    import threading
    import gochan

    ch = gochan.Chan(10)
    threading.Thread(target=lambda: [ch.send_many(range(3)), ch.close()]).start()
    assert list(ch) == [0, 1, 2]
"""

# Each part of the library adds its names in its own section below.

# --- channels and exceptions (csrc/py/chan.c, views.c, module.c) ---
from gochan._core import (
    Cancelled,
    Chan,
    ChannelClosed,
    ChanStats,
    ContextError,
    DeadlineExceeded,
    GochanError,
    RecvChan,
    SendChan,
    WouldBlock,
)

__all__ = [
    "Cancelled",
    "Chan",
    "ChanStats",
    "ChannelClosed",
    "ContextError",
    "DeadlineExceeded",
    "GochanError",
    "RecvChan",
    "SendChan",
    "WouldBlock",
]

# --- select (csrc/py/select.c) ---
from gochan._core import Recv, Selected, Send, select

__all__ += ["Recv", "Selected", "Send", "select"]
# (end of select)

# --- contexts (csrc/py/context.c, gochan/_context.py) ---
# (end of contexts)

# --- timers (csrc/py/timer.c, gochan/_timers.py) ---
# (end of timers)

# --- goroutines and sync (csrc/py/sync.c, gochan/_goroutines.py, gochan/_sync.py) ---
# (end of goroutines and sync)
