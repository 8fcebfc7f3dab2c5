/* test_buffered.c - the buffered flavor (capacity >= 1), one behaviour a
 * test.
 *
 * What it proves, for capacities 1, 2, 3 and 1024 unless said otherwise:
 *   - try_send succeeds exactly `cap` times on an empty channel, then
 *     answers GC_WOULDBLOCK; try_recv on an empty channel GC_WOULDBLOCK;
 *   - values come out first in, first out, across many laps of the ring
 *     (the slot stamps and indices wrap correctly);
 *   - len, cap and the statistics agree with what was sent and received;
 *   - close: a second close answers GC_CLOSED, sends answer GC_CLOSED,
 *     buffered values stay receivable in order, then receives answer
 *     GC_CLOSED; close wakes blocked receivers and blocked senders (whose
 *     values are not delivered);
 *   - gc_chan_traverse visits exactly the buffered values, in order, and
 *     stops at the first non-zero visit; gc_chan_free hands every value
 *     still buffered to its callback;
 *   - Go's semantics around waiters: a value sent while a receiver waits
 *     goes straight to it (not into the buffer); a slot freed by a receive
 *     goes to the first waiting sender, before any later try_send;
 *   - deadlines: a blocking call returns GC_TIMEOUT no earlier than its
 *     deadline (and not absurdly later); a deadline <= now means "try
 *     once";
 *   - gc_chan_new refuses capacities above GC_CHAN_MAX_CAP.
 * It also holds two ports of Go's runtime tests (src/runtime/chan_test.go):
 * TestChan (buffered capacities) and TestNonblockRecvRace.
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "gc_test.h"

static const size_t caps[] = {1, 2, 3, 1024};
#define NCAPS (sizeof caps / sizeof caps[0])

/* Payload number i of a test: never 0. */
#define V(i) GC_P((uintptr_t)(i) + 1000)

static void
fill(gc_chan *ch, size_t n, size_t first)
{
    for (size_t i = 0; i < n; i++)
        CHECK_ST(gc_chan_try_send(ch, V(first + i)), GC_OK);
}

static void
test_try_send_until_full_then_wouldblock(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        gc_chan *ch = gc_chan_new(caps[k]);
        CHECK(ch != NULL);
        void *item = GC_P(1);
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
        CHECK_PTR_EQ(item, GC_P(1));
        fill(ch, caps[k], 0);
        CHECK_ST(gc_chan_try_send(ch, V(caps[k])), GC_WOULDBLOCK);
        CHECK_ST(gc_chan_try_send(ch, V(caps[k])), GC_WOULDBLOCK);
        CHECK_EQ(gc_chan_len(ch), caps[k]);
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
test_fifo_order(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        gc_chan *ch = gc_chan_new(caps[k]);
        fill(ch, caps[k], 0);
        for (size_t i = 0; i < caps[k]; i++) {
            void *item = NULL;
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
            CHECK_PTR_EQ(item, V(i));
        }
        void *item = NULL;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
check_stats(gc_chan *ch, size_t cap, size_t size, int closed)
{
    gc_chan_stats s;
    memset(&s, 0xA5, sizeof s);
    gc_chan_stats_get(ch, &s);
    CHECK_EQ(s.capacity, cap);
    CHECK_EQ(s.size, size);
    CHECK_EQ(s.waiting_senders, 0);
    CHECK_EQ(s.waiting_receivers, 0);
    CHECK_EQ(!!s.closed, closed);
    CHECK_EQ(gc_chan_len(ch), size);
    CHECK_EQ(gc_chan_cap(ch), cap);
    CHECK_EQ(!!gc_chan_closed(ch), closed);
}

static void
test_len_cap_stats(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        gc_chan *ch = gc_chan_new(cap);
        check_stats(ch, cap, 0, 0);
        for (size_t i = 0; i < cap; i++) {
            CHECK_ST(gc_chan_try_send(ch, V(i)), GC_OK);
            check_stats(ch, cap, i + 1, 0);
        }
        CHECK_ST(gc_chan_try_send(ch, V(0)), GC_WOULDBLOCK);
        check_stats(ch, cap, cap, 0);
        void *item;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        check_stats(ch, cap, cap - 1, 0);
        CHECK_ST(gc_chan_close(ch), GC_OK);
        check_stats(ch, cap, cap - 1, 1);
        for (size_t i = 1; i < cap; i++) {
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
            check_stats(ch, cap, cap - 1 - i, 1);
        }
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_CLOSED);
        check_stats(ch, cap, 0, 1);
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
test_close_keeps_buffered_values_then_reports_closed(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        size_t n = cap > 1 ? cap - 1 : 1; /* full for cap 1, else not */
        gc_chan *ch = gc_chan_new(cap);
        fill(ch, n, 0);
        CHECK(!gc_chan_closed(ch));
        CHECK_ST(gc_chan_close(ch), GC_OK);
        CHECK(gc_chan_closed(ch));
        CHECK_ST(gc_chan_close(ch), GC_CLOSED);
        CHECK_ST(gc_chan_try_send(ch, V(999)), GC_CLOSED);
        CHECK_ST(gc_chan_send(ch, V(999), GC_FOREVER, NULL), GC_CLOSED);
        CHECK_ST(gc_chan_send(ch, V(999), 0, NULL), GC_CLOSED);
        CHECK_EQ(gc_chan_len(ch), n);
        for (size_t i = 0; i < n; i++) {
            void *item = NULL;
            if (i % 2)
                CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
            else
                CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
            CHECK_PTR_EQ(item, V(i));
        }
        void *item = GC_P(7);
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_CLOSED);
        CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_CLOSED);
        CHECK_ST(gc_chan_recv(ch, &item, 0, NULL), GC_CLOSED);
        CHECK_ST(gc_chan_close(ch), GC_CLOSED);
        gc_chan_free(ch, NULL, NULL);
    }
}

