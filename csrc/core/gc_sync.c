/* gc_sync.c - Mutex, RWMutex, weighted Semaphore and WaitGroup (see
 * gc_sync.h for the contract).
 *
 * Every primitive follows one pattern.  Its state is one atomic word that
 * the fast paths change with a compare-and-swap.  A thread that cannot
 * proceed links an entry on the primitive's wait queue through gc_wait(),
 * which then asks the waitable's ready() whether it may proceed after all;
 * a thread that changes the state so that a waiter may proceed reads the
 * queue's `empty` flag afterwards (gc_waitq_maybe_waiting) and, if someone
 * may wait, takes the queue's lock, claims a waiter and completes it
 * outside the lock: GC_OK when it hands the primitive over (the waiter owns
 * it on return), GC_RETRY when it only wakes the waiter to try again.
 *
 * Invariants:
 *   - no wake-up is lost: a waiter's store of `empty` (seq_cst, in
 *     gc_waitq_push) comes before its seq_cst load of the state in ready(),
 *     and a releaser's seq_cst read-modify-write of the state comes before
 *     its seq_cst load of `empty`; in the single total order of seq_cst
 *     operations one of the two sees the other (Dekker's pattern, as for
 *     channels in gc_chan.c);
 *   - a waiter woken with GC_RETRY always tries the fast path again before
 *     it gives up (deadline, cancellation); one that gives up without
 *     trying (cancelled) passes the wake-up on, so that no waiter sleeps
 *     while the primitive is free;
 *   - the queues' locks are leaves: entries are claimed under them and
 *     completed after letting go;
 *   - Mutex: GC_MU_STARVING is set only while GC_MU_LOCKED is, and is
 *     cleared under the queue's lock;
 *   - RWMutex: readers enter by the fast path only while no writer holds
 *     the lock or waits for it; a writer's unlock admits the readers queued
 *     at that moment (adding them to the count under the queue's lock), so
 *     readers and writers take turns.  The waiting-writer count belongs to
 *     one fork generation: in a child after fork() the writers it counts
 *     do not exist, and the child's first slow path drops them (see
 *     rw_forget_forked);
 *   - Semaphore: tokens go to waiters only under the queue's lock, oldest
 *     first, and only while the oldest one fits (FIFO);
 *   - idle workers: an item is only ever handed over by completing a
 *     claimed entry (GC_OK), newest entry first; a worker whose wait ends
 *     otherwise was handed nothing.
 */
#include "gc_sync.h"

#define container_of(ptr, type, field) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, field)))

/* ---- helpers shared by every primitive ---------------------------------- */

static int
deadline_passed(int64_t deadline)
{
    return deadline != GC_FOREVER && gc_now_ns() >= deadline;
}

static int
cancelled(gc_chan *cancel)
{
    return cancel != NULL && gc_chan_closed(cancel);
}

/* Wait on `src` and on `cancel` being closed (a receive nothing is ever
 * sent to).  dir and item as for a case: GC_SEND puts item in the entry for
 * the releaser to read (a semaphore's weight). */
static gc_status
wait_on(gc_waitable *src, int dir, void *item, gc_chan *cancel,
        int64_t deadline, const gc_unlock *u, size_t *index)
{
    gc_case cases[2] = {
        {.ch = NULL, .src = src, .dir = dir, .item = item},
        {.ch = cancel, .dir = GC_RECV},
    };
    *index = 0;
    return gc_wait(cases, cancel != NULL ? 2 : 1, deadline, index, u);
}

/* Claim every waiter of q (caller holds its lock), chained through their
 * `next` links (free once an entry is unlinked); *count tells how many. */
static gc_entry *
claim_all(gc_waitq *q, size_t *count)
{
    gc_entry *chain = NULL, *e;
    while ((e = gc_waitq_claim(q, NULL)) != NULL) {
        e->next = chain;
        chain = e;
        (*count)++;
    }
    return chain;
}

