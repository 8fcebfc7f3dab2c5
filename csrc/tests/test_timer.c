/* test_timer.c - the timer thread and its heap, channel timers, sleeping
 * and the dispatcher.
 *
 * What it proves:
 *   - the heap keeps its 4-ary order and positions under thousands of
 *     random starts, moves and stops, and the thread fires every timer
 *     left in it exactly once, never before its deadline, in deadline
 *     order;
 *   - start/stop/restart racing with fires from several threads: a fire
 *     whose seq is stale is ignored, every current fire comes no earlier
 *     than its deadline, and the owner's "heap reference" balances (each
 *     owner's count returns to exactly 1);
 *   - a start earlier than the deadline the thread sleeps to wakes it (a
 *     1 ms timer added while a 10 s one is pending fires promptly);
 *   - channel timers: a one-shot sends its firing time once; stop before
 *     it fires returns 1 and nothing is ever received; a fired, unreceived
 *     value counts as pending and is drained by stop and by reset (Go
 *     1.23); stop after the receive returns 0; a deadline already past
 *     sends at once; reset re-arms;
 *   - tickers tick about every period; a slow receiver finds one tick,
 *     the first undelivered one, not a backlog; stop ends the ticks;
 *   - chantimers stopped, reset and dropped from several threads while
 *     they fire are freed exactly once (AddressSanitizer's leak check);
 *   - gc_sleep_until sleeps until its deadline, and returns GC_CANCELLED
 *     early when its cancel channel is closed;
 *   - the dispatcher runs pushed tasks in order, from any thread, and its
 *     pop times out when nothing comes;
 *   - fork(): in the child, timers started before and after the fork
 *     fire.
 */
#include <sys/wait.h>

#include "gc_test.h"
#include "gc_timer.h"

static uint64_t rng_seed = 0x7151;

/* ---- heap order --------------------------------------------------------- */

#define HEAP_N 4000

typedef struct probe {
    gc_timer tm;          /* first: fire finds the probe from it */
    pthread_mutex_t lock; /* the owner's lock */
    int64_t when;         /* deadline of the current start (lock) */
    int armed;            /* a current fire is expected (lock) */
    int fired;            /* current fires seen (lock) */
    int stale;            /* stale fires seen (lock) */
    int64_t fired_at;     /* `now` of the last current fire (lock) */
    _Atomic int refs;     /* 1 for the test, plus one for the heap */
} probe;

static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_fired_when;
static int order_broken;

static void
probe_fire(gc_timer *t, uint64_t seq, int64_t now)
{
    probe *p = (probe *)t;
    pthread_mutex_lock(&p->lock);
    if (seq == p->tm.seq && p->armed) {
        p->armed = 0;
        p->fired++;
        p->fired_at = now;
        CHECK(now >= p->when);
        pthread_mutex_lock(&order_lock);
        if (p->when < last_fired_when) {
            order_broken = 1;
        }
        last_fired_when = p->when;
        pthread_mutex_unlock(&order_lock);
    }
    else {
        p->stale++;
    }
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_sub(&p->refs, 1); /* the heap's reference */
}

static void
probe_init(probe *p)
{
    memset(p, 0, sizeof(*p));
    gc_timer_init(&p->tm, probe_fire);
    pthread_mutex_init(&p->lock, NULL);
    atomic_init(&p->refs, 1);
}

/* Start (or move) p for `when`, owner's lock held by the caller. */
static void
probe_start_locked(probe *p, int64_t when)
{
    int was;
    CHECK_ST(gc_timer_start(&p->tm, when, &was), GC_OK);
    if (!was) {
        atomic_fetch_add(&p->refs, 1);
    }
    p->when = when;
    p->armed = 1;
}

static void
probe_stop_locked(probe *p)
{
    if (gc_timer_stop(&p->tm)) {
        atomic_fetch_sub(&p->refs, 1);
    }
    p->armed = 0;
}

