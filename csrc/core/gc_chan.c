/* gc_chan.c - channels (see gc_chan.h for the contract).
 *
 * Two flavors share one struct and one waiting protocol (gc_wait.h):
 *
 * Buffered (cap >= 1): a bounded lock-free ring after Dmitry Vyukov's MPMC
 * queue, in the form crossbeam-channel's `array` flavor gives it.  `head`
 * and `tail` each hold a lap and an index: index in the low bits (below
 * mark_bit), lap above one_lap.  Every slot has a stamp: a slot is free
 * for the sender holding tail T when its stamp equals T, and holds a value
 * for the receiver holding head H when its stamp equals H + 1.  The bit
 * `mark_bit` of `tail` is set once by close().  Waiting senders and
 * receivers sit on `sendq` and `recvq`, each under its own lock.
 *
 * Unbuffered (cap == 0): no buffer.  `lock` guards both queues and
 * `closed`; a sender hands its value to the oldest waiting receiver (or a
 * receiver takes it from the oldest waiting sender) through the entry.
 *
 * Invariants:
 *   - only the try_* functions (and close, which moves nothing) touch the
 *     ring; gc_wait never does, so a binding can traverse the ring under
 *     the lock it holds around try_* (gc_chan.h);
 *   - a buffered channel's receivers wait only while the ring is empty and
 *     its senders only while it is full; a thread that registers stores
 *     its queue's `empty` flag and then re-reads the ring, and whoever
 *     changes the ring (a seq_cst CAS) then reads that flag, all seq_cst,
 *     so no wake-up is lost (Dekker's pattern: in the single total order
 *     of seq_cst operations one of the two sees the other; notify_some);
 *   - a value goes straight to a waiting receiver only while the ring is
 *     empty, so a sender's earlier values (already consumed) cannot be
 *     overtaken: FIFO per sender holds;
 *   - locks are leaves: nothing is woken and no callback runs under them.
 */
#include "gc_chan.h"

#include <stdlib.h>

#define GC_CACHELINE 64

/* Spinning.  A waiter may spin on its state word before it parks, and a
 * thread woken by a peer may spin until the peer lets go of the GIL
 * (take_back).  Both exist because waking a parked thread is slow when its
 * CPU has gone idle: measured here, the median wake-up then takes about
 * 35 us, and two threads that hand values back and forth, each parking
 * every time, pay that on every exchange.  Spinning only pays while a CPU
 * would otherwise idle; gc_spin_begin() (gc_platform.c) allows it only
 * then.  How long a thread spins is learnt from how long its recent waits
 * lasted: a wait that ended within GC_SPIN_MAX_NS stretches the budget to
 * cover it with a margin, a longer one halves it, so a thread that waits
 * for rare events soon spins only GC_SPIN_MIN_NS. */
#define GC_SPIN_MIN_NS   2000
#define GC_SPIN_START_NS 20000
#define GC_SPIN_MAX_NS   100000

static _Thread_local int64_t spin_budget_ns = GC_SPIN_START_NS;

static void
spin_budget_learn(int64_t waited)
{
    if (waited <= GC_SPIN_MAX_NS) {
        int64_t want = waited + waited / 2;
        if (want > spin_budget_ns) {
            spin_budget_ns = want < GC_SPIN_MAX_NS ? want : GC_SPIN_MAX_NS;
        }
    }
    else if (spin_budget_ns / 2 >= GC_SPIN_MIN_NS) {
        spin_budget_ns /= 2;
    }
    else {
        spin_budget_ns = GC_SPIN_MIN_NS;
    }
}

typedef struct gc_slot {
    _Atomic size_t stamp; /* lap + index the slot expects next (above) */
    void *item;           /* the value while stamp == position + 1 */
} gc_slot;

typedef struct gc_ring {
    /* Position of the next receive: lap | index. */
    _Alignas(GC_CACHELINE) _Atomic size_t head;
    /* Position of the next send: lap | index, plus mark_bit once closed. */
    _Alignas(GC_CACHELINE) _Atomic size_t tail;
    _Alignas(GC_CACHELINE) size_t mark_bit; /* smallest 2^k > cap */
    size_t one_lap;                         /* 2 * mark_bit */
    gc_slot slots[];                        /* cap slots */
} gc_ring;

struct gc_chan {
    size_t cap;         /* capacity; 0 for unbuffered */
    gc_ring *ring;      /* the buffer, NULL when unbuffered */
    gc_mutex lock;      /* sendq (buffered) or everything (unbuffered) */
    gc_mutex recv_lock; /* recvq (buffered only) */
    gc_waitq sendq;     /* senders waiting, oldest first */
    gc_waitq recvq;     /* receivers waiting, oldest first */
    _Atomic int closed; /* unbuffered only; buffered uses mark_bit */
};

/* ---- the ring ---------------------------------------------------------- */

static size_t
ring_next(const gc_ring *r, size_t cap, size_t pos)
{
    size_t index = pos & (r->mark_bit - 1);
    size_t lap = pos & ~(r->one_lap - 1);
    return index + 1 < cap ? pos + 1 : lap + r->one_lap;
}

