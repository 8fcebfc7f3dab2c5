/* test_wait.c - gc_wait (the multi-case wait under send, receive and
 * select), signals, and the caller's lock (gc_unlock).
 *
 * What it proves:
 *   - gc_wait with n == 0 sleeps until its deadline (GC_TIMEOUT, never
 *     early) and with a past deadline returns at once;
 *   - a case whose ch is NULL is never ready and never completed, and does
 *     not disturb the index reported for the other cases;
 *   - a case that can proceed when gc_wait is called makes it return
 *     GC_RETRY at once (buffered with a value or room, closed, or an
 *     unbuffered peer waiting);
 *   - a peer that completes a case makes gc_wait return GC_OK with that
 *     case's index, and the value (receive) or its delivery (send); with
 *     several cases on one queue, it completes the first registered;
 *   - a waiter is never matched with itself (send and receive on one
 *     unbuffered channel in one wait time out);
 *   - select by hand: with two channels and two senders racing for one
 *     waiter, exactly one value is taken; the other sender stays blocked
 *     (unbuffered) or its value stays buffered, until a later receive;
 *   - whatever gc_wait returns, none of its cases is registered any more
 *     (the waiting counts go back to 0);
 *   - GC_INTR: a signal (handler installed without SA_RESTART) makes a
 *     thread blocked in gc_chan_recv / gc_chan_send / gc_wait return
 *     GC_INTR with nothing done; calling again goes on waiting, and no
 *     value is lost or duplicated even under a stream of signals;
 *   - gc_unlock: release/acquire run in pairs, only when the call waits,
 *     and the caller's lock really is free while it waits;
 *   - gc_wait with a caller's lock lets go of it only after registering
 *     every case (release() sees each case's channel count a waiter), and
 *     holds it again when it returns, on every path (a peer completes case
 *     0, 1 or 2, a close gives GC_RETRY, the deadline, a signal); a case
 *     ready at once means the lock is never let go;
 *   - the let-go spin: a thread woken while its waker keeps the lock uses
 *     about spin_ns of CPU, not the whole time the lock is held; with a
 *     huge spin_ns it still takes the lock at once when the waker lets go
 *     of it in gc_wait (the let-go epoch moves);
 *   - spinning policy: at most CPUs - 1 spinners at once (none on one
 *     CPU), also after a storm of begin/end pairs from several threads;
 *     no spinning while every CPU has a busy thread (the load samples of
 *     /proc/loadavg show it within the sampling window).
 * Ports of Go's runtime tests (src/runtime/chan_test.go): TestSelfSelect,
 * TestPseudoRandomSend, TestSelectFairness (weakened to "both cases
 * happen").
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>

#include "gc_test.h"

#define V(i) GC_P((uintptr_t)(i) + 1000)

static uint64_t rng_seed = 0x1234567;

static void
check_unregistered(gc_chan *ch)
{
    CHECK_EQ(gc_test_waiting_senders(ch), 0);
    CHECK_EQ(gc_test_waiting_receivers(ch), 0);
}

static void
test_wait_with_no_cases_sleeps_until_deadline(void)
{
    int64_t t0 = gc_now_ns();
    int64_t deadline = t0 + 20 * GC_MS;
    size_t idx = 77;
    CHECK_ST(gc_wait(NULL, 0, deadline, &idx, NULL), GC_TIMEOUT);
    int64_t t1 = gc_now_ns();
    CHECK(t1 >= deadline);
    CHECK(t1 - t0 < 2000 * GC_MS);
    CHECK_EQ(idx, 77);

    /* a deadline already past: straight back */
    t0 = gc_now_ns();
    CHECK_ST(gc_wait(NULL, 0, t0 - 1, &idx, NULL), GC_TIMEOUT);
    CHECK_ST(gc_wait(NULL, 0, 0, &idx, NULL), GC_TIMEOUT);
    CHECK(gc_now_ns() - t0 < 1000 * GC_MS);
}

static void
test_nil_case_is_never_ready(void)
{
    gc_case c[2];
    memset(c, 0, sizeof c);
    c[0].ch = NULL;
    c[0].dir = GC_RECV;
    c[1].ch = NULL;
    c[1].dir = GC_SEND;
    c[1].item = V(1);
    int64_t deadline = gc_deadline_after(20 * GC_MS);
    CHECK_ST(gc_wait(c, 2, deadline, NULL, NULL), GC_TIMEOUT);
    CHECK(gc_now_ns() >= deadline);
}

static void
test_nil_case_keeps_other_case_indices(void)
{
    gc_chan *ch = gc_chan_new(0);
    for (int k = 0; k < 3; k++) {
        /* the live case at position k, nil cases around it */
        gc_case c[3];
        memset(c, 0, sizeof c);
        for (int i = 0; i < 3; i++)
            c[i].dir = GC_RECV;
        c[k].ch = ch;
        gc_test_op op;
        gc_test_op_start(&op, ch, GC_SEND, V(k), GC_FOREVER);
        size_t idx = 99;
        gc_status st;
        do {
            st = gc_wait(c, 3, gc_deadline_after(10000 * GC_MS), &idx, NULL);
            if (st == GC_RETRY) {
                void *item;
                if (gc_chan_try_recv(ch, &item) == GC_OK) {
                    c[k].item = item;
                    idx = (size_t)k;
                    st = GC_OK;
                }
            }
        } while (st == GC_RETRY);
        CHECK_ST(st, GC_OK);
        CHECK_EQ(idx, k);
        CHECK_PTR_EQ(c[k].item, V(k));
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        check_unregistered(ch);
    }
    gc_chan_free(ch, NULL, NULL);
}

static gc_status
wait_once(gc_chan *ch, int dir, int64_t timeout_ns)
{
    gc_case c;
    memset(&c, 0, sizeof c);
    c.ch = ch;
    c.dir = dir;
    c.item = V(5);
    gc_status st = gc_wait(&c, 1, gc_deadline_after(timeout_ns), NULL, NULL);
    check_unregistered(ch);
    return st;
}

