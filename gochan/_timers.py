"""Python-side support of gochan's timers (csrc/py/timer.c): after a
``fork()`` the child has neither the runtime's timer thread nor its
dispatcher thread, so both are restarted there, and timers set before the
fork still fire in the child."""

import os

from gochan import _core

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_core._timers_after_fork)
