"""A worker that reports a heartbeat while it waits for jobs, and gives up when idle.

One `select` waits on three channels: the jobs, a `Ticker` for the heartbeat and a `Timer` that
fires after a stretch without work (reset whenever a job arrives). Run it:

    python docs/examples/timer_heartbeat.py
"""

import threading

import gochan

HEARTBEAT = 0.01  # seconds between heartbeats
IDLE = 0.05  # give up after this long without a job


def producer(jobs: gochan.Chan[int]) -> None:
    for i in range(5):
        jobs.send(i)
        gochan.sleep(0.015)


def worker(jobs: gochan.Chan[int]) -> tuple[list[int], int]:
    done: list[int] = []
    beats = 0
    idle = gochan.Timer(IDLE)
    with gochan.Ticker(HEARTBEAT) as heartbeat:
        while True:
            index, value, _ = gochan.select(
                gochan.Recv(jobs), gochan.Recv(heartbeat.c), gochan.Recv(idle.c)
            )
            if index == 0:
                done.append(value)
                idle.reset(IDLE)
            elif index == 1:
                beats += 1
            else:
                break
    return done, beats


def main() -> None:
    jobs: gochan.Chan[int] = gochan.Chan()
    threading.Thread(target=producer, args=(jobs,), daemon=True).start()
    done, beats = worker(jobs)
    print(f"did jobs {done} with {beats} heartbeats, then went idle")
    assert done == [0, 1, 2, 3, 4]
    assert beats >= 1


if __name__ == "__main__":
    main()