static void
test_wait_returns_retry_when_a_case_can_proceed(void)
{
    int64_t t0 = gc_now_ns();
    /* buffered: a value to receive, room to send */
    gc_chan *ch = gc_chan_new(2);
    CHECK_ST(wait_once(ch, GC_SEND, 10000 * GC_MS), GC_RETRY);
    CHECK_ST(gc_chan_try_send(ch, V(1)), GC_OK);
    CHECK_ST(wait_once(ch, GC_RECV, 10000 * GC_MS), GC_RETRY);
    CHECK_ST(wait_once(ch, GC_SEND, 10000 * GC_MS), GC_RETRY);
    /* closed: both directions can proceed (to GC_CLOSED) */
    gc_chan_close(ch);
    CHECK_ST(wait_once(ch, GC_SEND, 10000 * GC_MS), GC_RETRY);
    CHECK_ST(wait_once(ch, GC_RECV, 10000 * GC_MS), GC_RETRY);
    gc_chan_free(ch, NULL, NULL);

    ch = gc_chan_new(0);
    gc_chan_close(ch);
    CHECK_ST(wait_once(ch, GC_SEND, 10000 * GC_MS), GC_RETRY);
    CHECK_ST(wait_once(ch, GC_RECV, 10000 * GC_MS), GC_RETRY);
    gc_chan_free(ch, NULL, NULL);

    /* unbuffered with a peer waiting */
    ch = gc_chan_new(0);
    gc_test_op op;
    gc_test_op_start_blocked(&op, ch, GC_SEND, V(2));
    gc_case c;
    memset(&c, 0, sizeof c);
    c.ch = ch;
    c.dir = GC_RECV;
    CHECK_ST(gc_wait(&c, 1, gc_deadline_after(10000 * GC_MS), NULL, NULL),
             GC_RETRY);
    CHECK_EQ(gc_test_waiting_receivers(ch), 0);
    void *item;
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
    CHECK_PTR_EQ(item, V(2));
    CHECK_ST(gc_test_op_join(&op), GC_OK);
    gc_chan_free(ch, NULL, NULL);

    CHECK(gc_now_ns() - t0 < 5000 * GC_MS);
}

/* The waiter side of a select by hand, run on its own thread. */
typedef struct waiter {
    gc_case cases[4];
    size_t n;
    int64_t deadline;
    gc_status st;
    size_t idx;
    int check_counts; /* check its channels' counts itself on return */
    atomic_int done;
} waiter;

static void *
waiter_main(void *arg)
{
    waiter *w = arg;
    w->idx = SIZE_MAX;
    w->st = gc_wait(w->cases, w->n, w->deadline, &w->idx, NULL);
    if (w->check_counts) {
        /* nobody else waits on these channels in this direction */
        for (size_t i = 0; i < w->n; i++) {
            if (!w->cases[i].ch)
                continue;
            if (w->cases[i].dir == GC_RECV)
                CHECK_EQ(gc_test_waiting_receivers(w->cases[i].ch), 0);
            else
                CHECK_EQ(gc_test_waiting_senders(w->cases[i].ch), 0);
        }
    }
    atomic_store(&w->done, 1);
    return NULL;
}

static void
test_peer_completes_a_case_with_its_index(void)
{
    gc_chan *a = gc_chan_new(0), *b = gc_chan_new(0), *c = gc_chan_new(1);
    for (int which = 0; which < 3; which++) {
        waiter w;
        memset(&w, 0, sizeof w);
        /* receive from a, send to b, receive from c (buffered, empty) */
        w.cases[0].ch = a;
        w.cases[0].dir = GC_RECV;
        w.cases[1].ch = b;
        w.cases[1].dir = GC_SEND;
        w.cases[1].item = V(11);
        w.cases[2].ch = c;
        w.cases[2].dir = GC_RECV;
        w.n = 3;
        w.deadline = gc_deadline_after(20000 * GC_MS);
        w.check_counts = 1;
        pthread_t t = gc_test_spawn(waiter_main, &w);
        WAIT_UNTIL(gc_test_waiting_receivers(a) == 1 &&
                       gc_test_waiting_senders(b) == 1 &&
                       gc_test_waiting_receivers(c) == 1,
                   10000);
        void *item = NULL;
        if (which == 0)
            CHECK_ST(gc_chan_try_send(a, V(10)), GC_OK);
        else if (which == 1) {
            CHECK_ST(gc_chan_try_recv(b, &item), GC_OK);
            CHECK_PTR_EQ(item, V(11));
        }
        else
            CHECK_ST(gc_chan_try_send(c, V(12)), GC_OK);
        gc_test_join(t);
        CHECK_ST(w.st, GC_OK);
        CHECK_EQ(w.idx, which);
        if (which == 0)
            CHECK_PTR_EQ(w.cases[0].item, V(10));
        if (which == 2) {
            CHECK_PTR_EQ(w.cases[2].item, V(12));
            CHECK_EQ(gc_chan_len(c), 0);
        }
        check_unregistered(a);
        check_unregistered(b);
        check_unregistered(c);
    }
    gc_chan_free(a, NULL, NULL);
    gc_chan_free(b, NULL, NULL);
    gc_chan_free(c, NULL, NULL);
}

/* The order a biased select relies on: with several cases of one waiter
 * on one queue, a peer that arrives later completes the one registered
 * first (the lowest index).  An unbiased select shuffles its cases before
 * gc_wait (see gc_test_select). */
static void
test_peer_completes_the_earliest_registered_case(void)
{
    gc_chan *ch = gc_chan_new(0);
    for (int i = 0; i < 10; i++) {
        waiter w;
        memset(&w, 0, sizeof w);
        for (int k = 0; k < 3; k++) {
            w.cases[k].ch = ch;
            w.cases[k].dir = GC_SEND;
            w.cases[k].item = V(k);
        }
        w.cases[0].ch = NULL;
        w.n = 3;
        w.deadline = GC_FOREVER;
        pthread_t t = gc_test_spawn(waiter_main, &w);
        WAIT_UNTIL(gc_test_waiting_senders(ch) == 2, 10000);
        void *item;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        gc_test_join(t);
        CHECK_ST(w.st, GC_OK);
        CHECK_EQ(w.idx, 1);
        CHECK_PTR_EQ(item, V(1));
        check_unregistered(ch);
    }
    gc_chan_free(ch, NULL, NULL);
}

static void
test_waiter_is_never_matched_with_itself(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_case c[2];
    memset(c, 0, sizeof c);
    c[0].ch = ch;
    c[0].dir = GC_SEND;
    c[0].item = V(1);
    c[1].ch = ch;
    c[1].dir = GC_RECV;
    for (int order = 0; order < 2; order++) {
        if (order) {
            gc_case t = c[0];
            c[0] = c[1];
            c[1] = t;
        }
        int64_t deadline = gc_deadline_after(20 * GC_MS);
        CHECK_ST(gc_wait(c, 2, deadline, NULL, NULL), GC_TIMEOUT);
        CHECK(gc_now_ns() >= deadline);
        check_unregistered(ch);
        /* and the try_ half of a select finds no peer either */
        void *item;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
    }
    gc_chan_free(ch, NULL, NULL);
}

