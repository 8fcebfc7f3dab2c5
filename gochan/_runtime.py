"""How gochan's runtime starts Python work on its own: after_func callbacks
and context after_func hooks are handed to ``spawn``, which runs them in a
goroutine (gochan.go: a pooled worker thread; an exception nobody
retrieves is reported through threading.excepthook)."""

import sys
import threading

from gochan._core import go


def spawn(fn, args=(), kwargs=None):
    """Run ``fn(*args, **kwargs)`` in its own goroutine; return at once.

    >>> spawn(print, ("hello",))
    """
    try:
        go(fn, *args, **(kwargs or {}))
    except RuntimeError:
        # Once the interpreter has begun to exit, CPython 3.12 and newer refuse new threads:
        # a callback due then never runs, as a goroutine never runs once Go's main returns.
        if not (sys.is_finalizing() or getattr(threading, "_SHUTTING_DOWN", False)):
            raise