static void
test_heap_order(void)
{
    static probe ps[HEAP_N];
    /* Far enough ahead that nothing fires while the heap is shuffled. */
    int64_t base = gc_now_ns() + 1000 * GC_MS;
    for (int i = 0; i < HEAP_N; i++) {
        probe_init(&ps[i]);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < HEAP_N; i++) {
            probe *p = &ps[gc_test_rand(&rng_seed) % HEAP_N];
            int64_t when =
                base + (int64_t)(gc_test_rand(&rng_seed) % (200 * GC_MS));
            pthread_mutex_lock(&p->lock);
            if (gc_test_rand(&rng_seed) % 4 == 0) {
                probe_stop_locked(p);
            }
            else {
                probe_start_locked(p, when);
            }
            pthread_mutex_unlock(&p->lock);
            if (i % 97 == 0) {
                CHECK(gc_timer_heap_check());
            }
        }
        CHECK(gc_timer_heap_check());
    }
    int expected = 0;
    for (int i = 0; i < HEAP_N; i++) {
        pthread_mutex_lock(&ps[i].lock);
        expected += ps[i].armed;
        pthread_mutex_unlock(&ps[i].lock);
    }
    CHECK(expected > HEAP_N / 2);
    for (int i = 0; i < HEAP_N; i++) {
        WAIT_UNTIL(atomic_load(&ps[i].refs) == 1, 10000);
    }
    int fired = 0;
    for (int i = 0; i < HEAP_N; i++) {
        pthread_mutex_lock(&ps[i].lock);
        CHECK_EQ(ps[i].armed, 0);
        CHECK(ps[i].fired <= 1);
        CHECK_EQ(ps[i].stale, 0); /* nothing was stopped in flight */
        fired += ps[i].fired;
        pthread_mutex_unlock(&ps[i].lock);
        pthread_mutex_destroy(&ps[i].lock);
    }
    CHECK_EQ(fired, expected);
    CHECK(!order_broken);
    CHECK_EQ(gc_timer_pending_count(), 0);
}

/* ---- races between owners and the timer thread -------------------------- */

#define RACE_THREADS 4
#define RACE_PROBES  16

typedef struct race_arg {
    probe ps[RACE_PROBES];
    uint64_t seed;
    int iters;
} race_arg;

static void *
race_main(void *arg)
{
    race_arg *a = arg;
    for (int i = 0; i < a->iters; i++) {
        probe *p = &a->ps[gc_test_rand(&a->seed) % RACE_PROBES];
        /* Deadlines from the past to 200 us ahead: many fires land while
         * the owner is starting or stopping the same timer. */
        int64_t when =
            gc_now_ns() - 50000 + (int64_t)(gc_test_rand(&a->seed) % 250000);
        pthread_mutex_lock(&p->lock);
        switch (gc_test_rand(&a->seed) % 3) {
        case 0:
            probe_stop_locked(p);
            break;
        default:
            probe_start_locked(p, when);
            break;
        }
        pthread_mutex_unlock(&p->lock);
        if (i % 64 == 0) {
            gc_test_sleep_ns(20000);
        }
    }
    return NULL;
}

static void
test_start_stop_races(void)
{
    static race_arg args[RACE_THREADS];
    int iters = (int)(20000 * gc_test_scale());
    for (int t = 0; t < RACE_THREADS; t++) {
        args[t].seed = 0x1000 + (uint64_t)t;
        args[t].iters = iters;
        for (int i = 0; i < RACE_PROBES; i++) {
            probe_init(&args[t].ps[i]);
        }
    }
    gc_test_threads th =
        gc_test_threads_start(RACE_THREADS, race_main, args, sizeof(race_arg));
    gc_test_threads_join(&th);
    int fired = 0, stale = 0;
    for (int t = 0; t < RACE_THREADS; t++) {
        for (int i = 0; i < RACE_PROBES; i++) {
            probe *p = &args[t].ps[i];
            /* Whatever is still armed fires within 200 us; stale fires in
             * flight drop their reference too. */
            WAIT_UNTIL(atomic_load(&p->refs) == 1, 10000);
            pthread_mutex_lock(&p->lock);
            CHECK_EQ(p->armed, 0);
            fired += p->fired;
            stale += p->stale;
            pthread_mutex_unlock(&p->lock);
            pthread_mutex_destroy(&p->lock);
        }
    }
    CHECK(fired > 0);
    printf("    %d current fires, %d stale fires ignored\n", fired, stale);
    CHECK_EQ(gc_timer_pending_count(), 0);
}