static void
test_timeout_unregisters_every_case(void)
{
    gc_chan *ch[4] = {gc_chan_new(0), gc_chan_new(0), gc_chan_new(1),
                      gc_chan_new(3)};
    /* fill the buffered ones so that their send cases block */
    CHECK_ST(gc_chan_try_send(ch[2], V(1)), GC_OK);
    for (int i = 0; i < 3; i++)
        CHECK_ST(gc_chan_try_send(ch[3], V(1)), GC_OK);
    waiter w;
    memset(&w, 0, sizeof w);
    for (int i = 0; i < 4; i++) {
        w.cases[i].ch = ch[i];
        w.cases[i].dir = i % 2 ? GC_SEND : GC_RECV;
        w.cases[i].item = V(i);
    }
    w.cases[2].dir = GC_SEND;
    w.n = 4;
    w.deadline = gc_deadline_after(30 * GC_MS);
    w.check_counts = 1;
    pthread_t t = gc_test_spawn(waiter_main, &w);
    gc_test_join(t);
    CHECK_ST(w.st, GC_TIMEOUT);
    CHECK(gc_now_ns() >= w.deadline);
    for (int i = 0; i < 4; i++) {
        check_unregistered(ch[i]);
        gc_chan_free(ch[i], NULL, NULL);
    }
}

/* Two senders race for one waiter on two channels: exactly one wins. */
typedef struct racer {
    gc_chan *ch;
    void *item;
    atomic_int *go;
    gc_status st;
    atomic_int done;
} racer;

static void *
racer_main(void *arg)
{
    racer *r = arg;
    while (!atomic_load_explicit(r->go, memory_order_acquire))
        sched_yield(); /* two CPUs: leave room for the waiter */
    r->st = gc_chan_send(r->ch, r->item, GC_FOREVER, NULL);
    atomic_store(&r->done, 1);
    return NULL;
}

static void
select_race_once(size_t cap, int iter)
{
    gc_chan *ch[2] = {gc_chan_new(cap), gc_chan_new(cap)};
    waiter w;
    memset(&w, 0, sizeof w);
    for (int i = 0; i < 2; i++) {
        w.cases[i].ch = ch[i];
        w.cases[i].dir = GC_RECV;
    }
    w.n = 2;
    w.deadline = GC_FOREVER;
    w.check_counts = 1;
    atomic_int go = 0;
    racer r[2];
    pthread_t rt[2];
    for (int i = 0; i < 2; i++) {
        r[i].ch = ch[i];
        r[i].item = V(100 * iter + i);
        r[i].go = &go;
        r[i].st = (gc_status)-1;
        atomic_init(&r[i].done, 0);
        rt[i] = gc_test_spawn(racer_main, &r[i]);
    }
    pthread_t wt = gc_test_spawn(waiter_main, &w);
    WAIT_UNTIL(gc_test_waiting_receivers(ch[0]) == 1 &&
                   gc_test_waiting_receivers(ch[1]) == 1,
               10000);
    atomic_store_explicit(&go, 1, memory_order_release);
    gc_test_join(wt);
    CHECK_ST(w.st, GC_OK);
    CHECK(w.idx < 2);
    size_t win = w.idx, lose = 1 - w.idx;
    CHECK_PTR_EQ(w.cases[win].item, r[win].item);
    gc_test_join(rt[win]);
    CHECK_ST(r[win].st, GC_OK);
    if (cap == 0) {
        /* the loser waits for a receiver of its own */
        WAIT_UNTIL(gc_test_waiting_senders(ch[lose]) == 1, 10000);
        CHECK(!atomic_load(&r[lose].done));
        CHECK_EQ(gc_test_waiting_receivers(ch[lose]), 0);
    }
    else {
        /* the loser's value went into the buffer */
        gc_test_join(rt[lose]);
        CHECK_ST(r[lose].st, GC_OK);
        CHECK_EQ(gc_chan_len(ch[lose]), 1);
    }
    CHECK_EQ(gc_chan_len(ch[win]), 0);
    void *item = NULL;
    CHECK_ST(gc_chan_recv(ch[lose], &item, GC_FOREVER, NULL), GC_OK);
    CHECK_PTR_EQ(item, r[lose].item);
    if (cap == 0) {
        gc_test_join(rt[lose]);
        CHECK_ST(r[lose].st, GC_OK);
    }
    for (int i = 0; i < 2; i++) {
        CHECK_ST(gc_chan_try_recv(ch[i], &item), GC_WOULDBLOCK);
        check_unregistered(ch[i]);
        gc_chan_free(ch[i], NULL, NULL);
    }
}

static void
test_select_race_exactly_one_case_completes(void)
{
    int n = (int)(150 * gc_test_scale());
    for (int i = 0; i < n; i++) {
        select_race_once(0, i);
        select_race_once(1, i);
    }
}

/* ---- signals ---- */

/* Signal t until *done: a signal that lands before the thread is parked
 * interrupts nothing, so one is not enough. */
static void
signal_until(pthread_t t, atomic_int *done)
{
    int64_t give_up = gc_now_ns() + 20000 * GC_MS;
    while (!atomic_load(done)) {
        CHECK_EQ(pthread_kill(t, SIGUSR1), 0);
        gc_test_sleep_ns(2 * GC_MS);
        if (gc_now_ns() > give_up) {
            fprintf(stderr, "%s:%d: a blocked call ignored signals for 20 s\n",
                    __FILE__, __LINE__);
            abort();
        }
    }
}

typedef struct intr_case {
    gc_chan *ch;
    int dir;
    int64_t deadline;
    gc_status first;  /* the call the signal interrupts */
    gc_status second; /* the same call made again */
    void *item;
    int retries; /* extra GC_INTRs in the second call */
    atomic_int first_done;
    atomic_int go_again;
} intr_case;

static void *
intr_main(void *arg)
{
    intr_case *c = arg;
    void *item = V(1);
    c->first = c->dir == GC_SEND
                   ? gc_chan_send(c->ch, item, c->deadline, NULL)
                   : gc_chan_recv(c->ch, &c->item, c->deadline, NULL);
    atomic_store(&c->first_done, 1);
    while (!atomic_load(&c->go_again))
        gc_test_sleep_ns(100000);
    do {
        c->second = c->dir == GC_SEND
                        ? gc_chan_send(c->ch, item, c->deadline, NULL)
                        : gc_chan_recv(c->ch, &c->item, c->deadline, NULL);
        if (c->second == GC_INTR)
            c->retries++;
    } while (c->second == GC_INTR);
    return NULL;
}

