"""Anti-pattern: goroutines that read, modify and write shared state without synchronisation.

    python docs/examples/antipattern_race_condition.py

`account.balance += amount` is a read, an add and a write. The GIL does not fuse them into one
step: a thread can be switched out in between, and if another goroutine updates the balance in
that gap, the first one's write wipes that update out. Real races are rare and intermittent; here
the switch is forced (every deposit reads, then waits until all the others have read too, then
writes), so updates are lost on every run. The fixes: hold a `Mutex` across the whole
read-modify-write, or better, let one goroutine own the balance and receive the deposits over a
channel, so that nothing is shared at all.
"""

from collections.abc import Callable

import gochan

DEPOSITS = [10, 20, 30, 40]


class Account:
    balance = 0


def run_all(deposit: Callable[[int], None]) -> None:
    """Makes every deposit, each in its own goroutine, and waits for them all."""
    wg = gochan.WaitGroup()
    for amount in DEPOSITS:
        wg.go(deposit, amount)
    wg.wait()


def racy() -> int:
    account, all_read = Account(), gochan.WaitGroup()
    all_read.add(len(DEPOSITS))

    def deposit(amount: int) -> None:
        current = account.balance  # read
        all_read.done()
        all_read.wait(timeout=5)  # the forced switch: every deposit reads before any writes
        account.balance = current + amount  # write: overwrites the others' updates

    run_all(deposit)
    return account.balance


def with_mutex() -> int:
    account, lock = Account(), gochan.Mutex()

    def deposit(amount: int) -> None:
        with lock:  # the read and the write are one step, as far as other depositors can tell
            current = account.balance
            gochan.sleep(0.001)  # a switch here is harmless now: the others wait for the lock
            account.balance = current + amount

    run_all(deposit)
    return account.balance


def with_owner() -> int:
    def owner(deposits: gochan.RecvChan[int], result: gochan.SendChan[int]) -> None:
        balance = 0  # only this goroutine ever sees it: no lock needed
        for amount in deposits:  # until the channel is closed
            balance += amount
        result.send(balance)

    deposits: gochan.Chan[int] = gochan.Chan()
    result: gochan.Chan[int] = gochan.Chan(1)
    gochan.go(owner, deposits.recv_only(), result.send_only())
    run_all(deposits.send)
    deposits.close()  # every depositor is done
    return result.recv(timeout=5)


def main() -> None:
    expected = sum(DEPOSITS)
    lost = racy()
    print(f"racy: balance {lost}, expected {expected}: updates were lost")
    assert lost in DEPOSITS  # only the last write survived
    assert with_mutex() == expected and with_owner() == expected
    print(f"with a Mutex, and with an owner goroutine: balance {expected}")


if __name__ == "__main__":
    main()
