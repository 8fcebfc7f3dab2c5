/* test_batch.c - gc_chan_try_send_many and gc_chan_try_recv_many, one
 * behaviour a test.
 *
 * What it proves, for capacities 1, 2, 3, 7 and 1024 (buffered: a batch
 * claims a run of ring slots with one CAS) and 0 (unbuffered: a loop of
 * single operations) unless said otherwise:
 *   - a batch larger than the room left sends exactly the room (*sent
 *     exact, GC_WOULDBLOCK), also when the run of slots wraps around the
 *     end of the ring; a full ring sends nothing; a closed channel sends
 *     nothing (GC_CLOSED, *sent 0) and *sent is set on every path;
 *   - a batch receive takes min(n, buffered) values in order, GC_OK, and
 *     leaves items[got..n) untouched (the binding counts on that); on an
 *     empty channel GC_WOULDBLOCK, on a closed one the buffered values
 *     first, then GC_CLOSED;
 *   - FIFO holds across any mix of batch and single operations, over many
 *     laps of the ring, with batch sizes that do not divide the capacity
 *     (checked against a model queue after every operation);
 *   - n == 0 (gc_chan.h: "nothing moves"): try_send_many answers GC_OK
 *     with *sent 0 on an open channel (empty, full, receivers waiting, who
 *     stay waiting) and GC_CLOSED with *sent 0 on a closed one;
 *     try_recv_many answers GC_OK with *got 0 and takes nothing, in every
 *     state (empty or not, head at index 0 or not, closed, a sender
 *     waiting); each case runs in a child process so that a hang (as
 *     before the fix, when ring_pop_many spun forever on n == 0) fails in
 *     3 s instead of waiting for the watchdog;
 *   - Go's semantics around waiters, batched: with r receivers blocked on
 *     an empty channel, one try_send_many(k) hands the first min(k, r)
 *     values directly to the receivers in the order they arrived (one
 *     value each; checked before any of them could retry) and the rest go
 *     to the ring; with s senders blocked on a full ring, one
 *     try_recv_many(m) moves the values of the first min(m, s) senders
 *     into the freed slots in the senders' order and completes exactly
 *     those senders;
 *   - close racing a batch: when try_send_many answers GC_CLOSED it has
 *     sent exactly the prefix it reports, and a receiver gets exactly the
 *     values reported sent, in order (many trials; the number of batches
 *     cut short by the close is printed).
 */
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc_test.h"

static const size_t bcaps[] = {1, 2, 3, 7, 1024};
#define NBCAPS (sizeof bcaps / sizeof bcaps[0])
static const size_t all_caps[] = {0, 1, 2, 3, 7, 1024};
#define NALLCAPS (sizeof all_caps / sizeof all_caps[0])

/* Payload number i of a test: never 0. */
#define V(i)      GC_P((uintptr_t)(i) + 1000)
/* An output slot the core must not write. */
#define UNTOUCHED GC_P(0xdead)

static size_t
min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

static void **
values(size_t n, size_t first)
{
    void **v = malloc((n ? n : 1) * sizeof *v);
    CHECK(v != NULL);
    for (size_t i = 0; i < n; i++)
        v[i] = V(first + i);
    return v;
}

static void
fill(gc_chan *ch, size_t n, size_t first)
{
    for (size_t i = 0; i < n; i++)
        CHECK_ST(gc_chan_try_send(ch, V(first + i)), GC_OK);
}

/* Receive exactly V(first) .. V(first + n - 1) one at a time, then find
 * the channel empty. */
static void
drain_expect(gc_chan *ch, size_t first, size_t n)
{
    void *item;
    for (size_t i = 0; i < n; i++) {
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        CHECK_PTR_EQ(item, V(first + i));
    }
    CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
}

/* Move the ring's head and tail to index `off` (a lap of pushes and pops),
 * so that a later batch's run of slots can wrap around the end. */
static void
rotate(gc_chan *ch, size_t off)
{
    void *item;
    for (size_t i = 0; i < off; i++) {
        CHECK_ST(gc_chan_try_send(ch, GC_P(1)), GC_OK);
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
    }
    CHECK_EQ(gc_chan_len(ch), 0);
}

/* ---- sends ---- */