static void
complete_all(gc_entry *chain, int result)
{
    while (chain != NULL) {
        gc_entry *e = chain;
        chain = e->next; /* read before completing: e may vanish after */
        gc_entry_complete(e, result);
    }
}

static void
wake_one(gc_mutex *lock, gc_waitq *q, int result)
{
    gc_mutex_lock(lock);
    gc_entry *e = gc_waitq_claim(q, NULL);
    gc_mutex_unlock(lock);
    if (e != NULL) {
        gc_entry_complete(e, result);
    }
}

static void
wake_all(gc_mutex *lock, gc_waitq *q, int result)
{
    size_t count = 0;
    gc_mutex_lock(lock);
    gc_entry *chain = claim_all(q, &count);
    gc_mutex_unlock(lock);
    complete_all(chain, result);
}

static void
waitable_init(gc_waitable *w, gc_mutex *lock, gc_waitq *q,
              int (*ready)(gc_waitable *))
{
    w->lock = lock;
    w->q = q;
    w->ready = ready;
}

/* ---- Mutex -------------------------------------------------------------- */

static int
mu_ready(gc_waitable *self)
{
    gc_mu *m = container_of(self, gc_mu, waitable);
    /* seq_cst: Dekker with unlock (see the top of the file). */
    return !(atomic_load(&m->state) & GC_MU_LOCKED);
}

int
gc_mu_init(gc_mu *m)
{
    atomic_init(&m->state, 0);
    if (gc_mutex_init(&m->lock) != 0) {
        return -1;
    }
    gc_waitq_init(&m->q);
    waitable_init(&m->waitable, &m->lock, &m->q, mu_ready);
    return 0;
}

void
gc_mu_destroy(gc_mu *m)
{
    gc_mutex_destroy(&m->lock);
}

int
gc_mu_try_lock(gc_mu *m)
{
    /* relaxed: a guess that the CAS checks. */
    uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
    while (!(s & GC_MU_LOCKED)) {
        /* acquire: pairs with the release (seq_cst) of unlock's CAS, so
         * the previous owner's critical section happens before ours. */
        if (atomic_compare_exchange_weak_explicit(
                &m->state, &s, s | GC_MU_LOCKED, memory_order_acquire,
                memory_order_relaxed)) {
            return 1;
        }
    }
    return 0;
}

int
gc_mu_locked(gc_mu *m)
{
    /* relaxed: a snapshot for the caller's information only. */
    return (atomic_load_explicit(&m->state, memory_order_relaxed) &
            GC_MU_LOCKED) != 0;
}

/* A waiter that has waited too long asks for hand-off.  Returns 1 if the
 * mutex turned out to be unlocked (try again), 0 once the flag is set. */
static int
mu_starve(gc_mu *m)
{
    /* relaxed: the flag carries no data; unlock reads it with the CAS
     * that fails because of it. */
    uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
    while (s & GC_MU_LOCKED) {
        if ((s & GC_MU_STARVING) ||
            atomic_compare_exchange_weak_explicit(
                &m->state, &s, s | GC_MU_STARVING, memory_order_relaxed,
                memory_order_relaxed)) {
            return 0;
        }
    }
    return 1;
}

/* A woken waiter leaves without the mutex (cancelled): if the mutex is
 * free, the wake-up it used up goes to the next waiter. */
static void
mu_pass_on(gc_mu *m)
{
    /* seq_cst: Dekker with unlock, as a waiter's ready() is. */
    if (!(atomic_load(&m->state) & GC_MU_LOCKED) &&
        gc_waitq_maybe_waiting(&m->q)) {
        wake_one(&m->lock, &m->q, GC_RETRY);
    }
}

