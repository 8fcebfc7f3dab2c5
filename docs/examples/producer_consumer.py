"""Producer and consumers with channel directions: the sender closes, the receivers drain.

    python docs/examples/producer_consumer.py

The producer is given a `SendChan` and the consumers a `RecvChan`, and their signatures say so:
a consumer cannot send or close by mistake (the view has no such methods), and a type checker
flags a function that is handed the wrong end. The producer is the only sender, so it alone knows
when the stream ends, and it closes the channel; each consumer iterates until the channel is
closed and drained, and never has to be told to stop.
"""

import gochan

ORDERS = 100
CONSUMERS = 3


def produce(out: gochan.SendChan[int], count: int) -> None:
    """Sends order numbers 0..count-1, then closes `out`, even if something fails halfway."""
    try:
        for order in range(count):
            out.send(order)  # waits while the buffer is full: a slow consumer slows us down
    finally:
        out.close()  # the sender closes: receivers never close a channel


def consume(inbox: gochan.RecvChan[int]) -> list[int]:
    """Handles orders until the producer closes the channel; returns the ones it handled."""
    handled = []
    for order in inbox:  # ends once the channel is closed and every order is taken
        gochan.sleep(0.0005)  # handling an order takes a moment
        handled.append(order)
    return handled


def main() -> None:
    orders: gochan.Chan[int] = gochan.Chan(8)
    consumers = [gochan.go(consume, orders.recv_only()) for _ in range(CONSUMERS)]
    producer = gochan.go(produce, orders.send_only(), ORDERS)

    producer.join(timeout=5)
    per_consumer = [c.join(timeout=5) for c in consumers]
    for i, handled in enumerate(per_consumer):
        print(f"consumer {i} handled {len(handled)} orders")

    every = sorted(order for handled in per_consumer for order in handled)
    assert every == list(range(ORDERS))  # each order handled exactly once
    assert all(handled == sorted(handled) for handled in per_consumer)  # FIFO: in order
    assert orders.closed and len(orders) == 0

    # The views enforce the direction: a receive-only end cannot send or close.
    inbox = orders.recv_only()
    assert not hasattr(inbox, "send") and not hasattr(inbox, "close")
    assert not hasattr(orders.send_only(), "recv")
    print("the receive-only view has no send() or close()")


if __name__ == "__main__":
    main()
