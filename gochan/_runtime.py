"""How gochan's runtime starts Python work on its own: after_func callbacks
and context after_func hooks are handed to ``spawn``, which runs them in a
goroutine (gochan.go: a pooled worker thread; an exception nobody
retrieves is reported through threading.excepthook)."""

from gochan._core import go


def spawn(fn, args=(), kwargs=None):
    """Run ``fn(*args, **kwargs)`` in its own goroutine; return at once.

    >>> spawn(print, ("hello",))
    """
    go(fn, *args, **(kwargs or {}))
