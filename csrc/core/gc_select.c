/* gc_select.c - select over channel cases (see gc_select.h).
 *
 * A select polls its cases in a random order (a fresh permutation per
 * call, as Go does, so that every ready case is equally likely) and, if
 * none can proceed, waits on all of them at once with gc_wait(), which
 * registers one entry per case, all pointing at one waiter: whichever peer
 * wins the waiter's selection word completes exactly one case.  A wake-up
 * without completion (GC_RETRY) names the case that looked ready; it is
 * tried first on the next round, since a wake-up is given to one waiter
 * only and must not be wasted.
 *
 * The order of registration matters when two cases share a channel: a
 * peer serves the oldest entry of a queue, so the case registered first
 * wins.  Registering in the shuffled order keeps that choice random too.
 *
 * Invariants:
 *   - only try_send/try_recv move payloads (the gc_chan.h rule), so a
 *     select moves them under its caller's lock like any other operation;
 *   - `cancel` is checked before anything moves and after every wake-up,
 *     so a select that returns GC_CANCELLED has done nothing (except pass
 *     on a wake-up it will not use, gc_chan_pass_on).
 */
#include "gc_select.h"

#include <stdlib.h>

/* ---- the per-thread generator ------------------------------------------ */

/* xorshift64*: one multiply and three shifts per number; its state is
 * seeded on first use from the clock and the address of the state (which
 * differs per thread). */
static _Thread_local uint64_t rng_state;