/* Send up to n values, a prefix of items, in one claim of the tail: the
 * slots from tail on that are free for this lap are reserved together with
 * one CAS, then filled.  *done tells how many (>= 1 on GC_OK). */
static gc_status
ring_push_many(gc_ring *r, size_t cap, void *const *items, size_t n,
               size_t *done)
{
    unsigned step = 0;
    /* relaxed: only a guess; the stamp checks and the CAS decide. */
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        if (tail & r->mark_bit) {
            return GC_CLOSED;
        }
        size_t pos = tail, k = 0, stamp = 0;
        while (k < n) {
            /* acquire: pairs with the release store of the receiver that
             * freed the slot, so its read of the old value happens before
             * our write.  A slot is free for position pos when its stamp
             * is pos; only the holder of that position may change it. */
            stamp =
                atomic_load_explicit(&r->slots[pos & (r->mark_bit - 1)].stamp,
                                     memory_order_acquire);
            if (stamp != pos) {
                break;
            }
            k++;
            pos = ring_next(r, cap, pos);
        }
        if (k > 0) {
            /* seq_cst: ordered with the reads of receivers that look at
             * tail to decide whether the ring is empty, and with the
             * `empty` load of notify_some. */
            if (atomic_compare_exchange_weak_explicit(&r->tail, &tail, pos,
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                pos = tail;
                for (size_t i = 0; i < k; i++) {
                    gc_slot *slot = &r->slots[pos & (r->mark_bit - 1)];
                    slot->item = items[i];
                    /* release: pairs with the acquire load of the
                     * receiver that will find stamp == pos + 1. */
                    atomic_store_explicit(&slot->stamp, pos + 1,
                                          memory_order_release);
                    pos = ring_next(r, cap, pos);
                }
                *done = k;
                return GC_OK;
            }
            continue; /* the CAS reloaded tail */
        }
        if (stamp + r->one_lap == tail + 1) {
            /* The slot still holds last lap's value: full, unless a
             * receiver is just taking it.  seq_cst fence: pairs with the
             * one in ring_pop_many so the head we read is recent enough. */
            gc_fence();
            size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
            if (head + r->one_lap == tail) {
                return GC_WOULDBLOCK;
            }
        }
        gc_backoff(&step);
        tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    }
}