static void
test_send_many_sends_exactly_the_room_left(void)
{
    for (size_t k = 0; k < NBCAPS; k++) {
        size_t cap = bcaps[k];
        size_t offs[] = {0, 1, cap / 2 + 1, cap - 1};
        size_t prefills[] = {0, 1, cap / 2, cap - 1, cap};
        for (size_t o = 0; o < 4; o++) {
            for (size_t f = 0; f < 5; f++) {
                size_t off = offs[o] % cap, pre = prefills[f];
                size_t room = cap - pre;
                size_t ns[] = {1,        2,       room ? room : 1,
                               room + 1, cap + 3, 2 * cap + 5};
                for (size_t t = 0; t < 6; t++) {
                    size_t n = ns[t];
                    gc_chan *ch = gc_chan_new(cap);
                    rotate(ch, off);
                    fill(ch, pre, 0);
                    void **v = values(n, pre);
                    size_t sent = SIZE_MAX;
                    gc_status st = gc_chan_try_send_many(ch, v, n, &sent);
                    size_t want = min_sz(n, room);
                    CHECK_EQ(sent, want);
                    CHECK_ST(st, n <= room ? GC_OK : GC_WOULDBLOCK);
                    CHECK_EQ(gc_chan_len(ch), pre + want);
                    if (n > want) {
                        /* full now: the rest does not fit either */
                        sent = SIZE_MAX;
                        CHECK_ST(gc_chan_try_send_many(ch, v + want, n - want,
                                                       &sent),
                                 GC_WOULDBLOCK);
                        CHECK_EQ(sent, 0);
                        CHECK_ST(gc_chan_try_send(ch, V(9999)), GC_WOULDBLOCK);
                    }
                    drain_expect(ch, 0, pre + want);
                    free(v);
                    gc_chan_free(ch, NULL, NULL);
                }
            }
        }
    }
}

static void
test_send_many_unbuffered_without_receivers_sends_nothing(void)
{
    gc_chan *ch = gc_chan_new(0);
    void **v = values(5, 0);
    for (size_t n = 1; n <= 5; n++) {
        size_t sent = SIZE_MAX;
        CHECK_ST(gc_chan_try_send_many(ch, v, n, &sent), GC_WOULDBLOCK);
        CHECK_EQ(sent, 0);
    }
    free(v);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_send_many_on_closed_channel_sends_nothing(void)
{
    for (size_t k = 0; k < NALLCAPS; k++) {
        size_t cap = all_caps[k];
        void **v = values(cap + 3, 10);
        /* empty, and (buffered) with a value in and room left */
        for (int with_value = 0; with_value <= (cap >= 2); with_value++) {
            gc_chan *ch = gc_chan_new(cap);
            if (with_value)
                fill(ch, 1, 0);
            CHECK_ST(gc_chan_close(ch), GC_OK);
            size_t ns[] = {1, 2, cap + 3};
            for (int t = 0; t < 3; t++) {
                size_t sent = SIZE_MAX;
                CHECK_ST(gc_chan_try_send_many(ch, v, ns[t], &sent),
                         GC_CLOSED);
                CHECK_EQ(sent, 0);
            }
            CHECK_EQ(gc_chan_len(ch), (size_t)with_value);
            void *item;
            if (with_value) {
                CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
                CHECK_PTR_EQ(item, V(0));
            }
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_CLOSED);
            gc_chan_free(ch, NULL, NULL);
        }
        free(v);
    }
}

/* ---- receives ---- */

static void
test_recv_many_takes_what_is_there_and_no_more(void)
{
    for (size_t k = 0; k < NBCAPS; k++) {
        size_t cap = bcaps[k];
        size_t offs[] = {0, cap / 2 + 1, cap - 1};
        size_t ms[] = {1, cap / 2 ? cap / 2 : 1, cap};
        for (size_t o = 0; o < 3; o++) {
            for (size_t mi = 0; mi < 3; mi++) {
                size_t m = ms[mi];
                size_t ns[] = {1, m > 1 ? m - 1 : 1, m, m + 1, cap + 10};
                for (size_t t = 0; t < 5; t++) {
                    size_t n = ns[t];
                    gc_chan *ch = gc_chan_new(cap);
                    rotate(ch, offs[o] % cap);
                    fill(ch, m, 0);
                    void **out = malloc(n * sizeof *out);
                    for (size_t i = 0; i < n; i++)
                        out[i] = UNTOUCHED;
                    size_t got = SIZE_MAX;
                    CHECK_ST(gc_chan_try_recv_many(ch, out, n, &got), GC_OK);
                    CHECK_EQ(got, min_sz(n, m));
                    for (size_t i = 0; i < got; i++)
                        CHECK_PTR_EQ(out[i], V(i));
                    for (size_t i = got; i < n; i++)
                        CHECK_PTR_EQ(out[i], UNTOUCHED);
                    CHECK_EQ(gc_chan_len(ch), m - got);
                    drain_expect(ch, got, m - got);
                    free(out);
                    gc_chan_free(ch, NULL, NULL);
                }
            }
        }
    }
}

