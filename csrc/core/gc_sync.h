/* gc_sync.h - Go's sync primitives on the core's waiting protocol: Mutex
 * (gc_mu), RWMutex (gc_rw), weighted Semaphore (gc_sem) and WaitGroup
 * (gc_wg).
 *
 * Each primitive keeps its state in one atomic word.  The uncontended
 * paths (lock, unlock, acquire, release, add) are one compare-and-swap and,
 * on the releasing side, one atomic load of a wait queue's `empty` flag: no
 * lock, no syscall, and the caller's lock (the GIL) is never let go.  A
 * thread that must wait parks through gc_wait() on the primitive's
 * gc_waitable (a wait queue under a leaf lock), with a second case on a
 * cancellation channel when it has one, so every wait gets FIFO queues,
 * deadlines, cancellation, signals, spinning and the GIL hand-off policy
 * from one place.
 *
 * Blocking calls take an absolute deadline (GC_FOREVER: none; a deadline
 * <= now means "try once"), `cancel` (a channel nobody sends on, closed to
 * cancel: a context's done channel; may be NULL) and the caller's lock
 * (`u`, may be NULL).  They return
 *   GC_OK        acquired (or, for gc_wg_wait, the counter is zero);
 *   GC_TIMEOUT   the deadline passed first;
 *   GC_CANCELLED `cancel` is closed: checked before anything else, so a
 *                call whose channel is already closed does nothing;
 *   GC_INTR      a signal interrupted the wait (see gc_unlock): nothing
 *                was acquired and the wait is withdrawn; call again with
 *                the same deadline to go on waiting.
 * Misuse (unlocking what is not locked, a negative counter...) is answered
 * with a gc_sync_err and changes nothing.
 *
 * gc_idle is the rendezvous of a pool of worker threads: idle workers
 * wait on it, and work is handed to the one that went idle last, so that a
 * steady trickle of work keeps few threads busy and lets the others time
 * out and retire.
 *
 * Semantics (Go's, as API.md pins them down):
 *   - Mutex: a woken waiter competes with newcomers ("normal mode"), which
 *     keeps a busy mutex cheap; a waiter that has waited longer than
 *     GC_MU_STARVE_NS turns on "starvation mode", where unlock hands the
 *     mutex straight to the oldest waiter, until the queue is empty.
 *   - RWMutex: a writer waiting blocks new readers; a writer's unlock lets
 *     in every reader waiting at that moment before the next writer.
 *   - Semaphore: weighted and strictly FIFO: the oldest waiter is served
 *     first even when a later, smaller request would fit, and try_acquire
 *     fails while anyone is queued.
 *   - WaitGroup: wait returns once the counter is zero; add never lets it
 *     go below zero.
 */
#ifndef GC_SYNC_H
#define GC_SYNC_H

#include "gc_chan.h"

typedef enum gc_sync_err {
    GC_SYNC_OK = 0,
    GC_SYNC_NOT_HELD,   /* unlock of what is not locked; release of more
                           than is held */
    GC_SYNC_WRONG_MODE, /* RWMutex: unlock of a read lock, runlock of a
                           write lock */
    GC_SYNC_NEGATIVE,   /* a WaitGroup counter would go below zero */
    GC_SYNC_OVERFLOW    /* a count would go beyond what it can hold */
} gc_sync_err;

/* ---- Mutex -------------------------------------------------------------- */

/* Bits of gc_mu.state. */
#define GC_MU_LOCKED   1u
#define GC_MU_STARVING 2u /* only ever set together with LOCKED */

/* A waiter that has waited this long asks for hand-off (Go's 1 ms). */
#define GC_MU_STARVE_NS 1000000

typedef struct gc_mu {
    _Atomic uint32_t state; /* GC_MU_LOCKED | GC_MU_STARVING */
    gc_mutex lock;          /* guards q */
    gc_waitq q;             /* threads waiting to lock, oldest first */
    gc_waitable waitable;   /* {&lock, &q, ready: not locked} */
} gc_mu;

/* 0, or -1 when the leaf lock could not be made. */
int gc_mu_init(gc_mu *m);
void gc_mu_destroy(gc_mu *m);
int gc_mu_try_lock(gc_mu *m);
gc_status gc_mu_lock(gc_mu *m, int64_t deadline, gc_chan *cancel,
                     const gc_unlock *u);
/* GC_SYNC_OK or GC_SYNC_NOT_HELD.  Any thread may unlock (as in Go). */
gc_sync_err gc_mu_unlock(gc_mu *m);
int gc_mu_locked(gc_mu *m);

/* ---- RWMutex ------------------------------------------------------------ */

/* gc_rw.state: bit 0 a writer holds it; bits 1-31 count the writers
 * waiting (each adds GC_RW_WAITING_WRITER); bits 32-63 count the readers
 * holding it. */
