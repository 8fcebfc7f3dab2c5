/* test_stress.c - many threads, every path at once, and a ledger that
 * proves nothing is lost or duplicated.
 *
 * What it proves:
 *   1. Producers x consumers in {1x1, 4x4, 8x2}, capacities {0, 1, 2,
 *      1024}, each run twice: once with a closer that closes the channel
 *      at a random moment while sends and receives are in flight, once
 *      with the close after every producer finished.  Producers mix
 *      blocking sends, sends with short deadlines (GC_TIMEOUT: the value
 *      was not sent, send it again), try_send loops and one-case selects;
 *      consumers likewise, until GC_CLOSED.  The ledger (one flag per
 *      value set by its producer: sent, or refused with GC_CLOSED; one
 *      counter per value bumped by whoever received it) must show: every
 *      sent value received exactly once, every refused or unattempted
 *      value never received, each producer's sent values a prefix of its
 *      sequence followed by at most one refusal, equal sums, and for each
 *      consumer the values of each producer in increasing order (FIFO per
 *      sender).  When producers finish before the close, everything sent.
 *   2. Multi-case waits: producers select-send over two channels (or send
 *      to one), selectors receive from both, plain receivers from one; the
 *      two channels are closed at independent random moments; cases of a
 *      closed channel are switched off (set to NULL) as Go code does.
 *      Same ledger, FIFO checked per channel.
 *   3. The same with no close until every value has been received: a
 *      lost wake-up that leaves the last values stuck in a buffer while
 *      receivers sleep is reported with the channels' state instead of
 *      hanging (one in mid-run heals at the next send, unseen).
 *   In 1 to 3 a pest thread sends SIGUSR2 to random workers; the handler
 *   sleeps a few microseconds (stretching whatever race window the thread
 *   was in) and interrupted waits return GC_INTR, which must lose nothing:
 *   every worker simply calls again.
 *   4. Go: TestMultiConsumer (src/runtime/chan_test.go): 23 workers
 *      forward values from one channel to another; count and sum match.
 *   5. Go: TestSelectStress (src/runtime/chan_test.go): four channels
 *      (capacities 0, 0, 2, 3), one plain sender and receiver each, plus a
 *      select-sender and a select-receiver over all four that switch a
 *      case off after N operations on it; everything terminates with the
 *      right counts.
 *   6. Batches: on capacities {0, 1, 2, 3, 64, 1024}, three producers
 *      that mostly call try_send_many with random batch sizes 1..300
 *      (falling back to one blocking gc_chan_send when GC_WOULDBLOCK) and
 *      two single-op producers; two consumers that mostly call
 *      try_recv_many (falling back to one blocking gc_chan_recv) and two
 *      single-op consumers; the pest as in 1 to 3.  Once with a close at a
 *      random moment, once closed only when everything was received (a
 *      lost wake-up, e.g. one that try_send_many's notify of up to k
 *      receivers missed, is reported as "stuck" instead of hanging).  The
 *      ledger of 1: every value sent (a batch's reported prefix, or a
 *      blocking send's GC_OK) is received exactly once, nothing else is,
 *      per-producer FIFO per consumer; a batch answers GC_OK with *sent ==
 *      n, else *sent < n; once GC_CLOSED, always GC_CLOSED.
 *   7. The same under a caller's lock, as the binding runs: a fake GIL (a
 *      mutex) that every worker holds while it calls try_* and close, and
 *      that gc_chan_send/recv let go of through gc_unlock with spin_ns > 0
 *      (50 us and 2 ms), capacities {0, 1, 3, 64, 1024}.  Besides the
 *      ledger: no deadlock (the watchdog), the lock's holder is the caller
 *      before every try_*, release() is called only by the holder and only
 *      once its case is registered on the channel (no claimer can run
 *      without the lock, so the entry must still be queued), acquire()
 *      finds no holder, and every blocking call returns holding the lock
 *      with releases and acquires paired.
 * GC_STRESS_SCALE (default 1) multiplies the number of values.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>

#include "gc_test.h"

/* ---- the ledger ---- */

enum { NOT_TRIED = 0, SENT = 1, REFUSED = 2 };

#define MAX_PROD 8
#define MAX_CONS 8
#define NCHAN    2

/* Payload of value `seq` of producer `pid`: never 0. */
static inline void *
encode(unsigned pid, uint32_t seq)
{
    return GC_P((((uint64_t)pid << 32) | seq) + 1);
}

static inline void
decode(void *p, unsigned *pid, uint32_t *seq)
{
    uint64_t v = (uint64_t)GC_N(p) - 1;
    *pid = (unsigned)(v >> 32);
    *seq = (uint32_t)v;
}

typedef struct ledger {
    unsigned nprod;
    uint32_t per_prod;
    _Atomic uint8_t *status; /* [nprod * per_prod]: NOT_TRIED/SENT/REFUSED */
    atomic_uint *received;   /* [nprod * per_prod]: times received */
    atomic_uint_fast64_t sum_sent, sum_received;
    atomic_uint n_received;
    atomic_uint n_timeouts; /* GC_TIMEOUT paths taken */
    atomic_uint n_intrs;    /* GC_INTR: a signal interrupted a wait */
    atomic_uint n_waits;    /* gc_wait calls made by selects */
} ledger;

static void
ledger_init(ledger *l, unsigned nprod, uint32_t per_prod)
{
    memset(l, 0, sizeof *l);
    l->nprod = nprod;
    l->per_prod = per_prod;
    size_t n = (size_t)nprod * per_prod;
    l->status = calloc(n, sizeof *l->status);
    l->received = calloc(n, sizeof *l->received);
    CHECK(l->status && l->received);
}

static void
ledger_free(ledger *l)
{
    free((void *)l->status);
    free((void *)l->received);
}

static void
ledger_sent(ledger *l, unsigned pid, uint32_t seq, gc_status st)
{
    CHECK(st == GC_OK || st == GC_CLOSED);
    void *p = encode(pid, seq);
    atomic_store(&l->status[(size_t)pid * l->per_prod + seq],
                 st == GC_OK ? SENT : REFUSED);
    if (st == GC_OK)
        atomic_fetch_add(&l->sum_sent, GC_N(p));
}

/* Record a receive; `last` is the consumer's last sequence number seen
 * per producer (on this channel), for the FIFO check. */