static void
check_interrupted_call_resumes(size_t cap, int dir, int64_t deadline)
{
    gc_chan *ch = gc_chan_new(cap);
    for (size_t i = 0; dir == GC_SEND && i < cap; i++)
        CHECK_ST(gc_chan_try_send(ch, V(50 + i)), GC_OK);
    intr_case c;
    memset(&c, 0, sizeof c);
    c.ch = ch;
    c.dir = dir;
    c.deadline = deadline;
    c.item = GC_P(3);
    pthread_t t = gc_test_spawn(intr_main, &c);
    if (dir == GC_SEND)
        WAIT_UNTIL(gc_test_waiting_senders(ch) == 1, 10000);
    else
        WAIT_UNTIL(gc_test_waiting_receivers(ch) == 1, 10000);
    int seen = atomic_load(gc_test_signals_caught());
    signal_until(t, &c.first_done);
    CHECK_ST(c.first, GC_INTR);
    CHECK(atomic_load(gc_test_signals_caught()) > seen); /* it did run */
    /* nothing happened: the receive took nothing, the send left nothing */
    CHECK_PTR_EQ(c.item, GC_P(3));
    check_unregistered(ch);
    CHECK_EQ(gc_chan_len(ch), dir == GC_SEND ? cap : 0);

    atomic_store(&c.go_again, 1);
    if (dir == GC_SEND)
        WAIT_UNTIL(gc_test_waiting_senders(ch) == 1, 10000);
    else
        WAIT_UNTIL(gc_test_waiting_receivers(ch) == 1, 10000);
    void *item = NULL;
    if (dir == GC_SEND) {
        for (size_t i = 0; i < cap; i++) {
            CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
            CHECK_PTR_EQ(item, V(50 + i));
        }
        CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
        CHECK_PTR_EQ(item, V(1));
    }
    else {
        CHECK_ST(gc_chan_send(ch, V(2), GC_FOREVER, NULL), GC_OK);
    }
    gc_test_join(t);
    CHECK_ST(c.second, GC_OK);
    if (dir == GC_RECV)
        CHECK_PTR_EQ(c.item, V(2));
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
    check_unregistered(ch);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_signal_interrupts_blocked_call_and_nothing_is_lost(void)
{
    size_t cap[] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        check_interrupted_call_resumes(cap[k], GC_RECV, GC_FOREVER);
        check_interrupted_call_resumes(cap[k], GC_SEND, GC_FOREVER);
        check_interrupted_call_resumes(cap[k], GC_RECV,
                                       gc_deadline_after(60000 * GC_MS));
        check_interrupted_call_resumes(cap[k], GC_SEND,
                                       gc_deadline_after(60000 * GC_MS));
    }
}

typedef struct intr_wait {
    gc_status st;
    atomic_int done;
} intr_wait;

static void *
intr_wait_main(void *arg)
{
    intr_wait *w = arg;
    w->st = gc_wait(NULL, 0, GC_FOREVER, NULL, NULL);
    atomic_store(&w->done, 1);
    return NULL;
}

static void
test_signal_interrupts_wait_with_no_cases(void)
{
    intr_wait w;
    memset(&w, 0, sizeof w);
    pthread_t t = gc_test_spawn(intr_wait_main, &w);
    gc_test_sleep_ns(5 * GC_MS);
    signal_until(t, &w.done);
    gc_test_join(t);
    CHECK_ST(w.st, GC_INTR);
}

/* A receiver pelted with signals while a sender streams values: every
 * value arrives exactly once and in order; GC_INTR only means "call
 * again". */
typedef struct pelted {
    gc_chan *ch;
    int n;
    int intrs;
    atomic_int done;
} pelted;

static void *
pelted_recv(void *arg)
{
    pelted *p = arg;
    for (int i = 0; i < p->n; i++) {
        void *item = NULL;
        gc_status st;
        while ((st = gc_chan_recv(p->ch, &item, GC_FOREVER, NULL)) == GC_INTR)
            p->intrs++;
        CHECK_ST(st, GC_OK);
        CHECK_PTR_EQ(item, V(i));
    }
    void *item;
    gc_status st;
    while ((st = gc_chan_recv(p->ch, &item, GC_FOREVER, NULL)) == GC_INTR)
        p->intrs++;
    CHECK_ST(st, GC_CLOSED);
    atomic_store(&p->done, 1);
    return NULL;
}

static void *
pelted_send(void *arg)
{
    pelted *p = arg;
    for (int i = 0; i < p->n; i++) {
        gc_status st;
        while ((st = gc_chan_send(p->ch, V(i), GC_FOREVER, NULL)) == GC_INTR)
            ;
        CHECK_ST(st, GC_OK);
        if (i % 16 == 0)
            gc_test_sleep_ns(50000); /* let the receiver park now and then */
    }
    gc_chan_close(p->ch);
    return NULL;
}

static void
test_values_survive_a_stream_of_signals(void)
{
    size_t caps[] = {0, 1, 4};
    for (int k = 0; k < 3; k++) {
        pelted p;
        memset(&p, 0, sizeof p);
        p.ch = gc_chan_new(caps[k]);
        p.n = (int)(1000 * gc_test_scale());
        pthread_t r = gc_test_spawn(pelted_recv, &p);
        pthread_t s = gc_test_spawn(pelted_send, &p);
        while (!atomic_load(&p.done)) {
            pthread_kill(r, SIGUSR1);
            gc_test_sleep_ns(200000);
        }
        gc_test_join(r);
        gc_test_join(s);
        gc_chan_free(p.ch, NULL, NULL);
    }
}

/* ---- the caller's lock ---- */

static pthread_mutex_t gil;
static atomic_int releases, acquires;
static int gil_token;

static void *
gil_release(void)
{
    atomic_fetch_add(&releases, 1);
    CHECK_EQ(pthread_mutex_unlock(&gil), 0); /* error-checking: we own it */
    return &gil_token;
}

static void
gil_acquire(void *token)
{
    CHECK_PTR_EQ(token, &gil_token);
    CHECK_EQ(pthread_mutex_lock(&gil), 0);
    atomic_fetch_add(&acquires, 1);
}

static const gc_unlock gil_unlock = {gil_release, gil_acquire};

typedef struct gil_op {
    gc_chan *ch;
    int dir;
    void *item;
    gc_status st;
} gil_op;