/* Receive up to n values in one claim of the head (as ring_push_many). */
static gc_status
ring_pop_many(gc_ring *r, size_t cap, void **items, size_t n, size_t *done)
{
    unsigned step = 0;
    /* relaxed: only a guess; the stamp checks and the CAS decide. */
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (;;) {
        size_t pos = head, k = 0, stamp = 0;
        while (k < n) {
            /* acquire: pairs with the release store in ring_push_many.
             * A slot holds position pos's value when its stamp is
             * pos + 1. */
            stamp =
                atomic_load_explicit(&r->slots[pos & (r->mark_bit - 1)].stamp,
                                     memory_order_acquire);
            if (stamp != pos + 1) {
                break;
            }
            k++;
            pos = ring_next(r, cap, pos);
        }
        if (k > 0) {
            /* seq_cst: ordered with the reads of senders that look at
             * head to decide whether the ring is full. */
            if (atomic_compare_exchange_weak_explicit(&r->head, &head, pos,
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                pos = head;
                for (size_t i = 0; i < k; i++) {
                    gc_slot *slot = &r->slots[pos & (r->mark_bit - 1)];
                    items[i] = slot->item;
                    /* release: pairs with the acquire load in
                     * ring_push_many. */
                    atomic_store_explicit(&slot->stamp, pos + r->one_lap,
                                          memory_order_release);
                    pos = ring_next(r, cap, pos);
                }
                *done = k;
                return GC_OK;
            }
            continue;
        }
        if (stamp == head) {
            /* Nothing written here yet: empty, unless a sender has just
             * claimed the slot.  seq_cst fence: pairs with
             * ring_push_many's. */
            gc_fence();
            size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
            if ((tail & ~r->mark_bit) == head) {
                return (tail & r->mark_bit) ? GC_CLOSED : GC_WOULDBLOCK;
            }
        }
        gc_backoff(&step);
        head = atomic_load_explicit(&r->head, memory_order_relaxed);
    }
}

static gc_status
ring_push(gc_ring *r, size_t cap, void *item)
{
    size_t done;
    return ring_push_many(r, cap, &item, 1, &done);
}

static size_t
ring_len(const gc_ring *r, size_t cap)
{
    for (;;) {
        /* seq_cst: a consistent pair is one where tail did not move
         * while head was read. */
        size_t tail = atomic_load((_Atomic size_t *)&r->tail);
        size_t head = atomic_load((_Atomic size_t *)&r->head);
        if (atomic_load((_Atomic size_t *)&r->tail) != tail) {
            continue;
        }
        size_t hix = head & (r->mark_bit - 1);
        size_t tix = tail & (r->mark_bit - 1);
        if (hix < tix) {
            return tix - hix;
        }
        if (hix > tix) {
            return cap - hix + tix;
        }
        return (tail & ~r->mark_bit) == head ? 0 : cap;
    }
}

/* The two checks a registered waiter makes after its seq_cst fence. */
static int
ring_can_recv(gc_ring *r)
{
    /* seq_cst: pairs with the CAS on tail in ring_push and with close. */
    size_t tail = atomic_load(&r->tail);
    size_t head = atomic_load(&r->head);
    return (tail & r->mark_bit) || (tail & ~r->mark_bit) != head;
}

static int
ring_can_send(gc_ring *r)
{
    /* seq_cst: pairs with the CAS on head in ring_pop and with close. */
    size_t tail = atomic_load(&r->tail);
    size_t head = atomic_load(&r->head);
    return (tail & r->mark_bit) || head + r->one_lap != tail;
}

static int
ring_empty(gc_ring *r)
{
    /* seq_cst: this read decides a direct handoff; see the FIFO invariant
     * at the top of the file. */
    size_t tail = atomic_load(&r->tail);
    return (tail & ~r->mark_bit) == atomic_load(&r->head);
}

/* ---- waking ------------------------------------------------------------ */

/* Claim the oldest waiter of q (under its lock) and return its entry. */
static gc_entry *
claim_one(gc_mutex *lock, gc_waitq *q)
{
    gc_mutex_lock(lock);
    gc_entry *e = gc_waitq_claim(q, NULL);
    gc_mutex_unlock(lock);
    return e;
}

/* After the ring received n values: let up to n of q's oldest waiters
 * try again.  The caller's change was a seq_cst read-modify-write (the CAS
 * of ring_push_many or ring_pop_many), and the `empty` load here is
 * seq_cst too; a waiter stores `empty` and then reads the ring with
 * seq_cst operations.  In the single total order of seq_cst operations one
 * of the two sides sees the other's write, so no wake-up is lost and no
 * fence is needed on this, the hot side. */
static void
notify_some(gc_mutex *lock, gc_waitq *q, size_t n)
{
    while (n-- > 0 && gc_waitq_maybe_waiting(q)) {
        gc_entry *e = claim_one(lock, q);
        if (!e) {
            return;
        }
        gc_entry_complete(e, GC_RETRY);
    }
}

void
gc_chan_pass_on(gc_chan *ch, int dir)
{
    gc_ring *r = ch->ring;
    if (!r) {
        /* An unbuffered channel wakes waiters to retry only when it
         * closes, and then wakes them all: nothing to pass on. */
        return;
    }
    /* The seq_cst loads of ring_can_* see any change that a waiter which
     * registered before them could have missed; a waiter registering
     * after them re-checks the ring itself (case_ready). */
    if (dir == GC_RECV ? ring_can_recv(r) : ring_can_send(r)) {
        if (dir == GC_RECV) {
            notify_some(&ch->recv_lock, &ch->recvq, 1);
        }
        else {
            notify_some(&ch->lock, &ch->sendq, 1);
        }
    }
}

/* Claim every waiter of q (caller holds its lock), chained through
 * their `next` links for complete_all() to finish outside the lock. */
static gc_entry *
claim_all(gc_waitq *q, gc_entry *chain)
{
    gc_entry *e;
    while ((e = gc_waitq_claim(q, NULL)) != NULL) {
        e->next = chain;
        chain = e;
    }
    return chain;
}

/* After close: every claimed waiter tries again and finds the channel
 * closed. */
static void
complete_all(gc_entry *chain)
{
    while (chain) {
        gc_entry *e = chain;
        chain = e->next; /* read before completing: e may vanish after */
        gc_entry_complete(e, GC_RETRY);
    }
}

static gc_mutex *
recv_lock(gc_chan *ch)
{
    return ch->ring ? &ch->recv_lock : &ch->lock;
}

/* ---- creation and queries ---------------------------------------------- */

static size_t
pow2_above(size_t n)
{
    size_t p = 1;
    while (p <= n) {
        p <<= 1;
    }
    return p;
}

gc_chan *
gc_chan_new(size_t cap)
{
    if (cap > GC_CHAN_MAX_CAP) {
        return NULL;
    }
    gc_chan *ch = calloc(1, sizeof(*ch));
    if (!ch) {
        return NULL;
    }
    ch->cap = cap;
    if (cap > 0) {
        size_t size = sizeof(gc_ring) + cap * sizeof(gc_slot);
        size = (size + GC_CACHELINE - 1) & ~(size_t)(GC_CACHELINE - 1);
        gc_ring *r = aligned_alloc(GC_CACHELINE, size);
        if (!r) {
            free(ch);
            return NULL;
        }
        r->mark_bit = pow2_above(cap);
        r->one_lap = r->mark_bit * 2;
        atomic_init(&r->head, 0);
        atomic_init(&r->tail, 0);
        for (size_t i = 0; i < cap; i++) {
            atomic_init(&r->slots[i].stamp, i);
            r->slots[i].item = NULL;
        }
        ch->ring = r;
        if (gc_mutex_init(&ch->recv_lock) != 0) {
            free(r);
            free(ch);
            return NULL;
        }
    }
    if (gc_mutex_init(&ch->lock) != 0) {
        if (ch->ring) {
            gc_mutex_destroy(&ch->recv_lock);
            free(ch->ring);
        }
        free(ch);
        return NULL;
    }
    gc_waitq_init(&ch->sendq);
    gc_waitq_init(&ch->recvq);
    atomic_init(&ch->closed, 0);
    return ch;
}

int
gc_chan_traverse(gc_chan *ch, int (*visit)(void *item, void *arg), void *arg)
{
    gc_ring *r = ch->ring;
    if (!r) {
        return 0;
    }
    /* Callers exclude try_* (gc_chan.h), so the ring holds still. */
    size_t pos = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t end =
        atomic_load_explicit(&r->tail, memory_order_acquire) & ~r->mark_bit;
    while (pos != end) {
        int rc = visit(r->slots[pos & (r->mark_bit - 1)].item, arg);
        if (rc) {
            return rc;
        }
        pos = ring_next(r, ch->cap, pos);
    }
    return 0;
}

static int
free_visit(void *item, void *arg)
{
    void **fn_arg = arg;
    ((void (*)(void *, void *))fn_arg[0])(item, fn_arg[1]);
    return 0;
}

void
gc_chan_free(gc_chan *ch, void (*free_item)(void *item, void *arg), void *arg)
{
    if (!ch) {
        return;
    }
    if (free_item) {
        void *fn_arg[2] = {(void *)free_item, arg};
        gc_chan_traverse(ch, free_visit, fn_arg);
    }
    if (ch->ring) {
        gc_mutex_destroy(&ch->recv_lock);
        free(ch->ring);
    }
    gc_mutex_destroy(&ch->lock);
    free(ch);
}

int
gc_chan_closed(const gc_chan *ch)
{
    if (ch->ring) {
        /* acquire: pairs with close's fetch_or. */
        return (atomic_load_explicit((_Atomic size_t *)&ch->ring->tail,
                                     memory_order_acquire) &
                ch->ring->mark_bit) != 0;
    }
    /* acquire: pairs with close's store. */
    return atomic_load_explicit((_Atomic int *)&ch->closed,
                                memory_order_acquire);
}

size_t
gc_chan_len(const gc_chan *ch)
{
    return ch->ring ? ring_len(ch->ring, ch->cap) : 0;
}

size_t
gc_chan_cap(const gc_chan *ch)
{
    return ch->cap;
}

void
gc_chan_stats_get(gc_chan *ch, gc_chan_stats *out)
{
    /* Waiters of threads that did not survive a fork are not counted. */
    gc_mutex_lock(&ch->lock);
    gc_waitq_forget_forked(&ch->sendq);
    if (!ch->ring) {
        gc_waitq_forget_forked(&ch->recvq);
    }
    gc_mutex_unlock(&ch->lock);
    if (ch->ring) {
        gc_mutex_lock(&ch->recv_lock);
        gc_waitq_forget_forked(&ch->recvq);
        gc_mutex_unlock(&ch->recv_lock);
    }
    out->capacity = ch->cap;
    out->size = gc_chan_len(ch);
    /* acquire: pairs with gc_waitq_push, so a waiter counted here can be
     * served by the caller's next operation. */
    out->waiting_senders =
        atomic_load_explicit(&ch->sendq.count, memory_order_acquire);
    out->waiting_receivers =
        atomic_load_explicit(&ch->recvq.count, memory_order_acquire);
    out->closed = gc_chan_closed(ch);
}

/* ---- non-blocking operations -------------------------------------------- */

static gc_status
buffered_send_many(gc_chan *ch, void *const *items, size_t n, size_t *sent)
{
    gc_ring *r = ch->ring;
    size_t i = 0;
    /* A receiver waits only on an empty ring; hand it the value directly
     * (Go's semantics: a concurrent try_recv cannot take it).  A receiver
     * that registered before this call is seen; one registering right now
     * may be missed, and then finds the value in the ring (notify_some). */
    while (i < n && gc_waitq_maybe_waiting(&ch->recvq) && ring_empty(r)) {
        /* close() marks the ring under recv_lock: no handoff after it. */
        gc_mutex_lock(&ch->recv_lock);
        if (gc_chan_closed(ch)) {
            gc_mutex_unlock(&ch->recv_lock);
            *sent = i;
            return GC_CLOSED;
        }
        gc_entry *e = gc_waitq_claim(&ch->recvq, NULL);
        gc_mutex_unlock(&ch->recv_lock);
        if (!e) {
            break;
        }
        e->item = items[i++];
        gc_entry_complete(e, GC_OK);
    }
    while (i < n) {
        size_t k;
        gc_status st = ring_push_many(r, ch->cap, items + i, n - i, &k);
        if (st != GC_OK) {
            *sent = i;
            return st;
        }
        i += k;
        notify_some(&ch->recv_lock, &ch->recvq, k);
    }
    *sent = n;
    return GC_OK;
}

static gc_status
buffered_recv_many(gc_chan *ch, void **items, size_t n, size_t *got)
{
    gc_ring *r = ch->ring;
    size_t k;
    gc_status st = ring_pop_many(r, ch->cap, items, n, &k);
    if (st != GC_OK) {
        *got = 0;
        return st;
    }
    *got = k;
    /* The slots just freed belong to the oldest waiting senders: move
     * their values in on their behalf.  If another sender took a slot
     * meanwhile (or close came first), the claimed sender simply tries
     * again.  No fence: see notify_some. */
    while (k-- > 0 && gc_waitq_maybe_waiting(&ch->sendq)) {
        gc_entry *e = claim_one(&ch->lock, &ch->sendq);
        if (!e) {
            break;
        }
        gc_status pst = ring_push(r, ch->cap, e->item);
        gc_entry_complete(e, pst == GC_OK ? GC_OK : GC_RETRY);
        if (pst != GC_OK) {
            break;
        }
        notify_some(&ch->recv_lock, &ch->recvq, 1);
    }
    return GC_OK;
}

static gc_status
unbuffered_try_send(gc_chan *ch, void *item)
{
    /* No lock when nobody waits.  A receiver registered before this call
     * is seen; one registering concurrently finds us when it re-checks
     * under the lock, and this call is ordered before its registration. */
    if (!gc_waitq_maybe_waiting(&ch->recvq)) {
        return gc_chan_closed(ch) ? GC_CLOSED : GC_WOULDBLOCK;
    }
    gc_mutex_lock(&ch->lock);
    if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
        gc_mutex_unlock(&ch->lock);
        return GC_CLOSED;
    }
    gc_entry *e = gc_waitq_claim(&ch->recvq, NULL);
    gc_mutex_unlock(&ch->lock);
    if (!e) {
        return GC_WOULDBLOCK;
    }
    e->item = item;
    gc_entry_complete(e, GC_OK);
    return GC_OK;
}