gc_status
gc_mu_lock(gc_mu *m, int64_t deadline, gc_chan *cancel, const gc_unlock *u)
{
    if (cancelled(cancel)) {
        return GC_CANCELLED;
    }
    int64_t since = 0; /* when this call first had to wait */
    for (;;) {
        if (gc_mu_try_lock(m)) {
            return GC_OK;
        }
        int64_t now = gc_now_ns();
        if (deadline != GC_FOREVER && now >= deadline) {
            return GC_TIMEOUT;
        }
        if (since == 0) {
            since = now;
        }
        else if (now - since >= GC_MU_STARVE_NS && mu_starve(m)) {
            continue;
        }
        size_t index;
        gc_status st =
            wait_on(&m->waitable, GC_RECV, NULL, cancel, deadline, u, &index);
        if (st == GC_OK && index == 0) {
            return GC_OK; /* handed over by unlock: ours now */
        }
        if (st == GC_TIMEOUT || st == GC_INTR) {
            return st;
        }
        if (cancelled(cancel)) {
            mu_pass_on(m);
            return GC_CANCELLED;
        }
    }
}

/* Unlock in starvation mode: the mutex stays locked and goes to the oldest
 * waiter; with nobody to take it, it is unlocked. */
static void
mu_hand_off(gc_mu *m)
{
    gc_mutex_lock(&m->lock);
    gc_entry *e = gc_waitq_claim(&m->q, NULL);
    if (e == NULL) {
        /* seq_cst: Dekker with waiters that link after we let go of the
         * lock and then read the state in ready(). */
        atomic_fetch_and(&m->state, ~(GC_MU_LOCKED | GC_MU_STARVING));
    }
    else if (!gc_waitq_has_waiting(&m->q, NULL)) {
        /* Back to normal mode once nobody else waits.  relaxed: the flag
         * carries no data (see mu_starve). */
        atomic_fetch_and_explicit(&m->state, ~GC_MU_STARVING,
                                  memory_order_relaxed);
    }
    gc_mutex_unlock(&m->lock);
    if (e != NULL) {
        /* Our critical section happens before the new owner's: through the
         * queue lock and gc_entry_complete's release exchange. */
        gc_entry_complete(e, GC_OK);
    }
}

gc_sync_err
gc_mu_unlock(gc_mu *m)
{
    /* relaxed: a guess that the CAS checks. */
    uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
    for (;;) {
        if (!(s & GC_MU_LOCKED)) {
            return GC_SYNC_NOT_HELD;
        }
        if (s & GC_MU_STARVING) {
            mu_hand_off(m);
            return GC_SYNC_OK;
        }
        /* seq_cst: releases the critical section, and Dekker with the
         * waiters' ready() (top of the file). */
        if (atomic_compare_exchange_weak_explicit(
                &m->state, &s, s & ~GC_MU_LOCKED, memory_order_seq_cst,
                memory_order_relaxed)) {
            break;
        }
    }
    if (gc_waitq_maybe_waiting(&m->q)) {
        wake_one(&m->lock, &m->q, GC_RETRY);
    }
    return GC_SYNC_OK;
}

/* ---- RWMutex ------------------------------------------------------------ */

static int
rw_ready_read(gc_waitable *self)
{
    gc_rw *rw = container_of(self, gc_rw, rwait);
    /* seq_cst: Dekker with unlock and with a writer giving up. */
    uint64_t s = atomic_load(&rw->state);
    return !(s & (GC_RW_WRITER | GC_RW_WAITING_MASK)) &&
           GC_RW_READERS(s) < GC_RW_MAX_READERS;
}

static int
rw_ready_write(gc_waitable *self)
{
    gc_rw *rw = container_of(self, gc_rw, wwait);
    /* seq_cst: Dekker with unlock and runlock. */
    uint64_t s = atomic_load(&rw->state);
    return !(s & GC_RW_WRITER) && GC_RW_READERS(s) == 0;
}

int
gc_rw_init(gc_rw *rw)
{
    atomic_init(&rw->state, 0);
    atomic_init(&rw->generation, gc_fork_generation());
    if (gc_mutex_init(&rw->lock) != 0) {
        return -1;
    }
    gc_waitq_init(&rw->rq);
    gc_waitq_init(&rw->wq);
    waitable_init(&rw->rwait, &rw->lock, &rw->rq, rw_ready_read);
    waitable_init(&rw->wwait, &rw->lock, &rw->wq, rw_ready_write);
    return 0;
}