typedef struct visit_log {
    void *items[2048];
    size_t n;
    size_t stop_after; /* return non-zero on this visit (1-based), 0: never */
} visit_log;

static int
log_visit(void *item, void *arg)
{
    visit_log *log = arg;
    CHECK(log->n < 2048);
    log->items[log->n++] = item;
    return log->stop_after && log->n == log->stop_after ? 42 : 0;
}

static void
test_traverse_visits_buffered_values_in_order(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        gc_chan *ch = gc_chan_new(cap);
        static visit_log log;

        memset(&log, 0, sizeof log);
        CHECK_EQ(gc_chan_traverse(ch, log_visit, &log), 0);
        CHECK_EQ(log.n, 0);

        /* Move the head off slot 0 so the visit crosses the ring's end. */
        size_t shift = cap / 2 + 1;
        fill(ch, shift, 0);
        for (size_t i = 0; i < shift; i++) {
            void *item;
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        }
        fill(ch, cap, 100);
        memset(&log, 0, sizeof log);
        CHECK_EQ(gc_chan_traverse(ch, log_visit, &log), 0);
        CHECK_EQ(log.n, cap);
        for (size_t i = 0; i < cap; i++)
            CHECK_PTR_EQ(log.items[i], V(100 + i));

        /* A receive removes the first value from the next visit. */
        void *item;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        memset(&log, 0, sizeof log);
        CHECK_EQ(gc_chan_traverse(ch, log_visit, &log), 0);
        CHECK_EQ(log.n, cap - 1);
        for (size_t i = 0; i + 1 < cap; i++)
            CHECK_PTR_EQ(log.items[i], V(101 + i));

        /* A non-zero visit stops the walk and is returned. */
        if (cap >= 3) {
            memset(&log, 0, sizeof log);
            log.stop_after = 2;
            CHECK_EQ(gc_chan_traverse(ch, log_visit, &log), 42);
            CHECK_EQ(log.n, 2);
        }

        /* Closing does not hide buffered values from the walk. */
        CHECK_ST(gc_chan_close(ch), GC_OK);
        memset(&log, 0, sizeof log);
        CHECK_EQ(gc_chan_traverse(ch, log_visit, &log), 0);
        CHECK_EQ(log.n, cap - 1);
        gc_chan_free(ch, NULL, NULL);
    }
}

typedef struct free_log {
    size_t n;
    uintptr_t sum;
    void *arg_seen;
} free_log;