static void *
gil_op_main(void *arg)
{
    gil_op *op = arg;
    CHECK_EQ(pthread_mutex_lock(&gil), 0);
    if (op->dir == GC_SEND)
        op->st = gc_chan_send(op->ch, op->item, GC_FOREVER, &gil_unlock);
    else
        op->st = gc_chan_recv(op->ch, &op->item, GC_FOREVER, &gil_unlock);
    /* it holds the lock again: unlocking an error-checking mutex that
     * another thread holds would fail */
    CHECK_EQ(pthread_mutex_unlock(&gil), 0);
    return NULL;
}

static void
lock_gil_or_die(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    int rc = pthread_mutex_timedlock(&gil, &ts);
    if (rc != 0) {
        fprintf(stderr,
                "%s:%d: the caller's lock was not released while "
                "waiting (%s)\n",
                __FILE__, __LINE__, strerror(rc));
        abort();
    }
}

static void
test_caller_lock_released_only_while_waiting(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&gil, &a);
    pthread_mutexattr_destroy(&a);

    size_t caps[] = {0, 2};
    for (int k = 0; k < 2; k++) {
        gc_chan *ch = gc_chan_new(caps[k]);
        atomic_store(&releases, 0);
        atomic_store(&acquires, 0);

        /* the fast path keeps the lock */
        if (caps[k]) {
            void *item;
            CHECK_EQ(pthread_mutex_lock(&gil), 0);
            CHECK_ST(gc_chan_send(ch, V(1), GC_FOREVER, &gil_unlock), GC_OK);
            CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, &gil_unlock), GC_OK);
            CHECK_ST(gc_chan_recv(ch, &item, 0, &gil_unlock), GC_TIMEOUT);
            CHECK_EQ(pthread_mutex_unlock(&gil), 0);
            CHECK_EQ(atomic_load(&releases), 0);
            CHECK_EQ(atomic_load(&acquires), 0);
        }

        /* a blocked receive lets go of it */
        gil_op op = {ch, GC_RECV, NULL, (gc_status)-1};
        pthread_t t = gc_test_spawn(gil_op_main, &op);
        WAIT_UNTIL(gc_test_waiting_receivers(ch) == 1, 10000);
        lock_gil_or_die();
        CHECK_ST(gc_chan_try_send(ch, V(2)), GC_OK);
        CHECK_EQ(pthread_mutex_unlock(&gil), 0);
        gc_test_join(t);
        CHECK_ST(op.st, GC_OK);
        CHECK_PTR_EQ(op.item, V(2));

        /* and so does a blocked send */
        for (size_t i = 0; i < caps[k]; i++)
            CHECK_ST(gc_chan_try_send(ch, V(3)), GC_OK);
        op = (gil_op){ch, GC_SEND, V(4), (gc_status)-1};
        t = gc_test_spawn(gil_op_main, &op);
        WAIT_UNTIL(gc_test_waiting_senders(ch) == 1, 10000);
        lock_gil_or_die();
        void *item;
        for (size_t i = 0; i < caps[k]; i++)
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        CHECK_EQ(pthread_mutex_unlock(&gil), 0);
        CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
        CHECK_PTR_EQ(item, V(4));
        gc_test_join(t);
        CHECK_ST(op.st, GC_OK);

        CHECK(atomic_load(&releases) >= 2);
        CHECK_EQ(atomic_load(&releases), atomic_load(&acquires));
        gc_chan_free(ch, NULL, NULL);
    }
    pthread_mutex_destroy(&gil);
}

/* ---- Go: TestSelfSelect (src/runtime/chan_test.go) ----
 * Two threads each select between sending to and receiving from the same
 * channel.  Nothing deadlocks, and on an unbuffered channel a thread
 * never receives its own value. */

typedef struct self_sel {
    gc_chan *ch;
    int id;
    int n;
    size_t cap;
} self_sel;

static void *
self_select_main(void *arg)
{
    self_sel *s = arg;
    uint64_t rng = 77 + (uint64_t)s->id;
    for (int i = 0; i < s->n; i++) {
        gc_case c[2];
        memset(c, 0, sizeof c);
        int send_first = s->id == 0 || i % 2 == 0;
        c[send_first ? 0 : 1].ch = s->ch;
        c[send_first ? 0 : 1].dir = GC_SEND;
        c[send_first ? 0 : 1].item = V(s->id);
        c[send_first ? 1 : 0].ch = s->ch;
        c[send_first ? 1 : 0].dir = GC_RECV;
        size_t idx;
        gc_status st = gc_test_select(c, 2, GC_FOREVER, &idx, 0, &rng);
        CHECK_ST(st, GC_OK);
        if (c[idx].dir == GC_RECV && s->cap == 0)
            CHECK(c[idx].item == V(1 - s->id));
    }
    return NULL;
}

static void
test_go_TestSelfSelect(void)
{
    size_t caps[] = {0, 10};
    for (int k = 0; k < 2; k++) {
        gc_chan *ch = gc_chan_new(caps[k]);
        self_sel s[2];
        for (int i = 0; i < 2; i++)
            s[i] = (self_sel){ch, i, (int)(1000 * gc_test_scale()), caps[k]};
        gc_test_threads t =
            gc_test_threads_start(2, self_select_main, s, sizeof s[0]);
        gc_test_threads_join(&t);
        check_unregistered(ch);
        gc_chan_free(ch, NULL, NULL);
    }
}

/* ---- Go: TestPseudoRandomSend (src/runtime/chan_test.go) ----
 * A select with two send cases on one channel (values 0 and 1) feeds a
 * receiver: both cases get chosen; every value is received exactly once.
 * It also exercises one waiter having two entries on one queue. */

typedef struct prs {
    gc_chan *ch;
    int n;
    int got[2];
} prs;

static void *
prs_recv(void *arg)
{
    prs *p = arg;
    for (int i = 0; i < p->n; i++) {
        void *item;
        if (i % 3 == 0)
            sched_yield();
        CHECK_ST(gc_chan_recv(p->ch, &item, GC_FOREVER, NULL), GC_OK);
        CHECK(item == V(0) || item == V(1));
        p->got[item == V(1)]++;
    }
    return NULL;
}

static void
test_go_TestPseudoRandomSend(void)
{
    int n = 100;
    size_t caps[] = {0, 100};
    for (int k = 0; k < 2; k++) {
        prs p = {gc_chan_new(caps[k]), n, {0, 0}};
        pthread_t t = gc_test_spawn(prs_recv, &p);
        for (int i = 0; i < n; i++) {
            gc_case c[2];
            memset(c, 0, sizeof c);
            for (int j = 0; j < 2; j++) {
                c[j].ch = p.ch;
                c[j].dir = GC_SEND;
                c[j].item = V(j);
            }
            size_t idx;
            CHECK_ST(gc_test_select(c, 2, GC_FOREVER, &idx, 0, &rng_seed),
                     GC_OK);
        }
        gc_test_join(t);
        CHECK_EQ(p.got[0] + p.got[1], n);
        if (p.got[0] <= n / 10 || p.got[1] <= n / 10) {
            fprintf(stderr, "%s:%d: cap %zu: one case starved: %d/%d\n",
                    __FILE__, __LINE__, caps[k], p.got[0], p.got[1]);
            abort();
        }
        check_unregistered(p.ch);
        gc_chan_free(p.ch, NULL, NULL);
    }
}

