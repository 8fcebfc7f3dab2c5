/* gc_wait.c - waiters, entries and wait queues (see gc_wait.h for the
 * protocol and its invariants). */
#include "gc_wait.h"

void
gc_waitq_init(gc_waitq *q)
{
    q->head = q->tail = NULL;
    atomic_init(&q->count, 0);
    atomic_init(&q->empty, 1);
    q->generation = gc_fork_generation();
}

/* Empty q if its entries come from before a fork (see gc_wait.h): their
 * memory may belong to a new thread of the child by now, so they are
 * dropped without being read.  Caller holds the queue's lock. */
static inline void
fresh(gc_waitq *q)
{
    unsigned generation = gc_fork_generation();
    if (q->generation != generation) {
        q->head = q->tail = NULL;
        atomic_store_explicit(&q->count, 0, memory_order_relaxed);
        atomic_store_explicit(&q->empty, 1, memory_order_seq_cst);
        q->generation = generation;
    }
}

static void
set_empty(gc_waitq *q)
{
    /* seq_cst: a notifier reads `empty` without the lock after publishing
     * a change to the channel, and a waiter re-checks the channel after
     * linking; one of the two always sees the other (gc_chan.c). */
    atomic_store_explicit(&q->empty, q->head == NULL, memory_order_seq_cst);
}

void
gc_waitq_push(gc_waitq *q, gc_entry *e)
{
    fresh(q);
    e->next = NULL;
    e->prev = q->tail;
    if (q->tail) {
        q->tail->next = e;
    }
    else {
        q->head = e;
    }
    q->tail = e;
    e->linked = 1;
    e->generation = q->generation;
    set_empty(q);
    /* release: whoever sees the new count (acquire, in statistics) also
     * sees `empty` cleared, so it can act on the waiter it counted. */
    atomic_fetch_add_explicit(&q->count, 1, memory_order_release);
}

void
gc_waitq_unlink(gc_waitq *q, gc_entry *e)
{
    fresh(q);
    if (e->linked && e->generation != q->generation) {
        e->linked = 0; /* dropped with the queue's pre-fork entries */
    }
    if (!e->linked) {
        return;
    }
    if (e->prev) {
        e->prev->next = e->next;
    }
    else {
        q->head = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    }
    else {
        q->tail = e->prev;
    }
    e->prev = e->next = NULL;
    e->linked = 0;
    /* relaxed: statistics only; the lock orders every writer. */
    atomic_fetch_sub_explicit(&q->count, 1, memory_order_relaxed);
    set_empty(q);
}

gc_entry *
gc_waitq_claim(gc_waitq *q, const gc_waiter *self)
{
    fresh(q);
    for (gc_entry *e = q->head; e != NULL; e = e->next) {
        if (e->w != self && gc_waitq_claim_entry(q, e)) {
            return e;
        }
    }
    return NULL;
}

gc_entry *
gc_waitq_first_waiting(gc_waitq *q)
{
    fresh(q);
    for (gc_entry *e = q->head; e != NULL; e = e->next) {
        /* acquire: pairs with the release of an abort or a claim. */
        if (atomic_load_explicit(&e->w->sel, memory_order_acquire) ==
            GC_SEL_WAITING) {
            return e;
        }
    }
    return NULL;
}

int
gc_waitq_claim_entry(gc_waitq *q, gc_entry *e)
{
    uintptr_t expect = GC_SEL_WAITING;
    /* seq_cst, also on failure: a waiter that paused to run a signal hook
     * (sleep_in_place in gc_chan.c) re-arms with a seq_cst store of sel
     * and then re-reads the channel; a claimer that changed the channel
     * and then finds sel ABORTED must be ordered with that (Dekker, as in
     * notify_some).  It also covers acquire (the owner's setup of the
     * entry) and release (our writes into it that follow). */
    if (!atomic_compare_exchange_strong_explicit(
            &e->w->sel, &expect, (uintptr_t)e, memory_order_seq_cst,
            memory_order_seq_cst)) {
        return 0;
    }
    gc_waitq_unlink(q, e);
    return 1;
}

gc_entry *
gc_waitq_claim_newest(gc_waitq *q)
{
    fresh(q);
    for (gc_entry *e = q->tail; e != NULL; e = e->prev) {
        if (gc_waitq_claim_entry(q, e)) {
            return e;
        }
    }
    return NULL;
}

int
gc_waitq_has_waiting(gc_waitq *q, const gc_waiter *self)
{
    fresh(q);
    for (const gc_entry *e = q->head; e != NULL; e = e->next) {
        /* acquire: pairs with the release of a claim or an abort. */
        if (e->w != self &&
            atomic_load_explicit(&e->w->sel, memory_order_acquire) ==
                GC_SEL_WAITING) {
            return 1;
        }
    }
    return 0;
}

void
gc_waitq_forget_forked(gc_waitq *q)
{
    fresh(q);
}

void
gc_entry_complete(gc_entry *e, int result)
{
    gc_waiter *w = e->w;
    e->result = result;
    /* release: publishes `result` and `item` to the owner, which loads
     * `state` with acquire before reading them.  After this exchange the
     * entry and the waiter may already be gone: gc_unpark only passes the
     * address to the kernel, and a wake at an address nobody (or some
     * later waiter) sleeps on is harmless, every park loop rechecks. */
    uint32_t prev =
        atomic_exchange_explicit(&w->state, GC_W_DONE, memory_order_acq_rel);
    if (prev == GC_W_PARKED) {
        gc_unpark(&w->state);
    }
}
