/* test_select.c - gc_select: choice, flags, cancellation, and a stress
 * run against close and cancel races with a ledger that proves every value
 * was received exactly once or not sent at all.
 *
 * What it proves:
 *   1. Uniform choice: four ready channels, each chosen within 10% of a
 *      quarter of the time (Go's TestSelectFairness, src/runtime/
 *      chan_test.go, with four cases instead of two); the same channel in
 *      four cases likewise; any two ready cases among 16 are chosen
 *      half the time each (the shuffle's draws, see gc_select.c);
 *      GC_SELECT_BIASED takes the first ready case.
 *   2. The statuses: GC_WOULDBLOCK with GC_SELECT_NOWAIT, GC_CLOSED for a
 *      receive from a closed and drained channel and for a send on a
 *      closed one, GC_TIMEOUT (also with no cases), NULL channels never
 *      ready, more cases than the stack array holds.
 *   3. Cancellation: a closed cancel channel makes gc_select return
 *      GC_CANCELLED before it moves anything; a select blocked on several
 *      channels wakes when it is closed, leaving no entry on any queue.
 *   4. Stress: producers select-send over four channels (capacities 0, 1,
 *      0, 16; each case switched off at random), consumers select-receive
 *      from all four, all with a cancel channel.  One run closes the
 *      channels one by one at random moments; another closes the cancel
 *      channel in mid-flight instead.  Ledger: a value is marked sent only
 *      when its select returned GC_OK on a send; received values (during
 *      the run, then drained from the buffers) are counted; every sent
 *      value is received exactly once and no other value is.
 */
#include "gc_select.h"
#include "gc_test.h"

/* ---- choice ---------------------------------------------------------- */

static void
test_fairness_over_four_ready_channels(void)
{
    enum { N = 4, TRIALS = 40000 };
    gc_chan *ch[N];
    for (int i = 0; i < N; i++) {
        ch[i] = gc_chan_new(TRIALS);
        for (int k = 0; k < TRIALS; k++)
            CHECK_ST(gc_chan_try_send(ch[i], GC_P(i + 1)), GC_OK);
    }
    size_t count[N] = {0};
    for (int t = 0; t < TRIALS; t++) {
        gc_case c[N];
        memset(c, 0, sizeof c);
        for (int i = 0; i < N; i++) {
            c[i].ch = ch[i];
            c[i].dir = GC_RECV;
        }
        size_t idx = N;
        CHECK_ST(gc_select(c, N, 0, GC_FOREVER, NULL, NULL, &idx), GC_OK);
        CHECK(idx < N);
        CHECK_EQ(GC_N(c[idx].item), idx + 1);
        count[idx]++;
    }
    for (int i = 0; i < N; i++) {
        CHECK(count[i] > TRIALS / N * 9 / 10);
        CHECK(count[i] < TRIALS / N * 11 / 10);
        gc_chan_free(ch[i], NULL, NULL);
    }
}

static void
test_same_channel_in_every_case(void)
{
    enum { N = 4, TRIALS = 20000 };
    gc_chan *ch = gc_chan_new(1);
    size_t count[N] = {0};
    for (int t = 0; t < TRIALS; t++) {
        CHECK_ST(gc_chan_try_send(ch, GC_P(7)), GC_OK);
        gc_case c[N];
        memset(c, 0, sizeof c);
        for (int i = 0; i < N; i++) {
            c[i].ch = ch;
            c[i].dir = GC_RECV;
        }
        size_t idx = N;
        CHECK_ST(gc_select(c, N, 0, GC_FOREVER, NULL, NULL, &idx), GC_OK);
        count[idx]++;
    }
    for (int i = 0; i < N; i++) {
        CHECK(count[i] > TRIALS / N * 9 / 10);
        CHECK(count[i] < TRIALS / N * 11 / 10);
    }
    gc_chan_free(ch, NULL, NULL);
}

/* The choice between two ready cases, wherever they sit among 16 (the
 * rest on empty channels), is a coin toss: the poll order is a uniformly
 * random permutation, which the shuffle draws from one generator word for
 * up to 12 cases and from a fresh word after that, so pairs on both sides
 * of that boundary are checked.  4000 tosses per pair: 10% off is more
 * than 6 standard deviations. */