void
gc_rw_destroy(gc_rw *rw)
{
    gc_mutex_destroy(&rw->lock);
}

/* In a child after fork(), the writers counted as waiting are the
 * parent's: none exists here (the forking thread's own, if it forked from
 * a signal handler run inside gc_rw_lock, is announced again by that call),
 * and they would keep the child's readers out for ever.  The first call
 * here in a new generation drops them all, under the lock; every writer
 * calls this before it announces itself, so no writer of the child is
 * dropped.  Returns whether it dropped anything. */
static int
rw_forget_forked(gc_rw *rw)
{
    unsigned generation = gc_fork_generation();
    /* acquire: pairs with the release store below, so that a writer that
     * sees the new generation announces itself after the drop. */
    if (atomic_load_explicit(&rw->generation, memory_order_acquire) ==
        generation) {
        return 0;
    }
    int dropped = 0;
    gc_mutex_lock(&rw->lock);
    if (atomic_load_explicit(&rw->generation, memory_order_relaxed) !=
        generation) {
        /* seq_cst: like every change of the state (Dekker with ready()). */
        dropped = (atomic_fetch_and(&rw->state, ~GC_RW_WAITING_MASK) &
                   GC_RW_WAITING_MASK) != 0;
        atomic_store_explicit(&rw->generation, generation,
                              memory_order_release);
    }
    gc_mutex_unlock(&rw->lock);
    return dropped;
}

int
gc_rw_try_rlock(gc_rw *rw)
{
    /* relaxed: a guess that the CAS checks. */
    uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);
    while (!(s & (GC_RW_WRITER | GC_RW_WAITING_MASK)) &&
           GC_RW_READERS(s) < GC_RW_MAX_READERS) {
        /* acquire: pairs with the release (seq_cst) of a writer's unlock. */
        if (atomic_compare_exchange_weak_explicit(
                &rw->state, &s, s + GC_RW_READER, memory_order_acquire,
                memory_order_relaxed)) {
            return 1;
        }
    }
    /* Kept out by waiting writers: they may be a parent's, after fork. */
    if ((s & GC_RW_WAITING_MASK) && rw_forget_forked(rw)) {
        return gc_rw_try_rlock(rw);
    }
    return 0;
}

gc_status
gc_rw_rlock(gc_rw *rw, int64_t deadline, gc_chan *cancel, const gc_unlock *u)
{
    if (cancelled(cancel)) {
        return GC_CANCELLED;
    }
    for (;;) {
        if (gc_rw_try_rlock(rw)) {
            return GC_OK;
        }
        if (deadline_passed(deadline)) {
            return GC_TIMEOUT;
        }
        size_t index;
        gc_status st =
            wait_on(&rw->rwait, GC_RECV, NULL, cancel, deadline, u, &index);
        if (st == GC_OK && index == 0) {
            return GC_OK; /* admitted by a writer's unlock */
        }
        if (st == GC_TIMEOUT || st == GC_INTR) {
            return st;
        }
        /* Readers are always woken all together: nothing to pass on. */
        if (cancelled(cancel)) {
            return GC_CANCELLED;
        }
    }
}

gc_sync_err
gc_rw_runlock(gc_rw *rw)
{
    /* relaxed: a guess that the CAS checks. */
    uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);
    for (;;) {
        if (GC_RW_READERS(s) == 0) {
            return (s & GC_RW_WRITER) ? GC_SYNC_WRONG_MODE : GC_SYNC_NOT_HELD;
        }
        /* seq_cst: releases the read section (to the next writer), and
         * Dekker with a waiting writer's ready(). */
        if (atomic_compare_exchange_weak_explicit(
                &rw->state, &s, s - GC_RW_READER, memory_order_seq_cst,
                memory_order_relaxed)) {
            break;
        }
    }
    uint64_t now = s - GC_RW_READER;
    if (GC_RW_READERS(now) == 0 && (now & GC_RW_WAITING_MASK) &&
        gc_waitq_maybe_waiting(&rw->wq)) {
        wake_one(&rw->lock, &rw->wq, GC_RETRY);
    }
    else if (GC_RW_READERS(s) == GC_RW_MAX_READERS &&
             gc_waitq_maybe_waiting(&rw->rq)) {
        wake_all(&rw->lock, &rw->rq, GC_RETRY); /* room for one more */
    }
    return GC_SYNC_OK;
}