static uint64_t
rng_next(void)
{
    uint64_t x = rng_state;
    if (x == 0) {
        x = (uint64_t)gc_now_ns() ^ (uint64_t)(uintptr_t)&rng_state;
        x = x * 0x9E3779B97F4A7C15u | 1u; /* never zero */
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Du;
}

size_t
gc_random_below(size_t n)
{
    /* The high bits are the best ones; a multiply maps them onto [0, n)
     * with a bias below n / 2^64, far below what any test can see. */
    return (size_t)(((unsigned __int128)rng_next() * n) >> 64);
}

/* A uniformly random permutation of 0..n-1 in order[] (Fisher-Yates,
 * "inside-out" form: position k takes a random j <= k and j's old entry
 * moves to k).
 *
 * The j's come from as few generator draws as possible, since a draw is
 * most of the cost of a small select: x * (k + 1) splits a uniform 64-bit
 * x into j, its high word, uniform below k + 1, and its low word, again
 * (nearly) uniform over 64 bits and independent of j, which serves for
 * the next j.  Each split loses the information of its bound, so a draw
 * serves while the product of the bounds stays below 2^32: the bias of
 * any j is then below 2^32 / 2^64, as for gc_random_below.  Up to 12
 * cases take one draw; k = 0 takes none (j is 0). */
static void
shuffle(size_t *order, size_t n)
{
    if (n == 0) {
        return;
    }
    order[0] = 0;
    uint64_t x = 0;
    uint64_t spent = UINT64_C(1) << 32; /* product of the bounds used */
    for (size_t k = 1; k < n; k++) {
        uint64_t bound = (uint64_t)k + 1;
        /* (A multiply, not a division: this is the hot loop.) */
        if ((unsigned __int128)spent * bound > (UINT64_C(1) << 32)) {
            x = rng_next();
            spent = 1;
        }
        spent *= bound;
        unsigned __int128 m = (unsigned __int128)x * bound;
        size_t j = (size_t)(m >> 64);
        x = (uint64_t)m;
        order[k] = j == k ? k : order[j];
        order[j] = k;
    }
}

/* ---- polling -------------------------------------------------------------
 */

/* Try case c once: GC_OK, GC_CLOSED or GC_WOULDBLOCK. */
static gc_status
try_case(gc_case *c)
{
    if (!c->ch) {
        return GC_WOULDBLOCK; /* a nil channel is never ready */
    }
    return c->dir == GC_SEND ? gc_chan_try_send(c->ch, c->item)
                             : gc_chan_try_recv(c->ch, &c->item);
}

/* Try every case once, in `order`, starting with case `first` (an index
 * into cases, or n for none).  GC_OK or GC_CLOSED with *index, else
 * GC_WOULDBLOCK. */
static gc_status
poll_cases(gc_case *cases, size_t n, const size_t *order, size_t first,
           size_t *index)
{
    if (first < n) {
        gc_status st = try_case(&cases[first]);
        if (st != GC_WOULDBLOCK) {
            *index = first;
            return st;
        }
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        if (i == first) {
            continue;
        }
        gc_status st = try_case(&cases[i]);
        if (st != GC_WOULDBLOCK) {
            *index = i;
            return st;
        }
    }
    return GC_WOULDBLOCK;
}

/* ---- select --------------------------------------------------------------
 */

static int
cancelled(gc_chan *cancel)
{
    return cancel && gc_chan_closed(cancel);
}

/* The loop of gc_select, with room for n cases in `order` and n + 1 in
 * `waiting` (the extra one for the cancel channel). */
static gc_status
select_loop(gc_case *cases, size_t n, int flags, int64_t deadline,
            gc_chan *cancel, const gc_unlock *u, size_t *index, size_t *order,
            gc_case *waiting)
{
    /* The poll order: in argument order when biased, else a uniformly
     * random permutation (Fisher-Yates, "inside-out" form). */
    if (flags & GC_SELECT_BIASED) {
        for (size_t k = 0; k < n; k++) {
            order[k] = k;
        }
    }
    else {
        shuffle(order, n);
    }
    size_t first = n; /* none yet */
    for (;;) {
        gc_status st = poll_cases(cases, n, order, first, index);
        if (st != GC_WOULDBLOCK) {
            return st;
        }
        if (flags & GC_SELECT_NOWAIT) {
            return GC_WOULDBLOCK;
        }
        if (deadline != GC_FOREVER && gc_now_ns() >= deadline) {
            return GC_TIMEOUT;
        }
        /* Wait on every case, registered in poll order, and on cancel. */
        for (size_t k = 0; k < n; k++) {
            gc_case *c = &cases[order[k]];
            waiting[k].ch = c->ch;
            waiting[k].dir = c->dir;
            waiting[k].item = c->item;
            waiting[k].src = NULL;
        }
        size_t m = n;
        if (cancel) {
            waiting[m].ch = cancel;
            waiting[m].dir = GC_RECV;
            waiting[m].item = NULL;
            waiting[m].src = NULL;
            m++;
        }
        size_t k = m;
        st = gc_wait(waiting, m, deadline, &k, u);
        if (st == GC_OK && k < n) {
            size_t i = order[k];
            if (cases[i].dir == GC_RECV) {
                cases[i].item = waiting[k].item;
            }
            *index = i;
            return GC_OK;
        }
        if (st != GC_OK && st != GC_RETRY) {
            return st; /* GC_TIMEOUT or GC_INTR */
        }
        /* Woken (or, never in practice, handed a value on the cancel
         * channel, which nobody sends on): see what changed. */
        if (cancelled(cancel)) {
            /* A wake-up for case k that we leave unused goes on to the
             * next waiter of its channel (gc_wait's GC_RETRY). */
            if (st == GC_RETRY && k < n && waiting[k].ch) {
                gc_chan_pass_on(waiting[k].ch, waiting[k].dir);
            }
            return GC_CANCELLED;
        }
        first = k < n ? order[k] : n;
    }
}

gc_status
gc_select(gc_case *cases, size_t n, int flags, int64_t deadline,
          gc_chan *cancel, const gc_unlock *u, size_t *index)
{
    if (cancelled(cancel)) {
        return GC_CANCELLED;
    }
    if (n <= GC_SELECT_STACK_CASES) {
        size_t order[GC_SELECT_STACK_CASES];
        gc_case waiting[GC_SELECT_STACK_CASES + 1];
        return select_loop(cases, n, flags, deadline, cancel, u, index, order,
                           waiting);
    }
    size_t *order = malloc(n * sizeof *order);
    gc_case *waiting = malloc((n + 1) * sizeof *waiting);
    gc_status st = GC_NOMEM;
    if (order && waiting) {
        st = select_loop(cases, n, flags, deadline, cancel, u, index, order,
                         waiting);
    }
    free(order);
    free(waiting);
    return st;
}