static void
ledger_received(ledger *l, void *p, int64_t *last)
{
    unsigned pid;
    uint32_t seq;
    decode(p, &pid, &seq);
    if (pid >= l->nprod || seq >= l->per_prod) {
        fprintf(stderr, "received a value nobody sent: %p\n", p);
        abort();
    }
    unsigned before =
        atomic_fetch_add(&l->received[(size_t)pid * l->per_prod + seq], 1);
    if (before != 0) {
        fprintf(stderr, "value %u/%u received %u times\n", pid, seq,
                before + 1);
        abort();
    }
    if ((int64_t)seq <= last[pid]) {
        fprintf(stderr,
                "FIFO broken: from producer %u, %u after %" PRId64 "\n", pid,
                seq, last[pid]);
        abort();
    }
    last[pid] = seq;
    atomic_fetch_add(&l->sum_received, GC_N(p));
    atomic_fetch_add(&l->n_received, 1);
}

/* Every value: sent and received once, or refused/unattempted and never
 * received; per producer: SENT* (REFUSED NOT_TRIED*)?.  Returns the
 * number of values sent. */
static size_t
ledger_check(ledger *l, int all_must_be_sent)
{
    size_t n_sent = 0;
    for (unsigned p = 0; p < l->nprod; p++) {
        int phase = SENT;
        for (uint32_t s = 0; s < l->per_prod; s++) {
            size_t i = (size_t)p * l->per_prod + s;
            int st = atomic_load(&l->status[i]);
            unsigned r = atomic_load(&l->received[i]);
            if (st == SENT)
                n_sent++;
            if ((st == SENT && r != 1) || (st != SENT && r != 0)) {
                fprintf(stderr, "value %u/%u: status %d, received %u times\n",
                        p, s, st, r);
                abort();
            }
            if (phase == SENT && st != SENT)
                phase = st;
            else if (phase == REFUSED)
                phase = NOT_TRIED;
            if (st != phase) {
                fprintf(stderr,
                        "producer %u: value %u has status %d after "
                        "a refusal or gap\n",
                        p, s, st);
                abort();
            }
            if (all_must_be_sent && st != SENT) {
                fprintf(stderr, "value %u/%u not sent (status %d)\n", p, s,
                        st);
                abort();
            }
        }
    }
    CHECK_EQ(atomic_load(&l->n_received), n_sent);
    CHECK(atomic_load(&l->sum_sent) == atomic_load(&l->sum_received));
    return n_sent;
}

/* ---- the pest: signals that stall threads at random instructions ----
 * A thread hit by SIGUSR2 sleeps a few microseconds inside the handler,
 * which stretches whatever race window it was in, and a wait it was in
 * returns GC_INTR (the handler is installed without SA_RESTART), which
 * every caller here treats as "call again". */

static void
stall(int sig)
{
    (void)sig;
    static atomic_uint k;
    int saved = errno;
    unsigned x =
        atomic_fetch_add_explicit(&k, 1, memory_order_relaxed) * 2654435761u;
    struct timespec ts = {0, (long)((x >> 8) % 30000)};
    nanosleep(&ts, NULL);
    errno = saved;
}

typedef struct pest {
    pthread_t *targets[2];
    size_t n[2];
    atomic_uint *done; /* workers finished so far */
    unsigned nworkers;
    uint64_t seed;
    unsigned shots;
} pest;

static void *
pest_main(void *arg)
{
    pest *p = arg;
    uint64_t rng = p->seed;
    /* until every target has finished (none is joined before that) */
    while (atomic_load(p->done) < p->nworkers) {
        uint64_t r = gc_test_rand(&rng);
        size_t g = p->n[1] && (r & 1) ? 1 : 0;
        if (p->n[g]) {
            pthread_kill(p->targets[g][(r >> 1) % p->n[g]], SIGUSR2);
            p->shots++;
        }
        gc_test_sleep_ns((int64_t)(20000 + (r >> 16) % 200000));
    }
    return NULL;
}

/* The threads of one run: consumers and producers (their arguments in cw
 * and pw, `size` bytes each), a closer given `run`, and a pest stalling
 * the workers until *done counts all of them.  Returns once every one has
 * finished, with the pest's shots. */
typedef struct crew {
    void *(*consumer)(void *);
    void *(*producer)(void *);
    void *(*closer)(void *);
    void *cw, *pw, *run;
    unsigned ncons, nprod;
    size_t size;
    atomic_uint *done;
    uint64_t seed;
} crew;

static unsigned
crew_run(const crew *c)
{
    gc_test_threads ct =
        gc_test_threads_start(c->ncons, c->consumer, c->cw, c->size);
    gc_test_threads pt =
        gc_test_threads_start(c->nprod, c->producer, c->pw, c->size);
    pthread_t closer = gc_test_spawn(c->closer, c->run);
    pest ps = {.targets = {ct.tid, pt.tid},
               .n = {c->ncons, c->nprod},
               .done = c->done,
               .nworkers = c->nprod + c->ncons,
               .seed = c->seed};
    pthread_t pt_pest = gc_test_spawn(pest_main, &ps);
    gc_test_join(pt_pest);
    gc_test_threads_join(&pt);
    gc_test_join(closer);
    gc_test_threads_join(&ct);
    return ps.shots;
}

/* ---- 1. producers x consumers on one channel ---- */

typedef struct run1 {
    gc_chan *ch;
    ledger l;
    unsigned nprod, ncons;
    atomic_uint producers_done;
    atomic_uint workers_done;
    int close_mid; /* close at a random moment, else after all */
    uint64_t seed;
} run1;

typedef struct worker {
    run1 *r;
    unsigned id;
} worker;

/* A deadline for one attempt: often shorter than a handoff takes, so
 * that the GC_TIMEOUT paths run, sometimes long enough to park. */
static int64_t
short_deadline(uint64_t *rng)
{
    uint64_t r = gc_test_rand(rng);
    return gc_deadline_after(
        (int64_t)(r % 2 ? (r >> 8) % 20000 : (r >> 8) % 500000));
}

/* Now and then a worker dawdles, so that its peers block and time out. */
static void
dawdle(uint64_t *rng)
{
    uint64_t r = gc_test_rand(rng);
    if (r % 64 == 0)
        gc_test_sleep_ns((int64_t)((r >> 8) % 100000));
}

static gc_status
block_once(gc_chan *ch, int dir, void **p, int64_t deadline)
{
    return dir == GC_SEND ? gc_chan_send(ch, *p, deadline, NULL)
                          : gc_chan_recv(ch, p, deadline, NULL);
}

static gc_status
try_once(gc_chan *ch, int dir, void **p)
{
    return dir == GC_SEND ? gc_chan_try_send(ch, *p) : gc_chan_try_recv(ch, p);
}

/* Send *p (dir GC_SEND) or receive into *p (GC_RECV) one way or another:
 * blocking, with a short deadline, polling, or by a select of one case;
 * GC_OK or GC_CLOSED. */
