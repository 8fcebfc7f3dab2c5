"""A crawler that fetches pages concurrently, at most three at a time, and stops early on demand.

Goroutines do the fetching; a `Semaphore` bounds how many run at once, a `WaitGroup` tells when
they are all done, a `Map` remembers which pages were seen (so each is fetched once), and a
context lets the whole crawl be cancelled. The "web" is a dict, and fetching sleeps a little.
Run it:

    python docs/examples/goroutine_crawler.py
"""

import gochan
from gochan import testing

WEB = {
    "/": ["/a", "/b", "/c"],
    "/a": ["/a/1", "/a/2", "/"],
    "/b": ["/b/1", "/a"],
    "/c": [],
    "/a/1": [],
    "/a/2": ["/c"],
    "/b/1": ["/b/1/x"],
    "/b/1/x": [],
}

LIMIT = 3  # fetches at once


def fetch(url: str) -> list[str]:
    gochan.sleep(0.005)  # the network
    return WEB.get(url, [])


def crawl(start: str, ctx: gochan.Context) -> list[str]:
    seen: gochan.Map[str, bool] = gochan.Map()
    sem = gochan.Semaphore(LIMIT)
    wg = gochan.WaitGroup()
    busy: gochan.Map[str, bool] = gochan.Map()

    def visit(url: str) -> None:
        try:
            sem.acquire(ctx=ctx)  # waits for a free slot, or raises once ctx is cancelled
        except gochan.ContextError:
            return
        try:
            busy.store(url, True)
            assert busy.len() <= LIMIT
            links = fetch(url)
        finally:
            busy.delete(url)
            sem.release()
        for link in links:
            _, loaded = seen.load_or_store(link, True)
            if not loaded:
                wg.go(visit, link)

    seen.store(start, True)
    wg.go(visit, start)
    wg.wait()
    found: list[str] = []
    seen.range(lambda url, _: found.append(url))
    return sorted(found)


def main() -> None:
    pages = crawl("/", gochan.background())
    print("crawled", len(pages), "pages:", " ".join(pages))
    assert pages == sorted(WEB)

    ctx, cancel = gochan.with_cancel(gochan.background())
    cancel()  # cancelled before it starts: nothing is fetched past the start
    assert crawl("/", ctx) == ["/"]
    print("a cancelled crawl stops at once")

    testing.verify_none()  # every goroutine has finished
    print("no goroutine left running")


if __name__ == "__main__":
    main()