static void
test_every_pair_of_ready_cases_is_a_coin_toss(void)
{
    enum { N = 16, TOSSES = 4000 };
    gc_chan *ch[N];
    for (int i = 0; i < N; i++)
        ch[i] = gc_chan_new(1);
    for (int a = 0; a < N; a++) {
        for (int b = a + 1; b < N; b++) {
            CHECK_ST(gc_chan_try_send(ch[a], GC_P(a + 1)), GC_OK);
            CHECK_ST(gc_chan_try_send(ch[b], GC_P(b + 1)), GC_OK);
            size_t count_a = 0;
            for (int t = 0; t < TOSSES; t++) {
                gc_case c[N];
                memset(c, 0, sizeof c);
                for (int i = 0; i < N; i++) {
                    c[i].ch = ch[i];
                    c[i].dir = GC_RECV;
                }
                size_t idx = N;
                CHECK_ST(gc_select(c, N, 0, GC_FOREVER, NULL, NULL, &idx),
                         GC_OK);
                CHECK(idx == (size_t)a || idx == (size_t)b);
                CHECK_EQ(GC_N(c[idx].item), idx + 1);
                count_a += idx == (size_t)a;
                CHECK_ST(gc_chan_try_send(ch[idx], c[idx].item), GC_OK);
            }
            CHECK(count_a > TOSSES / 2 * 9 / 10);
            CHECK(count_a < TOSSES / 2 * 11 / 10);
            void *item;
            CHECK_ST(gc_chan_try_recv(ch[a], &item), GC_OK);
            CHECK_ST(gc_chan_try_recv(ch[b], &item), GC_OK);
        }
    }
    for (int i = 0; i < N; i++)
        gc_chan_free(ch[i], NULL, NULL);
}

static void
test_biased_takes_the_first_ready_case(void)
{
    gc_chan *a = gc_chan_new(4), *b = gc_chan_new(4);
    CHECK_ST(gc_chan_try_send(b, GC_P(1)), GC_OK);
    CHECK_ST(gc_chan_try_send(b, GC_P(2)), GC_OK);
    CHECK_ST(gc_chan_try_send(a, GC_P(3)), GC_OK);
    gc_case c[3];
    memset(c, 0, sizeof c);
    c[0].ch = NULL;
    c[1].ch = a;
    c[2].ch = b;
    for (int i = 0; i < 3; i++)
        c[i].dir = GC_RECV;
    size_t idx;
    CHECK_ST(gc_select(c, 3, GC_SELECT_BIASED, GC_FOREVER, NULL, NULL, &idx),
             GC_OK);
    CHECK_EQ(idx, 1);
    CHECK_EQ(GC_N(c[1].item), 3);
    CHECK_ST(gc_select(c, 3, GC_SELECT_BIASED, GC_FOREVER, NULL, NULL, &idx),
             GC_OK);
    CHECK_EQ(idx, 2);
    CHECK_EQ(GC_N(c[2].item), 1);
    gc_chan_free(a, NULL, NULL);
    gc_chan_free(b, NULL, NULL);
}

static void
test_random_below_covers_its_range(void)
{
    size_t seen[5] = {0};
    for (int i = 0; i < 5000; i++) {
        size_t r = gc_random_below(5);
        CHECK(r < 5);
        seen[r]++;
    }
    for (int i = 0; i < 5; i++)
        CHECK(seen[i] > 800);
    CHECK_EQ(gc_random_below(1), 0);
}

/* ---- statuses ---------------------------------------------------------- */

