"""Fan-out to several workers, fan-in of their outputs into one stream.

    python docs/examples/fan_out_fan_in.py

Fan-out: several goroutines read the same channel, so slow work on its items is shared among
them. Fan-in: `merge` turns several channels into one, closed when all of them are. With
`stage(fn, src, workers=N)` gochan does both at once; by hand, each worker has an output channel
of its own, which it closes when the input runs out, and `merge` joins the outputs. The sources
here are two `generate` streams, themselves merged: fan-in works on any channels.
"""

import collections

import gochan

WORKERS = 4
LEFT = [f"left-{i}" for i in range(20)]
RIGHT = [f"right-{i}" for i in range(20)]


def checksum(word: str) -> tuple[str, int]:
    gochan.sleep(0.002)  # slow work, worth spreading over several workers
    return word, sum(map(ord, word))


def sources() -> gochan.RecvChan[str]:
    # Fan-in: every word of both, in some interleaving; closed when both are.
    return gochan.merge(gochan.generate(LEFT), gochan.generate(RIGHT))


def with_stage() -> list[tuple[str, int]]:
    return list(gochan.stage(checksum, sources(), workers=WORKERS, ordered=False))


def by_hand(load: collections.Counter[str]) -> list[tuple[str, int]]:
    def worker(name: str, src: gochan.RecvChan[str], out: gochan.SendChan[tuple[str, int]]) -> None:
        try:
            for word in src:  # the workers compete for the words of one channel
                out.send(checksum(word))
                load[name] += 1
        finally:
            out.close()  # each worker closes only its own output

    src = sources()
    outputs = []
    for i in range(WORKERS):
        out: gochan.Chan[tuple[str, int]] = gochan.Chan()
        gochan.go(worker, f"worker-{i}", src, out.send_only())
        outputs.append(out.recv_only())
    return list(gochan.merge(*outputs))  # fan-in: ends when every worker has closed its output


def main() -> None:
    expected = sorted((word, sum(map(ord, word))) for word in LEFT + RIGHT)
    staged = with_stage()
    print(f"stage(workers={WORKERS}): {len(staged)} checksums")
    assert sorted(staged) == expected

    load: collections.Counter[str] = collections.Counter()
    results = by_hand(load)
    print(f"by hand: {len(results)} checksums; words per worker: {dict(sorted(load.items()))}")
    assert sorted(results) == expected
    assert sum(load.values()) == len(expected)  # each word went to exactly one worker


if __name__ == "__main__":
    main()