/* A timer earlier than the one the thread sleeps to wakes it. */
static void
test_earlier_start_wakes(void)
{
    probe late, soon;
    probe_init(&late);
    probe_init(&soon);
    pthread_mutex_lock(&late.lock);
    probe_start_locked(&late, gc_now_ns() + 10000 * GC_MS);
    pthread_mutex_unlock(&late.lock);
    gc_test_sleep_ns(20 * GC_MS); /* the thread now sleeps to +10 s */
    int64_t t0 = gc_now_ns();
    pthread_mutex_lock(&soon.lock);
    probe_start_locked(&soon, t0 + GC_MS);
    pthread_mutex_unlock(&soon.lock);
    WAIT_UNTIL(atomic_load(&soon.refs) == 1, 5000);
    CHECK(gc_now_ns() - t0 < 2000 * GC_MS);
    pthread_mutex_lock(&soon.lock);
    CHECK_EQ(soon.fired, 1);
    pthread_mutex_unlock(&soon.lock);
    pthread_mutex_lock(&late.lock);
    probe_stop_locked(&late);
    pthread_mutex_unlock(&late.lock);
    CHECK_EQ(atomic_load(&late.refs), 1);
    CHECK_EQ(late.fired, 0);
    pthread_mutex_destroy(&late.lock);
    pthread_mutex_destroy(&soon.lock);
}

/* ---- channel timers -------------------------------------------------- */

static void
test_chantimer_oneshot(void)
{
    int64_t t0 = gc_now_ns();
    gc_chantimer *ct = gc_chantimer_new(t0 + 20 * GC_MS, 0);
    CHECK(ct != NULL);
    gc_chan *ch = gc_chantimer_chan(ct);
    void *item = NULL;
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
    CHECK_ST(gc_chan_recv(ch, &item, t0 + 5000 * GC_MS, NULL), GC_OK);
    CHECK(gc_item_is_time(item));
    CHECK(gc_item_time(item) >= t0 + 20 * GC_MS);
    CHECK(gc_now_ns() >= t0 + 20 * GC_MS);
    /* Only once. */
    CHECK_ST(gc_chan_recv(ch, &item, gc_now_ns() + 50 * GC_MS, NULL),
             GC_TIMEOUT);
    CHECK_EQ(gc_chantimer_stop(ct), 0); /* received: not pending */
    gc_chantimer_decref(ct);
}

static void
test_chantimer_stop_before_fire(void)
{
    gc_chantimer *ct = gc_chantimer_new(gc_now_ns() + 20 * GC_MS, 0);
    CHECK(ct != NULL);
    CHECK_EQ(gc_chantimer_stop(ct), 1);
    CHECK_EQ(gc_chantimer_stop(ct), 0);
    void *item;
    CHECK_ST(gc_chan_recv(gc_chantimer_chan(ct), &item,
                          gc_now_ns() + 60 * GC_MS, NULL),
             GC_TIMEOUT);
    gc_chantimer_decref(ct);
}