static gc_status
unbuffered_try_recv(gc_chan *ch, void **item)
{
    /* No lock when nobody waits: as in unbuffered_try_send. */
    if (!gc_waitq_maybe_waiting(&ch->sendq)) {
        return gc_chan_closed(ch) ? GC_CLOSED : GC_WOULDBLOCK;
    }
    gc_mutex_lock(&ch->lock);
    if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
        /* Senders still queued are about to be told of the close; their
         * values must not be taken. */
        gc_mutex_unlock(&ch->lock);
        return GC_CLOSED;
    }
    gc_entry *e = gc_waitq_claim(&ch->sendq, NULL);
    gc_mutex_unlock(&ch->lock);
    if (!e) {
        return GC_WOULDBLOCK;
    }
    *item = e->item;
    gc_entry_complete(e, GC_OK);
    return GC_OK;
}

gc_status
gc_chan_try_send(gc_chan *ch, void *item)
{
    size_t sent;
    return ch->ring ? buffered_send_many(ch, &item, 1, &sent)
                    : unbuffered_try_send(ch, item);
}

gc_status
gc_chan_try_recv(gc_chan *ch, void **item)
{
    size_t got;
    return ch->ring ? buffered_recv_many(ch, item, 1, &got)
                    : unbuffered_try_recv(ch, item);
}