static void
test_recv_many_on_empty_then_closed(void)
{
    for (size_t k = 0; k < NALLCAPS; k++) {
        size_t cap = all_caps[k];
        gc_chan *ch = gc_chan_new(cap);
        if (cap)
            rotate(ch, cap / 2 + 1);
        void *out[8];
        for (size_t n = 1; n <= 8; n *= 2) {
            for (size_t i = 0; i < 8; i++)
                out[i] = UNTOUCHED;
            size_t got = SIZE_MAX;
            CHECK_ST(gc_chan_try_recv_many(ch, out, n, &got), GC_WOULDBLOCK);
            for (size_t i = 0; i < 8; i++)
                CHECK_PTR_EQ(out[i], UNTOUCHED);
        }
        /* closed with values buffered: the values first, then closed */
        size_t m = cap < 5 ? cap : 5;
        fill(ch, m, 0);
        CHECK_ST(gc_chan_close(ch), GC_OK);
        size_t taken = 0;
        while (taken < m) {
            size_t got = SIZE_MAX;
            CHECK_ST(gc_chan_try_recv_many(ch, out, 2, &got), GC_OK);
            CHECK(got >= 1 && got <= 2);
            for (size_t i = 0; i < got; i++)
                CHECK_PTR_EQ(out[i], V(taken + i));
            taken += got;
        }
        CHECK_EQ(taken, m);
        for (int again = 0; again < 2; again++) {
            for (size_t i = 0; i < 8; i++)
                out[i] = UNTOUCHED;
            size_t got = SIZE_MAX;
            CHECK_ST(gc_chan_try_recv_many(ch, out, 8, &got), GC_CLOSED);
            for (size_t i = 0; i < 8; i++)
                CHECK_PTR_EQ(out[i], UNTOUCHED);
        }
        void *item;
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_CLOSED);
        gc_chan_free(ch, NULL, NULL);
    }
}

/* ---- FIFO and wraparound against a model ---- */

static void
test_batches_and_single_ops_keep_fifo_over_many_laps(void)
{
    size_t laps = (size_t)(300 * gc_test_scale());
    for (size_t k = 0; k < NBCAPS; k++) {
        size_t cap = bcaps[k];
        gc_chan *ch = gc_chan_new(cap);
        size_t maxn = 2 * cap + 3;
        void **buf = malloc(maxn * sizeof *buf);
        uintptr_t next_in = 0, next_out = 0; /* the model: a counter pair */
        uint64_t rng = 777 + k;
        size_t ops[4] = {0, 0, 0, 0};
        while (next_out < laps * cap + 17) {
            size_t len = (size_t)(next_in - next_out);
            uint64_t r = gc_test_rand(&rng);
            size_t n = 1 + (size_t)((r >> 8) % maxn);
            gc_status st;
            switch (r % 4) {
            case 0: /* single send */
                st = gc_chan_try_send(ch, V(next_in));
                CHECK_ST(st, len < cap ? GC_OK : GC_WOULDBLOCK);
                next_in += st == GC_OK;
                break;
            case 1: { /* batch send */
                for (size_t i = 0; i < n; i++)
                    buf[i] = V(next_in + i);
                size_t sent = SIZE_MAX;
                st = gc_chan_try_send_many(ch, buf, n, &sent);
                CHECK_EQ(sent, min_sz(n, cap - len));
                CHECK_ST(st, n <= cap - len ? GC_OK : GC_WOULDBLOCK);
                next_in += sent;
                break;
            }
            case 2: { /* single receive */
                void *item = UNTOUCHED;
                st = gc_chan_try_recv(ch, &item);
                CHECK_ST(st, len ? GC_OK : GC_WOULDBLOCK);
                if (st == GC_OK)
                    CHECK_PTR_EQ(item, V(next_out++));
                break;
            }
            default: { /* batch receive */
                size_t got = SIZE_MAX;
                st = gc_chan_try_recv_many(ch, buf, n, &got);
                CHECK_ST(st, len ? GC_OK : GC_WOULDBLOCK);
                if (st == GC_OK) {
                    CHECK_EQ(got, min_sz(n, len));
                    for (size_t i = 0; i < got; i++)
                        CHECK_PTR_EQ(buf[i], V(next_out++));
                }
                break;
            }
            }
            ops[r % 4]++;
            CHECK_EQ(gc_chan_len(ch), next_in - next_out);
        }
        for (int i = 0; i < 4; i++)
            CHECK(ops[i] > 0);
        free(buf);
        gc_chan_free(ch, NULL, NULL);
    }
}