static void
test_chantimer_unreceived_is_pending(void)
{
    gc_chantimer *ct = gc_chantimer_new(gc_now_ns() + GC_MS, 0);
    CHECK(ct != NULL);
    gc_chan *ch = gc_chantimer_chan(ct);
    WAIT_UNTIL(gc_chan_len(ch) == 1, 5000);
    CHECK_EQ(gc_chantimer_stop(ct), 1); /* fired, not received: pending */
    CHECK_EQ(gc_chan_len(ch), 0);       /* and drained */
    CHECK_EQ(gc_chantimer_stop(ct), 0);

    /* reset drains too: the value received after it is the new one. */
    int was = -1;
    CHECK_ST(gc_chantimer_reset(ct, gc_now_ns() + GC_MS, 0, &was), GC_OK);
    CHECK_EQ(was, 0);
    WAIT_UNTIL(gc_chan_len(ch) == 1, 5000);
    int64_t t1 = gc_now_ns();
    CHECK_ST(gc_chantimer_reset(ct, t1 + 30 * GC_MS, 0, &was), GC_OK);
    CHECK_EQ(was, 1);
    CHECK_EQ(gc_chan_len(ch), 0);
    void *item;
    CHECK_ST(gc_chan_recv(ch, &item, t1 + 5000 * GC_MS, NULL), GC_OK);
    CHECK(gc_item_time(item) >= t1 + 30 * GC_MS);

    /* A deadline already past sends at once, without the thread. */
    CHECK_ST(gc_chantimer_reset(ct, 0, 0, &was), GC_OK);
    CHECK_EQ(was, 0);
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
    gc_chantimer_decref(ct);

    gc_chantimer *now = gc_chantimer_new(gc_now_ns() - GC_MS, 0);
    CHECK(now != NULL);
    CHECK_EQ(gc_chan_len(gc_chantimer_chan(now)), 1);
    gc_chantimer_decref(now);
}

static void
test_chantimer_stopped_then_reset(void)
{
    gc_chantimer *ct = gc_chantimer_new_stopped(0);
    CHECK(ct != NULL);
    CHECK_EQ(gc_chantimer_when(ct), GC_FOREVER);
    CHECK_EQ(gc_chantimer_stop(ct), 0);
    int64_t when = gc_now_ns() + 5 * GC_MS;
    CHECK_ST(gc_chantimer_reset(ct, when, 0, NULL), GC_OK);
    CHECK_EQ(gc_chantimer_when(ct), when);
    void *item;
    CHECK_ST(gc_chan_recv(gc_chantimer_chan(ct), &item,
                          gc_now_ns() + 5000 * GC_MS, NULL),
             GC_OK);
    CHECK(gc_item_time(item) >= when);
    CHECK_EQ(gc_chantimer_when(ct), GC_FOREVER);
    gc_chantimer_decref(ct);
}

static void
test_ticker(void)
{
    int64_t period = 10 * GC_MS;
    int64_t t0 = gc_now_ns();
    gc_chantimer *ct = gc_chantimer_new(t0 + period, period);
    CHECK(ct != NULL);
    gc_chan *ch = gc_chantimer_chan(ct);
    int ticks = 0;
    int64_t prev = t0;
    while (gc_now_ns() - t0 < 200 * GC_MS) {
        void *item;
        if (gc_chan_recv(ch, &item, t0 + 200 * GC_MS, NULL) == GC_OK) {
            CHECK(gc_item_time(item) > prev);
            prev = gc_item_time(item);
            ticks++;
        }
    }
    /* 20 expected; only loose bounds. */
    CHECK(ticks >= 2);
    CHECK(ticks <= 21);

    /* A slow receiver: one tick waits, the others are dropped; it is the
     * first undelivered one. */
    int64_t t1 = gc_now_ns();
    gc_test_sleep_ns(300 * GC_MS);
    CHECK_EQ(gc_chan_len(ch), 1);
    void *item;
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
    CHECK(gc_item_time(item) < t1 + 150 * GC_MS); /* not the latest */
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);

    /* Reset to a longer period; then stop: no more ticks. */
    CHECK_ST(
        gc_chantimer_reset(ct, gc_now_ns() + 20 * GC_MS, 20 * GC_MS, NULL),
        GC_OK);
    CHECK_ST(gc_chan_recv(ch, &item, gc_now_ns() + 5000 * GC_MS, NULL), GC_OK);
    gc_chantimer_stop(ct);
    CHECK_ST(gc_chan_recv(ch, &item, gc_now_ns() + 60 * GC_MS, NULL),
             GC_TIMEOUT);
    gc_chantimer_decref(ct);
}

#define CT_THREADS 4
#define CT_TIMERS  8

typedef struct ct_arg {
    gc_chantimer **cts;
    uint64_t seed;
    int iters;
} ct_arg;

