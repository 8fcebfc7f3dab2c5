/* test_unbuffered.c - the unbuffered flavor (capacity 0), one behaviour a
 * test.
 *
 * What it proves:
 *   - with nobody waiting, try_send and try_recv answer GC_WOULDBLOCK (also
 *     after a waiter has given up), and len is always 0, cap 0;
 *   - a value passes only by handoff: try_send completes a blocked
 *     receiver, try_recv completes a blocked sender, blocking calls meet
 *     each other whichever arrives first, and waiters are served first in,
 *     first out;
 *   - the statistics count the waiters as they come and go;
 *   - close answers GC_CLOSED to everything afterwards and to a second
 *     close, and wakes every blocked sender (GC_CLOSED: its value was not
 *     delivered, it still owns it) and every blocked receiver (GC_CLOSED);
 *     once the channel reads as closed, no receive takes the value of a
 *     sender blocked before the close;
 *   - deadlines: GC_TIMEOUT no earlier than the deadline, nothing left
 *     behind by a timed-out send; a deadline <= now means "try once", which
 *     succeeds when a peer is waiting;
 *   - traverse and free see no values.
 * Ports of Go's runtime tests (src/runtime/chan_test.go): TestChan for
 * capacity 0, and a ping-pong in the spirit of BenchmarkChanSync checked
 * for every value.
 */
#include "gc_test.h"

#define V(i) GC_P((uintptr_t)(i) + 1000)