/* ---- Go: TestSelectFairness (src/runtime/chan_test.go), weakened ----
 * A select over two ready buffered channels picks each often enough.  Go
 * checks a tight binomial bound; here only that neither side starves,
 * since the random choice belongs to the caller's poll order. */
static void
test_go_TestSelectFairness_weak(void)
{
    int n = 2000;
    gc_chan *ch[2] = {gc_chan_new(n), gc_chan_new(n)};
    for (int i = 0; i < n; i++) {
        CHECK_ST(gc_chan_try_send(ch[0], V(0)), GC_OK);
        CHECK_ST(gc_chan_try_send(ch[1], V(1)), GC_OK);
    }
    int got[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        gc_case c[2];
        memset(c, 0, sizeof c);
        for (int j = 0; j < 2; j++) {
            c[j].ch = ch[j];
            c[j].dir = GC_RECV;
        }
        size_t idx;
        CHECK_ST(gc_test_select(c, 2, GC_FOREVER, &idx, 0, &rng_seed), GC_OK);
        CHECK_PTR_EQ(c[idx].item, V(idx));
        got[idx]++;
    }
    CHECK(got[0] > n / 4 && got[1] > n / 4);
    gc_chan_free(ch[0], NULL, NULL);
    gc_chan_free(ch[1], NULL, NULL);
}

/* ---- the caller's lock, in detail: let go after registering, spin ----
 * A second fake GIL whose holder is tracked: release() must come from
 * the holder after every case of the wait is registered (nobody else
 * touches these channels, so each count is exactly 1), acquire() finds the
 * lock free of holders, and gc_wait returns with it held on every path. */

static pthread_mutex_t gil2 = PTHREAD_MUTEX_INITIALIZER;
static atomic_int gil2_holder;
static _Thread_local int gil2_self;
static _Thread_local const gc_case *gil2_cases; /* the wait in progress */
static _Thread_local size_t gil2_ncases;
static atomic_int gil2_releases, gil2_acquires;
static _Thread_local int64_t gil2_pause_after_release;
static int gil2_token;

static void
gil2_lock(void)
{
    CHECK_EQ(pthread_mutex_lock(&gil2), 0);
    CHECK_EQ(atomic_load(&gil2_holder), 0);
    atomic_store(&gil2_holder, gil2_self);
}

static void
gil2_unlock(void)
{
    CHECK_EQ(atomic_load(&gil2_holder), gil2_self);
    atomic_store(&gil2_holder, 0);
    CHECK_EQ(pthread_mutex_unlock(&gil2), 0);
}

static void *
gil2_release(void)
{
    CHECK_EQ(atomic_load(&gil2_holder), gil2_self);
    for (size_t i = 0; i < gil2_ncases; i++) {
        const gc_case *c = &gil2_cases[i];
        if (!c->ch)
            continue;
        if (c->dir == GC_SEND)
            CHECK_EQ(gc_test_waiting_senders(c->ch), 1);
        else
            CHECK_EQ(gc_test_waiting_receivers(c->ch), 1);
    }
    atomic_fetch_add(&gil2_releases, 1);
    gil2_unlock();
    if (gil2_pause_after_release > 0) /* as if preempted right here */
        gc_test_sleep_ns(gil2_pause_after_release);
    return &gil2_token;
}

static void
gil2_acquire(void *token)
{
    CHECK_PTR_EQ(token, &gil2_token);
    gil2_lock();
    atomic_fetch_add(&gil2_acquires, 1);
}

static gc_unlock gil2_unlock_spin = {gil2_release, gil2_acquire, 100000};

typedef struct lwait {
    gc_case cases[3];
    size_t n;
    int64_t deadline;
    gc_status st;
    size_t idx;
    atomic_int done;
} lwait;

static void *
lwait_main(void *arg)
{
    lwait *w = arg;
    gil2_self = 2;
    gil2_lock();
    gil2_cases = w->cases;
    gil2_ncases = w->n;
    w->idx = SIZE_MAX;
    w->st = gc_wait(w->cases, w->n, w->deadline, &w->idx, &gil2_unlock_spin);
    gil2_cases = NULL;
    /* held again, on every path */
    CHECK_EQ(atomic_load(&gil2_holder), gil2_self);
    gil2_unlock();
    atomic_store(&w->done, 1);
    return NULL;
}

/* The main thread's turn with the lock (it is free while the waiter
 * sleeps). */
static void
main_gil2_lock(void)
{
    gil2_self = 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    int rc = pthread_mutex_timedlock(&gil2, &ts);
    if (rc != 0) {
        fprintf(stderr, "%s:%d: the waiter did not let go of the lock (%s)\n",
                __FILE__, __LINE__, strerror(rc));
        abort();
    }
    CHECK_EQ(atomic_load(&gil2_holder), 0);
    atomic_store(&gil2_holder, gil2_self);
}