#define GC_RW_WRITER         ((uint64_t)1)
#define GC_RW_WAITING_WRITER ((uint64_t)2)
#define GC_RW_WAITING_MASK   ((uint64_t)0xFFFFFFFEu)
#define GC_RW_READER         ((uint64_t)1 << 32)
#define GC_RW_READERS(s)     ((s) >> 32)
#define GC_RW_MAX_READERS    ((uint64_t)0xFFFFFFFFu)

typedef struct gc_rw {
    _Atomic uint64_t state;      /* see above */
    gc_mutex lock;               /* guards rq and wq */
    gc_waitq rq;                 /* readers waiting, oldest first */
    gc_waitq wq;                 /* writers waiting, oldest first */
    gc_waitable rwait;           /* {&lock, &rq, ready: a reader may enter} */
    gc_waitable wwait;           /* {&lock, &wq, ready: a writer may enter} */
    _Atomic unsigned generation; /* fork generation of the waiting-writer
                                  * count (written under lock) */
} gc_rw;

int gc_rw_init(gc_rw *rw);
void gc_rw_destroy(gc_rw *rw);
int gc_rw_try_rlock(gc_rw *rw);
gc_status gc_rw_rlock(gc_rw *rw, int64_t deadline, gc_chan *cancel,
                      const gc_unlock *u);
/* GC_SYNC_OK, GC_SYNC_NOT_HELD, or GC_SYNC_WRONG_MODE (write-locked). */
gc_sync_err gc_rw_runlock(gc_rw *rw);
int gc_rw_try_lock(gc_rw *rw);
gc_status gc_rw_lock(gc_rw *rw, int64_t deadline, gc_chan *cancel,
                     const gc_unlock *u);
/* GC_SYNC_OK, GC_SYNC_NOT_HELD, or GC_SYNC_WRONG_MODE (read-locked). */
gc_sync_err gc_rw_unlock(gc_rw *rw);

/* ---- weighted Semaphore ------------------------------------------------- */

typedef struct gc_sem {
    int64_t size;          /* tokens in all (fixed) */
    _Atomic int64_t avail; /* tokens free now */
    gc_mutex lock;         /* guards q; serializes hand-outs to waiters */
    gc_waitq q;            /* waiters, oldest first; entry.item = weight */
    gc_waitable waitable;  /* {&lock, &q, ready: see sem_ready} */
} gc_sem;

/* size >= 0.  0, or -1 when the leaf lock could not be made. */
int gc_sem_init(gc_sem *s, int64_t size);
void gc_sem_destroy(gc_sem *s);
/* Take n tokens (0 <= n <= size) if nobody is queued and they are free. */
int gc_sem_try_acquire(gc_sem *s, int64_t n);
/* Wait for n tokens, 0 <= n <= size (the caller checks: a larger request
 * could never be served). */
gc_status gc_sem_acquire(gc_sem *s, int64_t n, int64_t deadline,
                         gc_chan *cancel, const gc_unlock *u);
/* Give back n >= 0 tokens: GC_SYNC_OK, or GC_SYNC_NOT_HELD if that would
 * make more than `size` free. */
gc_sync_err gc_sem_release(gc_sem *s, int64_t n);
int64_t gc_sem_available(gc_sem *s);

/* ---- WaitGroup ---------------------------------------------------------- */

typedef struct gc_wg {
    _Atomic int64_t count; /* the counter; never negative */
    gc_mutex lock;         /* guards q */
    gc_waitq q;            /* threads in wait(), oldest first */
    gc_waitable waitable;  /* {&lock, &q, ready: count == 0} */
} gc_wg;

int gc_wg_init(gc_wg *wg, int64_t count);
void gc_wg_destroy(gc_wg *wg);
/* Add delta (may be negative): GC_SYNC_OK, or GC_SYNC_NEGATIVE /
 * GC_SYNC_OVERFLOW with the counter unchanged.  Reaching zero wakes every
 * waiter. */
gc_sync_err gc_wg_add(gc_wg *wg, int64_t delta);
gc_status gc_wg_wait(gc_wg *wg, int64_t deadline, gc_chan *cancel,
                     const gc_unlock *u);
int64_t gc_wg_count(gc_wg *wg);

/* ---- idle workers ------------------------------------------------------- */

typedef struct gc_idle {
    gc_mutex lock;        /* guards q */
    gc_waitq q;           /* idle workers, newest last */
    gc_waitable waitable; /* {&lock, &q, ready: never (only hand-offs)} */
} gc_idle;

int gc_idle_init(gc_idle *p);
void gc_idle_destroy(gc_idle *p);
/* Hand `item` to the worker that went idle last: 1 if one took it, 0 if
 * none waits (the item stays with the caller).  Never blocks. */
int gc_idle_hand(gc_idle *p, void *item);
/* Wait to be handed an item: GC_OK with *item set, GC_TIMEOUT, or
 * GC_INTR (a signal: nothing was handed; call again to go on waiting). */
gc_status gc_idle_wait(gc_idle *p, void **item, int64_t deadline,
                       const gc_unlock *u);
/* Workers waiting now (a gauge, for tests). */
size_t gc_idle_count(gc_idle *p);

#endif /* GC_SYNC_H */