static void
test_statuses(void)
{
    gc_chan *u = gc_chan_new(0), *b = gc_chan_new(1);
    gc_case c[2];
    memset(c, 0, sizeof c);
    c[0].ch = u;
    c[0].dir = GC_RECV;
    c[1].ch = b;
    c[1].dir = GC_SEND;
    c[1].item = GC_P(5);
    size_t idx = 99;

    /* b has room: the send case is the only ready one. */
    CHECK_ST(gc_select(c, 2, GC_SELECT_NOWAIT, GC_FOREVER, NULL, NULL, &idx),
             GC_OK);
    CHECK_EQ(idx, 1);
    /* Now nothing is ready. */
    CHECK_ST(gc_select(c, 2, GC_SELECT_NOWAIT, GC_FOREVER, NULL, NULL, &idx),
             GC_WOULDBLOCK);
    CHECK_ST(
        gc_select(c, 2, 0, gc_deadline_after(2 * GC_MS), NULL, NULL, &idx),
        GC_TIMEOUT);
    CHECK_ST(gc_select(c, 2, 0, 0, NULL, NULL, &idx), GC_TIMEOUT);
    CHECK_EQ(gc_test_waiting_receivers(u), 0);
    CHECK_EQ(gc_test_waiting_senders(b), 0);

    /* Close u: its receive is ready, with GC_CLOSED. */
    CHECK_ST(gc_chan_close(u), GC_OK);
    CHECK_ST(gc_select(c, 2, 0, GC_FOREVER, NULL, NULL, &idx), GC_CLOSED);
    CHECK_EQ(idx, 0);

    /* A send on a closed channel: GC_CLOSED, its value not taken. */
    void *v;
    CHECK_ST(gc_chan_try_recv(b, &v), GC_OK);
    CHECK_ST(gc_chan_close(b), GC_OK);
    c[0].ch = NULL;
    CHECK_ST(gc_select(c, 2, 0, GC_FOREVER, NULL, NULL, &idx), GC_CLOSED);
    CHECK_EQ(idx, 1);

    /* Only NULL cases, or none: never ready. */
    c[1].ch = NULL;
    CHECK_ST(gc_select(c, 2, GC_SELECT_NOWAIT, GC_FOREVER, NULL, NULL, &idx),
             GC_WOULDBLOCK);
    int64_t start = gc_now_ns();
    CHECK_ST(
        gc_select(NULL, 0, 0, gc_deadline_after(3 * GC_MS), NULL, NULL, &idx),
        GC_TIMEOUT);
    CHECK(gc_now_ns() - start >= 3 * GC_MS);
    CHECK_ST(
        gc_select(NULL, 0, GC_SELECT_NOWAIT, GC_FOREVER, NULL, NULL, &idx),
        GC_WOULDBLOCK);
    gc_chan_free(u, NULL, NULL);
    gc_chan_free(b, NULL, NULL);
}

static void
test_more_cases_than_the_stack_holds(void)
{
    enum { N = 3 * GC_SELECT_STACK_CASES };
    gc_chan *ch[N];
    gc_case c[N];
    memset(c, 0, sizeof c);
    for (int i = 0; i < N; i++) {
        ch[i] = gc_chan_new(i % 2);
        c[i].ch = ch[i];
        c[i].dir = GC_RECV;
    }
    size_t idx;
    CHECK_ST(gc_select(c, N, GC_SELECT_NOWAIT, GC_FOREVER, NULL, NULL, &idx),
             GC_WOULDBLOCK);
    CHECK_ST(gc_chan_try_send(ch[N - 1], GC_P(42)), GC_OK);
    CHECK_ST(gc_select(c, N, 0, GC_FOREVER, NULL, NULL, &idx), GC_OK);
    CHECK_EQ(idx, N - 1);
    CHECK_EQ(GC_N(c[N - 1].item), 42);
    for (int i = 0; i < N; i++)
        gc_chan_free(ch[i], NULL, NULL);
}

/* ---- cancellation ------------------------------------------------------ */

static void
test_cancelled_before_moves_nothing(void)
{
    gc_chan *cancel = gc_chan_new(0), *b = gc_chan_new(1);
    CHECK_ST(gc_chan_try_send(b, GC_P(1)), GC_OK);
    CHECK_ST(gc_chan_close(cancel), GC_OK);
    gc_case c = {.ch = b, .dir = GC_RECV};
    size_t idx;
    CHECK_ST(gc_select(&c, 1, 0, GC_FOREVER, cancel, NULL, &idx),
             GC_CANCELLED);
    CHECK_ST(
        gc_select(&c, 1, GC_SELECT_NOWAIT, GC_FOREVER, cancel, NULL, &idx),
        GC_CANCELLED);
    CHECK_EQ(gc_chan_len(b), 1);
    gc_chan_free(cancel, NULL, NULL);
    gc_chan_free(b, NULL, NULL);
}

typedef struct blocked_select {
    gc_chan *a, *b, *cancel;
    gc_status st;
    atomic_int done;
} blocked_select;