static void
test_wait_lets_go_of_lock_only_after_registering_every_case(void)
{
    /* what ends the wait: 0-2 a peer completes case k; 3 close of case
     * 2's channel (GC_RETRY); 4 the deadline; 5 a signal; 6 a case is
     * ready at once (the lock is never let go) */
    for (int how = 0; how < 7; how++) {
        gc_chan *a = gc_chan_new(0), *b = gc_chan_new(1), *c = gc_chan_new(2);
        CHECK_ST(gc_chan_try_send(b, V(1)), GC_OK); /* b full */
        if (how == 6)
            CHECK_ST(gc_chan_try_send(c, V(2)), GC_OK);
        lwait w;
        memset(&w, 0, sizeof w);
        w.cases[0].ch = a;
        w.cases[0].dir = GC_RECV;
        w.cases[1].ch = b;
        w.cases[1].dir = GC_SEND;
        w.cases[1].item = V(3);
        w.cases[2].ch = c;
        w.cases[2].dir = GC_RECV;
        w.n = 3;
        w.deadline = how == 4 ? gc_deadline_after(30 * GC_MS) : GC_FOREVER;
        atomic_store(&gil2_releases, 0);
        atomic_store(&gil2_acquires, 0);
        pthread_t t = gc_test_spawn(lwait_main, &w);
        if (how < 4) {
            WAIT_UNTIL(atomic_load(&gil2_releases) == 1, 10000);
            main_gil2_lock();
            void *item;
            if (how == 0)
                CHECK_ST(gc_chan_try_send(a, V(4)), GC_OK);
            else if (how == 1) {
                CHECK_ST(gc_chan_try_recv(b, &item), GC_OK);
                CHECK_PTR_EQ(item, V(1));
            }
            else if (how == 2)
                CHECK_ST(gc_chan_try_send(c, V(5)), GC_OK);
            else
                CHECK_ST(gc_chan_close(c), GC_OK);
            gil2_unlock();
        }
        else if (how == 5) {
            WAIT_UNTIL(atomic_load(&gil2_releases) == 1, 10000);
            signal_until(t, &w.done);
        }
        gc_test_join(t);
        switch (how) {
        case 0:
            CHECK_ST(w.st, GC_OK);
            CHECK_EQ(w.idx, 0);
            CHECK_PTR_EQ(w.cases[0].item, V(4));
            break;
        case 1: {
            CHECK_ST(w.st, GC_OK);
            CHECK_EQ(w.idx, 1);
            void *item;
            CHECK_ST(gc_chan_try_recv(b, &item), GC_OK);
            CHECK_PTR_EQ(item, V(3)); /* moved in by the receive */
            break;
        }
        case 2:
            CHECK_ST(w.st, GC_OK);
            CHECK_EQ(w.idx, 2);
            CHECK_PTR_EQ(w.cases[2].item, V(5));
            break;
        case 3:
            CHECK_ST(w.st, GC_RETRY);
            CHECK_EQ(w.idx, 2);
            break;
        case 4:
            CHECK_ST(w.st, GC_TIMEOUT);
            break;
        case 5:
            CHECK_ST(w.st, GC_INTR);
            break;
        default:
            CHECK_ST(w.st, GC_RETRY);
            CHECK_EQ(w.idx, 2);
            break;
        }
        CHECK_EQ(atomic_load(&gil2_releases), how == 6 ? 0 : 1);
        CHECK_EQ(atomic_load(&gil2_acquires), atomic_load(&gil2_releases));
        check_unregistered(a);
        check_unregistered(b);
        check_unregistered(c);
        gc_chan_free(a, NULL, NULL);
        gc_chan_free(b, NULL, NULL);
        gc_chan_free(c, NULL, NULL);
    }
}

static int64_t
thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct spinner {
    gc_chan *ch;
    int64_t cpu_ns;  /* CPU time the blocking receive used */
    int64_t back_at; /* when it returned with the lock */
    void *item;
    gc_status st;
    int64_t pause_ns; /* pause after release() (see below) */
} spinner;

static void *
spinner_main(void *arg)
{
    spinner *s = arg;
    gil2_self = 2;
    gil2_pause_after_release = s->pause_ns;
    gil2_lock();
    int64_t c0 = thread_cpu_ns();
    s->st = gc_chan_recv(s->ch, &s->item, GC_FOREVER, &gil2_unlock_spin);
    s->back_at = gc_now_ns();
    s->cpu_ns = thread_cpu_ns() - c0;
    CHECK_EQ(atomic_load(&gil2_holder), gil2_self);
    gil2_unlock();
    return NULL;
}

/* A thread woken while its waker keeps the lock spins for the lock at
 * most spin_ns, then sleeps in the lock: its CPU time stays far below the
 * time the waker holds on. */
static void
test_woken_thread_spins_for_the_lock_at_most_spin_ns(void)
{
    int64_t saved = gil2_unlock_spin.spin_ns;
    gil2_unlock_spin.spin_ns = 5 * GC_MS;
    gc_chan *ch = gc_chan_new(0);
    spinner s;
    memset(&s, 0, sizeof s);
    s.ch = ch;
    pthread_t t = gc_test_spawn(spinner_main, &s);
    WAIT_UNTIL(gc_test_waiting_receivers(ch) == 1, 10000);
    gc_test_sleep_ns(2 * GC_MS); /* let it park */
    main_gil2_lock();
    CHECK_ST(gc_chan_try_send(ch, V(1)), GC_OK);
    int64_t woke = gc_now_ns();
    gc_test_sleep_ns(300 *
                     GC_MS); /* hold on, without letting go via gc_wait */
    gil2_unlock();
    gc_test_join(t);
    CHECK_ST(s.st, GC_OK);
    CHECK_PTR_EQ(s.item, V(1));
    CHECK(s.back_at - woke >= 300 * GC_MS);
    if (s.cpu_ns > 100 * GC_MS) {
        fprintf(stderr,
                "%s:%d: the woken thread used %.1f ms of CPU while the lock "
                "was held for 300 ms (spin_ns 5 ms)\n",
                __FILE__, __LINE__, (double)s.cpu_ns / 1e6);
        abort();
    }
    printf("  woken thread used %.2f ms of CPU in 300 ms\n",
           (double)s.cpu_ns / 1e6);
    gc_chan_free(ch, NULL, NULL);
    gil2_unlock_spin.spin_ns = saved;
}

/* The spin ends as soon as a peer lets go of the lock through gc_wait
 * (the "let-go epoch" moves), long before a huge spin_ns.  Rounds 2 and 3
 * pause the waiter right after its release() (as a preemption would):
 * meanwhile the waker takes the lock, completes the waiter and lets go in
 * its own gc_wait, all before the waiter's let_go() has read the epoch. */
