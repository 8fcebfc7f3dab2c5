/* gc_timer.c - the timer thread, its heap, and channel timers (see
 * gc_timer.h for the contract).
 *
 * One thread per process sleeps until the earliest deadline of a 4-ary
 * min-heap (the shape Go's runtime uses: shallower than a binary heap, and
 * the four children of a node share a cache line).  It pops every due
 * timer, lets go of the heap lock, and calls each one's fire().  A start
 * wakes the thread only when its deadline is earlier than the one the
 * thread sleeps to, so that a stream of after(1.0) calls, each later than
 * the last, costs a heap insert and no system call.
 *
 * Invariants (tq.lock protects everything in tq and every heap timer's
 * `when` and `pos`; `seq` is written under the heap lock and the owner's):
 *   - heap[i]->pos == i + 1 for every i < len; a timer not in the heap has
 *     pos == 0; heap[(i - 1) / 4]->when <= heap[i]->when;
 *   - `target` is the deadline the thread sleeps (or is about to sleep) to;
 *     while `parked` a start earlier than `target` must wake it, and sets
 *     `target` to its own deadline and clears `parked` so that later starts
 *     do not wake it again;
 *   - the thread holds `busy` whenever it is not parked, and fork()
 *     takes `busy` and then the heap lock (atfork handlers): a child never
 *     inherits a heap lock or an owner's lock held by the thread.  (Not
 *     the shared fork guard: a reader blocked on a read-write lock when
 *     fork() write-holds it stays counted in the child's copy.)
 *   - the heap lock is a leaf: no fire(), free() or wake-up under it.
 */
#include "gc_timer.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

/* Due timers popped per pass before their fires run. */
#define GC_TIMER_BATCH 64

static struct {
    gc_mutex lock;    /* protects what follows and the heap's timers */
    gc_mutex busy;    /* held by the thread while it is not parked */
    gc_timer **heap;  /* 4-ary min-heap by `when` */
    size_t len;       /* timers in the heap */
    size_t cap;       /* slots allocated */
    int running;      /* the thread exists (in this process) */
    int parked;       /* the thread sleeps, or is about to, to `target` */
    int64_t target;   /* deadline the thread sleeps to (see above) */
    gc_parkword word; /* bumped to wake the thread */
} tq;

static uv_once_t tq_once = UV_ONCE_INIT;

static void tq_fork_prepare(void);
static void tq_fork_parent(void);
static void tq_fork_child(void);

static void
tq_init(void)
{
    gc_mutex_init(&tq.lock);
    gc_mutex_init(&tq.busy);
    tq.target = GC_FOREVER;
#ifndef _WIN32
    pthread_atfork(tq_fork_prepare, tq_fork_parent, tq_fork_child);
#endif
}

/* ---- the heap (tq.lock held) ------------------------------------------- */

static void
heap_place(size_t i, gc_timer *t)
{
    tq.heap[i] = t;
    t->pos = i + 1;
}

static void
heap_up(size_t i)
{
    gc_timer *t = tq.heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (tq.heap[parent]->when <= t->when) {
            break;
        }
        heap_place(i, tq.heap[parent]);
        i = parent;
    }
    heap_place(i, t);
}

static void
heap_down(size_t i)
{
    gc_timer *t = tq.heap[i];
    for (;;) {
        size_t first = 4 * i + 1;
        if (first >= tq.len) {
            break;
        }
        size_t end = first + 4 < tq.len ? first + 4 : tq.len;
        size_t least = first;
        for (size_t c = first + 1; c < end; c++) {
            if (tq.heap[c]->when < tq.heap[least]->when) {
                least = c;
            }
        }
        if (tq.heap[least]->when >= t->when) {
            break;
        }
        heap_place(i, tq.heap[least]);
        i = least;
    }
    heap_place(i, t);
}

/* Take the timer at index i out of the heap. */
static void
heap_remove(size_t i)
{
    gc_timer *t = tq.heap[i];
    t->pos = 0;
    tq.len--;
    if (i == tq.len) {
        return;
    }
    gc_timer *last = tq.heap[tq.len];
    heap_place(i, last);
    if (i > 0 && tq.heap[(i - 1) / 4]->when > last->when) {
        heap_up(i);
    }
    else {
        heap_down(i);
    }
}

/* ---- the thread -------------------------------------------------------- */