static void *
ct_main(void *arg)
{
    ct_arg *a = arg;
    for (int i = 0; i < a->iters; i++) {
        gc_chantimer *ct = a->cts[gc_test_rand(&a->seed) % CT_TIMERS];
        int64_t when =
            gc_now_ns() + (int64_t)(gc_test_rand(&a->seed) % 100000);
        void *item;
        switch (gc_test_rand(&a->seed) % 4) {
        case 0:
            gc_chantimer_stop(ct);
            break;
        case 1:
            gc_chan_try_recv(gc_chantimer_chan(ct), &item);
            break;
        default:
            CHECK_ST(gc_chantimer_reset(ct, when, 30000, NULL), GC_OK);
            break;
        }
    }
    return NULL;
}

/* Refcounts balance whatever interleaving: every chantimer is freed
 * (ASan's leak check) and none twice. */
static void
test_chantimer_races(void)
{
    gc_chantimer *cts[CT_TIMERS];
    for (int i = 0; i < CT_TIMERS; i++) {
        cts[i] = gc_chantimer_new(gc_now_ns() + 10000, i % 2 ? 20000 : 0);
        CHECK(cts[i] != NULL);
    }
    ct_arg args[CT_THREADS];
    for (int t = 0; t < CT_THREADS; t++) {
        args[t].cts = cts;
        args[t].seed = 0x2000 + (uint64_t)t;
        args[t].iters = (int)(20000 * gc_test_scale());
    }
    gc_test_threads th =
        gc_test_threads_start(CT_THREADS, ct_main, args, sizeof(ct_arg));
    gc_test_threads_join(&th);
    /* A ticker is stopped by its owner before it lets go (the binding
     * does so); a one-shot may be dropped while pending, and then the
     * last reference, the heap's or a fire's, frees it. */
    for (int i = 0; i < CT_TIMERS; i++) {
        if (i % 2 == 1 || i % 4 == 0) {
            gc_chantimer_stop(cts[i]);
        }
        else {
            gc_chantimer_reset(cts[i], gc_now_ns() + 100000, 0, NULL);
        }
        gc_chantimer_decref(cts[i]);
    }
}

/* ---- sleeping ------------------------------------------------------- */

typedef struct closer {
    gc_chan *ch;
    int64_t after;
} closer;

static void *
closer_main(void *arg)
{
    closer *c = arg;
    gc_test_sleep_ns(c->after);
    gc_chan_close(c->ch);
    return NULL;
}

static void
test_sleep_until(void)
{
    int64_t t0 = gc_now_ns();
    CHECK_ST(gc_sleep_until(t0 + 20 * GC_MS, NULL, NULL), GC_OK);
    int64_t t1 = gc_now_ns();
    CHECK(t1 >= t0 + 20 * GC_MS);
    CHECK(t1 - t0 < 2000 * GC_MS);

    CHECK_ST(gc_sleep_until(0, NULL, NULL), GC_OK); /* past: at once */

    gc_chan *cancel = gc_chan_new(0);
    CHECK(cancel != NULL);
    CHECK_ST(gc_sleep_until(gc_now_ns() + 10 * GC_MS, cancel, NULL), GC_OK);
    closer c = {cancel, 20 * GC_MS};
    pthread_t t = gc_test_spawn(closer_main, &c);
    t0 = gc_now_ns();
    CHECK_ST(gc_sleep_until(t0 + 60000 * GC_MS, cancel, NULL), GC_CANCELLED);
    CHECK(gc_now_ns() - t0 < 10000 * GC_MS);
    gc_test_join(t);
    CHECK_ST(gc_sleep_until(GC_FOREVER, cancel, NULL), GC_CANCELLED);
    gc_chan_free(cancel, NULL, NULL);
}

/* Sleeping on a timer added for a past or very near deadline: repeated,
 * quick, never lost. */
static void
test_many_short_timers(void)
{
    for (int i = 0; i < 2000; i++) {
        gc_chantimer *ct = gc_chantimer_new(gc_now_ns() + (i % 7) * 1000, 0);
        CHECK(ct != NULL);
        void *item;
        CHECK_ST(gc_chan_recv(gc_chantimer_chan(ct), &item,
                              gc_now_ns() + 5000 * GC_MS, NULL),
                 GC_OK);
        gc_chantimer_decref(ct);
    }
}