int
gc_rw_try_lock(gc_rw *rw)
{
    /* relaxed: a guess that the CAS checks. */
    uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);
    while (!(s & GC_RW_WRITER) && GC_RW_READERS(s) == 0) {
        /* acquire: pairs with the release (seq_cst) of the last unlock or
         * runlock. */
        if (atomic_compare_exchange_weak_explicit(
                &rw->state, &s, s | GC_RW_WRITER, memory_order_acquire,
                memory_order_relaxed)) {
            return 1;
        }
    }
    return 0;
}

/* A writer that announced itself gives up: take the announcement back and
 * wake whoever it was keeping out. */
static void
rw_withdraw_writer(gc_rw *rw)
{
    /* seq_cst: Dekker with the readers' (and writers') ready(). */
    uint64_t s = atomic_fetch_sub(&rw->state, GC_RW_WAITING_WRITER) -
                 GC_RW_WAITING_WRITER;
    if (!(s & (GC_RW_WRITER | GC_RW_WAITING_MASK)) &&
        gc_waitq_maybe_waiting(&rw->rq)) {
        wake_all(&rw->lock, &rw->rq, GC_RETRY);
    }
    /* We may have been woken and used up a writer's wake-up. */
    if (!(s & GC_RW_WRITER) && GC_RW_READERS(s) == 0 &&
        (s & GC_RW_WAITING_MASK) && gc_waitq_maybe_waiting(&rw->wq)) {
        wake_one(&rw->lock, &rw->wq, GC_RETRY);
    }
}

gc_status
gc_rw_lock(gc_rw *rw, int64_t deadline, gc_chan *cancel, const gc_unlock *u)
{
    if (cancelled(cancel)) {
        return GC_CANCELLED;
    }
    if (gc_rw_try_lock(rw)) {
        return GC_OK;
    }
    (void)rw_forget_forked(rw); /* before we count among the waiting */
    unsigned generation = gc_fork_generation();
    /* From here on new readers wait.  seq_cst: Dekker with their
     * ready(), and with runlock's view of the waiting writers. */
    atomic_fetch_add(&rw->state, GC_RW_WAITING_WRITER);
    gc_status st;
    for (;;) {
        /* relaxed: a guess that the CAS checks. */
        uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);
        while (!(s & GC_RW_WRITER) && GC_RW_READERS(s) == 0) {
            /* acquire: pairs with the release (seq_cst) of the last unlock
             * or runlock. */
            if (atomic_compare_exchange_weak_explicit(
                    &rw->state, &s, (s - GC_RW_WAITING_WRITER) | GC_RW_WRITER,
                    memory_order_acquire, memory_order_relaxed)) {
                return GC_OK;
            }
        }
        if (deadline_passed(deadline)) {
            st = GC_TIMEOUT;
            break;
        }
        size_t index;
        st = wait_on(&rw->wwait, GC_RECV, NULL, cancel, deadline, u, &index);
        if (gc_fork_generation() != generation) {
            /* A signal handler run inside our wait forked, and this is
             * the child: our announcement may have been dropped with the
             * parent's writers, so make it anew (once they are dropped)
             * before anything takes it back. */
            (void)rw_forget_forked(rw);
            generation = gc_fork_generation();
            atomic_fetch_add(&rw->state, GC_RW_WAITING_WRITER);
        }
        /* Writers are only ever woken to retry, never handed the lock. */
        if (st == GC_TIMEOUT || st == GC_INTR) {
            break;
        }
        if (cancelled(cancel)) {
            st = GC_CANCELLED;
            break;
        }
    }
    rw_withdraw_writer(rw);
    return st;
}