static void
timer_thread(void *arg)
{
    (void)arg;
#ifdef PR_SET_TIMERSLACK
    /* The kernel may defer this thread's timed waits by its "slack" (50 us
     * by default) to batch wake-ups; a timer thread wants them on time. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
    gc_timer *due[GC_TIMER_BATCH];
    uint64_t seqs[GC_TIMER_BATCH];
    gc_mutex_lock(&tq.busy);
    gc_mutex_lock(&tq.lock);
    for (;;) {
        int64_t now = gc_now_ns();
        size_t n = 0;
        while (n < GC_TIMER_BATCH && tq.len > 0 && tq.heap[0]->when <= now) {
            gc_timer *t = tq.heap[0];
            heap_remove(0);
            due[n] = t;
            seqs[n] = t->seq;
            n++;
        }
        if (n > 0) {
            gc_mutex_unlock(&tq.lock);
            for (size_t i = 0; i < n; i++) {
                due[i]->fire(due[i], seqs[i], now);
            }
            gc_mutex_lock(&tq.lock);
            continue;
        }
        int64_t next = tq.len > 0 ? tq.heap[0]->when : GC_FOREVER;
        /* A deadline we were woken for stays a target even if its timer
         * was stopped since: waking then is one spurious pass, while
         * forgetting it would make the next start of a similar deadline
         * wake us again (an after() created and dropped in a loop). */
        if (tq.target > now && tq.target < next) {
            next = tq.target;
        }
        tq.target = next;
        tq.parked = 1;
        /* relaxed: written only under tq.lock, which we hold. */
        uint32_t seen = atomic_load_explicit(&tq.word, memory_order_relaxed);
        gc_mutex_unlock(&tq.lock);
        gc_mutex_unlock(&tq.busy);
        /* Parks while the word is unchanged; a waker changes it under
         * tq.lock before calling gc_unpark, so no wake-up is lost. */
        gc_park(&tq.word, seen, next);
        gc_mutex_lock(&tq.busy);
        gc_mutex_lock(&tq.lock);
        tq.parked = 0;
    }
}

/* Start the thread if it is not running.  tq.lock not held.  GC_OK or
 * GC_NOMEM (no thread could be made). */
static gc_status
ensure_thread(void)
{
    gc_mutex_lock(&tq.lock);
    int running = tq.running;
    tq.running = 1;
    gc_mutex_unlock(&tq.lock);
    if (running) {
        return GC_OK;
    }
    /* Every signal blocked in the new thread from its first instruction:
     * a process signal (SIGINT) must reach a thread that can act on it,
     * not one parked in a futex that nobody looks at. */
    int made = 0;
#ifndef _WIN32
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
#endif
    uv_thread_t tid;
    uv_thread_options_t opts = {.flags = UV_THREAD_HAS_STACK_SIZE,
                                .stack_size = 256 * 1024};
    if (uv_thread_create_ex(&tid, &opts, timer_thread, NULL) == 0) {
        made = 1;
#ifndef _WIN32
        pthread_detach(tid);
#endif
    }
#ifndef _WIN32
    pthread_sigmask(SIG_SETMASK, &old, NULL);
#endif
    if (!made) {
        gc_mutex_lock(&tq.lock);
        tq.running = 0;
        gc_mutex_unlock(&tq.lock);
        return GC_NOMEM;
    }
    return GC_OK;
}

static void
tq_fork_prepare(void)
{
    /* Wait for the thread to park: then it holds no lock of ours or of
     * an owner's. */
    gc_mutex_lock(&tq.busy);
    gc_mutex_lock(&tq.lock);
}

static void
tq_fork_parent(void)
{
    gc_mutex_unlock(&tq.lock);
    gc_mutex_unlock(&tq.busy);
}

static void
tq_fork_child(void)
{
    /* The child's only thread is the one that forked and holds both
     * locks; made anew, as the thread that may have queued on `busy` does
     * not exist here.  Timers in the heap wait for the thread's next
     * start (gc_timer_after_fork or gc_timer_start). */
    gc_mutex_init(&tq.busy);
    gc_mutex_init(&tq.lock);
    tq.running = 0;
    tq.parked = 0;
    tq.target = GC_FOREVER;
}

