/* gc_wait.h - waiters, wait-queue entries and wait queues.
 *
 * Every wait has one gc_waiter, on the waiting thread's stack.  A thread
 * about to block puts one gc_entry per case on the wait queue of that
 * case's channel; all of them point at its waiter.  Whoever wants to complete
 * an operation for a waiting thread must first win the compare-and-swap of the
 * waiter's `sel` word from GC_SEL_WAITING to the address of the entry it chose
 * (a "claim"); the waiter itself withdraws by swapping GC_SEL_WAITING for
 * GC_SEL_ABORTED.  Exactly one of them wins, so a thread waiting on many
 * channels (select) has exactly one case completed.
 *
 * The winner then fills the entry (result, payload) and publishes it by
 * storing GC_W_DONE into the waiter's `state`, waking it if it parked.  The
 * waiter reads the entry only after it has seen GC_W_DONE.
 *
 * Invariants:
 *   - an entry is linked on at most one queue, and only while its owner is
 *     inside gc_wait(); the queue's lock protects the links and `count`;
 *   - `sel` leaves GC_SEL_WAITING at most once per wait;
 *   - after a claim, the claimed entry is unlinked by the claimer (under
 *     the lock) and every other entry by its owner before gc_wait returns;
 *   - an entry queued before a fork() belongs, in the child, to a thread
 *     that does not exist there, and lives in memory the child may reuse
 *     (glibc hands the stacks of the parent's other threads to the
 *     child's new ones): it must never be read.  So a queue remembers the
 *     fork generation of its entries, and the first locked access in a
 *     child (every function below) empties it without walking it; an
 *     owner unlinking an entry of an older generation (the forking thread
 *     itself, when it forked from a signal handler run inside a wait) only
 *     marks it unlinked;
 *   - `empty` equals (head == NULL) whenever the lock is free; it is read
 *     without the lock by notifiers that must not pay for the lock when
 *     nobody waits (see the seq_cst fences in gc_chan.c).
 */
#ifndef GC_WAIT_H
#define GC_WAIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "gc_platform.h"

/* Values of gc_waiter.sel other than a claiming entry's address. */
#define GC_SEL_WAITING ((uintptr_t)0)
#define GC_SEL_ABORTED ((uintptr_t)1)

/* Values of gc_waiter.state. */
enum { GC_W_PENDING = 0, GC_W_PARKED = 1, GC_W_DONE = 2 };

typedef struct gc_waiter {
    _Atomic uintptr_t sel; /* WAITING, ABORTED, or the claimed entry */
    gc_parkword state;     /* PENDING -> (PARKED ->) DONE; futex word */
} gc_waiter;

typedef struct gc_entry {
    struct gc_entry *prev; /* neighbours on the queue (queue's lock) */
    struct gc_entry *next;
    gc_waiter *w;        /* the waiting thread */
    void *item;          /* send: value offered; recv: value handed in */
    int linked;          /* on a queue now (queue's lock) */
    int result;          /* GC_OK or GC_RETRY, set by the claimer */
    unsigned generation; /* gc_fork_generation() when it was queued */
} gc_entry;

typedef struct gc_waitq {
    gc_entry *head; /* oldest waiter first (FIFO service) */
    gc_entry *tail;
    _Atomic size_t count; /* entries linked; written under the lock */
    _Atomic int empty;    /* 1 when no entry is linked */
    unsigned generation;  /* fork generation of the entries (the lock) */
} gc_waitq;

void gc_waitq_init(gc_waitq *q);

/* Caller holds the queue's lock for the following four. */
void gc_waitq_push(gc_waitq *q, gc_entry *e);
void gc_waitq_unlink(gc_waitq *q, gc_entry *e);
/* Claim the oldest entry whose waiter is still waiting and is not `self`
 * (which may be NULL); unlink and return it, or NULL.  Entries of waiters
 * that already left (lost a select race) are skipped, not removed. */
gc_entry *gc_waitq_claim(gc_waitq *q, const gc_waiter *self);
/* The oldest entry whose waiter still waits, left where it is (a caller
 * that must look at it before claiming it, e.g. a weighted semaphore
 * checking that the oldest request fits), or NULL. */
gc_entry *gc_waitq_first_waiting(gc_waitq *q);
/* Claim entry e (from gc_waitq_first_waiting) and unlink it: 0 if its
 * waiter left meanwhile. */
int gc_waitq_claim_entry(gc_waitq *q, gc_entry *e);
/* gc_waitq_claim from the other end: the newest entry whose waiter still
 * waits (a pool handing work to its most recently idle thread). */
gc_entry *gc_waitq_claim_newest(gc_waitq *q);
/* Is there an entry of another waiter that is still waiting? */
int gc_waitq_has_waiting(gc_waitq *q, const gc_waiter *self);
/* In a child after fork(): drop the entries left by the parent's threads
 * (also done by every other function above on first use). */
void gc_waitq_forget_forked(gc_waitq *q);

/* Lock-free hint: may an entry be linked?  Pairs with the seq_cst fence
 * the waiter issues after linking. */
static inline int
gc_waitq_maybe_waiting(gc_waitq *q)
{
    return !atomic_load_explicit(&q->empty, memory_order_seq_cst);
}

/* Publish a claimed entry's outcome and wake its owner.  Call without
 * holding any lock; the entry must not be touched afterwards. */
void gc_entry_complete(gc_entry *e, int result);

#endif /* GC_WAIT_H */