/* After a writer's unlock: admit every reader queued now, unless another
 * writer got in first (then they are woken to queue again behind it).
 * Returns whether readers were admitted. */
static int
rw_admit_readers(gc_rw *rw)
{
    size_t count = 0;
    int result = GC_RETRY;
    gc_mutex_lock(&rw->lock);
    gc_entry *chain = claim_all(&rw->rq, &count);
    if (count > 0) {
        /* relaxed: a guess that the CAS checks. */
        uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);
        while (!(s & GC_RW_WRITER)) {
            /* seq_cst: acquires what a writer that got in and out since
             * our unlock wrote, and releases it to the admitted readers
             * (through gc_entry_complete). */
            if (atomic_compare_exchange_weak_explicit(
                    &rw->state, &s, s + (uint64_t)count * GC_RW_READER,
                    memory_order_seq_cst, memory_order_relaxed)) {
                result = GC_OK;
                break;
            }
        }
    }
    gc_mutex_unlock(&rw->lock);
    complete_all(chain, result);
    return result == GC_OK;
}

gc_sync_err
gc_rw_unlock(gc_rw *rw)
{
    /* relaxed: a guess that the CAS checks. */
    uint64_t s = atomic_load_explicit(&rw->state, memory_order_relaxed);
    for (;;) {
        if (!(s & GC_RW_WRITER)) {
            return GC_RW_READERS(s) ? GC_SYNC_WRONG_MODE : GC_SYNC_NOT_HELD;
        }
        /* seq_cst: releases the critical section, and Dekker with the
         * waiters' ready(). */
        if (atomic_compare_exchange_weak_explicit(
                &rw->state, &s, s & ~GC_RW_WRITER, memory_order_seq_cst,
                memory_order_relaxed)) {
            break;
        }
    }
    if (gc_waitq_maybe_waiting(&rw->rq) && rw_admit_readers(rw)) {
        return GC_SYNC_OK; /* the last of them wakes the next writer */
    }
    if (gc_waitq_maybe_waiting(&rw->wq)) {
        wake_one(&rw->lock, &rw->wq, GC_RETRY);
    }
    return GC_SYNC_OK;
}

/* ---- weighted Semaphore ------------------------------------------------- */

/* Take n tokens if that many are free. */
static int
sem_take(gc_sem *s, int64_t n)
{
    /* relaxed: a guess that the CAS checks. */
    int64_t a = atomic_load_explicit(&s->avail, memory_order_relaxed);
    while (a >= n) {
        /* seq_cst: pairs with release's CAS (the tokens' previous holder
         * happens before us) and Dekker with the waiters' `empty`. */
        if (atomic_compare_exchange_weak_explicit(&s->avail, &a, a - n,
                                                  memory_order_seq_cst,
                                                  memory_order_relaxed)) {
            return 1;
        }
    }
    return 0;
}

/* Hand free tokens to the waiters, oldest first, while the oldest fits. */
static void
sem_serve(gc_sem *s)
{
    gc_entry *chain = NULL;
    gc_mutex_lock(&s->lock);
    for (;;) {
        gc_entry *e = gc_waitq_first_waiting(&s->q);
        if (e == NULL) {
            break;
        }
        int64_t want = (int64_t)(uintptr_t)e->item;
        if (!sem_take(s, want)) {
            break; /* FIFO: the oldest waits for room, and so do the rest */
        }
        if (!gc_waitq_claim_entry(&s->q, e)) {
            /* It left just now (or paused for a signal): give them back.
             * seq_cst: as release's CAS. */
            atomic_fetch_add(&s->avail, want);
            continue;
        }
        e->next = chain;
        chain = e;
    }
    gc_mutex_unlock(&s->lock);
    complete_all(chain, GC_OK);
}

