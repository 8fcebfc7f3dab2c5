"""Timeouts and non-blocking calls, three ways.

    python docs/examples/timeouts.py

1. A request with a deadline: the client gives up on a slow reply with `recv(timeout=...)`. Each
   request carries its own reply channel with one slot, so a reply that comes too late is left
   there instead of blocking the server forever.
2. Waiting with housekeeping: a consumer waits for values at most 20 ms at a time, and does
   periodic work whenever nothing arrives.
3. Load shedding: a producer that must never stall uses `send_nowait` and drops what does not fit.
"""

import threading
import time

import gochan


Request = tuple[float, gochan.SendChan[str]]  # (how long the work takes, where to reply)


def server(requests: gochan.RecvChan[Request]) -> None:
    for delay, reply in requests:
        time.sleep(delay)  # the work takes `delay` seconds
        reply.send(f"done after {delay}s")  # never blocks: the reply channel has a free slot


def request_with_deadline() -> None:
    requests: gochan.Chan[Request] = gochan.Chan()
    srv = threading.Thread(target=server, args=(requests.recv_only(),))
    srv.start()
    with requests:  # closes `requests` at the end, which stops the server
        outcomes = []
        for delay in (0.0, 0.5, 0.0):
            reply: gochan.Chan[str] = gochan.Chan(1)
            requests.send((delay, reply.send_only()), timeout=5.0)
            try:
                outcomes.append(reply.recv(timeout=0.25))
            except TimeoutError:
                outcomes.append("gave up")  # the late reply will land in `reply` unread
    srv.join()
    print("1. requests:", outcomes)
    assert outcomes == ["done after 0.0s", "gave up", "done after 0.0s"], outcomes


def wait_with_housekeeping() -> None:
    events: gochan.Chan[int] = gochan.Chan()

    def source() -> None:
        with events:
            for i in range(3):
                time.sleep(0.05)
                events.send(i)

    threading.Thread(target=source).start()
    received: list[int | None] = []  # recv_ok() types its value as int | None
    idle_rounds = 0
    while True:
        try:
            value, ok = events.recv_ok(timeout=0.02)
        except TimeoutError:
            idle_rounds += 1  # nothing for 20 ms: flush logs, check health, ...
            continue
        if not ok:
            break  # closed and drained
        received.append(value)
    print(f"2. received {received}, did housekeeping {idle_rounds} times while waiting")
    assert received == [0, 1, 2]
    assert idle_rounds >= 3  # at least one 20 ms wait expired before each 50 ms gap ended


def shed_load() -> None:
    samples: gochan.Chan[int] = gochan.Chan(10)
    dropped = 0
    for i in range(100):  # nobody is reading yet: only the first 10 fit
        try:
            samples.send_nowait(i)
        except gochan.WouldBlock:
            dropped += 1
    samples.close()
    kept = list(samples)
    print(f"3. kept {len(kept)} samples, dropped {dropped}")
    assert kept == list(range(10)) and dropped == 90


if __name__ == "__main__":
    request_with_deadline()
    wait_with_housekeeping()
    shed_load()