/* Fixed batch sizes that do not divide the capacity, so every lap starts
 * a batch at a different index. */
static void
test_wraparound_with_batch_sizes_not_dividing_capacity(void)
{
    size_t laps = (size_t)(200 * gc_test_scale());
    for (size_t k = 0; k < NBCAPS; k++) {
        size_t cap = bcaps[k];
        size_t pairs[][2] = {{3, 2},
                             {5, 7},
                             {cap + 1, cap > 1 ? cap - 1 : 1},
                             {cap / 2 + 1, 3}};
        for (int p = 0; p < 4; p++) {
            size_t bs = pairs[p][0], br = pairs[p][1];
            gc_chan *ch = gc_chan_new(cap);
            void **in = malloc(bs * sizeof *in),
                 **out = malloc(br * sizeof *out);
            uintptr_t next_in = 0, next_out = 0;
            while (next_out < laps * cap + 5) {
                for (size_t i = 0; i < bs; i++)
                    in[i] = V(next_in + i);
                size_t len = (size_t)(next_in - next_out), sent = SIZE_MAX;
                gc_status st = gc_chan_try_send_many(ch, in, bs, &sent);
                CHECK_EQ(sent, min_sz(bs, cap - len));
                CHECK_ST(st, bs <= cap - len ? GC_OK : GC_WOULDBLOCK);
                next_in += sent;
                len += sent;
                size_t got = SIZE_MAX;
                st = gc_chan_try_recv_many(ch, out, br, &got);
                CHECK_ST(st, len ? GC_OK : GC_WOULDBLOCK);
                if (st == GC_OK) {
                    CHECK_EQ(got, min_sz(br, len));
                    for (size_t i = 0; i < got; i++)
                        CHECK_PTR_EQ(out[i], V(next_out++));
                }
            }
            drain_expect(ch, (size_t)next_out, (size_t)(next_in - next_out));
            free(in);
            free(out);
            gc_chan_free(ch, NULL, NULL);
        }
    }
}

/* ---- n == 0 ---- */

static void
test_send_many_of_zero_items_moves_nothing(void)
{
    void *dummy = V(1);
    for (size_t k = 0; k < NALLCAPS; k++) {
        size_t cap = all_caps[k];
        gc_chan *ch = gc_chan_new(cap);
        size_t sent = SIZE_MAX;
        /* empty */
        CHECK_ST(gc_chan_try_send_many(ch, &dummy, 0, &sent), GC_OK);
        CHECK_EQ(sent, 0);
        CHECK_EQ(gc_chan_len(ch), 0);
        /* with a receiver waiting: it stays waiting */
        gc_test_op op;
        gc_test_op_start_blocked(&op, ch, GC_RECV, NULL);
        sent = SIZE_MAX;
        CHECK_ST(gc_chan_try_send_many(ch, &dummy, 0, &sent), GC_OK);
        CHECK_EQ(sent, 0);
        CHECK_EQ(gc_test_waiting_receivers(ch), 1);
        CHECK(!atomic_load(&op.done));
        CHECK_ST(gc_chan_try_send(ch, V(2)), GC_OK);
        CHECK_ST(gc_test_op_join(&op), GC_OK);
        CHECK_PTR_EQ(op.item, V(2));
        /* full */
        fill(ch, cap, 0);
        sent = SIZE_MAX;
        CHECK_ST(gc_chan_try_send_many(ch, &dummy, 0, &sent), GC_OK);
        CHECK_EQ(sent, 0);
        CHECK_EQ(gc_chan_len(ch), cap);
        /* closed: nothing moves, but the answer says closed (gc_chan.h) */
        CHECK_ST(gc_chan_close(ch), GC_OK);
        sent = SIZE_MAX;
        CHECK_ST(gc_chan_try_send_many(ch, &dummy, 0, &sent), GC_CLOSED);
        CHECK_EQ(sent, 0);
        CHECK_EQ(gc_chan_len(ch), cap);
        for (size_t i = 0; i < cap; i++) {
            void *item;
            CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
            CHECK_PTR_EQ(item, V(i));
        }
        gc_chan_free(ch, NULL, NULL);
    }
}

