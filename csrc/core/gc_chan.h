/* gc_chan.h - Go channels: buffered (lock-free ring) and unbuffered
 * (direct handoff), plus the multi-case wait that send, receive and select
 * are built on.
 *
 * How a caller uses it (gc_chan_recv does this; the binding calls it after
 * its own gc_chan_try_recv, with the GIL as `unlock`):
 *
 *     st = gc_chan_try_recv(ch, &item);          // fast path, never waits
 *     while (st == GC_WOULDBLOCK && time remains) {
 *         gc_case c = {.ch = ch, .dir = GC_RECV};
 *         st = gc_wait(&c, 1, deadline, &idx, unlock); // lets go of it here
 *         if (st == GC_OK)    { item = c.item; break; }  // a sender handed it
 *         if (st == GC_RETRY) { st = gc_chan_try_recv(ch, &item); continue; }
 *         // GC_INTR: a signal (see gc_unlock); GC_TIMEOUT: give up
 *     }
 *
 * Rule that keeps payloads safe for a garbage collector: only the try_*
 * functions (and gc_chan_send/recv, which call them with the caller's lock
 * held) move payloads, into or out of the buffer or straight into a
 * waiting thread's case; gc_wait() itself moves none.  So a binding that
 * calls try_* with its interpreter lock held (or attached, on
 * free-threaded builds) may traverse the buffer under that same lock with
 * gc_chan_traverse().
 *
 * Semantics (Go's):
 *   - waiters are served first in, first out (exactly so when try_* calls
 *     are serialized, as under the GIL; when they truly run in parallel a
 *     waiter woken to retry can lose its turn to a concurrent try_*);
 *   - a value sent while a receiver waits and the buffer is empty goes
 *     straight to that receiver;
 *   - a slot freed by a receive is given to the first waiting sender;
 *   - values from one sender are received in the order sent;
 *   - close() wakes every waiter; buffered values stay receivable.
 */
#ifndef GC_CHAN_H
#define GC_CHAN_H

#include "gc_base.h"
#include "gc_wait.h"

typedef struct gc_chan gc_chan;

/* Largest capacity accepted by gc_chan_new(). */
#define GC_CHAN_MAX_CAP ((size_t)1 << 40)

/* Directions of a case. */
enum { GC_SEND = 1, GC_RECV = 2 };

/* Something other than a channel that a thread can wait on with gc_wait:
 * a wait queue under a lock, for the sync primitives built on this core
 * (mutexes, semaphores...).  Its owner completes a waiter as a channel
 * does: under `lock` it claims an entry with gc_waitq_claim(), sets the
 * entry's `item` if it hands something over, and after letting go of the
 * lock calls gc_entry_complete(e, GC_OK) (the case completed: gc_wait
 * returns GC_OK, and `item` for a GC_RECV case) or GC_RETRY (wake up and
 * try again). */
typedef struct gc_waitable {
    gc_mutex *lock; /* guards q */
    gc_waitq *q;    /* waiters, oldest first */
    /* May the waiter proceed now without being completed?  gc_wait asks
     * this (without `lock`) after linking its entry and again after each
     * pause; non-zero makes it return GC_RETRY.  As for channels, the
     * owner's state change and this check must be ordered so that one of
     * the two sides sees the other (seq_cst, or the same lock). */
    int (*ready)(struct gc_waitable *self);
} gc_waitable;

/* One case of a wait: an operation on one channel, or a wait on a
 * gc_waitable.  The caller fills ch (or src), dir and (for a send) item;
 * `entry` belongs to the core.  A case with neither ch nor src is never
 * ready (Go's nil channel). */
typedef struct gc_case {
    gc_chan *ch;      /* channel, or NULL */
    int dir;          /* GC_SEND or GC_RECV (for src: GC_RECV to get item) */
    void *item;       /* send: value offered; recv: value received on GC_OK */
    gc_waitable *src; /* used when ch is NULL */
    gc_entry entry;   /* registration on the wait queue (internal) */
} gc_case;

typedef struct gc_chan_stats {
    size_t capacity;
    size_t size;
    size_t waiting_senders;
    size_t waiting_receivers;
    int closed;
} gc_chan_stats;

/* Create a channel with `cap` slots (0: unbuffered).  NULL when out of
 * memory or cap > GC_CHAN_MAX_CAP. */
gc_chan *gc_chan_new(size_t cap);

/* Destroy a channel nobody else uses.  Each value still buffered is passed
 * to free_item(item, arg) (which may be NULL to ignore them). */
void gc_chan_free(gc_chan *ch, void (*free_item)(void *item, void *arg),
                  void *arg);

/* Non-blocking operations.  GC_OK, GC_WOULDBLOCK or GC_CLOSED. */
gc_status gc_chan_try_send(gc_chan *ch, void *item);
gc_status gc_chan_try_recv(gc_chan *ch, void **item);