gc_status
gc_chan_try_send_many(gc_chan *ch, void *const *items, size_t n, size_t *sent)
{
    if (n == 0) {
        *sent = 0;
        return gc_chan_closed(ch) ? GC_CLOSED : GC_OK;
    }
    if (ch->ring) {
        return buffered_send_many(ch, items, n, sent);
    }
    gc_status st = GC_OK;
    size_t i = 0;
    while (i < n && (st = unbuffered_try_send(ch, items[i])) == GC_OK) {
        i++;
    }
    *sent = i;
    return st;
}

gc_status
gc_chan_try_recv_many(gc_chan *ch, void **items, size_t n, size_t *got)
{
    if (n == 0) {
        *got = 0;
        return GC_OK;
    }
    if (ch->ring) {
        return buffered_recv_many(ch, items, n, got);
    }
    size_t i = 0;
    gc_status st = GC_OK;
    while (i < n && (st = unbuffered_try_recv(ch, &items[i])) == GC_OK) {
        i++;
    }
    *got = i;
    return i > 0 ? GC_OK : st;
}

gc_status
gc_chan_close(gc_chan *ch)
{
    gc_entry *chain = NULL;
    if (ch->ring) {
        /* Marked under recv_lock, so that a handoff to a waiting receiver
         * (buffered_try_send) is entirely before or after the close. */
        gc_mutex_lock(&ch->recv_lock);
        /* seq_cst: pairs with the seq_cst reads of waiters that re-check
         * the ring after registering. */
        size_t prev = atomic_fetch_or(&ch->ring->tail, ch->ring->mark_bit);
        if (prev & ch->ring->mark_bit) {
            gc_mutex_unlock(&ch->recv_lock);
            return GC_CLOSED;
        }
        chain = claim_all(&ch->recvq, chain);
        gc_mutex_unlock(&ch->recv_lock);
        gc_mutex_lock(&ch->lock);
        chain = claim_all(&ch->sendq, chain);
        gc_mutex_unlock(&ch->lock);
    }
    else {
        gc_mutex_lock(&ch->lock);
        if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
            gc_mutex_unlock(&ch->lock);
            return GC_CLOSED;
        }
        /* release: pairs with gc_chan_closed's acquire load. */
        atomic_store_explicit(&ch->closed, 1, memory_order_release);
        chain = claim_all(&ch->sendq, chain);
        chain = claim_all(&ch->recvq, chain);
        gc_mutex_unlock(&ch->lock);
    }
    complete_all(chain);
    return GC_OK;
}

