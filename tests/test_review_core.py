"""Regressions from the review of the C core that can be seen from Python. Each case runs in a
child interpreter, as it forks or leaves threads behind."""

import os
import textwrap

import pytest

from conftest import run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")


def test_writer_waiting_at_fork_does_not_keep_readers_out_of_the_child():
    # The writer's thread does not exist in the child; before the fix its "writer waiting" mark
    # stayed in the lock's state there, and every rlock() in the child blocked for ever.
    script = textwrap.dedent("""
        import os, threading, time, warnings
        import gochan

        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
        rw = gochan.RWMutex()
        rw.rlock()
        writer = threading.Thread(target=lambda: (rw.lock(), rw.unlock()), daemon=True)
        writer.start()
        deadline = time.monotonic() + 10
        while rw.try_rlock():  # until the writer waits, which keeps new readers out
            rw.runlock()
            assert time.monotonic() < deadline, "the writer never waited"
            time.sleep(0.001)
        pid = os.fork()
        if pid == 0:
            rw.runlock()
            ok = rw.rlock(timeout=5) and rw.try_rlock()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child's reader was kept out"
        rw.runlock()
        writer.join(10)
        assert not writer.is_alive()
        print("ok")
    """)
    result = run_python(script, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