static void
count_free(void *item, void *arg)
{
    free_log *log = arg;
    log->n++;
    log->sum += GC_N(item);
    log->arg_seen = arg;
}

static void
test_free_hands_buffered_values_to_callback(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        /* empty, partly full, full; and closed or not */
        size_t fills[3] = {0, cap / 2, cap};
        for (int f = 0; f < 3; f++) {
            for (int closed = 0; closed < 2; closed++) {
                gc_chan *ch = gc_chan_new(cap);
                /* a lap first, so the values do not start at slot 0 */
                fill(ch, cap, 0);
                for (size_t i = 0; i < cap; i++) {
                    void *item;
                    CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
                }
                uintptr_t want = 0;
                for (size_t i = 0; i < fills[f]; i++) {
                    CHECK_ST(gc_chan_try_send(ch, V(i)), GC_OK);
                    want += GC_N(V(i));
                }
                if (closed)
                    gc_chan_close(ch);
                free_log log = {0, 0, NULL};
                gc_chan_free(ch, count_free, &log);
                CHECK_EQ(log.n, fills[f]);
                CHECK_EQ(log.sum, want);
                if (fills[f])
                    CHECK_PTR_EQ(log.arg_seen, &log);
            }
        }
    }
    /* The callback may be NULL: the values are simply dropped. */
    gc_chan *ch = gc_chan_new(4);
    fill(ch, 3, 0);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_wraparound_over_many_laps(void)
{
    size_t laps = (size_t)(2000 * gc_test_scale());
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        gc_chan *ch = gc_chan_new(cap);
        uintptr_t next_in = 1, next_out = 1;
        size_t total = laps * (cap < 64 ? cap : 64);
        uint64_t rng = 12345 + k;
        while (next_out <= total) {
            /* push a random number of values (up to full), pop a random
             * number (up to empty): the fill level wanders, the indices
             * go round and round */
            size_t len = (size_t)(next_in - next_out);
            size_t room = cap - len;
            size_t push = room ? (size_t)(gc_test_rand(&rng) % (room + 1)) : 0;
            for (size_t i = 0; i < push; i++)
                CHECK_ST(gc_chan_try_send(ch, GC_P(next_in++)), GC_OK);
            if (next_in - next_out == cap)
                CHECK_ST(gc_chan_try_send(ch, GC_P(1)), GC_WOULDBLOCK);
            CHECK_EQ(gc_chan_len(ch), next_in - next_out);
            len = (size_t)(next_in - next_out);
            size_t pop = (size_t)(gc_test_rand(&rng) % (len + 1));
            if (len && pop == 0)
                pop = 1;
            for (size_t i = 0; i < pop; i++) {
                void *item;
                CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
                CHECK_EQ(GC_N(item), next_out);
                next_out++;
            }
            if (next_in == next_out) {
                void *item;
                CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
            }
        }
        gc_chan_free(ch, NULL, NULL);
    }
}

/* Go: "if a receiver is waiting, the value goes straight to it". */
static void
test_value_sent_while_receiver_waits_goes_to_receiver(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        gc_chan *ch = gc_chan_new(caps[k]);
        gc_test_op op;
        gc_test_op_start_blocked(&op, ch, GC_RECV, NULL);
        CHECK_ST(gc_chan_try_send(ch, V(1)), GC_OK);
        void *item = NULL;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        CHECK_PTR_EQ(op.item, V(1));
        CHECK_EQ(gc_chan_len(ch), 0);
        CHECK_EQ(gc_test_waiting_receivers(ch), 0);
        gc_chan_free(ch, NULL, NULL);
    }
}

/* Go: a receive from a full channel with a waiting sender takes the head
 * and puts the sender's value at the tail, so the slot it frees is the
 * sender's, not anybody else's. */
