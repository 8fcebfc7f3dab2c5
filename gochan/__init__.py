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
from gochan._context import (
    CancelPair,
    with_cancel,
    with_cancel_cause,
    with_deadline,
    with_timeout,
)
from gochan._core import CancelFunc, Context, background, todo, with_value, without_cancel

__all__ += [
    "CancelFunc",
    "CancelPair",
    "Context",
    "background",
    "todo",
    "with_cancel",
    "with_cancel_cause",
    "with_deadline",
    "with_timeout",
    "with_value",
    "without_cancel",
]
# (end of contexts)

# --- timers (csrc/py/timer.c, gochan/_timers.py) ---
from gochan import _timers  # noqa: F401  (restarts the timer threads after fork)
from gochan._core import Ticker, Timer, after, after_func, sleep

__all__ += ["Ticker", "Timer", "after", "after_func", "sleep"]
# (end of timers)

# --- goroutines and sync (csrc/py/sync.c, gochan/_goroutines.py, gochan/_sync.py) ---
from gochan import _goroutines  # noqa: F401  (starts worker threads, reports lost exceptions)
from gochan._core import (
    Goroutine,
    Mutex,
    RWMutex,
    RWMutexGuard,
    Semaphore,
    WaitGroup,
    go,
    num_goroutines,
)
from gochan._sync import Map, Once, once_func, once_value

__all__ += [
    "Goroutine",
    "Map",
    "Mutex",
    "Once",
    "RWMutex",
    "RWMutexGuard",
    "Semaphore",
    "WaitGroup",
    "go",
    "num_goroutines",
    "once_func",
    "once_value",
]
# (end of goroutines and sync)

# --- patterns: rate limiter and retry (gochan/_ratelimit.py, gochan/_retry.py) ---
from gochan._ratelimit import Limiter, Reservation
from gochan._retry import Backoff, Permanent, retry, retrying

__all__ += ["Backoff", "Limiter", "Permanent", "Reservation", "retry", "retrying"]
# (end of patterns: rate limiter and retry)

# --- patterns: errgroup, pool, pipelines (gochan/_patterns.py) ---
from gochan._patterns import Group, Pool, PoolJob, generate, merge, stage

__all__ += ["Group", "Pool", "PoolJob", "generate", "merge", "stage"]
# (end of patterns: errgroup, pool, pipelines)