void
gc_timer_after_fork(void)
{
    uv_once(&tq_once, tq_init);
    gc_mutex_lock(&tq.lock);
    int start = !tq.running && tq.len > 0;
    gc_mutex_unlock(&tq.lock);
    if (start) {
        ensure_thread();
    }
}

size_t
gc_timer_pending_count(void)
{
    uv_once(&tq_once, tq_init);
    gc_mutex_lock(&tq.lock);
    size_t n = tq.len;
    gc_mutex_unlock(&tq.lock);
    return n;
}

int
gc_timer_heap_check(void)
{
    uv_once(&tq_once, tq_init);
    int ok = 1;
    gc_mutex_lock(&tq.lock);
    for (size_t i = 0; i < tq.len && ok; i++) {
        ok = tq.heap[i]->pos == i + 1 &&
             (i == 0 || tq.heap[(i - 1) / 4]->when <= tq.heap[i]->when);
    }
    gc_mutex_unlock(&tq.lock);
    return ok;
}

/* ---- starting and stopping ------------------------------------------- */

void
gc_timer_init(gc_timer *t, gc_timer_fn fire)
{
    t->when = 0;
    t->pos = 0;
    t->seq = 0;
    t->fire = fire;
}

/* Make room for one more timer.  tq.lock held on entry and on return, let
 * go of meanwhile to allocate (a leaf lock never waits on malloc). */
static gc_status
heap_reserve(void)
{
    while (tq.len == tq.cap) {
        size_t cap = tq.cap ? 2 * tq.cap : 64;
        gc_mutex_unlock(&tq.lock);
        gc_timer **grown = malloc(cap * sizeof(*grown));
        gc_mutex_lock(&tq.lock);
        if (!grown) {
            return GC_NOMEM;
        }
        gc_timer **old = NULL;
        if (cap > tq.cap) {
            if (tq.len) {
                memcpy(grown, tq.heap, tq.len * sizeof(*grown));
            }
            old = tq.heap;
            tq.heap = grown;
            tq.cap = cap;
        }
        else {
            old = grown; /* someone else grew it meanwhile */
        }
        gc_mutex_unlock(&tq.lock);
        free(old);
        gc_mutex_lock(&tq.lock);
    }
    return GC_OK;
}

gc_status
gc_timer_start(gc_timer *t, int64_t when, int *was_pending)
{
    uv_once(&tq_once, tq_init);
    gc_mutex_lock(&tq.lock);
    int running = tq.running;
    gc_mutex_unlock(&tq.lock);
    if (!running && ensure_thread() != GC_OK) {
        return GC_NOMEM;
    }
    gc_mutex_lock(&tq.lock);
    int pending = t->pos != 0;
    if (!pending && heap_reserve() != GC_OK) {
        gc_mutex_unlock(&tq.lock);
        return GC_NOMEM;
    }
    t->seq++;
    t->when = when;
    if (pending) {
        size_t i = t->pos - 1;
        if (i > 0 && tq.heap[(i - 1) / 4]->when > when) {
            heap_up(i);
        }
        else {
            heap_down(i);
        }
    }
    else {
        heap_place(tq.len, t);
        tq.len++;
        heap_up(tq.len - 1);
    }
    int wake = 0;
    if (t->pos == 1 && when < tq.target) {
        tq.target = when;
        if (tq.parked) {
            tq.parked = 0;
            /* relaxed: the thread reads the word under tq.lock before it
             * parks, and the futex compares it atomically. */
            atomic_fetch_add_explicit(&tq.word, 1, memory_order_relaxed);
            wake = 1;
        }
    }
    gc_mutex_unlock(&tq.lock);
    if (wake) {
        gc_unpark(&tq.word);
    }
    if (was_pending) {
        *was_pending = pending;
    }
    return GC_OK;
}

int
gc_timer_stop(gc_timer *t)
{
    uv_once(&tq_once, tq_init);
    gc_mutex_lock(&tq.lock);
    int pending = t->pos != 0;
    t->seq++;
    if (pending) {
        heap_remove(t->pos - 1);
    }
    gc_mutex_unlock(&tq.lock);
    /* Not woken even if t was the earliest: the thread's pass at the old
     * deadline finds nothing due and sleeps on. */
    return pending;
}

/* ---- sleeping ---------------------------------------------------------- */

/* A sleeping thread wakes up to its timer slack late (50 us by default on
 * Linux): the kernel defers it to batch wake-ups.  A sleep asks for its
 * deadline, so it lowers the slack while it sleeps, as the timer thread
 * does for good, and puts it back after. */