static gc_status
move_any_way(gc_chan *ch, int dir, void **p, uint64_t *rng, ledger *l)
{
    for (;;) {
        gc_status st;
        switch (gc_test_rand(rng) % 4) {
        case 0:
            st = block_once(ch, dir, p, GC_FOREVER);
            break;
        case 1:
            st = block_once(ch, dir, p, short_deadline(rng));
            break;
        case 2:
            for (int i = 0; i < 8; i++) {
                st = try_once(ch, dir, p);
                if (st != GC_WOULDBLOCK)
                    break;
                sched_yield();
            }
            if (st == GC_WOULDBLOCK)
                continue;
            break;
        default: {
            gc_case c;
            memset(&c, 0, sizeof c);
            c.ch = ch;
            c.dir = dir;
            c.item = dir == GC_SEND ? *p : NULL;
            size_t idx;
            atomic_fetch_add(&l->n_waits, 1);
            st = gc_test_select(&c, 1, short_deadline(rng), &idx, 0, rng);
            if (st == GC_OK && dir == GC_RECV)
                *p = c.item;
            break;
        }
        }
        if (st == GC_TIMEOUT) {
            atomic_fetch_add(&l->n_timeouts, 1);
            continue;
        }
        if (st == GC_INTR) {
            atomic_fetch_add(&l->n_intrs, 1);
            continue;
        }
        CHECK(st == GC_OK || st == GC_CLOSED);
        return st;
    }
}

static gc_status
send_any_way(gc_chan *ch, void *p, uint64_t *rng, ledger *l)
{
    return move_any_way(ch, GC_SEND, &p, rng, l);
}

static gc_status
recv_any_way(gc_chan *ch, void **p, uint64_t *rng, ledger *l)
{
    return move_any_way(ch, GC_RECV, p, rng, l);
}