/* ---- waiting ------------------------------------------------------------ */

/* May case c proceed now?  Asked right after registering (and again
 * after a pause in sleep_in_place): a peer that changed the channel before
 * our entry was visible did not see us, so we must see its change. */
static int
case_ready(gc_case *c, gc_waiter *w)
{
    gc_chan *ch = c->ch;
    if (!ch) {
        return c->src->ready(c->src);
    }
    int send = c->dir == GC_SEND;
    if (ch->ring) {
        /* seq_cst: our `empty` store (gc_waitq_push) and these loads are
         * seq_cst, as are the ring CAS and `empty` load of notifiers; one
         * side sees the other (notify_some). */
        gc_fence();
        return send ? ring_can_send(ch->ring) : ring_can_recv(ch->ring);
    }
    gc_mutex_lock(&ch->lock);
    int ready = atomic_load_explicit(&ch->closed, memory_order_relaxed) ||
                gc_waitq_has_waiting(send ? &ch->recvq : &ch->sendq, w);
    gc_mutex_unlock(&ch->lock);
    return ready;
}

/* The queue a case waits on, and the lock that guards it. */
static gc_waitq *
case_queue(gc_case *c, gc_mutex **lock)
{
    gc_chan *ch = c->ch;
    if (!ch) {
        *lock = c->src->lock;
        return c->src->q;
    }
    int send = c->dir == GC_SEND;
    *lock = send ? &ch->lock : recv_lock(ch);
    return send ? &ch->sendq : &ch->recvq;
}

/* Is the case switched off (Go's nil channel)? */
static inline int
case_off(const gc_case *c)
{
    return !c->ch && !c->src;
}

/* Put c on its queue; return whether it may proceed now (in which case
 * the caller withdraws instead of sleeping). */
static int
register_case(gc_case *c, gc_waiter *w)
{
    gc_mutex *lock;
    gc_waitq *q = case_queue(c, &lock);
    c->entry.w = w;
    c->entry.item = c->dir == GC_SEND ? c->item : NULL;
    c->entry.linked = 0;
    c->entry.result = GC_RETRY;
    gc_mutex_lock(lock);
    gc_waitq_push(q, &c->entry);
    gc_mutex_unlock(lock);
    return case_ready(c, w);
}

static void
unregister_case(gc_case *c)
{
    gc_mutex *lock;
    gc_waitq *q = case_queue(c, &lock);
    gc_mutex_lock(lock);
    gc_waitq_unlink(q, &c->entry);
    gc_mutex_unlock(lock);
}

/* Sleep until the waiter is completed (GC_OK), the deadline passes or a
 * signal arrives. */
static gc_status
sleep_until_done(gc_waiter *w, int64_t deadline)
{
    int64_t start = gc_now_ns();
    if (start < deadline && gc_spin_begin(GC_SPIN_WAITER)) {
        int64_t until = deadline - start < spin_budget_ns
                            ? deadline
                            : start + spin_budget_ns;
        int done = 0;
        for (unsigned i = 1;; i++) {
            /* acquire: pairs with gc_entry_complete's exchange. */
            if (atomic_load_explicit(&w->state, memory_order_acquire) ==
                GC_W_DONE) {
                done = 1; /* within budget: nothing to learn */
                break;
            }
            gc_cpu_relax();
            if ((i & 63) == 0 && gc_now_ns() >= until) {
                break;
            }
        }
        gc_spin_end(GC_SPIN_WAITER);
        if (done) {
            return GC_OK;
        }
    }
    uint32_t expect = GC_W_PENDING;
    /* acq_rel: on failure we saw DONE and need its payload (acquire). */
    if (!atomic_compare_exchange_strong_explicit(
            &w->state, &expect, GC_W_PARKED, memory_order_acq_rel,
            memory_order_acquire)) {
        return GC_OK;
    }
    for (;;) {
        gc_status st = gc_park(&w->state, GC_W_PARKED, deadline);
        /* acquire: pairs with gc_entry_complete's exchange. */
        if (atomic_load_explicit(&w->state, memory_order_acquire) ==
            GC_W_DONE) {
            spin_budget_learn(gc_now_ns() - start);
            return GC_OK;
        }
        if (st == GC_TIMEOUT || st == GC_INTR) {
            return st;
        }
    }
}

/* A claimer won the waiter; its completion is a few instructions away. */
static void
wait_for_completion(gc_waiter *w)
{
    uint32_t expect = GC_W_PENDING;
    atomic_compare_exchange_strong_explicit(&w->state, &expect, GC_W_PARKED,
                                            memory_order_acq_rel,
                                            memory_order_acquire);
    /* acquire: pairs with gc_entry_complete's exchange. */
    while (atomic_load_explicit(&w->state, memory_order_acquire) !=
           GC_W_DONE) {
        gc_park(&w->state, GC_W_PARKED, GC_FOREVER);
    }
}