/* try_recv_many(n == 0) in a child process, so that a hang is caught by
 * alarm() and costs the run only a few seconds.  gc_chan.h: GC_OK with
 * *got = 0, nothing moves, whatever the state. */
typedef struct zero_case {
    const char *what;
    size_t cap;
    size_t rotate_by; /* head moved off index 0 first */
    size_t buffered;  /* values in the ring */
    int closed;
    int sender_waiting; /* unbuffered: a blocked sender must stay so */
} zero_case;

enum { ZERO_OK = 0, ZERO_WRONG = 3 };

/* In the child: the one call, then the checks.  The parent's blocked
 * sender did not survive the fork, so the child no longer counts it (a
 * waiter of a thread that does not exist is never served); the parent
 * repeats the call with its sender really waiting. */
static int
zero_child(const zero_case *z, gc_chan *ch)
{
    void *out = UNTOUCHED;
    size_t got = SIZE_MAX;
    gc_status st = gc_chan_try_recv_many(ch, &out, 0, &got);
    int ok = st == GC_OK && got == 0 && out == UNTOUCHED &&
             gc_chan_len(ch) == z->buffered;
    if (z->sender_waiting)
        ok = ok && gc_test_waiting_senders(ch) == 0;
    if (!ok)
        fprintf(stderr,
                "  %s: try_recv_many(n = 0) gave %s, *got %zu, len %zu "
                "(expected GC_OK, 0, %zu)\n",
                z->what, gc_test_status_name(st), got, gc_chan_len(ch),
                z->buffered);
    return ok ? ZERO_OK : ZERO_WRONG;
}

static void
test_recv_many_of_zero_items(void)
{
    static const zero_case cases[] = {
        {"cap 3, empty at index 0", 3, 0, 0, 0, 0},
        {"cap 3, empty at index 2", 3, 2, 0, 0, 0},
        {"cap 3, one value", 3, 0, 1, 0, 0},
        {"cap 3, full after a lap", 3, 1, 3, 0, 0},
        {"cap 1024, two values", 1024, 0, 2, 0, 0},
        {"cap 7, closed and drained at index 4", 7, 4, 0, 1, 0},
        {"cap 7, closed with a value", 7, 0, 1, 1, 0},
        {"cap 0, nobody waiting", 0, 0, 0, 0, 0},
        {"cap 0, a sender waiting", 0, 0, 0, 0, 1},
        {"cap 0, closed", 0, 0, 0, 1, 0},
    };
    enum { NZ = sizeof cases / sizeof cases[0] };
    gc_chan *ch[NZ];
    gc_test_op op[NZ];
    for (int i = 0; i < NZ; i++) {
        const zero_case *z = &cases[i];
        ch[i] = gc_chan_new(z->cap);
        if (z->cap)
            rotate(ch[i], z->rotate_by % z->cap);
        fill(ch[i], z->buffered, 0);
        if (z->sender_waiting)
            gc_test_op_start_blocked(&op[i], ch[i], GC_SEND, V(7));
        if (z->closed)
            CHECK_ST(gc_chan_close(ch[i]), GC_OK);
    }
    pid_t pid[NZ];
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < NZ; i++) {
        pid[i] = fork();
        CHECK(pid[i] >= 0);
        if (pid[i] == 0) {
            alarm(3); /* SIGALRM kills a child that hangs */
            _exit(zero_child(&cases[i], ch[i]));
        }
    }
    int hung = 0, wrong = 0;
    for (int i = 0; i < NZ; i++) {
        int status;
        CHECK_EQ(waitpid(pid[i], &status, 0), pid[i]);
        if (WIFEXITED(status) && WEXITSTATUS(status) == ZERO_OK)
            continue;
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
            printf("  %s: try_recv_many(n = 0) did not return in 3 s\n",
                   cases[i].what);
            hung++;
        }
        else {
            printf("  %s: wrong answer (child status %#x)\n", cases[i].what,
                   status);
            wrong++;
        }
    }
    /* the parent's channels: unchanged, then cleaned up */
    for (int i = 0; i < NZ; i++) {
        const zero_case *z = &cases[i];
        CHECK_EQ(gc_chan_len(ch[i]), z->buffered);
        if (z->sender_waiting) {
            void *item = UNTOUCHED;
            size_t got = SIZE_MAX;
            CHECK_ST(gc_chan_try_recv_many(ch[i], &item, 0, &got), GC_OK);
            CHECK_EQ(got, 0);
            CHECK_PTR_EQ(item, UNTOUCHED);
            CHECK_EQ(gc_test_waiting_senders(ch[i]), 1);
            CHECK_ST(gc_chan_try_recv(ch[i], &item), GC_OK);
            CHECK_PTR_EQ(item, V(7));
            CHECK_ST(gc_test_op_join(&op[i]), GC_OK);
        }
        gc_chan_free(ch[i], NULL, NULL);
    }
    if (hung || wrong) {
        fprintf(stderr,
                "%s:%d: gc_chan_try_recv_many(n = 0): %d case(s) hung, %d "
                "answered wrongly\n",
                __FILE__, __LINE__, hung, wrong);
        abort();
    }
}