static unsigned long
slack_lower(void)
{
#ifdef PR_SET_TIMERSLACK
    int old = prctl(PR_GET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);
    if (old > 1) {
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        return (unsigned long)old;
    }
#endif
    return 0;
}

static void
slack_restore(unsigned long old)
{
#ifdef PR_SET_TIMERSLACK
    if (old > 0) {
        prctl(PR_SET_TIMERSLACK, old, 0UL, 0UL, 0UL);
    }
#endif
}

static gc_status sleep_loop(int64_t deadline, gc_chan *cancel,
                            const gc_unlock *u);

gc_status
gc_sleep_until(int64_t deadline, gc_chan *cancel, const gc_unlock *u)
{
    unsigned long slack = slack_lower();
    gc_status st = sleep_loop(deadline, cancel, u);
    slack_restore(slack);
    return st;
}

static gc_status
sleep_loop(int64_t deadline, gc_chan *cancel, const gc_unlock *u)
{
    for (;;) {
        if (cancel && gc_chan_closed(cancel)) {
            return GC_CANCELLED;
        }
        if (deadline != GC_FOREVER && gc_now_ns() >= deadline) {
            return GC_OK;
        }
        gc_case c = {.ch = cancel, .dir = GC_RECV};
        gc_status st = gc_wait(&c, cancel ? 1 : 0, deadline, NULL, u);
        if (st == GC_TIMEOUT) {
            return GC_OK;
        }
        if (st == GC_INTR) {
            return GC_INTR;
        }
        /* GC_RETRY or (never: nothing is sent on a cancel channel) GC_OK:
         * look at the channel and the clock again. */
    }
}

/* ---- channel timers -------------------------------------------------- */

/* Invariants (ct->lock protects armed, when, period and the timer's seq):
 *   - armed: a send is scheduled (the timer is in the heap, or its fire is
 *     in flight with the current seq); then refs counts one for the heap;
 *   - the channel, of capacity 1, holds only immediate values and is
 *     sent to only under ct->lock, so that stop/reset can drain it under
 *     that lock and be sure no fire sends behind their back. */
struct gc_chantimer {
    gc_timer tm;         /* first: a fire finds its chantimer from it */
    _Atomic size_t refs; /* creator's references, plus one while armed */
    gc_mutex lock;       /* see above */
    gc_chan *ch;         /* capacity 1 */
    int64_t period;      /* ns between ticks; 0 for a one-shot timer */
    int64_t when;        /* next send, while armed */
    int armed;
};

static void chantimer_fire(gc_timer *t, uint64_t seq, int64_t now);

static gc_chantimer *
chantimer_alloc(int64_t period)
{
    gc_chantimer *ct = malloc(sizeof(*ct));
    if (!ct) {
        return NULL;
    }
    ct->ch = gc_chan_new(1);
    if (!ct->ch) {
        free(ct);
        return NULL;
    }
    if (gc_mutex_init(&ct->lock) != 0) {
        gc_chan_free(ct->ch, NULL, NULL);
        free(ct);
        return NULL;
    }
    gc_timer_init(&ct->tm, chantimer_fire);
    /* relaxed: not shared yet. */
    atomic_init(&ct->refs, 1);
    ct->period = period;
    ct->when = GC_FOREVER;
    ct->armed = 0;
    return ct;
}

void
gc_chantimer_incref(gc_chantimer *ct)
{
    /* relaxed: the caller already holds a reference. */
    atomic_fetch_add_explicit(&ct->refs, 1, memory_order_relaxed);
}