/* Called by gc_wait right after our entry is linked: rather than telling
 * the waiter to retry (which would send it to the back of the queue), serve
 * the queue, which hands the waiter its tokens if they are free and it is
 * the oldest.  Returns 0: the waiter then finds itself completed, or
 * sleeps. */
static int
sem_ready(gc_waitable *self)
{
    sem_serve(container_of(self, gc_sem, waitable));
    return 0;
}

int
gc_sem_init(gc_sem *s, int64_t size)
{
    s->size = size;
    atomic_init(&s->avail, size);
    if (gc_mutex_init(&s->lock) != 0) {
        return -1;
    }
    gc_waitq_init(&s->q);
    waitable_init(&s->waitable, &s->lock, &s->q, sem_ready);
    return 0;
}

void
gc_sem_destroy(gc_sem *s)
{
    gc_mutex_destroy(&s->lock);
}

int
gc_sem_try_acquire(gc_sem *s, int64_t n)
{
    if (gc_waitq_maybe_waiting(&s->q)) {
        /* Someone may be queued: first come, first served. */
        gc_mutex_lock(&s->lock);
        int queued = gc_waitq_has_waiting(&s->q, NULL);
        gc_mutex_unlock(&s->lock);
        if (queued) {
            return 0;
        }
    }
    return sem_take(s, n);
}

gc_status
gc_sem_acquire(gc_sem *s, int64_t n, int64_t deadline, gc_chan *cancel,
               const gc_unlock *u)
{
    if (cancelled(cancel)) {
        return GC_CANCELLED;
    }
    for (;;) {
        if (gc_sem_try_acquire(s, n)) {
            return GC_OK;
        }
        if (deadline_passed(deadline)) {
            return GC_TIMEOUT;
        }
        size_t index;
        gc_status st = wait_on(&s->waitable, GC_SEND, (void *)(uintptr_t)n,
                               cancel, deadline, u, &index);
        if (st == GC_OK && index == 0) {
            return GC_OK; /* the tokens were handed to us */
        }
        int gave_up = cancelled(cancel);
        if (st == GC_TIMEOUT || st == GC_INTR || gave_up) {
            /* A large request at the head may have been holding back the
             * ones behind it. */
            if (gc_waitq_maybe_waiting(&s->q)) {
                sem_serve(s);
            }
            return gave_up ? GC_CANCELLED : st;
        }
    }
}

gc_sync_err
gc_sem_release(gc_sem *s, int64_t n)
{
    /* relaxed: a guess that the CAS checks. */
    int64_t a = atomic_load_explicit(&s->avail, memory_order_relaxed);
    do {
        if (n > s->size - a) {
            return GC_SYNC_NOT_HELD;
        }
        /* seq_cst: releases to the next holder of the tokens, and Dekker
         * with the waiters' `empty` (top of the file). */
    } while (!atomic_compare_exchange_weak_explicit(
        &s->avail, &a, a + n, memory_order_seq_cst, memory_order_relaxed));
    if (gc_waitq_maybe_waiting(&s->q)) {
        sem_serve(s);
    }
    return GC_SYNC_OK;
}

int64_t
gc_sem_available(gc_sem *s)
{
    /* relaxed: a snapshot for the caller's information only. */
    return atomic_load_explicit(&s->avail, memory_order_relaxed);
}

/* ---- WaitGroup ---------------------------------------------------------- */

static int
wg_ready(gc_waitable *self)
{
    gc_wg *wg = container_of(self, gc_wg, waitable);
    /* seq_cst: Dekker with add (top of the file). */
    return atomic_load(&wg->count) == 0;
}

int
gc_wg_init(gc_wg *wg, int64_t count)
{
    atomic_init(&wg->count, count);
    if (gc_mutex_init(&wg->lock) != 0) {
        return -1;
    }
    gc_waitq_init(&wg->q);
    waitable_init(&wg->waitable, &wg->lock, &wg->q, wg_ready);
    return 0;
}