/* ---- batches and waiters ---- */

/* r receivers block in turn; one try_send_many(k) then gives receiver i
 * value i for i < min(k, r), directly (the ring holds only the rest the
 * moment the call returns), and the rest go to the ring. */
static void
test_send_many_hands_first_values_to_waiting_receivers(void)
{
    enum { MAXR = 5 };
    for (size_t c = 0; c < NALLCAPS; c++) {
        size_t cap = all_caps[c];
        size_t rs[] = {1, 3, MAXR};
        for (int ri = 0; ri < 3; ri++) {
            size_t r = rs[ri];
            size_t ks[] = {r > 1 ? r - 1 : 1, r, r + 1, r + cap, r + cap + 2};
            for (int ki = 0; ki < 5; ki++) {
                size_t k = ks[ki];
                gc_chan *ch = gc_chan_new(cap);
                gc_test_parked_op pop[MAXR];
                gc_test_op *op[MAXR];
                for (size_t i = 0; i < r; i++) {
                    gc_test_parked_op_start(&pop[i], ch, GC_RECV, NULL);
                    op[i] = &pop[i].op;
                }
                CHECK_EQ(gc_test_waiting_receivers(ch), r);
                void **v = values(k, 0);
                size_t sent = SIZE_MAX;
                gc_status st = gc_chan_try_send_many(ch, v, k, &sent);
                size_t handed = min_sz(k, r);
                size_t want = min_sz(k, r + cap);
                CHECK_EQ(sent, want);
                CHECK_ST(st, k <= r + cap ? GC_OK : GC_WOULDBLOCK);
                /* at once, before any receiver could come back for more */
                CHECK_EQ(gc_chan_len(ch), want - handed);
                CHECK_EQ(gc_test_waiting_receivers(ch), r - handed);
                for (size_t i = 0; i < handed; i++) {
                    CHECK_ST(gc_test_op_join(op[i]), GC_OK);
                    CHECK_PTR_EQ(op[i]->item, V(i));
                }
                for (size_t i = handed; i < r; i++)
                    CHECK(!atomic_load(&op[i]->done));
                CHECK_EQ(gc_chan_len(ch), want - handed);
                if (handed < r) {
                    /* the ring is empty: the next batch goes to the rest */
                    void **w = values(r - handed, 100);
                    sent = SIZE_MAX;
                    CHECK_ST(gc_chan_try_send_many(ch, w, r - handed, &sent),
                             GC_OK);
                    CHECK_EQ(sent, r - handed);
                    CHECK_EQ(gc_chan_len(ch), 0);
                    for (size_t i = handed; i < r; i++) {
                        CHECK_ST(gc_test_op_join(op[i]), GC_OK);
                        CHECK_PTR_EQ(op[i]->item, V(100 + i - handed));
                    }
                    free(w);
                }
                CHECK_EQ(gc_test_waiting_receivers(ch), 0);
                drain_expect(ch, handed, want - handed);
                free(v);
                gc_chan_free(ch, NULL, NULL);
            }
        }
    }
}