static void *
blocked_select_main(void *arg)
{
    blocked_select *s = arg;
    gc_case c[2];
    memset(c, 0, sizeof c);
    c[0].ch = s->a;
    c[0].dir = GC_RECV;
    c[1].ch = s->b;
    c[1].dir = GC_SEND;
    c[1].item = GC_P(9);
    size_t idx;
    s->st = gc_select(c, 2, 0, GC_FOREVER, s->cancel, NULL, &idx);
    atomic_store(&s->done, 1);
    return NULL;
}

static void
test_cancel_wakes_a_blocked_select(void)
{
    blocked_select s = {
        .a = gc_chan_new(0), .b = gc_chan_new(0), .cancel = gc_chan_new(0)};
    pthread_t t = gc_test_spawn(blocked_select_main, &s);
    WAIT_UNTIL(gc_test_waiting_receivers(s.a) == 1 &&
                   gc_test_waiting_senders(s.b) == 1 &&
                   gc_test_waiting_receivers(s.cancel) == 1,
               5000);
    CHECK(!atomic_load(&s.done));
    CHECK_ST(gc_chan_close(s.cancel), GC_OK);
    gc_test_join(t);
    CHECK_ST(s.st, GC_CANCELLED);
    CHECK_EQ(gc_test_waiting_receivers(s.a), 0);
    CHECK_EQ(gc_test_waiting_senders(s.b), 0);
    void *v;
    CHECK_ST(gc_chan_try_recv(s.b, &v), GC_WOULDBLOCK);
    gc_chan_free(s.a, NULL, NULL);
    gc_chan_free(s.b, NULL, NULL);
    gc_chan_free(s.cancel, NULL, NULL);
}

/* ---- stress --------------------------------------------------------------
 */

#define NCH      4
#define NPROD    4
#define NCONS    3
#define PER_PROD 20000u

typedef struct stress {
    gc_chan *ch[NCH];
    gc_chan *cancel;
    atomic_uchar sent[NPROD][PER_PROD];
    atomic_uint received[NPROD][PER_PROD];
    atomic_int producers_left;
} stress;

typedef struct worker {
    stress *s;
    unsigned id;
} worker;

static inline void *
encode(unsigned pid, unsigned seq)
{
    return GC_P(((uintptr_t)pid << 32 | seq) << 1); /* even, never 0 */
}

static void
note_received(stress *s, void *item)
{
    uintptr_t v = GC_N(item) >> 1;
    unsigned pid = (unsigned)(v >> 32), seq = (unsigned)(v & 0xffffffffu);
    CHECK(pid >= 1 && pid <= NPROD && seq < PER_PROD);
    atomic_fetch_add(&s->received[pid - 1][seq], 1);
}

static void *
producer_main(void *arg)
{
    worker *w = arg;
    stress *s = w->s;
    uint64_t rng = 0x1234567u + w->id;
    int closed[NCH] = {0};
    for (unsigned seq = 0; seq < PER_PROD; seq++) {
        gc_case c[NCH];
        memset(c, 0, sizeof c);
        int open = 0;
        for (int i = 0; i < NCH; i++) {
            c[i].dir = GC_SEND;
            c[i].item = encode(w->id, seq);
            /* A closed channel's case is switched off, as Go code does;
             * others are switched off now and then at random. */
            if (!closed[i] && gc_test_rand(&rng) % 4 != 0) {
                c[i].ch = s->ch[i];
                open++;
            }
        }
        if (open == 0) {
            int any = 0;
            for (int i = 0; i < NCH; i++)
                any |= !closed[i];
            if (!any)
                break;
            seq--; /* every chosen case was off: draw again */
            continue;
        }
        size_t idx = NCH;
        gc_status st = gc_select(c, NCH, 0, GC_FOREVER, s->cancel, NULL, &idx);
        if (st == GC_OK) {
            atomic_store(&s->sent[w->id - 1][seq], 1);
        }
        else if (st == GC_CLOSED) {
            CHECK(idx < NCH);
            closed[idx] = 1;
            seq--; /* not sent: try the same value elsewhere */
        }
        else {
            CHECK_ST(st, GC_CANCELLED);
            break;
        }
    }
    atomic_fetch_sub(&s->producers_left, 1);
    return NULL;
}