static void
test_try_ops_wouldblock_with_nobody_waiting(void)
{
    gc_chan *ch = gc_chan_new(0);
    CHECK(ch != NULL);
    void *item = GC_P(9);
    CHECK_ST(gc_chan_try_send(ch, V(1)), GC_WOULDBLOCK);
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
    CHECK_PTR_EQ(item, GC_P(9));
    CHECK_EQ(gc_chan_len(ch), 0);
    CHECK_EQ(gc_chan_cap(ch), 0);

    /* a waiter that gave up is no longer a peer */
    CHECK_ST(gc_chan_recv(ch, &item, gc_deadline_after(2 * GC_MS), NULL),
             GC_TIMEOUT);
    CHECK_ST(gc_chan_try_send(ch, V(1)), GC_WOULDBLOCK);
    CHECK_ST(gc_chan_send(ch, V(2), gc_deadline_after(2 * GC_MS), NULL),
             GC_TIMEOUT);
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
    CHECK_EQ(gc_test_waiting_senders(ch), 0);
    CHECK_EQ(gc_test_waiting_receivers(ch), 0);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_try_send_hands_value_to_blocked_receiver(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op op;
    gc_test_op_start_blocked(&op, ch, GC_RECV, NULL);
    CHECK_EQ(gc_chan_len(ch), 0);
    CHECK_ST(gc_chan_try_send(ch, V(1)), GC_OK);
    CHECK_ST(gc_test_op_join(&op), GC_OK);
    CHECK_PTR_EQ(op.item, V(1));
    /* one receiver, one value */
    CHECK_ST(gc_chan_try_send(ch, V(2)), GC_WOULDBLOCK);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_try_recv_takes_value_from_blocked_sender(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op op;
    gc_test_op_start_blocked(&op, ch, GC_SEND, V(1));
    CHECK_EQ(gc_chan_len(ch), 0);
    void *item = NULL;
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
    CHECK_PTR_EQ(item, V(1));
    CHECK_ST(gc_test_op_join(&op), GC_OK);
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_blocking_calls_meet_whichever_comes_first(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op op;
    void *item = NULL;
    for (int i = 0; i < 20; i++) {
        /* receiver first */
        gc_test_op_start_blocked(&op, ch, GC_RECV, NULL);
        CHECK_ST(gc_chan_send(ch, V(i), GC_FOREVER, NULL), GC_OK);
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        CHECK_PTR_EQ(op.item, V(i));
        /* sender first */
        gc_test_op_start_blocked(&op, ch, GC_SEND, V(i + 100));
        CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
        CHECK_PTR_EQ(item, V(i + 100));
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        /* both at once, no ordering forced */
        gc_test_op_start(&op, ch, GC_SEND, V(i + 200), GC_FOREVER);
        CHECK_ST(
            gc_chan_recv(ch, &item, gc_deadline_after(10000 * GC_MS), NULL),
            GC_OK);
        CHECK_PTR_EQ(item, V(i + 200));
        CHECK_ST(gc_test_op_join(&op), GC_OK);
    }
    gc_chan_free(ch, NULL, NULL);
}

static void
test_waiting_receivers_are_served_in_arrival_order(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op ops[4];
    for (int i = 0; i < 4; i++)
        gc_test_op_start_blocked(&ops[i], ch, GC_RECV, NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_ST(gc_chan_try_send(ch, V(i)), GC_OK);
        CHECK_ST(gc_test_op_join(&ops[i]), GC_OK);
        CHECK_PTR_EQ(ops[i].item, V(i));
        CHECK_EQ(gc_test_waiting_receivers(ch), 3 - i);
    }
    gc_chan_free(ch, NULL, NULL);
}

static void
test_waiting_senders_are_served_in_arrival_order(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op ops[4];
    for (int i = 0; i < 4; i++)
        gc_test_op_start_blocked(&ops[i], ch, GC_SEND, V(i));
    for (int i = 0; i < 4; i++) {
        void *item = NULL;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        CHECK_PTR_EQ(item, V(i));
        CHECK_ST(gc_test_op_join(&ops[i]), GC_OK);
        CHECK_EQ(gc_test_waiting_senders(ch), 3 - i);
    }
    gc_chan_free(ch, NULL, NULL);
}

static void
test_stats_count_waiters(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_chan_stats s;
    gc_chan_stats_get(ch, &s);
    CHECK_EQ(s.capacity, 0);
    CHECK_EQ(s.size, 0);
    CHECK_EQ(s.waiting_senders, 0);
    CHECK_EQ(s.waiting_receivers, 0);
    CHECK_EQ(s.closed, 0);

    gc_test_op snd[3];
    for (int i = 0; i < 3; i++) {
        gc_test_op_start_blocked(&snd[i], ch, GC_SEND, V(i));
        gc_chan_stats_get(ch, &s);
        CHECK_EQ(s.waiting_senders, i + 1);
        CHECK_EQ(s.waiting_receivers, 0);
        CHECK_EQ(s.size, 0);
        CHECK_EQ(gc_chan_len(ch), 0);
    }
    for (int i = 0; i < 3; i++) {
        void *item;
        CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
        CHECK_ST(gc_test_op_join(&snd[i]), GC_OK);
    }
    gc_chan_stats_get(ch, &s);
    CHECK_EQ(s.waiting_senders, 0);

    gc_test_op rcv[2];
    for (int i = 0; i < 2; i++)
        gc_test_op_start_blocked(&rcv[i], ch, GC_RECV, NULL);
    gc_chan_stats_get(ch, &s);
    CHECK_EQ(s.waiting_senders, 0);
    CHECK_EQ(s.waiting_receivers, 2);
    CHECK_ST(gc_chan_close(ch), GC_OK);
    for (int i = 0; i < 2; i++)
        CHECK_ST(gc_test_op_join(&rcv[i]), GC_CLOSED);
    gc_chan_stats_get(ch, &s);
    CHECK_EQ(s.waiting_receivers, 0);
    CHECK_EQ(s.closed, 1);
    CHECK_EQ(s.size, 0);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_close_reports_closed_to_everything_after(void)
{
    gc_chan *ch = gc_chan_new(0);
    CHECK(!gc_chan_closed(ch));
    CHECK_ST(gc_chan_close(ch), GC_OK);
    CHECK(gc_chan_closed(ch));
    CHECK_ST(gc_chan_close(ch), GC_CLOSED);
    void *item = GC_P(5);
    CHECK_ST(gc_chan_try_send(ch, V(1)), GC_CLOSED);
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_CLOSED);
    CHECK_ST(gc_chan_send(ch, V(1), GC_FOREVER, NULL), GC_CLOSED);
    CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_CLOSED);
    CHECK_ST(gc_chan_send(ch, V(1), 0, NULL), GC_CLOSED);
    CHECK_ST(gc_chan_recv(ch, &item, 0, NULL), GC_CLOSED);
    CHECK_EQ(gc_chan_len(ch), 0);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_close_wakes_blocked_senders_who_keep_their_values(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op ops[5];
    for (int i = 0; i < 5; i++)
        gc_test_op_start_blocked(&ops[i], ch, GC_SEND, V(i));
    CHECK_ST(gc_chan_close(ch), GC_OK);
    for (int i = 0; i < 5; i++)
        CHECK_ST(gc_test_op_join(&ops[i]), GC_CLOSED);
    void *item = GC_P(5);
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_CLOSED);
    CHECK_PTR_EQ(item, GC_P(5));
    CHECK_EQ(gc_test_waiting_senders(ch), 0);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_close_wakes_blocked_receivers(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op ops[5];
    for (int i = 0; i < 5; i++)
        gc_test_op_start_blocked(&ops[i], ch, GC_RECV, GC_P(3));
    CHECK_ST(gc_chan_close(ch), GC_OK);
    for (int i = 0; i < 5; i++)
        CHECK_ST(gc_test_op_join(&ops[i]), GC_CLOSED);
    CHECK_EQ(gc_test_waiting_receivers(ch), 0);
    gc_chan_free(ch, NULL, NULL);
}

/* Blocked senders and receivers with deadlines, woken by close before the
 * deadline: GC_CLOSED, not GC_TIMEOUT. */
static void
test_close_wakes_waiters_with_deadlines(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op ops[2];
    gc_test_op_start(&ops[0], ch, GC_RECV, NULL,
                     gc_deadline_after(60000 * GC_MS));
    WAIT_UNTIL(gc_test_waiting_receivers(ch) == 1, 10000);
    gc_chan_close(ch);
    CHECK_ST(gc_test_op_join(&ops[0]), GC_CLOSED);
    gc_chan_free(ch, NULL, NULL);

    ch = gc_chan_new(0);
    gc_test_op_start(&ops[1], ch, GC_SEND, V(1),
                     gc_deadline_after(60000 * GC_MS));
    WAIT_UNTIL(gc_test_waiting_senders(ch) == 1, 10000);
    gc_chan_close(ch);
    CHECK_ST(gc_test_op_join(&ops[1]), GC_CLOSED);
    gc_chan_free(ch, NULL, NULL);
}

/* Go: close releases every blocked sender at once.  Once the channel reads
 * as closed, no receive may take the value of a sender that was blocked
 * before the close: that sender gets GC_CLOSED and keeps its value. */
typedef struct closer_arg {
    gc_chan *ch;
    atomic_int go;
} closer_arg;

static void *
close_on_go(void *arg)
{
    closer_arg *c = arg;
    while (!atomic_load(&c->go))
        ;
    CHECK_ST(gc_chan_close(c->ch), GC_OK);
    return NULL;
}

static void
test_no_receive_after_close_takes_a_blocked_senders_value(void)
{
    int n = (int)(300 * gc_test_scale());
    for (int i = 0; i < n; i++) {
        gc_chan *ch = gc_chan_new(0);
        gc_test_op op;
        gc_test_op_start_blocked(&op, ch, GC_SEND, V(i));
        closer_arg c = {ch, 0};
        pthread_t t = gc_test_spawn(close_on_go, &c);
        atomic_store(&c.go, 1);
        while (!gc_chan_closed(ch))
            ;
        void *item = NULL;
        gc_status st = gc_chan_try_recv(ch, &item);
        if (st != GC_CLOSED) {
            fprintf(stderr,
                    "%s:%d: iteration %d: try_recv after "
                    "gc_chan_closed() gave %s (item %p)\n",
                    __FILE__, __LINE__, i, gc_test_status_name(st), item);
            abort();
        }
        gc_test_join(t);
        CHECK_ST(gc_test_op_join(&op), GC_CLOSED);
        gc_chan_free(ch, NULL, NULL);
    }
}

static void
test_deadline_expiry_returns_timeout(void)
{
    gc_chan *ch = gc_chan_new(0);
    int64_t t[] = {30 * GC_MS, 1 * GC_MS, 10000};
    for (int i = 0; i < 3; i++) {
        gc_test_check_times_out(ch, GC_RECV, t[i]);
        gc_test_check_times_out(ch, GC_SEND, t[i]);
    }
    /* the timed-out sends left nothing for a receiver */
    void *item;
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_deadline_not_in_future_means_try_once(void)
{
    gc_chan *ch = gc_chan_new(0);
    int64_t past[] = {0, INT64_MIN, 1, -1};
    for (int d = 0; d < 5; d++) {
        int64_t deadline = d < 4 ? past[d] : gc_now_ns();
        void *item = NULL;
        CHECK_ST(gc_chan_send(ch, V(1), deadline, NULL), GC_TIMEOUT);
        CHECK_ST(gc_chan_recv(ch, &item, deadline, NULL), GC_TIMEOUT);

        /* once is enough when a peer waits */
        gc_test_op op;
        gc_test_op_start_blocked(&op, ch, GC_RECV, NULL);
        CHECK_ST(gc_chan_send(ch, V(d), deadline, NULL), GC_OK);
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        CHECK_PTR_EQ(op.item, V(d));
        gc_test_op_start_blocked(&op, ch, GC_SEND, V(d + 10));
        CHECK_ST(gc_chan_recv(ch, &item, deadline, NULL), GC_OK);
        CHECK_PTR_EQ(item, V(d + 10));
        CHECK_ST(gc_test_op_join(&op), GC_OK);
    }
    gc_chan_free(ch, NULL, NULL);
}

static int
never_visit(void *item, void *arg)
{
    (void)item;
    (void)arg;
    CHECK(!"an unbuffered channel holds no values");
    return 1;
}

static void
never_free(void *item, void *arg)
{
    (void)item;
    (void)arg;
    CHECK(!"an unbuffered channel holds no values");
}

static void
test_traverse_and_free_see_no_values(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op op;
    gc_test_op_start_blocked(&op, ch, GC_SEND, V(1));
    /* a blocked sender's value is still the sender's */
    CHECK_EQ(gc_chan_traverse(ch, never_visit, NULL), 0);
    gc_chan_close(ch);
    CHECK_ST(gc_test_op_join(&op), GC_CLOSED);
    CHECK_EQ(gc_chan_traverse(ch, never_visit, NULL), 0);
    gc_chan_free(ch, never_free, NULL);
}

/* ---- Go: TestChan (src/runtime/chan_test.go), capacity 0 ----
 * A receive blocks until a sender comes, a send until a receiver comes;
 * close unblocks a receive; 100 values cross intact and in order. */

typedef struct feeder {
    gc_chan *ch;
    int n;
} feeder;

static void *
feed(void *arg)
{
    feeder *f = arg;
    for (int i = 0; i < f->n; i++)
        CHECK_ST(gc_chan_send(f->ch, V(i), GC_FOREVER, NULL), GC_OK);
    return NULL;
}

static void
test_go_TestChan_unbuffered(void)
{
    gc_chan *ch = gc_chan_new(0);
    gc_test_op op;
    void *item;

    gc_test_op_start(&op, ch, GC_RECV, NULL, GC_FOREVER);
    gc_test_sleep_ns(1 * GC_MS);
    CHECK(!atomic_load(&op.done));
    CHECK_ST(gc_chan_send(ch, V(0), GC_FOREVER, NULL), GC_OK);
    CHECK_ST(gc_test_op_join(&op), GC_OK);
    CHECK_PTR_EQ(op.item, V(0));
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);

    gc_test_op_start(&op, ch, GC_SEND, V(7), GC_FOREVER);
    gc_test_sleep_ns(1 * GC_MS);
    CHECK(!atomic_load(&op.done));
    CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
    CHECK_PTR_EQ(item, V(7));
    CHECK_ST(gc_test_op_join(&op), GC_OK);
    CHECK_ST(gc_chan_try_send(ch, V(0)), GC_WOULDBLOCK);

    feeder f = {ch, 100};
    pthread_t t = gc_test_spawn(feed, &f);
    for (int i = 0; i < 100; i++) {
        CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_OK);
        CHECK_PTR_EQ(item, V(i));
    }
    gc_test_join(t);

    gc_test_op_start(&op, ch, GC_RECV, NULL, GC_FOREVER);
    gc_test_sleep_ns(1 * GC_MS);
    CHECK(!atomic_load(&op.done));
    gc_chan_close(ch);
    CHECK_ST(gc_test_op_join(&op), GC_CLOSED);
    for (int i = 0; i < 4; i++)
        CHECK_ST(gc_chan_recv(ch, &item, GC_FOREVER, NULL), GC_CLOSED);
    gc_chan_free(ch, NULL, NULL);
}

/* Two threads bounce a counter over two unbuffered channels: every value
 * arrives, each exactly once, in order. */
typedef struct pingpong {
    gc_chan *ping, *pong;
    int rounds;
} pingpong;

static void *
pong_main(void *arg)
{
    pingpong *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        void *item;
        CHECK_ST(gc_chan_recv(p->ping, &item, GC_FOREVER, NULL), GC_OK);
        CHECK_PTR_EQ(item, V(2 * i));
        CHECK_ST(gc_chan_send(p->pong, V(2 * i + 1), GC_FOREVER, NULL), GC_OK);
    }
    return NULL;
}

static void
test_ping_pong_delivers_every_value_in_order(void)
{
    pingpong p = {gc_chan_new(0), gc_chan_new(0),
                  (int)(2000 * gc_test_scale())};
    pthread_t t = gc_test_spawn(pong_main, &p);
    for (int i = 0; i < p.rounds; i++) {
        void *item;
        CHECK_ST(gc_chan_send(p.ping, V(2 * i), GC_FOREVER, NULL), GC_OK);
        CHECK_ST(gc_chan_recv(p.pong, &item, GC_FOREVER, NULL), GC_OK);
        CHECK_PTR_EQ(item, V(2 * i + 1));
    }
    gc_test_join(t);
    gc_chan_free(p.ping, NULL, NULL);
    gc_chan_free(p.pong, NULL, NULL);
}

int
main(void)
{
    GC_RUN(test_try_ops_wouldblock_with_nobody_waiting);
    GC_RUN(test_try_send_hands_value_to_blocked_receiver);
    GC_RUN(test_try_recv_takes_value_from_blocked_sender);
    GC_RUN(test_blocking_calls_meet_whichever_comes_first);
    GC_RUN(test_waiting_receivers_are_served_in_arrival_order);
    GC_RUN(test_waiting_senders_are_served_in_arrival_order);
    GC_RUN(test_stats_count_waiters);
    GC_RUN(test_close_reports_closed_to_everything_after);
    GC_RUN(test_close_wakes_blocked_senders_who_keep_their_values);
    GC_RUN(test_close_wakes_blocked_receivers);
    GC_RUN(test_close_wakes_waiters_with_deadlines);
    GC_RUN(test_no_receive_after_close_takes_a_blocked_senders_value);
    GC_RUN(test_deadline_expiry_returns_timeout);
    GC_RUN(test_deadline_not_in_future_means_try_once);
    GC_RUN(test_traverse_and_free_see_no_values);
    GC_RUN(test_go_TestChan_unbuffered);
    GC_RUN(test_ping_pong_delivers_every_value_in_order);
    return 0;
}