/* s senders block in turn on a full ring (or an unbuffered channel); one
 * try_recv_many(m) takes min(m, cap) buffered values, moves the values of
 * the first min(got, s) senders into the freed slots in their order, and
 * completes exactly those senders; everything then comes out in order. */
static void
test_recv_many_moves_waiting_senders_values_in(void)
{
    enum { MAXS = 4 };
    for (size_t c = 0; c < NALLCAPS; c++) {
        size_t cap = all_caps[c];
        size_t ss[] = {1, 3, MAXS};
        for (int si = 0; si < 3; si++) {
            size_t s = ss[si];
            size_t ms[] = {1, 2, cap ? cap : s, cap + 3};
            for (int mi = 0; mi < 4; mi++) {
                size_t m = ms[mi];
                gc_chan *ch = gc_chan_new(cap);
                if (cap)
                    rotate(ch, cap / 2 + 1);
                fill(ch, cap, 0);
                gc_test_parked_op pop[MAXS];
                gc_test_op *op[MAXS];
                for (size_t j = 0; j < s; j++) {
                    gc_test_parked_op_start(&pop[j], ch, GC_SEND, V(cap + j));
                    op[j] = &pop[j].op;
                }
                CHECK_EQ(gc_test_waiting_senders(ch), s);
                void **out = malloc(m * sizeof *out);
                size_t got = SIZE_MAX;
                CHECK_ST(gc_chan_try_recv_many(ch, out, m, &got), GC_OK);
                /* buffered: the ring's values; unbuffered: the senders' */
                CHECK_EQ(got, min_sz(m, cap ? cap : s));
                for (size_t i = 0; i < got; i++)
                    CHECK_PTR_EQ(out[i], V(i));
                size_t moved = min_sz(got, s);
                CHECK_EQ(gc_test_waiting_senders(ch), s - moved);
                CHECK_EQ(gc_chan_len(ch), cap ? cap - got + moved : 0);
                for (size_t j = 0; j < moved; j++)
                    CHECK_ST(gc_test_op_join(op[j]), GC_OK);
                for (size_t j = moved; j < s; j++)
                    CHECK(!atomic_load(&op[j]->done));
                /* the rest, one at a time: every receive moves the next
                 * sender in; the order is the ring's then the senders' */
                size_t total = cap + s;
                for (size_t i = got; i < total; i++) {
                    void *item;
                    CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
                    CHECK_PTR_EQ(item, V(i));
                }
                for (size_t j = moved; j < s; j++)
                    CHECK_ST(gc_test_op_join(op[j]), GC_OK);
                void *item;
                CHECK_ST(gc_chan_try_recv(ch, &item), GC_WOULDBLOCK);
                CHECK_EQ(gc_test_waiting_senders(ch), 0);
                free(out);
                gc_chan_free(ch, NULL, NULL);
            }
        }
    }
}

static void
test_close_wakes_receivers_and_refuses_later_batches(void)
{
    for (size_t c = 0; c < NALLCAPS; c++) {
        gc_chan *ch = gc_chan_new(all_caps[c]);
        gc_test_op op[3];
        for (int i = 0; i < 3; i++)
            gc_test_op_start_blocked(&op[i], ch, GC_RECV, NULL);
        CHECK_ST(gc_chan_close(ch), GC_OK);
        for (int i = 0; i < 3; i++)
            CHECK_ST(gc_test_op_join(&op[i]), GC_CLOSED);
        void **v = values(4, 0);
        size_t sent = SIZE_MAX;
        CHECK_ST(gc_chan_try_send_many(ch, v, 4, &sent), GC_CLOSED);
        CHECK_EQ(sent, 0);
        size_t got = SIZE_MAX;
        CHECK_ST(gc_chan_try_recv_many(ch, v, 4, &got), GC_CLOSED);
        free(v);
        gc_chan_free(ch, NULL, NULL);
    }
}

/* ---- a close racing a batch ---- */

typedef struct race {
    gc_chan *ch;
    size_t total; /* values the sender would send */
    size_t batch;
    size_t sent;     /* values reported sent */
    int cut_short;   /* a batch ended GC_CLOSED after sending some */
    size_t received; /* values received, in order */
    atomic_int started;
} race;