static void
test_spin_for_the_lock_ends_when_the_waker_waits(void)
{
    int64_t saved = gil2_unlock_spin.spin_ns;
    gil2_unlock_spin.spin_ns = 1000 * GC_MS;
    gc_chan *ch = gc_chan_new(0), *other = gc_chan_new(0);
    int late[4] = {0, 0, 0, 0};
    int64_t took[4];
    for (int round = 0; round < 4; round++) {
        spinner s;
        memset(&s, 0, sizeof s);
        s.ch = ch;
        s.pause_ns = round >= 2 ? 50 * GC_MS : 0;
        pthread_t t = gc_test_spawn(spinner_main, &s);
        WAIT_UNTIL(gc_test_waiting_receivers(ch) == 1, 10000);
        main_gil2_lock();
        CHECK_ST(gc_chan_try_send(ch, V(round)), GC_OK);
        int64_t woke = gc_now_ns();
        /* now wait ourselves: gc_wait lets go of the lock */
        void *item;
        CHECK_ST(gc_chan_recv(other, &item, gc_deadline_after(100 * GC_MS),
                              &gil2_unlock_spin),
                 GC_TIMEOUT);
        CHECK_EQ(atomic_load(&gil2_holder), gil2_self);
        gil2_unlock();
        gc_test_join(t);
        CHECK_ST(s.st, GC_OK);
        CHECK_PTR_EQ(s.item, V(round));
        took[round] = s.back_at - woke;
        late[round] = took[round] > 500 * GC_MS;
    }
    check_unregistered(ch);
    check_unregistered(other);
    gc_chan_free(ch, NULL, NULL);
    gc_chan_free(other, NULL, NULL);
    gil2_unlock_spin.spin_ns = saved;
    if (late[0] || late[1] || late[2] || late[3]) {
        printf("  a woken thread spun the whole spin_ns (1 s) although its "
               "waker had let go of the lock; took %.0f/%.0f/%.0f/%.0f ms "
               "(rounds 2, 3: waiter paused after release())\n",
               (double)took[0] / 1e6, (double)took[1] / 1e6,
               (double)took[2] / 1e6, (double)took[3] / 1e6);
        fflush(stdout);
        abort();
    }
}

/* ---- the spinning policy (gc_spin_begin / gc_spin_end) ---- */

static int
grab_spinners(int kinds[], int max)
{
    int got = 0;
    for (int i = 0; i < max; i++) {
        int kind = i % 2 ? GC_SPIN_ASPIRANT : GC_SPIN_WAITER;
        if (gc_spin_begin(kind))
            kinds[got++] = kind;
    }
    return got;
}

static void
release_spinners(const int kinds[], int n)
{
    for (int i = 0; i < n; i++)
        gc_spin_end(kinds[i]);
}

static void *
spin_storm(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        int kind = i % 2 ? GC_SPIN_ASPIRANT : GC_SPIN_WAITER;
        if (gc_spin_begin(kind)) {
            gc_cpu_relax();
            gc_spin_end(kind);
        }
    }
    return NULL;
}

/* At most CPUs - 1 spinners at once (none on one CPU); begin/end pairs
 * from many threads leave the gauge balanced (a gauge that drifted below
 * zero would let more than CPUs - 1 begin). */
static void
test_spin_begin_allows_at_most_cpus_minus_one(void)
{
    int ncpu = gc_ncpu();
    CHECK(ncpu >= 1);
    int kinds[128];
    int max = 2 * ncpu + 4 < 128 ? 2 * ncpu + 4 : 128;
    /* refresh the load samples first (the earlier tests' threads are in
     * them), so that the cap, not the load, is what usually refuses */
    int64_t until = gc_now_ns() + 40 * GC_MS;
    while (gc_now_ns() < until) {
        if (gc_spin_begin(GC_SPIN_WAITER))
            gc_spin_end(GC_SPIN_WAITER);
    }
    int got = grab_spinners(kinds, max);
    CHECK(got <= ncpu - 1);
    release_spinners(kinds, got);
    int n = (int)(20000 * gc_test_scale());
    gc_test_threads t = gc_test_threads_start(4, spin_storm, &n, 0);
    gc_test_threads_join(&t);
    int got2 = grab_spinners(kinds, max);
    CHECK(got2 <= ncpu - 1);
    release_spinners(kinds, got2);
    printf("  %d CPUs: %d then %d spinners allowed at once\n", ncpu, got,
           got2);
}

static void *
hog(void *arg)
{
    atomic_int *stop = arg;
    while (!atomic_load_explicit(stop, memory_order_relaxed))
        ;
    return NULL;
}

/* With every CPU busy (one runnable thread per CPU besides the caller),
 * spinning is refused once the load samples show it. */
static void
test_spin_refused_while_every_cpu_is_busy(void)
{
    int ncpu = gc_ncpu();
    atomic_int stop = 0;
    gc_test_threads t = gc_test_threads_start((size_t)ncpu, hog, &stop, 0);
    /* long enough to replace every load sample (8, one per 2 ms at most) */
    int64_t until = gc_now_ns() + 80 * GC_MS;
    while (gc_now_ns() < until) {
        if (gc_spin_begin(GC_SPIN_WAITER))
            gc_spin_end(GC_SPIN_WAITER);
    }
    until = gc_now_ns() + 30 * GC_MS;
    int allowed = 0, asked = 0;
    while (gc_now_ns() < until) {
        asked++;
        if (gc_spin_begin(asked % 2 ? GC_SPIN_ASPIRANT : GC_SPIN_WAITER)) {
            allowed++;
            gc_spin_end(asked % 2 ? GC_SPIN_ASPIRANT : GC_SPIN_WAITER);
        }
    }
    atomic_store(&stop, 1);
    gc_test_threads_join(&t);
    if (allowed) {
        fprintf(stderr,
                "%s:%d: %d of %d gc_spin_begin calls allowed spinning with "
                "%d busy threads on %d CPUs\n",
                __FILE__, __LINE__, allowed, asked, ncpu, ncpu);
        abort();
    }
}

int
main(void)
{
    gc_test_catch_signal(SIGUSR1, gc_test_count_signal);
    GC_RUN(test_wait_with_no_cases_sleeps_until_deadline);
    GC_RUN(test_nil_case_is_never_ready);
    GC_RUN(test_nil_case_keeps_other_case_indices);
    GC_RUN(test_wait_returns_retry_when_a_case_can_proceed);
    GC_RUN(test_peer_completes_a_case_with_its_index);
    GC_RUN(test_peer_completes_the_earliest_registered_case);
    GC_RUN(test_waiter_is_never_matched_with_itself);
    GC_RUN(test_timeout_unregisters_every_case);
    GC_RUN(test_select_race_exactly_one_case_completes);
    GC_RUN(test_signal_interrupts_blocked_call_and_nothing_is_lost);
    GC_RUN(test_signal_interrupts_wait_with_no_cases);
    GC_RUN(test_values_survive_a_stream_of_signals);
    GC_RUN(test_caller_lock_released_only_while_waiting);
    GC_RUN(test_go_TestSelfSelect);
    GC_RUN(test_go_TestSelectFairness_weak);
    GC_RUN(test_go_TestPseudoRandomSend);
    GC_RUN(test_wait_lets_go_of_lock_only_after_registering_every_case);
    GC_RUN(test_woken_thread_spins_for_the_lock_at_most_spin_ns);
    GC_RUN(test_spin_for_the_lock_ends_when_the_waker_waits);
    GC_RUN(test_spin_begin_allows_at_most_cpus_minus_one);
    GC_RUN(test_spin_refused_while_every_cpu_is_busy);
    return 0;
}