static void
test_freed_slot_goes_to_first_waiting_sender(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        gc_chan *ch = gc_chan_new(cap);
        fill(ch, cap, 0);
        gc_test_parked_op p1, p2;
        gc_test_op *op1 = &p1.op, *op2 = &p2.op;
        gc_test_parked_op_start(&p1, ch, GC_SEND, GC_P(1));
        gc_test_parked_op_start(&p2, ch, GC_SEND, GC_P(2));
        CHECK_EQ(gc_test_waiting_senders(ch), 2);

        void *item = NULL;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        CHECK_PTR_EQ(item, V(0));
        CHECK_ST(gc_chan_try_send(ch, GC_P(3)), GC_WOULDBLOCK);
        CHECK_ST(gc_test_op_join(op1), GC_OK);
        CHECK_EQ(gc_chan_len(ch), cap);
        CHECK_EQ(gc_test_waiting_senders(ch), 1);
        CHECK_ST(gc_chan_try_send(ch, GC_P(3)), GC_WOULDBLOCK);

        /* the rest of the original values, then the first sender's, then
         * the second sender's (freed by the next receive) */
        for (size_t i = 1; i < cap; i++) {
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
            CHECK_PTR_EQ(item, V(i));
            if (i == 1) {
                CHECK_ST(gc_test_op_join(op2), GC_OK);
                CHECK_ST(gc_chan_try_send(ch, GC_P(3)), GC_WOULDBLOCK);
            }
        }
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        CHECK_PTR_EQ(item, GC_P(1));
        if (cap == 1)
            CHECK_ST(gc_test_op_join(op2), GC_OK);
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        CHECK_PTR_EQ(item, GC_P(2));
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
        CHECK_EQ(gc_test_waiting_senders(ch), 0);
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
test_blocked_receiver_is_woken_by_close(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        gc_chan *ch = gc_chan_new(caps[k]);
        gc_test_op ops[3];
        for (int i = 0; i < 3; i++)
            gc_test_op_start_blocked(&ops[i], ch, GC_RECV, GC_P(77));
        CHECK_EQ(gc_test_waiting_receivers(ch), 3);
        CHECK_ST(gc_chan_close(ch), GC_OK);
        for (int i = 0; i < 3; i++)
            CHECK_ST(gc_test_op_join(&ops[i]), GC_CLOSED);
        CHECK_EQ(gc_test_waiting_receivers(ch), 0);
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
test_blocked_sender_is_woken_by_close_and_keeps_its_value(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        gc_chan *ch = gc_chan_new(cap);
        fill(ch, cap, 0);
        gc_test_op ops[3];
        for (int i = 0; i < 3; i++)
            gc_test_op_start_blocked(&ops[i], ch, GC_SEND, GC_P(1 + i));
        CHECK_ST(gc_chan_close(ch), GC_OK);
        for (int i = 0; i < 3; i++)
            CHECK_ST(gc_test_op_join(&ops[i]), GC_CLOSED);
        CHECK_EQ(gc_test_waiting_senders(ch), 0);
        /* exactly the values buffered before the close */
        for (size_t i = 0; i < cap; i++) {
            void *item;
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
            CHECK_PTR_EQ(item, V(i));
        }
        void *item;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_CLOSED);
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
test_blocked_calls_complete_when_peer_arrives(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        gc_chan *ch = gc_chan_new(cap);
        gc_test_op op;
        /* receive waits for a later send */
        gc_test_op_start_blocked(&op, ch, GC_RECV, NULL);
        CHECK_ST(gc_chan_send(ch, V(5), GC_FOREVER, NULL), GC_OK);
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        CHECK_PTR_EQ(op.item, V(5));
        /* send waits for a later receive */
        fill(ch, cap, 0);
        gc_test_op_start_blocked(&op, ch, GC_SEND, V(6));
        void *item;
        CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
        CHECK_PTR_EQ(item, V(0));
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        CHECK_EQ(gc_chan_len(ch), cap);
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
test_deadline_expiry_returns_timeout(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        gc_chan *ch = gc_chan_new(cap);
        gc_test_check_times_out(ch, GC_RECV, 30 * GC_MS);
        gc_test_check_times_out(ch, GC_RECV, 1 * GC_MS);
        gc_test_check_times_out(ch, GC_RECV, 10000);
        fill(ch, cap, 0);
        gc_test_check_times_out(ch, GC_SEND, 30 * GC_MS);
        gc_test_check_times_out(ch, GC_SEND, 1 * GC_MS);
        gc_test_check_times_out(ch, GC_SEND, 10000);
        /* a timed-out send left nothing behind */
        CHECK_EQ(gc_chan_len(ch), cap);
        for (size_t i = 0; i < cap; i++) {
            void *item;
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
            CHECK_PTR_EQ(item, V(i));
        }
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
test_deadline_not_in_future_means_try_once(void)
{
    int64_t past[] = {0, INT64_MIN, -1, 1};
    for (size_t k = 0; k < NCAPS; k++) {
        size_t cap = caps[k];
        gc_chan *ch = gc_chan_new(cap);
        for (size_t d = 0; d < 5; d++) {
            int64_t deadline = d < 4 ? past[d] : gc_now_ns();
            void *item = NULL;
            int64_t t0 = gc_now_ns();
            CHECK_ST(gc_chan_recv(ch, &item, deadline, NULL), GC_TIMEOUT);
            CHECK_ST(gc_chan_send(ch, V(d), deadline, NULL), GC_OK);
            CHECK_ST(gc_chan_recv(ch, &item, deadline, NULL), GC_OK);
            CHECK_PTR_EQ(item, V(d));
            fill(ch, cap, 0);
            CHECK_ST(gc_chan_send(ch, V(d), deadline, NULL), GC_TIMEOUT);
            for (size_t i = 0; i < cap; i++)
                CHECK_ST(gc_chan_recv(ch, &item, deadline, NULL), GC_OK);
            /* nothing waited (the bound only catches a hang) */
            CHECK(gc_now_ns() - t0 < 1000 * GC_MS);
        }
        CHECK_EQ(gc_test_waiting_senders(ch), 0);
        CHECK_EQ(gc_test_waiting_receivers(ch), 0);
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
test_new_refuses_capacity_above_max(void)
{
    CHECK(gc_chan_new(GC_CHAN_MAX_CAP + 1) == NULL);
    CHECK(gc_chan_new(SIZE_MAX) == NULL);
    CHECK(gc_chan_new(SIZE_MAX / 2 + 1) == NULL);
}

/* ---- Go: TestChan (src/runtime/chan_test.go), buffered capacities ----
 * An empty channel blocks a receive, a full one a send; a closed one
 * answers receives at once; close after send and close during a blocked
 * receive; 100 values cross between threads intact and in order; len and
 * cap. */

typedef struct go_feeder {
    gc_chan *ch;
    int n;
} go_feeder;

static void *
go_feed(void *arg)
{
    go_feeder *f = arg;
    for (int i = 0; i < f->n; i++)
        CHECK_ST(gc_chan_send(f->ch, V(i), GC_FOREVER, NULL), GC_OK);
    return NULL;
}

static void
test_go_TestChan(void)
{
    for (size_t cap = 1; cap < 20; cap++) {
        gc_chan *ch = gc_chan_new(cap);
        void *item;
        gc_test_op op;

        /* receive from an empty channel blocks */
        gc_test_op_start(&op, ch, GC_RECV, NULL, GC_FOREVER);
        gc_test_sleep_ns(1 * GC_MS);
        CHECK(!atomic_load(&op.done));
        CHECK_ST(gc_chan_send(ch, V(0), GC_FOREVER, NULL), GC_OK);
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        CHECK_PTR_EQ(op.item, V(0));
        /* a non-blocking receive does not block */
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);

        /* a send to a full channel blocks */
        fill(ch, cap, 0);
        gc_test_op_start(&op, ch, GC_SEND, V(cap), GC_FOREVER);
        gc_test_sleep_ns(1 * GC_MS);
        CHECK(!atomic_load(&op.done));
        CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        /* a non-blocking send does not block */
        CHECK_ST(gc_chan_try_send(ch, V(0)), GC_WOULDBLOCK);
        for (size_t i = 0; i < cap; i++)
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        CHECK_PTR_EQ(item, V(cap));

        /* a closed channel gives its values, then answers every receive
         * at once */
        fill(ch, cap, 0);
        gc_chan_close(ch);
        for (size_t i = 0; i < cap; i++) {
            CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
            CHECK_PTR_EQ(item, V(i));
        }
        for (int i = 0; i < 4; i++)
            CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_CLOSED);
        gc_chan_free(ch, NULL, NULL);

        /* close unblocks a receive */
        ch = gc_chan_new(cap);
        gc_test_op_start(&op, ch, GC_RECV, NULL, GC_FOREVER);
        gc_test_sleep_ns(1 * GC_MS);
        CHECK(!atomic_load(&op.done));
        gc_chan_close(ch);
        CHECK_ST(gc_test_op_join(&op), GC_CLOSED);
        gc_chan_free(ch, NULL, NULL);

        /* 100 values between threads, intact, in order */
        ch = gc_chan_new(cap);
        go_feeder f = {ch, 100};
        pthread_t t = gc_test_spawn(go_feed, &f);
        for (int i = 0; i < 100; i++) {
            CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
            CHECK_PTR_EQ(item, V(i));
        }
        gc_test_join(t);

        /* len and cap */
        for (size_t i = 0; i < cap; i++)
            CHECK_ST(gc_chan_try_send(ch, V(i)), GC_OK);
        CHECK_EQ(gc_chan_len(ch), cap);
        CHECK_EQ(gc_chan_cap(ch), cap);
        gc_chan_free(ch, NULL, NULL);
    }
}

/* ---- Go: TestNonblockRecvRace (src/runtime/chan_test.go) ----
 * A channel holding one value is closed and drained by one thread while
 * another makes a non-blocking receive: that receive must see the value
 * or the close, never "would block" - there is no moment at which the
 * channel is both open and empty. */

typedef struct nb_race {
    gc_chan *ch;
    atomic_int go;
    gc_status st;
} nb_race;

static void *
nb_race_recv(void *arg)
{
    nb_race *r = arg;
    while (!atomic_load_explicit(&r->go, memory_order_acquire))
        ;
    void *item;
    r->st = gc_chan_try_recv(r->ch, &item);
    return NULL;
}

static void
test_go_TestNonblockRecvRace(void)
{
    int n = (int)(2000 * gc_test_scale());
    for (int i = 0; i < n; i++) {
        nb_race r = {gc_chan_new(1), 0, (gc_status)-1};
        CHECK_ST(gc_chan_try_send(r.ch, V(1)), GC_OK);
        pthread_t t = gc_test_spawn(nb_race_recv, &r);
        atomic_store_explicit(&r.go, 1, memory_order_release);
        gc_chan_close(r.ch);
        void *item;
        gc_status mine = gc_chan_recv(r.ch, &item, GC_FOREVER, NULL);
        gc_test_join(t);
        if (r.st != GC_OK && r.st != GC_CLOSED) {
            fprintf(stderr, "iteration %d: try_recv gave %s\n", i,
                    gc_test_status_name(r.st));
            abort();
        }
        /* exactly one of the two got the value */
        CHECK_EQ((r.st == GC_OK) + (mine == GC_OK), 1);
        gc_chan_free(r.ch, NULL, NULL);
    }
}

int
main(void)
{
    GC_RUN(test_try_send_until_full_then_wouldblock);
    GC_RUN(test_fifo_order);
    GC_RUN(test_len_cap_stats);
    GC_RUN(test_close_keeps_buffered_values_then_reports_closed);
    GC_RUN(test_traverse_visits_buffered_values_in_order);
    GC_RUN(test_free_hands_buffered_values_to_callback);
    GC_RUN(test_wraparound_over_many_laps);
    GC_RUN(test_value_sent_while_receiver_waits_goes_to_receiver);
    GC_RUN(test_freed_slot_goes_to_first_waiting_sender);
    GC_RUN(test_blocked_receiver_is_woken_by_close);
    GC_RUN(test_blocked_sender_is_woken_by_close_and_keeps_its_value);
    GC_RUN(test_blocked_calls_complete_when_peer_arrives);
    GC_RUN(test_deadline_expiry_returns_timeout);
    GC_RUN(test_deadline_not_in_future_means_try_once);
    GC_RUN(test_new_refuses_capacity_above_max);
    GC_RUN(test_go_TestChan);
    GC_RUN(test_go_TestNonblockRecvRace);
    return 0;
}