static void *
race_sender(void *arg)
{
    race *r = arg;
    void **v = values(r->batch, 0);
    atomic_store(&r->started, 1);
    while (r->sent < r->total) {
        size_t n = min_sz(r->batch, r->total - r->sent);
        for (size_t i = 0; i < n; i++)
            v[i] = V(r->sent + i);
        size_t sent = SIZE_MAX;
        gc_status st = gc_chan_try_send_many(r->ch, v, n, &sent);
        CHECK(sent <= n);
        if (st == GC_OK)
            CHECK_EQ(sent, n);
        else
            CHECK(sent < n);
        r->sent += sent;
        if (st == GC_CLOSED) {
            r->cut_short = sent > 0;
            break;
        }
        if (st == GC_WOULDBLOCK) {
            st = gc_chan_send(r->ch, V(r->sent), GC_FOREVER, NULL);
            if (st == GC_CLOSED)
                break;
            CHECK_ST(st, GC_OK);
            r->sent++;
        }
    }
    free(v);
    return NULL;
}

static void *
race_receiver(void *arg)
{
    race *r = arg;
    void *out[16];
    uint64_t rng = 99;
    for (;;) {
        size_t got = 0;
        gc_status st;
        if (gc_test_rand(&rng) % 2) {
            st = gc_chan_try_recv_many(r->ch, out, 1 + gc_test_rand(&rng) % 16,
                                       &got);
            if (st == GC_WOULDBLOCK)
                continue;
        }
        else {
            st = gc_chan_recv(r->ch, &out[0], GC_FOREVER, NULL);
            got = 1;
        }
        if (st == GC_CLOSED)
            break;
        CHECK_ST(st, GC_OK);
        for (size_t i = 0; i < got; i++)
            CHECK_PTR_EQ(out[i], V(r->received++));
    }
    return NULL;
}

static void
test_close_racing_a_batch_leaves_exactly_the_reported_prefix(void)
{
    static const size_t rcaps[] = {0, 1, 3, 64};
    int trials = (int)(150 * gc_test_scale());
    uint64_t rng = 4242;
    for (size_t c = 0; c < 4; c++) {
        int cut = 0, closed_early = 0;
        for (int t = 0; t < trials; t++) {
            race r;
            memset(&r, 0, sizeof r);
            r.ch = gc_chan_new(rcaps[c]);
            r.total = 100000;
            r.batch = 1 + gc_test_rand(&rng) % 200;
            pthread_t rt = gc_test_spawn(race_receiver, &r);
            pthread_t st = gc_test_spawn(race_sender, &r);
            while (!atomic_load(&r.started))
                sched_yield();
            gc_test_sleep_ns((int64_t)(gc_test_rand(&rng) % 300000));
            CHECK_ST(gc_chan_close(r.ch), GC_OK);
            gc_test_join(st);
            gc_test_join(rt);
            CHECK_EQ(r.received, r.sent);
            cut += r.cut_short;
            closed_early += r.sent < r.total;
            gc_chan_free(r.ch, NULL, NULL);
        }
        CHECK(closed_early > 0);
        printf("  cap %-3zu: %d/%d trials closed mid-stream, %d batches "
               "cut short by the close\n",
               rcaps[c], closed_early, trials, cut);
    }
}

int
main(void)
{
    GC_RUN(test_send_many_sends_exactly_the_room_left);
    GC_RUN(test_send_many_unbuffered_without_receivers_sends_nothing);
    GC_RUN(test_send_many_on_closed_channel_sends_nothing);
    GC_RUN(test_recv_many_takes_what_is_there_and_no_more);
    GC_RUN(test_recv_many_on_empty_then_closed);
    GC_RUN(test_batches_and_single_ops_keep_fifo_over_many_laps);
    GC_RUN(test_wraparound_with_batch_sizes_not_dividing_capacity);
    GC_RUN(test_send_many_of_zero_items_moves_nothing);
    GC_RUN(test_recv_many_of_zero_items);
    GC_RUN(test_send_many_hands_first_values_to_waiting_receivers);
    GC_RUN(test_recv_many_moves_waiting_senders_values_in);
    GC_RUN(test_close_wakes_receivers_and_refuses_later_batches);
    GC_RUN(test_close_racing_a_batch_leaves_exactly_the_reported_prefix);
    return 0;
}