/* Batches, without waiting.  try_send_many sends a prefix of items and
 * sets *sent to its length: GC_OK when that is all n, else the status that
 * stopped it (GC_WOULDBLOCK or GC_CLOSED).  try_recv_many receives up to n
 * values into items: GC_OK with *got >= 1, else GC_WOULDBLOCK or GC_CLOSED
 * (closed and drained) with *got = 0.  On a buffered channel each
 * batch claims its slots with one atomic operation.  With n == 0 nothing
 * moves: try_send_many answers GC_CLOSED or GC_OK, try_recv_many GC_OK
 * with *got = 0. */
gc_status gc_chan_try_send_many(gc_chan *ch, void *const *items, size_t n,
                                size_t *sent);
gc_status gc_chan_try_recv_many(gc_chan *ch, void **items, size_t n,
                                size_t *got);

/* Close the channel: GC_OK, or GC_CLOSED if it already was. */
gc_status gc_chan_close(gc_chan *ch);

int gc_chan_closed(const gc_chan *ch);
size_t gc_chan_len(const gc_chan *ch);
size_t gc_chan_cap(const gc_chan *ch);
void gc_chan_stats_get(gc_chan *ch, gc_chan_stats *out);

/* Visit every buffered value (see the rule above).  Stops and returns the
 * first non-zero value that visit() returns. */
int gc_chan_traverse(gc_chan *ch, int (*visit)(void *item, void *arg),
                     void *arg);

/* How a blocking call lets go of a caller's lock while it waits (for the
 * binding: the GIL).  release() returns a token that acquire() takes.
 * Either pointer may be NULL: nothing to release.  A thread woken by a peer
 * that holds the same lock spins up to spin_ns for the peer to let go of it
 * before asking for it (0: ask at once; see "let-go epoch" in gc_chan.c). */
typedef struct gc_unlock {
    void *(*release)(void);
    void (*acquire)(void *token);
    int64_t spin_ns;
    /* Signals.  Without this hook a signal that interrupts a wait ends it
     * with GC_INTR (withdrawn).  With it, the waiter keeps its place: it
     * takes the lock back and calls interrupted(), which returns non-zero
     * to end the wait with GC_INTR (lock held) or 0 to go on waiting.
     * poll_ns > 0 also calls it every poll_ns while waiting, for a signal
     * that arrived just before the thread went to sleep. */
    int (*interrupted)(void);
    int64_t poll_ns;
} gc_unlock;

/* For a waiter that gc_wait woke with GC_RETRY for a case (ch, dir) and
 * that leaves without calling try_* again (its cancel channel closed): if
 * the channel can proceed in that direction, wake the oldest waiter of
 * that direction to try in its place.  One load when it cannot. */
void gc_chan_pass_on(gc_chan *ch, int dir);

/* Blocking send and receive: the try_/gc_wait loop of the comment at the
 * top, holding the caller's lock (`unlock`, may be NULL) except while it
 * waits.  Return GC_OK, GC_CLOSED, GC_TIMEOUT (a deadline <= now means
 * "try once") or GC_INTR (a signal arrived while waiting; nothing
 * happened; call again with the same deadline to go on waiting). */
gc_status gc_chan_send(gc_chan *ch, void *item, int64_t deadline,
                       const gc_unlock *unlock);
gc_status gc_chan_recv(gc_chan *ch, void **item, int64_t deadline,
                       const gc_unlock *unlock);

/* Either of the two (dir GC_SEND: send *item; GC_RECV: receive into
 * *item), cancellable: `cancel`, if not NULL, is a channel that nobody
 * sends on and that is closed to cancel (a context's done channel).  Once
 * it is closed the call returns GC_CANCELLED without doing anything: at
 * once if it already is, else as soon as the close wakes it. */
gc_status gc_chan_op(gc_chan *ch, int dir, void **item, int64_t deadline,
                     gc_chan *cancel, const gc_unlock *unlock);

/* Wait until one of `n` cases is completed by a peer, the state of one of
 * them changes, the deadline passes, or a signal arrives.  Never moves a
 * payload through a buffer (see above).  Returns:
 *   GC_OK       case *index was completed by a peer: a send's value was
 *               taken, or a receive's value is in cases[*index].item;
 *   GC_RETRY    some case may be able to proceed now: call try_* again,
 *               at least once and starting with case *index (the case
 *               that was found ready or woken): a wake-up is handed to one
 *               waiter only, so one that ignored it could strand a value
 *               while another waiter sleeps (a caller that leaves without
 *               trying, e.g. because it was cancelled, hands the wake-up
 *               on with gc_chan_pass_on);
 *   GC_TIMEOUT  the deadline passed (GC_FOREVER: never);
 *   GC_INTR     a signal interrupted the wait, which has been withdrawn.
 * Cases are registered in array order and a peer serves the oldest entry
 * of a queue, so when two cases are on one channel the lower index wins: an
 * unbiased select shuffles its cases before calling.
 * With n == 0 it waits only for the deadline or a signal.  The caller's
 * lock (`unlock`, may be NULL) is held on entry and on return; it is let go
 * only while sleeping, after every case is registered, so a peer that
 * takes the lock next finds this waiter.   When it
 * returns, no case is registered anywhere any more. */
gc_status gc_wait(gc_case *cases, size_t n, int64_t deadline, size_t *index,
                  const gc_unlock *unlock);

#endif /* GC_CHAN_H */