void
gc_wg_destroy(gc_wg *wg)
{
    gc_mutex_destroy(&wg->lock);
}

gc_sync_err
gc_wg_add(gc_wg *wg, int64_t delta)
{
    /* relaxed: a guess that the CAS checks. */
    int64_t c = atomic_load_explicit(&wg->count, memory_order_relaxed);
    do {
        if (delta < 0 && c + delta < 0) {
            return GC_SYNC_NEGATIVE;
        }
        if (delta > 0 && c > INT64_MAX - delta) {
            return GC_SYNC_OVERFLOW;
        }
        /* seq_cst: releases the work done before done() to the waiters,
         * and Dekker with their ready(). */
    } while (!atomic_compare_exchange_weak_explicit(&wg->count, &c, c + delta,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed));
    if (delta != 0 && c + delta == 0 && gc_waitq_maybe_waiting(&wg->q)) {
        wake_all(&wg->lock, &wg->q, GC_OK);
    }
    return GC_SYNC_OK;
}

gc_status
gc_wg_wait(gc_wg *wg, int64_t deadline, gc_chan *cancel, const gc_unlock *u)
{
    if (cancelled(cancel)) {
        return GC_CANCELLED;
    }
    for (;;) {
        /* acquire: pairs with add's CAS, so the work done before the last
         * done() is visible to the caller. */
        if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0) {
            return GC_OK;
        }
        if (deadline_passed(deadline)) {
            return GC_TIMEOUT;
        }
        size_t index;
        gc_status st =
            wait_on(&wg->waitable, GC_RECV, NULL, cancel, deadline, u, &index);
        if (st == GC_OK && index == 0) {
            return GC_OK; /* the counter reached zero */
        }
        if (st == GC_TIMEOUT || st == GC_INTR) {
            return st;
        }
        if (cancelled(cancel)) {
            return GC_CANCELLED;
        }
    }
}

int64_t
gc_wg_count(gc_wg *wg)
{
    /* relaxed: a snapshot for the caller's information only. */
    return atomic_load_explicit(&wg->count, memory_order_relaxed);
}

/* ---- idle workers ------------------------------------------------------- */

static int
idle_ready(gc_waitable *self)
{
    (void)self;
    return 0; /* a worker proceeds only when handed something */
}

int
gc_idle_init(gc_idle *p)
{
    if (gc_mutex_init(&p->lock) != 0) {
        return -1;
    }
    gc_waitq_init(&p->q);
    waitable_init(&p->waitable, &p->lock, &p->q, idle_ready);
    return 0;
}

void
gc_idle_destroy(gc_idle *p)
{
    gc_mutex_destroy(&p->lock);
}

int
gc_idle_hand(gc_idle *p, void *item)
{
    if (!gc_waitq_maybe_waiting(&p->q)) {
        return 0;
    }
    gc_mutex_lock(&p->lock);
    gc_entry *e = gc_waitq_claim_newest(&p->q);
    gc_mutex_unlock(&p->lock);
    if (e == NULL) {
        return 0;
    }
    e->item = item;
    gc_entry_complete(e, GC_OK);
    return 1;
}

gc_status
gc_idle_wait(gc_idle *p, void **item, int64_t deadline, const gc_unlock *u)
{
    for (;;) {
        if (deadline_passed(deadline)) {
            return GC_TIMEOUT;
        }
        gc_case c = {.ch = NULL, .src = &p->waitable, .dir = GC_RECV};
        size_t index;
        gc_status st = gc_wait(&c, 1, deadline, &index, u);
        if (st == GC_OK) {
            *item = c.item;
            return GC_OK;
        }
        if (st != GC_RETRY) {
            return st;
        }
    }
}

size_t
gc_idle_count(gc_idle *p)
{
    /* relaxed: a gauge for tests. */
    return atomic_load_explicit(&p->q.count, memory_order_relaxed);
}