static void *
consumer_main(void *arg)
{
    worker *w = arg;
    stress *s = w->s;
    gc_chan *live[NCH];
    for (int i = 0; i < NCH; i++)
        live[i] = s->ch[i];
    int left = NCH;
    while (left > 0) {
        gc_case c[NCH];
        memset(c, 0, sizeof c);
        for (int i = 0; i < NCH; i++) {
            c[i].ch = live[i];
            c[i].dir = GC_RECV;
        }
        size_t idx = NCH;
        gc_status st = gc_select(c, NCH, 0, GC_FOREVER, s->cancel, NULL, &idx);
        if (st == GC_OK) {
            note_received(s, c[idx].item);
        }
        else if (st == GC_CLOSED) {
            live[idx] = NULL;
            left--;
        }
        else {
            CHECK_ST(st, GC_CANCELLED);
            break;
        }
    }
    return NULL;
}

static void
stress_run(int by_cancel)
{
    stress *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    static const size_t caps[NCH] = {0, 1, 0, 16};
    for (int i = 0; i < NCH; i++)
        s->ch[i] = gc_chan_new(caps[i]);
    s->cancel = gc_chan_new(0);
    atomic_store(&s->producers_left, NPROD);
    worker pw[NPROD], cw[NCONS];
    for (unsigned i = 0; i < NPROD; i++)
        pw[i] = (worker){s, i + 1};
    for (unsigned i = 0; i < NCONS; i++)
        cw[i] = (worker){s, i + 1};
    gc_test_threads pt =
        gc_test_threads_start(NPROD, producer_main, pw, sizeof pw[0]);
    gc_test_threads ct =
        gc_test_threads_start(NCONS, consumer_main, cw, sizeof cw[0]);
    uint64_t rng = 99 + (uint64_t)by_cancel;
    gc_test_sleep_ns((int64_t)(gc_test_rand(&rng) % (20 * GC_MS)));
    if (by_cancel) {
        CHECK_ST(gc_chan_close(s->cancel), GC_OK);
    }
    else {
        for (int i = 0; i < NCH; i++) {
            gc_test_sleep_ns((int64_t)(gc_test_rand(&rng) % (5 * GC_MS)));
            CHECK_ST(gc_chan_close(s->ch[i]), GC_OK);
        }
    }
    gc_test_threads_join(&pt);
    gc_test_threads_join(&ct);
    /* What the consumers left behind is still in the buffers. */
    for (int i = 0; i < NCH; i++) {
        void *item;
        while (gc_chan_try_recv(s->ch[i], &item) == GC_OK)
            note_received(s, item);
    }
    size_t sent = 0;
    for (int p = 0; p < NPROD; p++) {
        for (unsigned q = 0; q < PER_PROD; q++) {
            unsigned got = atomic_load(&s->received[p][q]);
            if (atomic_load(&s->sent[p][q])) {
                sent++;
                if (got != 1)
                    fprintf(stderr, "value %d/%u sent, received %u times\n",
                            p + 1, q, got);
                CHECK_EQ(got, 1);
            }
            else {
                CHECK_EQ(got, 0);
            }
        }
    }
    printf("  %s: %zu values sent, each received once\n",
           by_cancel ? "cancelled" : "closed", sent);
    for (int i = 0; i < NCH; i++) {
        CHECK_EQ(gc_test_waiting_receivers(s->ch[i]), 0);
        CHECK_EQ(gc_test_waiting_senders(s->ch[i]), 0);
        gc_chan_free(s->ch[i], NULL, NULL);
    }
    gc_chan_free(s->cancel, NULL, NULL);
    free(s);
}

static void
test_stress_against_close_and_cancel(void)
{
    int rounds = (int)(3 * gc_test_scale());
    for (int r = 0; r < rounds; r++) {
        stress_run(0);
        stress_run(1);
    }
}

int
main(void)
{
    GC_RUN(test_fairness_over_four_ready_channels);
    GC_RUN(test_same_channel_in_every_case);
    GC_RUN(test_every_pair_of_ready_cases_is_a_coin_toss);
    GC_RUN(test_biased_takes_the_first_ready_case);
    GC_RUN(test_random_below_covers_its_range);
    GC_RUN(test_statuses);
    GC_RUN(test_more_cases_than_the_stack_holds);
    GC_RUN(test_cancelled_before_moves_nothing);
    GC_RUN(test_cancel_wakes_a_blocked_select);
    GC_RUN(test_stress_against_close_and_cancel);
    return 0;
}