static void *
producer1(void *arg)
{
    worker *w = arg;
    run1 *r = w->r;
    uint64_t rng = r->seed * 31 + w->id + 1;
    for (uint32_t s = 0; s < r->l.per_prod; s++) {
        dawdle(&rng);
        gc_status st = send_any_way(r->ch, encode(w->id, s), &rng, &r->l);
        ledger_sent(&r->l, w->id, s, st);
        if (st == GC_CLOSED) {
            /* once closed, always closed */
            CHECK_ST(gc_chan_try_send(r->ch, encode(w->id, s)), GC_CLOSED);
            break;
        }
    }
    atomic_fetch_add(&r->producers_done, 1);
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

static void *
consumer1(void *arg)
{
    worker *w = arg;
    run1 *r = w->r;
    uint64_t rng = r->seed * 37 + w->id + 100;
    int64_t last[MAX_PROD];
    for (int i = 0; i < MAX_PROD; i++)
        last[i] = -1;
    for (;;) {
        void *p = NULL;
        dawdle(&rng);
        gc_status st = recv_any_way(r->ch, &p, &rng, &r->l);
        if (st == GC_CLOSED)
            break;
        ledger_received(&r->l, p, last);
    }
    /* closed and drained stays so */
    void *p;
    CHECK_ST(gc_chan_try_recv(r->ch, &p), GC_CLOSED);
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

static void *
closer1(void *arg)
{
    run1 *r = arg;
    uint64_t rng = r->seed * 41 + 7;
    size_t total = (size_t)r->nprod * r->l.per_prod;
    if (r->close_mid) {
        /* close once a random share of the values has gone through (or
         * when the producers are done, for a share they never reach) */
        size_t target = (size_t)(gc_test_rand(&rng) % (total + 1));
        while (atomic_load(&r->l.n_received) < target &&
               atomic_load(&r->producers_done) < r->nprod)
            gc_test_sleep_ns((int64_t)(gc_test_rand(&rng) % 50000));
    }
    else {
        while (atomic_load(&r->producers_done) < r->nprod)
            gc_test_sleep_ns(100000);
    }
    CHECK_ST(gc_chan_close(r->ch), GC_OK);
    CHECK_ST(gc_chan_close(r->ch), GC_CLOSED);
    return NULL;
}

static void
run_producers_consumers(unsigned nprod, unsigned ncons, size_t cap,
                        int close_mid, uint32_t per_prod, uint64_t seed)
{
    run1 r;
    memset(&r, 0, sizeof r);
    r.ch = gc_chan_new(cap);
    CHECK(r.ch != NULL);
    ledger_init(&r.l, nprod, per_prod);
    r.nprod = nprod;
    r.ncons = ncons;
    r.close_mid = close_mid;
    r.seed = seed;
    worker pw[MAX_PROD], cw[MAX_CONS];
    for (unsigned i = 0; i < nprod; i++)
        pw[i] = (worker){&r, i};
    for (unsigned i = 0; i < ncons; i++)
        cw[i] = (worker){&r, i};
    unsigned shots = crew_run(&(crew){.consumer = consumer1,
                                      .producer = producer1,
                                      .closer = closer1,
                                      .cw = cw,
                                      .pw = pw,
                                      .run = &r,
                                      .ncons = ncons,
                                      .nprod = nprod,
                                      .size = sizeof cw[0],
                                      .done = &r.workers_done,
                                      .seed = seed * 59 + 3});

    size_t sent = ledger_check(&r.l, !close_mid);
    gc_chan_stats s;
    gc_chan_stats_get(r.ch, &s);
    CHECK_EQ(s.size, 0);
    CHECK_EQ(s.waiting_senders, 0);
    CHECK_EQ(s.waiting_receivers, 0);
    CHECK_EQ(s.closed, 1);
    printf("  %ux%u cap %-4zu %s: %zu/%zu sent, %u timeouts, %u intrs "
           "(%u signals), %u selects\n",
           nprod, ncons, cap,
           close_mid ? "close mid-flight " : "close after send", sent,
           (size_t)nprod * per_prod, atomic_load(&r.l.n_timeouts),
           atomic_load(&r.l.n_intrs), shots, atomic_load(&r.l.n_waits));
    ledger_free(&r.l);
    gc_chan_free(r.ch, NULL, NULL);
}

static void
test_producers_consumers_with_close_races(void)
{
    static const unsigned shapes[][2] = {{1, 1}, {4, 4}, {8, 2}};
    static const size_t caps[] = {0, 1, 2, 1024};
    uint32_t total = (uint32_t)(12000 * gc_test_scale());
    uint64_t seed = 1;
    for (int sh = 0; sh < 3; sh++)
        for (int c = 0; c < 4; c++)
            for (int close_mid = 1; close_mid >= 0; close_mid--)
                run_producers_consumers(shapes[sh][0], shapes[sh][1], caps[c],
                                        close_mid, total / shapes[sh][0],
                                        seed++);
}

/* ---- 2 and 3. selects over two channels ---- */

typedef struct run2 {
    gc_chan *ch[NCHAN];
    ledger l;
    unsigned nprod;
    atomic_uint producers_done;
    atomic_uint workers_done;
    int close_mode; /* 0: random moments; 1: after all received */
    uint64_t seed;
} run2;

typedef struct worker2 {
    run2 *r;
    unsigned id;
    int kind; /* consumers: -1 select, else plain on ch[kind] */
} worker2;

static void *
producer2(void *arg)
{
    worker2 *w = arg;
    run2 *r = w->r;
    uint64_t rng = r->seed * 43 + w->id + 1;
    gc_chan *live[NCHAN] = {r->ch[0], r->ch[1]};
    for (uint32_t s = 0; s < r->l.per_prod; s++) {
        void *p = encode(w->id, s);
        gc_status st;
        dawdle(&rng);
        for (;;) {
            gc_case c[NCHAN];
            memset(c, 0, sizeof c);
            unsigned only = (unsigned)(gc_test_rand(&rng) % 4);
            for (int i = 0; i < NCHAN; i++) {
                /* a quarter of sends go to one channel only */
                c[i].ch = only < NCHAN && (unsigned)i != only ? NULL : live[i];
                c[i].dir = GC_SEND;
                c[i].item = p;
            }
            if (!c[0].ch && !c[1].ch) {
                if (!live[0] && !live[1]) {
                    st = GC_CLOSED;
                    break;
                }
                continue;
            }
            size_t idx = 0;
            int64_t deadline =
                gc_test_rand(&rng) % 3 ? GC_FOREVER : short_deadline(&rng);
            atomic_fetch_add(&r->l.n_waits, 1);
            st = gc_test_select(c, NCHAN, deadline, &idx,
                                (int)(gc_test_rand(&rng) % 2), &rng);
            if (st == GC_TIMEOUT) {
                atomic_fetch_add(&r->l.n_timeouts, 1);
                continue;
            }
            if (st == GC_INTR) {
                atomic_fetch_add(&r->l.n_intrs, 1);
                continue;
            }
            if (st == GC_CLOSED) {
                live[idx] = NULL; /* Go: switch the case off */
                if (!live[0] && !live[1])
                    break;
                continue;
            }
            CHECK_ST(st, GC_OK);
            break;
        }
        ledger_sent(&r->l, w->id, s, st);
        if (st == GC_CLOSED)
            break;
    }
    atomic_fetch_add(&r->producers_done, 1);
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

static void *
consumer2(void *arg)
{
    worker2 *w = arg;
    run2 *r = w->r;
    uint64_t rng = r->seed * 47 + w->id + 100;
    int64_t last[NCHAN][MAX_PROD];
    for (int c = 0; c < NCHAN; c++)
        for (int i = 0; i < MAX_PROD; i++)
            last[c][i] = -1;
    if (w->kind >= 0) {
        gc_chan *ch = r->ch[w->kind];
        for (;;) {
            void *p = NULL;
            dawdle(&rng);
            gc_status st = recv_any_way(ch, &p, &rng, &r->l);
            if (st == GC_CLOSED)
                break;
            ledger_received(&r->l, p, last[w->kind]);
        }
        atomic_fetch_add(&r->workers_done, 1);
        return NULL;
    }
    gc_chan *live[NCHAN] = {r->ch[0], r->ch[1]};
    while (live[0] || live[1]) {
        dawdle(&rng);
        gc_case c[NCHAN];
        memset(c, 0, sizeof c);
        for (int i = 0; i < NCHAN; i++) {
            c[i].ch = live[i];
            c[i].dir = GC_RECV;
        }
        size_t idx = 0;
        int64_t deadline =
            gc_test_rand(&rng) % 3 ? GC_FOREVER : short_deadline(&rng);
        atomic_fetch_add(&r->l.n_waits, 1);
        gc_status st = gc_test_select(c, NCHAN, deadline, &idx,
                                      (int)(gc_test_rand(&rng) % 2), &rng);
        if (st == GC_TIMEOUT) {
            atomic_fetch_add(&r->l.n_timeouts, 1);
            continue;
        }
        if (st == GC_INTR) {
            atomic_fetch_add(&r->l.n_intrs, 1);
            continue;
        }
        if (st == GC_CLOSED) {
            live[idx] = NULL;
            continue;
        }
        CHECK_ST(st, GC_OK);
        ledger_received(&r->l, c[idx].item, last[idx]);
    }
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

static void
describe(const char *what, gc_chan *ch)
{
    gc_chan_stats s;
    gc_chan_stats_get(ch, &s);
    fprintf(stderr,
            "  %s: cap %zu len %zu waiting senders %zu receivers %zu "
            "closed %d\n",
            what, s.capacity, s.size, s.waiting_senders, s.waiting_receivers,
            s.closed);
}

static void *
closer2(void *arg)
{
    run2 *r = arg;
    uint64_t rng = r->seed * 53 + 9;
    size_t total = (size_t)r->nprod * r->l.per_prod;
    if (r->close_mode == 0) {
        size_t target[NCHAN];
        for (int i = 0; i < NCHAN; i++)
            target[i] = (size_t)(gc_test_rand(&rng) % (total + 1));
        int closed[NCHAN] = {0, 0};
        while (!closed[0] || !closed[1]) {
            for (int i = 0; i < NCHAN; i++) {
                if (!closed[i] &&
                    (atomic_load(&r->l.n_received) >= target[i] ||
                     atomic_load(&r->producers_done) == r->nprod)) {
                    CHECK_ST(gc_chan_close(r->ch[i]), GC_OK);
                    closed[i] = 1;
                }
            }
            gc_test_sleep_ns((int64_t)(gc_test_rand(&rng) % 50000));
        }
        return NULL;
    }
    /* Close only when every value has been received: if a wake-up is lost,
     * values sit in a buffer while every receiver sleeps. */
    int64_t limit = gc_now_ns() + (int64_t)(20000 * gc_test_scale()) * GC_MS;
    while (atomic_load(&r->l.n_received) < total) {
        if (gc_now_ns() > limit) {
            fprintf(stderr,
                    "stuck: %u of %zu values received after 20 s "
                    "with no close (a lost wake-up?); producers done %u/%u\n",
                    atomic_load(&r->l.n_received), total,
                    atomic_load(&r->producers_done), r->nprod);
            describe("ch[0]", r->ch[0]);
            describe("ch[1]", r->ch[1]);
            abort();
        }
        gc_test_sleep_ns(200000);
    }
    for (int i = 0; i < NCHAN; i++)
        CHECK_ST(gc_chan_close(r->ch[i]), GC_OK);
    return NULL;
}

static void
run_selects(size_t cap0, size_t cap1, int close_mode, unsigned nprod,
            unsigned nsel, uint32_t per_prod, uint64_t seed)
{
    run2 r;
    memset(&r, 0, sizeof r);
    r.ch[0] = gc_chan_new(cap0);
    r.ch[1] = gc_chan_new(cap1);
    ledger_init(&r.l, nprod, per_prod);
    r.nprod = nprod;
    r.close_mode = close_mode;
    r.seed = seed;
    worker2 pw[MAX_PROD], cw[MAX_CONS];
    for (unsigned i = 0; i < nprod; i++)
        pw[i] = (worker2){&r, i, 0};
    /* nsel selectors plus one plain receiver per channel */
    unsigned ncons = nsel + NCHAN;
    for (unsigned i = 0; i < ncons; i++)
        cw[i] = (worker2){&r, i, i < nsel ? -1 : (int)(i - nsel)};
    unsigned shots = crew_run(&(crew){.consumer = consumer2,
                                      .producer = producer2,
                                      .closer = closer2,
                                      .cw = cw,
                                      .pw = pw,
                                      .run = &r,
                                      .ncons = ncons,
                                      .nprod = nprod,
                                      .size = sizeof cw[0],
                                      .done = &r.workers_done,
                                      .seed = seed * 61 + 5});
    size_t sent = ledger_check(&r.l, close_mode == 1);
    for (int i = 0; i < NCHAN; i++) {
        gc_chan_stats s;
        gc_chan_stats_get(r.ch[i], &s);
        CHECK_EQ(s.size, 0);
        CHECK_EQ(s.waiting_senders, 0);
        CHECK_EQ(s.waiting_receivers, 0);
        gc_chan_free(r.ch[i], NULL, NULL);
    }
    printf(
        "  caps %zu+%zu %ux(%u sel + 2 plain) %s: %zu/%zu sent, %u timeouts, "
        "%u intrs (%u signals), %u selects\n",
        cap0, cap1, nprod, nsel,
        close_mode ? "close when drained" : "close at random", sent,
        (size_t)nprod * per_prod, atomic_load(&r.l.n_timeouts),
        atomic_load(&r.l.n_intrs), shots, atomic_load(&r.l.n_waits));
    ledger_free(&r.l);
}

static void
test_selects_over_two_channels_with_close_races(void)
{
    static const size_t caps[][2] = {{0, 0}, {1, 0}, {4, 1}, {64, 64}};
    uint32_t total = (uint32_t)(9000 * gc_test_scale());
    uint64_t seed = 100;
    for (int c = 0; c < 4; c++)
        run_selects(caps[c][0], caps[c][1], 0, 3, 2, total / 3, seed++);
}

static void
test_selects_over_two_channels_lose_no_wakeup(void)
{
    static const size_t caps[][2] = {{0, 0}, {1, 0}, {1, 1}, {4, 1}, {64, 64}};
    uint32_t total = (uint32_t)(9000 * gc_test_scale());
    uint64_t seed = 200;
    for (int c = 0; c < 5; c++)
        run_selects(caps[c][0], caps[c][1], 1, 3, 2, total / 3, seed++);
}

/* ---- 4. Go: TestMultiConsumer (src/runtime/chan_test.go) ---- */

typedef struct multi {
    gc_chan *q, *r;
} multi;

static void *
forwarder(void *arg)
{
    multi *m = arg;
    void *p;
    gc_status st;
    while ((st = gc_chan_recv(m->q, &p, GC_FOREVER, NULL)) == GC_OK)
        CHECK_ST(gc_chan_send(m->r, p, GC_FOREVER, NULL), GC_OK);
    CHECK_ST(st, GC_CLOSED);
    return NULL;
}

typedef struct tally {
    gc_chan *r;
    uint64_t n, sum;
} tally;

static void *
tallier(void *arg)
{
    tally *t = arg;
    void *p;
    while (gc_chan_recv(t->r, &p, GC_FOREVER, NULL) == GC_OK) {
        t->n++;
        t->sum += GC_N(p);
    }
    return NULL;
}

static void
test_go_TestMultiConsumer(void)
{
    enum { NWORK = 23 };
    static const uintptr_t primes[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31};
    size_t niter = (size_t)(60000 * gc_test_scale());
    multi m = {gc_chan_new(NWORK * 3), gc_chan_new(NWORK * 3)};
    /* all workers share one argument (arg_size 0) */
    gc_test_threads w = gc_test_threads_start(NWORK, forwarder, &m, 0);
    tally t = {m.r, 0, 0};
    pthread_t tt = gc_test_spawn(tallier, &t);
    uint64_t want_sum = 0;
    for (size_t i = 0; i < niter; i++) {
        uintptr_t v = primes[i % (sizeof primes / sizeof primes[0])];
        want_sum += v;
        CHECK_ST(gc_chan_send(m.q, GC_P(v), GC_FOREVER, NULL), GC_OK);
    }
    CHECK_ST(gc_chan_close(m.q), GC_OK);
    gc_test_threads_join(&w);
    CHECK_ST(gc_chan_close(m.r), GC_OK);
    gc_test_join(tt);
    CHECK_EQ(t.n, niter);
    CHECK_EQ(t.sum, want_sum);
    gc_chan_free(m.q, NULL, NULL);
    gc_chan_free(m.r, NULL, NULL);
}

/* ---- 5. Go: TestSelectStress (src/runtime/chan_test.go) ---- */

enum { SS_NCH = 4 };

typedef struct sstress {
    gc_chan *c[SS_NCH];
    int n;
    atomic_uint sent[SS_NCH], received[SS_NCH];
} sstress;

typedef struct ss_arg {
    sstress *s;
    int k;
} ss_arg;

static void *
ss_plain_sender(void *arg)
{
    ss_arg *a = arg;
    for (int i = 0; i < a->s->n; i++) {
        CHECK_ST(gc_chan_send(a->s->c[a->k], GC_P(i + 1), GC_FOREVER, NULL),
                 GC_OK);
        atomic_fetch_add(&a->s->sent[a->k], 1);
    }
    return NULL;
}

static void *
ss_plain_receiver(void *arg)
{
    ss_arg *a = arg;
    for (int i = 0; i < a->s->n; i++) {
        void *p;
        CHECK_ST(gc_chan_recv(a->s->c[a->k], &p, GC_FOREVER, NULL), GC_OK);
        atomic_fetch_add(&a->s->received[a->k], 1);
    }
    return NULL;
}

static void *
ss_select(void *arg)
{
    ss_arg *a = arg;
    sstress *s = a->s;
    int dir = a->k; /* GC_SEND or GC_RECV */
    uint64_t rng = (uint64_t)dir * 1000 + 5;
    int count[SS_NCH] = {0};
    gc_case c[SS_NCH];
    memset(c, 0, sizeof c);
    for (int i = 0; i < SS_NCH; i++) {
        c[i].ch = s->c[i];
        c[i].dir = dir;
    }
    for (int done = 0; done < SS_NCH * s->n; done++) {
        for (int i = 0; i < SS_NCH; i++)
            c[i].item = GC_P(0x1000 + i);
        size_t idx;
        CHECK_ST(gc_test_select(c, SS_NCH, GC_FOREVER, &idx, 0, &rng), GC_OK);
        if (dir == GC_SEND)
            atomic_fetch_add(&s->sent[idx], 1);
        else
            atomic_fetch_add(&s->received[idx], 1);
        if (++count[idx] == s->n)
            c[idx].ch = NULL; /* Go: a nil channel is never ready */
    }
    return NULL;
}

static void
test_go_TestSelectStress(void)
{
    sstress s;
    memset(&s, 0, sizeof s);
    static const size_t caps[SS_NCH] = {0, 0, 2, 3};
    for (int i = 0; i < SS_NCH; i++)
        s.c[i] = gc_chan_new(caps[i]);
    s.n = (int)(5000 * gc_test_scale());
    ss_arg args[2 * SS_NCH + 2];
    pthread_t t[2 * SS_NCH + 2];
    for (int i = 0; i < SS_NCH; i++) {
        args[2 * i] = (ss_arg){&s, i};
        args[2 * i + 1] = (ss_arg){&s, i};
        t[2 * i] = gc_test_spawn(ss_plain_sender, &args[2 * i]);
        t[2 * i + 1] = gc_test_spawn(ss_plain_receiver, &args[2 * i + 1]);
    }
    args[2 * SS_NCH] = (ss_arg){&s, GC_SEND};
    args[2 * SS_NCH + 1] = (ss_arg){&s, GC_RECV};
    t[2 * SS_NCH] = gc_test_spawn(ss_select, &args[2 * SS_NCH]);
    t[2 * SS_NCH + 1] = gc_test_spawn(ss_select, &args[2 * SS_NCH + 1]);
    for (int i = 0; i < 2 * SS_NCH + 2; i++)
        gc_test_join(t[i]);
    for (int i = 0; i < SS_NCH; i++) {
        CHECK_EQ(atomic_load(&s.sent[i]), 2 * s.n);
        CHECK_EQ(atomic_load(&s.received[i]), 2 * s.n);
        gc_chan_stats st;
        gc_chan_stats_get(s.c[i], &st);
        CHECK_EQ(st.size, 0);
        CHECK_EQ(st.waiting_senders, 0);
        CHECK_EQ(st.waiting_receivers, 0);
        gc_chan_free(s.c[i], NULL, NULL);
    }
}

/* ---- 6 and 7. batches, with and without a caller's lock ---- */

#define MAX_BATCH 300

/* The fake GIL of section 7: a mutex every worker holds while it calls
 * try_* (as the binding holds the GIL), let go of by gc_wait through
 * gc_unlock.  `gil_holder` names the thread holding it (0: nobody); it is
 * checked before each try_* call, by release() (which must only be called
 * by the holder, after the case was registered) and by acquire(). */
static pthread_mutex_t gil_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int gil_holder;
static atomic_int gil_next_id;
static _Thread_local int gil_self;
static _Thread_local gc_chan *gil_wait_ch; /* channel of the blocking call */
static _Thread_local int gil_wait_dir;
static _Thread_local unsigned gil_tl_releases, gil_tl_acquires;
static atomic_uint gil_releases;
static int gil_token;

static void
gil_lock(void)
{
    CHECK_EQ(pthread_mutex_lock(&gil_mu), 0);
    CHECK_EQ(atomic_load_explicit(&gil_holder, memory_order_relaxed), 0);
    atomic_store_explicit(&gil_holder, gil_self, memory_order_relaxed);
}

static void
gil_unlock_(void)
{
    CHECK_EQ(atomic_load_explicit(&gil_holder, memory_order_relaxed),
             gil_self);
    atomic_store_explicit(&gil_holder, 0, memory_order_relaxed);
    CHECK_EQ(pthread_mutex_unlock(&gil_mu), 0);
}

static void
gil_assert_held(void)
{
    CHECK_EQ(atomic_load_explicit(&gil_holder, memory_order_relaxed),
             gil_self);
}

static void *
gil_release_cb(void)
{
    /* gc_wait lets go only after registering: every claimer holds the
     * lock, so our entry is still queued now */
    gil_assert_held();
    if (gil_wait_ch) {
        gc_chan_stats s;
        gc_chan_stats_get(gil_wait_ch, &s);
        CHECK((gil_wait_dir == GC_SEND ? s.waiting_senders
                                       : s.waiting_receivers) >= 1);
    }
    gil_tl_releases++;
    atomic_fetch_add_explicit(&gil_releases, 1, memory_order_relaxed);
    gil_unlock_();
    return &gil_token;
}

static void
gil_acquire_cb(void *token)
{
    CHECK(token == &gil_token);
    gil_lock();
    gil_tl_acquires++;
}

static gc_unlock gil_unlock_spin = {gil_release_cb, gil_acquire_cb, 0};

typedef struct run3 {
    gc_chan *ch;
    ledger l;
    unsigned nprod, nbatch_prod; /* producers [0, nbatch_prod) batch */
    unsigned ncons, nbatch_cons;
    int gil; /* section 7: every try_* under gil_mu */
    atomic_uint producers_done;
    atomic_uint workers_done;
    int close_mode; /* 0: at a random moment; 1: when all received */
    uint64_t seed;
    atomic_uint n_send_batches, n_recv_batches, n_cut_short;
    atomic_uint n_fallbacks;
    atomic_uint_fast64_t n_batched_in, n_batched_out;
} run3;

typedef struct worker3 {
    run3 *r;
    unsigned id;
} worker3;

static void
w3_enter(run3 *r)
{
    if (!gil_self)
        gil_self = atomic_fetch_add(&gil_next_id, 1) + 1;
    if (r->gil)
        gil_lock();
}

static void
w3_exit(run3 *r)
{
    if (r->gil)
        gil_unlock_();
}

/* Between two operations: drop the lock now and then (Python's switch
 * interval), and dawdle without it. */
static void
w3_pause(run3 *r, uint64_t *rng)
{
    if (!r->gil) {
        dawdle(rng);
        return;
    }
    uint64_t x = gc_test_rand(rng);
    if (x % 4 == 0) {
        gil_unlock_();
        if (x % 64 == 0)
            dawdle(rng);
        else if (x % 8 == 0)
            sched_yield();
        gil_lock();
    }
}

static void
w3_try_begin(run3 *r)
{
    if (r->gil)
        gil_assert_held();
}

/* A blocking send or receive of one value: GC_OK or GC_CLOSED.  With the
 * GIL, through gc_chan_send/recv with gil_unlock_spin; it must return with
 * the lock held again, release and acquire paired. */
static gc_status
w3_blocking(run3 *r, int dir, void **p, uint64_t *rng)
{
    for (;;) {
        gc_status st;
        int64_t deadline =
            gc_test_rand(rng) % 4 ? GC_FOREVER : short_deadline(rng);
        if (r->gil) {
            gil_assert_held();
            gil_wait_ch = r->ch;
            gil_wait_dir = dir;
            st = dir == GC_SEND
                     ? gc_chan_send(r->ch, *p, deadline, &gil_unlock_spin)
                     : gc_chan_recv(r->ch, p, deadline, &gil_unlock_spin);
            gil_wait_ch = NULL;
            gil_assert_held();
            CHECK_EQ(gil_tl_releases, gil_tl_acquires);
        }
        else {
            st = dir == GC_SEND ? gc_chan_send(r->ch, *p, deadline, NULL)
                                : gc_chan_recv(r->ch, p, deadline, NULL);
        }
        if (st == GC_TIMEOUT) {
            atomic_fetch_add(&r->l.n_timeouts, 1);
            continue;
        }
        if (st == GC_INTR) {
            atomic_fetch_add(&r->l.n_intrs, 1);
            continue;
        }
        CHECK(st == GC_OK || st == GC_CLOSED);
        return st;
    }
}

static void *
producer3(void *arg)
{
    worker3 *w = arg;
    run3 *r = w->r;
    uint64_t rng = r->seed * 67 + w->id + 1;
    int batch = w->id < r->nbatch_prod;
    void *buf[MAX_BATCH];
    w3_enter(r);
    uint32_t s = 0;
    while (s < r->l.per_prod) {
        w3_pause(r, &rng);
        gc_status st;
        if (batch && gc_test_rand(&rng) % 8) {
            size_t n = 1 + (size_t)(gc_test_rand(&rng) % MAX_BATCH);
            if (n > r->l.per_prod - s)
                n = r->l.per_prod - s;
            for (size_t i = 0; i < n; i++)
                buf[i] = encode(w->id, s + (uint32_t)i);
            size_t sent = SIZE_MAX;
            w3_try_begin(r);
            st = gc_chan_try_send_many(r->ch, buf, n, &sent);
            CHECK(sent <= n);
            if (st == GC_OK)
                CHECK_EQ(sent, n);
            else
                CHECK(sent < n && (st == GC_WOULDBLOCK || st == GC_CLOSED));
            for (size_t i = 0; i < sent; i++)
                ledger_sent(&r->l, w->id, s + (uint32_t)i, GC_OK);
            atomic_fetch_add(&r->n_send_batches, 1);
            atomic_fetch_add(&r->n_batched_in, sent);
            s += (uint32_t)sent;
            if (st == GC_OK)
                continue;
            if (st == GC_CLOSED) {
                if (sent > 0)
                    atomic_fetch_add(&r->n_cut_short, 1);
                ledger_sent(&r->l, w->id, s, GC_CLOSED);
                break;
            }
            /* GC_WOULDBLOCK: one value the blocking way */
            atomic_fetch_add(&r->n_fallbacks, 1);
        }
        else if (!r->gil) {
            st = send_any_way(r->ch, encode(w->id, s), &rng, &r->l);
            ledger_sent(&r->l, w->id, s, st);
            s++;
            if (st == GC_CLOSED)
                break;
            continue;
        }
        else if (gc_test_rand(&rng) % 2) {
            w3_try_begin(r);
            st = gc_chan_try_send(r->ch, encode(w->id, s));
            if (st == GC_WOULDBLOCK)
                continue;
            ledger_sent(&r->l, w->id, s, st);
            s++;
            if (st == GC_CLOSED)
                break;
            continue;
        }
        void *p = encode(w->id, s);
        st = w3_blocking(r, GC_SEND, &p, &rng);
        ledger_sent(&r->l, w->id, s, st);
        s++;
        if (st == GC_CLOSED)
            break;
    }
    if (s < r->l.per_prod || r->close_mode == 0) {
        /* closed (or about to be): once closed, always closed */
        while (!gc_chan_closed(r->ch)) {
            w3_exit(r);
            gc_test_sleep_ns(100000);
            w3_enter(r);
        }
        size_t sent = SIZE_MAX;
        w3_try_begin(r);
        CHECK_ST(gc_chan_try_send_many(r->ch, buf, 1, &sent), GC_CLOSED);
        CHECK_EQ(sent, 0);
    }
    w3_exit(r);
    atomic_fetch_add(&r->producers_done, 1);
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

static void *
consumer3(void *arg)
{
    worker3 *w = arg;
    run3 *r = w->r;
    uint64_t rng = r->seed * 71 + w->id + 100;
    int batch = w->id < r->nbatch_cons;
    int64_t last[MAX_PROD];
    for (int i = 0; i < MAX_PROD; i++)
        last[i] = -1;
    void *buf[MAX_BATCH];
    w3_enter(r);
    for (;;) {
        w3_pause(r, &rng);
        gc_status st;
        void *p = NULL;
        if (batch && gc_test_rand(&rng) % 8) {
            size_t n = 1 + (size_t)(gc_test_rand(&rng) % MAX_BATCH);
            size_t got = SIZE_MAX;
            w3_try_begin(r);
            st = gc_chan_try_recv_many(r->ch, buf, n, &got);
            if (st == GC_OK) {
                CHECK(got >= 1 && got <= n);
                for (size_t i = 0; i < got; i++)
                    ledger_received(&r->l, buf[i], last);
                atomic_fetch_add(&r->n_recv_batches, 1);
                atomic_fetch_add(&r->n_batched_out, got);
                continue;
            }
            if (st == GC_CLOSED)
                break;
            CHECK_ST(st, GC_WOULDBLOCK);
            atomic_fetch_add(&r->n_fallbacks, 1);
        }
        else if (!r->gil) {
            st = recv_any_way(r->ch, &p, &rng, &r->l);
            if (st == GC_CLOSED)
                break;
            ledger_received(&r->l, p, last);
            continue;
        }
        else if (gc_test_rand(&rng) % 2) {
            w3_try_begin(r);
            st = gc_chan_try_recv(r->ch, &p);
            if (st == GC_WOULDBLOCK)
                continue;
            if (st == GC_CLOSED)
                break;
            CHECK_ST(st, GC_OK);
            ledger_received(&r->l, p, last);
            continue;
        }
        st = w3_blocking(r, GC_RECV, &p, &rng);
        if (st == GC_CLOSED)
            break;
        ledger_received(&r->l, p, last);
    }
    /* closed and drained stays so */
    size_t got = SIZE_MAX;
    w3_try_begin(r);
    CHECK_ST(gc_chan_try_recv_many(r->ch, buf, MAX_BATCH, &got), GC_CLOSED);
    w3_exit(r);
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

static void *
closer3(void *arg)
{
    run3 *r = arg;
    uint64_t rng = r->seed * 73 + 11;
    size_t total = (size_t)r->nprod * r->l.per_prod;
    if (!gil_self)
        gil_self = atomic_fetch_add(&gil_next_id, 1) + 1;
    if (r->close_mode == 0) {
        size_t target = (size_t)(gc_test_rand(&rng) % (total + 1));
        while (atomic_load(&r->l.n_received) < target &&
               atomic_load(&r->producers_done) < r->nprod)
            gc_test_sleep_ns((int64_t)(gc_test_rand(&rng) % 50000));
    }
    else {
        /* Close only when every value has been received: a lost wake-up
         * leaves values in the ring while every receiver sleeps. */
        int64_t limit =
            gc_now_ns() + (int64_t)(20000 * gc_test_scale()) * GC_MS;
        while (atomic_load(&r->l.n_received) < total) {
            if (gc_now_ns() > limit) {
                fprintf(stderr,
                        "stuck: %u of %zu values received after 20 s "
                        "with no close (a lost wake-up?); producers done "
                        "%u/%u\n",
                        atomic_load(&r->l.n_received), total,
                        atomic_load(&r->producers_done), r->nprod);
                describe("ch", r->ch);
                abort();
            }
            gc_test_sleep_ns(200000);
        }
    }
    if (r->gil)
        gil_lock();
    CHECK_ST(gc_chan_close(r->ch), GC_OK);
    CHECK_ST(gc_chan_close(r->ch), GC_CLOSED);
    if (r->gil)
        gil_unlock_();
    return NULL;
}

static void
run_batches(size_t cap, unsigned nbp, unsigned nsp, unsigned nbc, unsigned nsc,
            int close_mode, int gil, int64_t spin_ns, uint32_t per_prod,
            uint64_t seed)
{
    run3 r;
    memset(&r, 0, sizeof r);
    r.ch = gc_chan_new(cap);
    CHECK(r.ch != NULL);
    r.nprod = nbp + nsp;
    r.nbatch_prod = nbp;
    r.ncons = nbc + nsc;
    r.nbatch_cons = nbc;
    CHECK(r.nprod <= MAX_PROD && r.ncons <= MAX_CONS);
    r.gil = gil;
    r.close_mode = close_mode;
    r.seed = seed;
    gil_unlock_spin.spin_ns = spin_ns;
    unsigned releases0 = atomic_load(&gil_releases);
    ledger_init(&r.l, r.nprod, per_prod);
    worker3 pw[MAX_PROD], cw[MAX_CONS];
    for (unsigned i = 0; i < r.nprod; i++)
        pw[i] = (worker3){&r, i};
    for (unsigned i = 0; i < r.ncons; i++)
        cw[i] = (worker3){&r, i};
    crew_run(&(crew){.consumer = consumer3,
                     .producer = producer3,
                     .closer = closer3,
                     .cw = cw,
                     .pw = pw,
                     .run = &r,
                     .ncons = r.ncons,
                     .nprod = r.nprod,
                     .size = sizeof cw[0],
                     .done = &r.workers_done,
                     .seed = seed * 79 + 3});

    size_t sent = ledger_check(&r.l, close_mode == 1);
    gc_chan_stats s;
    gc_chan_stats_get(r.ch, &s);
    CHECK_EQ(s.size, 0);
    CHECK_EQ(s.waiting_senders, 0);
    CHECK_EQ(s.waiting_receivers, 0);
    CHECK_EQ(s.closed, 1);
    CHECK_EQ(atomic_load(&gil_holder), 0);
    printf("  %s cap %-4zu %ub+%us x %ub+%us %s: %zu/%zu sent; batches "
           "%u in (%" PRIuFAST64 " values) %u out (%" PRIuFAST64
           " values), %u cut short by close, %u fallbacks, %u timeouts, "
           "%u intrs",
           gil ? "GIL" : "   ", cap, nbp, nsp, nbc, nsc,
           close_mode ? "close when drained" : "close at random  ", sent,
           (size_t)r.nprod * per_prod, atomic_load(&r.n_send_batches),
           (uint_fast64_t)atomic_load(&r.n_batched_in),
           atomic_load(&r.n_recv_batches),
           (uint_fast64_t)atomic_load(&r.n_batched_out),
           atomic_load(&r.n_cut_short), atomic_load(&r.n_fallbacks),
           atomic_load(&r.l.n_timeouts), atomic_load(&r.l.n_intrs));
    if (gil)
        printf(", %u lock releases (spin_ns %" PRId64 ")",
               atomic_load(&gil_releases) - releases0, spin_ns);
    printf("\n");
    ledger_free(&r.l);
    gc_chan_free(r.ch, NULL, NULL);
}

static void
test_batches_among_single_ops_with_close_races(void)
{
    static const size_t caps[] = {0, 1, 2, 3, 64, 1024};
    uint32_t total = (uint32_t)(30000 * gc_test_scale());
    uint64_t seed = 300;
    for (int c = 0; c < 6; c++)
        for (int mode = 0; mode < 2; mode++)
            run_batches(caps[c], 3, 2, 2, 2, mode, 0, 0, total / 5, seed++);
}

static void
test_batches_under_a_caller_lock(void)
{
    static const size_t caps[] = {0, 1, 3, 64, 1024};
    static const int64_t spins[] = {50000, 2000000};
    uint32_t total = (uint32_t)(12000 * gc_test_scale());
    uint64_t seed = 400;
    for (int c = 0; c < 5; c++)
        for (int mode = 0; mode < 2; mode++)
            run_batches(caps[c], 2, 1, 2, 1, mode, 1, spins[(c + mode) % 2],
                        total / 3, seed++);
}

int
main(void)
{
    gc_test_catch_signal(SIGUSR2, stall);
    printf("GC_STRESS_SCALE=%g\n", gc_test_scale());
    GC_RUN(test_producers_consumers_with_close_races);
    GC_RUN(test_selects_over_two_channels_with_close_races);
    GC_RUN(test_selects_over_two_channels_lose_no_wakeup);
    GC_RUN(test_go_TestMultiConsumer);
    GC_RUN(test_go_TestSelectStress);
    GC_RUN(test_batches_among_single_ops_with_close_races);
    GC_RUN(test_batches_under_a_caller_lock);
    return 0;
}