/* The "let-go epoch": how many times any thread has let go of its
 * caller's lock (the GIL) to wait here.  A thread woken by a peer usually
 * finds that peer still holding the lock, busy for a few microseconds more
 * until it too waits here.  Asking for the lock at once would put the
 * woken thread to sleep inside the lock's own slow path and cost a second
 * wake-up; instead it spins (bounded by gc_unlock.spin_ns) until the epoch
 * moves, then takes the lock, usually free by then.  Relaxed throughout: the
 * epoch is only a hint, the lock itself orders everything. */
static _Atomic uint64_t letgo_epoch;
static _Thread_local uint64_t letgo_seen;

static void *
let_go(const gc_unlock *u)
{
    if (!u || !u->release) {
        return NULL;
    }
    /* The count is read before the release and bumped after it, so that
     * a bump always means "the lock was just let go".  take_back waits
     * for one bump besides ours: a peer's let-go, even one that came
     * before our bump (we may be preempted between the two). */
    letgo_seen = atomic_load_explicit(&letgo_epoch, memory_order_relaxed);
    void *token = u->release();
    atomic_fetch_add_explicit(&letgo_epoch, 1, memory_order_relaxed);
    return token;
}

static void
take_back(const gc_unlock *u, void *token, gc_status woken_by)
{
    if (!u || !u->acquire) {
        return;
    }
    if (u->spin_ns > 0 && (woken_by == GC_OK || woken_by == GC_RETRY) &&
        gc_spin_begin(GC_SPIN_ASPIRANT)) {
        int64_t until = gc_now_ns() + u->spin_ns;
        for (unsigned i = 1;; i++) {
            if (atomic_load_explicit(&letgo_epoch, memory_order_relaxed) -
                    letgo_seen >=
                2) {
                break;
            }
            gc_cpu_relax();
            if ((i & 63) == 0 && gc_now_ns() >= until) {
                break;
            }
        }
        gc_spin_end(GC_SPIN_ASPIRANT);
    }
    u->acquire(token);
}

/* Sleep until completed, the deadline, or a signal, keeping our place in
 * every queue.  With an `interrupted` hook, a signal (or the end of a
 * poll_ns slice, for a signal that came just before we parked) does not
 * end the wait: we withdraw for a moment (sel ABORTED: claimers pass our
 * entries by but leave them where they are), take the caller's lock back
 * and ask the hook.  If it says stop, the wait ends with GC_INTR, already
 * withdrawn.  Otherwise we become claimable again in the same places,
 * re-check every case (a peer may have passed us by meanwhile) and sleep
 * on.  *holding tells whether the caller's lock is held on return; after
 * such a re-check finds case *ready able to proceed, GC_RETRY. */
static gc_status
sleep_in_place(gc_waiter *w, gc_case *cases, size_t n, int64_t deadline,
               const gc_unlock *u, void **token, int *holding, size_t *ready)
{
    int hook = u && u->interrupted;
    unsigned generation = gc_fork_generation();
    for (;;) {
        int64_t until = deadline;
        if (hook && u->poll_ns > 0) {
            int64_t slice = gc_deadline_after(u->poll_ns);
            until = slice < deadline ? slice : deadline;
        }
        gc_status st = sleep_until_done(w, until);
        if (st == GC_TIMEOUT && until < deadline) {
            st = GC_INTR; /* a slice ended: look for signals */
        }
        if (st != GC_INTR || !hook) {
            return st;
        }
        uintptr_t expect = GC_SEL_WAITING;
        /* acq_rel: on failure a claimer won (acquire its claim). */
        if (!atomic_compare_exchange_strong_explicit(
                &w->sel, &expect, GC_SEL_ABORTED, memory_order_acq_rel,
                memory_order_acquire)) {
            return GC_INTR; /* claimed: gc_wait finds out and completes */
        }
        take_back(u, *token, GC_INTR);
        *holding = 1;
        if (u->interrupted()) {
            return GC_INTR; /* withdrawn, lock held, caller's error set */
        }
        if (gc_fork_generation() != generation) {
            /* The handler forked: in this child our entries were dropped
             * with every pre-fork entry (gc_wait.h), so nobody can find
             * us.  Start the wait again. */
            *ready = 0;
            return GC_RETRY; /* withdrawn, lock held */
        }
        /* No claimer touches `state` while sel is ABORTED.  relaxed: the
         * seq_cst store of sel below publishes it. */
        atomic_store_explicit(&w->state, GC_W_PENDING, memory_order_relaxed);
        atomic_store_explicit(&w->sel, GC_SEL_WAITING, memory_order_seq_cst);
        for (size_t i = 0; i < n; i++) {
            if (!case_off(&cases[i]) && case_ready(&cases[i], w)) {
                *ready = i;
                return GC_RETRY; /* lock held */
            }
        }
        *token = let_go(u);
        *holding = 0;
    }
}