void
gc_chantimer_decref(gc_chantimer *ct)
{
    /* acq_rel: the release orders this holder's use before the free; the
     * last holder's acquire sees every other holder's use. */
    if (atomic_fetch_sub_explicit(&ct->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    gc_chan_free(ct->ch, NULL, NULL); /* immediate values only */
    gc_mutex_destroy(&ct->lock);
    free(ct);
}

gc_chan *
gc_chantimer_chan(gc_chantimer *ct)
{
    return ct->ch;
}

int64_t
gc_chantimer_when(gc_chantimer *ct)
{
    gc_mutex_lock(&ct->lock);
    int64_t when = ct->armed ? ct->when : GC_FOREVER;
    gc_mutex_unlock(&ct->lock);
    return when;
}

/* Arm for `when` (ct->lock held, not armed).  A one-shot deadline already
 * reached sends at once, without the timer thread.  The heap's reference
 * is taken here, under the lock: once the lock is let go the timer may
 * fire and drop it. */
static gc_status
chantimer_arm(gc_chantimer *ct, int64_t when)
{
    if (ct->period == 0 && when <= gc_now_ns()) {
        gc_chan_try_send(ct->ch, gc_item_from_time(gc_now_ns()));
        return GC_OK;
    }
    int was_pending;
    gc_status st = gc_timer_start(&ct->tm, when, &was_pending);
    if (st != GC_OK) {
        return st;
    }
    if (!was_pending) {
        gc_chantimer_incref(ct);
    }
    ct->armed = 1;
    ct->when = when;
    return GC_OK;
}

/* Disarm and drain (ct->lock held).  Returns whether the timer was
 * pending; *heap_ref: the caller drops the heap's reference. */
static int
chantimer_disarm(gc_chantimer *ct, int *heap_ref)
{
    int pending = ct->armed;
    *heap_ref = 0;
    if (ct->armed) {
        /* Not in the heap: its fire is in flight and, seeing a new seq,
         * drops the heap's reference itself. */
        *heap_ref = gc_timer_stop(&ct->tm);
        ct->armed = 0;
    }
    void *item;
    while (gc_chan_try_recv(ct->ch, &item) == GC_OK) {
        pending = 1; /* fired, value never received (Go 1.23) */
    }
    return pending;
}

static void
chantimer_fire(gc_timer *t, uint64_t seq, int64_t now)
{
    gc_chantimer *ct = (gc_chantimer *)t;
    gc_mutex_lock(&ct->lock);
    if (ct->armed && seq == ct->tm.seq) {
        /* Sent under ct->lock (a receiver may be woken under it): a stop
         * that drains the channel must find the value or prevent it.  A
         * full channel drops the value: a ticker's slow receiver gets the
         * oldest undelivered tick, not a backlog. */
        gc_chan_try_send(ct->ch, gc_item_from_time(now));
        ct->armed = 0;
        if (ct->period > 0) {
            /* The first tick strictly after now, on the original grid. */
            int64_t missed = (now - ct->when) / ct->period;
            int64_t step, next;
            if (__builtin_mul_overflow(missed + 1, ct->period, &step) ||
                __builtin_add_overflow(ct->when, step, &next)) {
                next = GC_FOREVER; /* a period too long for the clock */
            }
            /* Without memory for the heap the ticker stops. */
            chantimer_arm(ct, next);
        }
    }
    gc_mutex_unlock(&ct->lock);
    gc_chantimer_decref(ct); /* the reference of the fire that ran */
}

gc_chantimer *
gc_chantimer_new_stopped(int64_t period)
{
    return chantimer_alloc(period);
}

gc_chantimer *
gc_chantimer_new(int64_t when, int64_t period)
{
    gc_chantimer *ct = chantimer_alloc(period);
    if (!ct) {
        return NULL;
    }
    gc_mutex_lock(&ct->lock);
    gc_status st = chantimer_arm(ct, when);
    gc_mutex_unlock(&ct->lock);
    if (st != GC_OK) {
        gc_chantimer_decref(ct);
        return NULL;
    }
    return ct;
}

int
gc_chantimer_stop(gc_chantimer *ct)
{
    int heap_ref;
    gc_mutex_lock(&ct->lock);
    int pending = chantimer_disarm(ct, &heap_ref);
    gc_mutex_unlock(&ct->lock);
    if (heap_ref) {
        gc_chantimer_decref(ct);
    }
    return pending;
}

gc_status
gc_chantimer_reset(gc_chantimer *ct, int64_t when, int64_t period,
                   int *was_pending)
{
    int dropped;
    gc_mutex_lock(&ct->lock);
    int pending = chantimer_disarm(ct, &dropped);
    if (ct->period > 0 && period > 0) {
        ct->period = period;
    }
    gc_status st = chantimer_arm(ct, when);
    gc_mutex_unlock(&ct->lock);
    if (dropped) {
        gc_chantimer_decref(ct); /* never the last: the caller holds one */
    }
    if (was_pending) {
        *was_pending = pending;
    }
    return st;
}
