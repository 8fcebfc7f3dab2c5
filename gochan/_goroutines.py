"""The Python side of gochan's goroutines: starting worker threads and reporting lost exceptions.

`gochan.go` lives in C (gochan._core): it hands each goroutine to an idle worker thread, and only
when none is idle does it call `_start_worker` here to start one more, an ordinary daemon
`threading.Thread` named ``gochan-worker-N`` running the C worker loop. In a burst, when a few
threads are already starting, the C side queues the goroutine instead and the threads start one
more each as they begin (csrc/py/goroutine.c, "Bursts"); if `_start_worker` raises, `go()` raises
that error, or, for a queued goroutine, the goroutine finishes with it. An exception that a
goroutine raised and that `Goroutine.join()` never retrieved reaches `_report`, which hands it to
`threading.excepthook` as an exception in a thread would be::

    import gochan

    gochan.go(int, "not a number")   # prints "Exception in thread goroutine int: ... ValueError"
"""

import itertools
import os
import threading

from gochan import _core

_worker_numbers = itertools.count(1)


def _start_worker(box):
    """Start a worker thread whose first goroutine is the one in `box` (a one-item list)."""
    threading.Thread(
        target=_core._worker,
        args=(box,),
        name=f"gochan-worker-{next(_worker_numbers)}",
        daemon=True,
    ).start()


class GoroutineOrigin:
    """What `threading.excepthook` receives as `args.thread` for a goroutine's exception.

    The hook only needs a `name`; the default hook prints "Exception in thread <name>:".

        def hook(args):
            print(args.thread.name)     # "goroutine fetch"
    """

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


def _report(name, exc):
    """Report `exc`, raised by the goroutine running `name`, that nobody retrieved."""
    origin = GoroutineOrigin(f"goroutine {name}" if name else "goroutine")
    threading.excepthook(
        threading.ExceptHookArgs([type(exc), exc, exc.__traceback__, origin])
    )


_core._goroutine_hooks(_start_worker, _report)

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_core._after_fork_in_child)