gc_status
gc_wait(gc_case *cases, size_t n, int64_t deadline, size_t *index,
        const gc_unlock *u)
{
    /* One waiter per wait, on this frame: a signal handler run by the
     * `interrupted` hook may itself wait on channels (a nested gc_wait),
     * and every entry is unlinked before this frame goes away.  A claimer
     * may still call gc_unpark on the old address after we return: a
     * spurious wake at worst, which every park loop tolerates. */
    gc_waiter self;
    gc_waiter *w = &self;
    /* relaxed: published to claimers by the queue locks taken below. */
    atomic_init(&w->sel, GC_SEL_WAITING);
    atomic_init(&w->state, GC_W_PENDING);

    size_t registered = 0;
    int ready = 0;
    while (registered < n && !ready) {
        gc_case *c = &cases[registered++];
        if (!case_off(c)) {
            ready = register_case(c, w);
        }
    }

    /* The caller's lock is let go only now that we are registered: a peer
     * that takes it next finds us and completes us at once. */
    gc_status st = GC_RETRY;
    int holding = 1;
    void *token = NULL;
    size_t k = registered > 0 ? registered - 1 : 0; /* the ready case */
    if (!ready) {
        token = let_go(u);
        holding = 0;
        st = sleep_in_place(w, cases, registered, deadline, u, &token,
                            &holding, &k);
    }
    int claimed = st == GC_OK;
    if (!claimed) {
        uintptr_t expect = GC_SEL_WAITING;
        /* acq_rel: a failed CAS means a claimer won; acquire its claim. */
        if (!atomic_compare_exchange_strong_explicit(
                &w->sel, &expect, GC_SEL_ABORTED, memory_order_acq_rel,
                memory_order_acquire) &&
            expect != GC_SEL_ABORTED) {
            wait_for_completion(w);
            claimed = 1;
        }
    }

    /* Withdraw every entry before taking the caller's lock back: a thread
     * may never come back from that (CPython ends daemon threads there at
     * exit), and its entries must not outlive it. */
    gc_entry *won = NULL;
    if (claimed) {
        /* acquire: pairs with the claim's CAS. */
        won = (gc_entry *)atomic_load_explicit(&w->sel, memory_order_acquire);
    }
    int guarded = 0;
    for (size_t i = 0; i < registered; i++) {
        if (case_off(&cases[i])) {
            continue;
        }
        if (&cases[i].entry == won) {
            k = i; /* its claimer unlinked it */
            continue;
        }
        if (!holding && !guarded) {
            gc_fork_guard_enter(); /* queue locks without the GIL */
            guarded = 1;
        }
        unregister_case(&cases[i]);
    }
    if (guarded) {
        gc_fork_guard_exit();
    }
    if (!holding) {
        take_back(u, token, claimed ? GC_OK : st);
    }
    if (index && (claimed || st == GC_RETRY)) {
        *index = k;
    }
    if (!claimed) {
        return st;
    }
    if (won->result != GC_OK) {
        return GC_RETRY;
    }
    if (cases[k].dir == GC_RECV) {
        cases[k].item = won->item;
    }
    return GC_OK;
}

/* ---- blocking send and receive ------------------------------------------ */

gc_status
gc_chan_op(gc_chan *ch, int dir, void **item, int64_t deadline,
           gc_chan *cancel, const gc_unlock *u)
{
    if (cancel && gc_chan_closed(cancel)) {
        return GC_CANCELLED;
    }
    gc_status st = dir == GC_SEND ? gc_chan_try_send(ch, *item)
                                  : gc_chan_try_recv(ch, item);
    while (st == GC_WOULDBLOCK) {
        if (deadline != GC_FOREVER && gc_now_ns() >= deadline) {
            return GC_TIMEOUT;
        }
        gc_case c[2] = {
            {.ch = ch, .dir = dir, .item = dir == GC_SEND ? *item : NULL},
            {.ch = cancel, .dir = GC_RECV},
        };
        size_t index = 0;
        gc_status ws = gc_wait(c, cancel ? 2 : 1, deadline, &index, u);
        if (ws == GC_OK && index == 0) {
            if (dir == GC_RECV) {
                *item = c[0].item;
            }
            return GC_OK;
        }
        if (ws != GC_RETRY && ws != GC_OK) {
            return ws;
        }
        /* Woken, or (never, as nothing is sent on a cancel channel) a
         * value from it: its closing is what counts.  A wake-up for ch
         * that we do not use goes to the next waiter (gc_wait's GC_RETRY):
         * else a value pushed to the buffer could wait there while another
         * receiver sleeps. */
        if (cancel && gc_chan_closed(cancel)) {
            if (ws == GC_RETRY && index == 0) {
                gc_chan_pass_on(ch, dir);
            }
            return GC_CANCELLED;
        }
        st = dir == GC_SEND ? gc_chan_try_send(ch, *item)
                            : gc_chan_try_recv(ch, item);
    }
    return st;
}

gc_status
gc_chan_send(gc_chan *ch, void *item, int64_t deadline, const gc_unlock *u)
{
    return gc_chan_op(ch, GC_SEND, &item, deadline, NULL, u);
}

gc_status
gc_chan_recv(gc_chan *ch, void **item, int64_t deadline, const gc_unlock *u)
{
    return gc_chan_op(ch, GC_RECV, item, deadline, NULL, u);
}