/* ---- the dispatcher ----------------------------------------------------- */

#define DQ_THREADS    3
#define DQ_PER_THREAD 2000

typedef struct dtask {
    gc_task task;
    int thread;
    int index;
} dtask;

static int ran_last[DQ_THREADS];
static int ran_total;

static void
dtask_run(gc_task *t)
{
    dtask *d = (dtask *)t;
    CHECK_EQ(d->index, ran_last[d->thread] + 1); /* FIFO per pusher */
    ran_last[d->thread] = d->index;
    ran_total++;
}

static void *
pusher_main(void *arg)
{
    dtask *ds = arg;
    for (int i = 0; i < DQ_PER_THREAD; i++) {
        gc_dispatch_push(&ds[i].task);
        if (i % 100 == 0) {
            gc_test_sleep_ns(100000);
        }
    }
    return NULL;
}

static void
test_dispatch(void)
{
    gc_task *t;
    int64_t t0 = gc_now_ns();
    CHECK_ST(gc_dispatch_pop(&t, t0 + 20 * GC_MS, NULL), GC_TIMEOUT);
    CHECK(gc_now_ns() >= t0 + 20 * GC_MS);

    static dtask ds[DQ_THREADS][DQ_PER_THREAD];
    for (int k = 0; k < DQ_THREADS; k++) {
        ran_last[k] = -1;
        for (int i = 0; i < DQ_PER_THREAD; i++) {
            ds[k][i].task.run = dtask_run;
            ds[k][i].thread = k;
            ds[k][i].index = i;
        }
    }
    gc_test_threads th =
        gc_test_threads_start(DQ_THREADS, pusher_main, ds, sizeof ds[0]);
    while (ran_total < DQ_THREADS * DQ_PER_THREAD) {
        CHECK_ST(gc_dispatch_pop(&t, gc_now_ns() + 10000 * GC_MS, NULL),
                 GC_OK);
        t->run(t);
    }
    gc_test_threads_join(&th);
    CHECK_EQ(gc_dispatch_pending(), 0);
}

/* ---- fork ----------------------------------------------------------- */

static void
test_fork_child_timers(void)
{
    /* One timer pending across the fork, one started in the child. */
    gc_chantimer *before = gc_chantimer_new(gc_now_ns() + 30 * GC_MS, 0);
    CHECK(before != NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(30); /* a hung child dies instead of outliving the test */
        gc_timer_after_fork();
        void *item;
        if (gc_chan_recv(gc_chantimer_chan(before), &item,
                         gc_now_ns() + 5000 * GC_MS, NULL) != GC_OK) {
            _exit(2);
        }
        gc_chantimer *ct = gc_chantimer_new(gc_now_ns() + 10 * GC_MS, 0);
        if (!ct || gc_chan_recv(gc_chantimer_chan(ct), &item,
                                gc_now_ns() + 5000 * GC_MS, NULL) != GC_OK) {
            _exit(3);
        }
        _exit(0);
    }
    gc_test_check_child_exits_ok(pid);
    void *item;
    CHECK_ST(gc_chan_recv(gc_chantimer_chan(before), &item,
                          gc_now_ns() + 5000 * GC_MS, NULL),
             GC_OK);
    gc_chantimer_decref(before);
}

int
main(void)
{
    GC_RUN(test_heap_order);
    GC_RUN(test_start_stop_races);
    GC_RUN(test_earlier_start_wakes);
    GC_RUN(test_chantimer_oneshot);
    GC_RUN(test_chantimer_stop_before_fire);
    GC_RUN(test_chantimer_unreceived_is_pending);
    GC_RUN(test_chantimer_stopped_then_reset);
    GC_RUN(test_ticker);
    GC_RUN(test_chantimer_races);
    GC_RUN(test_sleep_until);
    GC_RUN(test_many_short_timers);
    GC_RUN(test_dispatch);
#ifndef GC_TSAN /* TSan cannot start threads in a forked child */
    GC_RUN(test_fork_child_timers);
#endif
    return 0;
}
