/* test_signals.c - the `interrupted` hook of gc_unlock (gc_chan.h): how
 * the binding handles Ctrl-C while a thread waits.
 *
 * Every thread holds a fake GIL (a mutex, as in test_stress.c section 7)
 * around try_* and blocking calls, and the blocking calls let go of it
 * through gc_unlock.  When a signal interrupts a wait (futex EINTR) or a
 * poll_ns slice ends, the waiter withdraws for a moment (its entries stay
 * queued, claimers pass them by), takes the lock back and calls the hook;
 * non-zero ends the wait with GC_INTR, zero lets it wait on in the same
 * queue places.  SIGUSR1's handler is installed without SA_RESTART.
 *
 * What it proves, on capacities 0, 1 and 3 (both directions) unless said
 * otherwise:
 *   1. A signal to a thread blocked in gc_chan_recv/gc_chan_send whose hook
 *      returns 1 ends the call with GC_INTR, the hook called once with the
 *      lock held and the entry still queued, the call returning with the
 *      lock held (releases and acquires paired) and nothing registered;
 *      nothing moved (a receive took nothing; a send left nothing: its
 *      value arrives exactly once, from the call made again), and a later
 *      call on the same thread completes normally.
 *   2. With a hook returning 0 the call keeps waiting and keeps its FIFO
 *      place: receiver A blocks first, B second; A is signalled 5 times
 *      (one hook call each, both entries counted inside the hook, A
 *      asleep again after each); then one send goes to A (not B) and a
 *      second send to B.
 *   3. poll_ns with no signal: with poll 20 ms and a 200 ms deadline the
 *      hook is called 5..15 times, the first call no earlier than 20 ms
 *      into the wait, and the call answers GC_TIMEOUT no earlier than the
 *      deadline, nothing registered; also for gc_wait with no cases; a hook
 *      that answers 1 on its 3rd call ends the wait with GC_INTR at once.
 *   4. A value sent while the waiter is withdrawn (inside the hook, which
 *      runs with the lock held) is not lost.  Buffered: the hook's try_send
 *      (receiver waiting) puts it in the ring, not into the withdrawn
 *      receiver, or the hook's try_recv (sender waiting on a full ring)
 *      frees a slot that is not given to the withdrawn sender; unbuffered:
 *      the hook's try_* finds nobody (GC_WOULDBLOCK), then lets go of the
 *      lock while a peer blocks on the channel.  In every case the
 *      waiter's re-check finds it (GC_RETRY, then try_* inside the call)
 *      and the call completes with the hook called once.  Each case once
 *      triggered by poll_ns, once by a signal.  Likewise a close made by
 *      the hook: the call answers GC_CLOSED (a sender's value stays with
 *      it, the buffered values stay receivable).
 *   5. A hook that itself blocks on another channel (a nested gc_chan_recv
 *      with the same gc_unlock, whose own poll calls the hook nested): a
 *      nested wait that times out, then one that receives from a peer;
 *      the outer entry stays queued throughout and the outer call later
 *      receives its value normally.
 *   6. The race of a claim with a signal.  First a duel, 1000 rounds per
 *      capacity: the receiver sleeps, then a sender's try_send (or a 2 ms
 *      blocking send) and a signal to the receiver are released together,
 *      each after a random delay of 0..30 us, so that claims land around
 *      the moment the futex wait returns EINTR, sometimes between a claim
 *      and its completion (the waiter's withdrawal then fails and it waits
 *      for the completion); the receiver's hook answers 1 on every 3rd
 *      call.  The receiver gets exactly the values whose send answered
 *      GC_OK, in order.  Then a free-for-all: two senders and two
 *      receivers (blocking calls with and without short deadlines, try_*
 *      loops) while a signaller hammers all four, hooks answering 1 on
 *      every 3rd call, without and with poll_ns (2 ms, spin_ns 50 us):
 *      every value sent with GC_OK is received exactly once, FIFO per
 *      sender per receiver; GC_INTR loses nothing (the value is sent
 *      again); nothing stays registered.
 * GC_STRESS_SCALE (default 1) multiplies the values of 6.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gc_test.h"

/* Payload number i of a test: never 0. */
#define V(i) GC_P((uintptr_t)(i) + 1000)

/* ---- the fake GIL ---- */

static pthread_mutex_t gil_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int gil_holder; /* gil_self of the holder, 0: nobody */
static atomic_int gil_next_id;
static _Thread_local int gil_self;
static _Thread_local unsigned tl_releases, tl_acquires;
static int gil_token;

static void
gil_lock(void)
{
    if (!gil_self)
        gil_self = atomic_fetch_add(&gil_next_id, 1) + 1;
    CHECK_EQ(pthread_mutex_lock(&gil_mu), 0);
    CHECK_EQ(atomic_load_explicit(&gil_holder, memory_order_relaxed), 0);
    atomic_store_explicit(&gil_holder, gil_self, memory_order_relaxed);
}

static void
gil_unlock(void)
{
    CHECK_EQ(atomic_load_explicit(&gil_holder, memory_order_relaxed),
             gil_self);
    atomic_store_explicit(&gil_holder, 0, memory_order_relaxed);
    CHECK_EQ(pthread_mutex_unlock(&gil_mu), 0);
}

static int
gil_held(void)
{
    return gil_self != 0 &&
           atomic_load_explicit(&gil_holder, memory_order_relaxed) == gil_self;
}

static void *
gil_release_cb(void)
{
    CHECK(gil_held());
    tl_releases++;
    gil_unlock();
    return &gil_token;
}

static void
gil_acquire_cb(void *token)
{
    CHECK_PTR_EQ(token, &gil_token);
    gil_lock();
    tl_acquires++;
}

/* ---- signals ---- */

/* ---- waiters: one blocking call on its own thread ---- */

typedef struct waiter waiter;
typedef int (*hook_fn)(waiter *w, int depth);

struct waiter {
    /* filled by the test */
    gc_chan *ch;
    int dir;
    void *item; /* send: value; receive: value received */
    int64_t deadline;
    int64_t poll_ns;
    int64_t spin_ns;
    hook_fn hook;
    int again; /* then, once go_again, call again with hook2 */
    hook_fn hook2;
    atomic_int *gate;     /* if set, start the call only once *gate != 0 */
    size_t expect_queued; /* > 0: entries the hook must see on w's queue */
    /* written by the waiter's thread */
    pthread_t t;
    atomic_int tid;
    atomic_int done, done2, go_again;
    atomic_uint hook_calls;   /* depth-1 calls */
    atomic_uint nested_calls; /* calls from a wait inside the hook */
    int64_t call_at, first_hook_at, returned_at;
    gc_status st, st2;
    void *item2;
    size_t queued_after; /* waiters counted on ch right after the call */
    int held_after, balanced;
};

static _Thread_local waiter *tl_waiter;
static _Thread_local int tl_depth;

static size_t
queued(gc_chan *ch, int dir)
{
    return dir == GC_SEND ? gc_test_waiting_senders(ch)
                          : gc_test_waiting_receivers(ch);
}

/* The hook of every gc_unlock here: checks the lock is held and counts. */
static int
hook_dispatch(void)
{
    CHECK(gil_held());
    waiter *w = tl_waiter;
    CHECK(w != NULL);
    int depth = ++tl_depth;
    if (depth == 1) {
        if (atomic_load(&w->hook_calls) == 0)
            w->first_hook_at = gc_now_ns();
        atomic_fetch_add(&w->hook_calls, 1);
        if (w->expect_queued)
            CHECK_EQ(queued(w->ch, w->dir), w->expect_queued);
    }
    else {
        atomic_fetch_add(&w->nested_calls, 1);
    }
    int r = w->hook(w, depth);
    CHECK(gil_held());
    tl_depth--;
    return r;
}

static gc_unlock
unlock_for(const waiter *w)
{
    gc_unlock u = {gil_release_cb, gil_acquire_cb, w->spin_ns, hook_dispatch,
                   w->poll_ns};
    return u;
}

static int
hook_stop(waiter *w, int depth)
{
    return 1;
}

static int
hook_go_on(waiter *w, int depth)
{
    return 0;
}

/* One blocking call on w->ch with the lock held, checked to return with
 * the lock held and releases and acquires paired. */
static gc_status
call_once(waiter *w, void **item)
{
    gc_unlock u = unlock_for(w);
    CHECK(gil_held());
    gc_status st = w->dir == GC_SEND
                       ? gc_chan_send(w->ch, *item, w->deadline, &u)
                       : gc_chan_recv(w->ch, item, w->deadline, &u);
    w->returned_at = gc_now_ns();
    w->held_after = gil_held();
    w->balanced = tl_releases == tl_acquires;
    w->queued_after = queued(w->ch, w->dir);
    return st;
}

static void *
waiter_main(void *arg)
{
    waiter *w = arg;
    tl_waiter = w;
    atomic_store(&w->tid, gc_test_gettid());
    if (w->gate)
        while (!atomic_load(w->gate))
            gc_test_sleep_ns(100000);
    gil_lock();
    w->call_at = gc_now_ns();
    w->st = call_once(w, &w->item);
    gil_unlock();
    atomic_store(&w->done, 1);
    if (w->again) {
        while (!atomic_load(&w->go_again))
            gc_test_sleep_ns(100000);
        w->hook = w->hook2;
        w->expect_queued = 0;
        gil_lock();
        w->item2 = w->dir == GC_SEND ? w->item : GC_P(3);
        w->st2 = call_once(w, &w->item2);
        gil_unlock();
        atomic_store(&w->done2, 1);
    }
    return NULL;
}

static void
waiter_init(waiter *w, gc_chan *ch, int dir, void *item, hook_fn hook)
{
    memset(w, 0, sizeof *w);
    w->ch = ch;
    w->dir = dir;
    w->item = item;
    w->deadline = GC_FOREVER;
    w->hook = hook;
    w->hook2 = hook_go_on;
    w->st = w->st2 = (gc_status)-1;
}

static void
waiter_start(waiter *w)
{
    w->t = gc_test_spawn(waiter_main, w);
    WAIT_UNTIL(atomic_load(&w->tid) != 0, 10000);
}

/* Start w and wait until it is registered (`before` + 1 on its queue) and
 * asleep in the kernel. */
static void
waiter_start_blocked(waiter *w)
{
    size_t before = queued(w->ch, w->dir);
    waiter_start(w);
    WAIT_UNTIL(queued(w->ch, w->dir) > before, 10000);
    gc_test_wait_asleep(&w->tid);
}

/* Signal w until its hook has been called once more (a signal that lands
 * while it is not asleep in the futex interrupts nothing). */
static void
signal_until_hook(waiter *w)
{
    unsigned before = atomic_load(&w->hook_calls);
    int64_t give_up = gc_now_ns() + 20000 * GC_MS;
    while (atomic_load(&w->hook_calls) == before) {
        pthread_kill(w->t, SIGUSR1);
        /* it sleeps in the futex, so one signal is enough; again only
         * after a long while (a second one could reach a later call) */
        int64_t until = gc_now_ns() + 2000 * GC_MS;
        while (atomic_load(&w->hook_calls) == before && gc_now_ns() < until)
            gc_test_sleep_ns(100000);
        CHECK(gc_now_ns() < give_up);
    }
}

/* The main thread's own blocking calls (hook answering 0, no poll). */
static waiter main_self;

static void
main_init(void)
{
    waiter_init(&main_self, NULL, GC_SEND, NULL, hook_go_on);
    tl_waiter = &main_self;
}

static gc_status
main_send(gc_chan *ch, void *item)
{
    main_self.ch = ch;
    main_self.dir = GC_SEND;
    main_self.deadline = gc_deadline_after(10000 * GC_MS);
    gil_lock();
    gc_status st = call_once(&main_self, &item);
    CHECK(main_self.held_after && main_self.balanced);
    gil_unlock();
    return st;
}

static gc_status
main_try_send(gc_chan *ch, void *item)
{
    gil_lock();
    gc_status st = gc_chan_try_send(ch, item);
    gil_unlock();
    return st;
}

static gc_status
main_try_recv(gc_chan *ch, void **item)
{
    gil_lock();
    gc_status st = gc_chan_try_recv(ch, item);
    gil_unlock();
    return st;
}

static void
check_unregistered(gc_chan *ch)
{
    CHECK_EQ(gc_test_waiting_senders(ch), 0);
    CHECK_EQ(gc_test_waiting_receivers(ch), 0);
}

static void
fill(gc_chan *ch, size_t n, size_t first)
{
    for (size_t i = 0; i < n; i++)
        CHECK_ST(main_try_send(ch, V(first + i)), GC_OK);
}

static const size_t caps[] = {0, 1, 3};
#define NCAPS (sizeof caps / sizeof caps[0])

/* ---- 1. a hook answering 1: GC_INTR, withdrawn, lock held ---- */

static void
check_stop_hook(size_t cap, int dir, int64_t deadline)
{
    gc_chan *ch = gc_chan_new(cap);
    if (dir == GC_SEND)
        fill(ch, cap, 50);
    waiter w;
    waiter_init(&w, ch, dir, dir == GC_SEND ? V(1) : GC_P(3), hook_stop);
    w.deadline = deadline;
    w.again = 1;
    w.expect_queued = 1; /* withdrawn, but still queued inside the hook */
    waiter_start_blocked(&w);
    int seen = atomic_load(gc_test_signals_caught());
    signal_until_hook(&w);
    WAIT_UNTIL(atomic_load(&w.done), 10000);
    CHECK_ST(w.st, GC_INTR);
    CHECK_EQ(atomic_load(&w.hook_calls), 1);
    CHECK(w.held_after);
    CHECK(w.balanced);
    CHECK_EQ(w.queued_after, 0);
    CHECK(atomic_load(gc_test_signals_caught()) > seen);
    if (dir == GC_RECV)
        CHECK_PTR_EQ(w.item, GC_P(3)); /* took nothing */
    check_unregistered(ch);
    CHECK_EQ(gc_chan_len(ch), dir == GC_SEND ? cap : 0);

    /* the same thread calls again (hook answering 0 now) */
    atomic_store(&w.go_again, 1);
    WAIT_UNTIL(queued(ch, dir) == 1, 10000);
    void *item = NULL;
    if (dir == GC_RECV) {
        CHECK_ST(main_send(ch, V(2)), GC_OK);
        WAIT_UNTIL(atomic_load(&w.done2), 10000);
        CHECK_ST(w.st2, GC_OK);
        CHECK_PTR_EQ(w.item2, V(2));
    }
    else {
        /* the buffered values, then the value of the second call, once:
         * the interrupted send left nothing behind */
        for (size_t i = 0; i < cap; i++) {
            CHECK_ST(main_try_recv(ch, &item), GC_OK);
            CHECK_PTR_EQ(item, V(50 + i));
        }
        /* cap 0: the counted sender is claimable; else the slot the
         * first receive freed went to it */
        WAIT_UNTIL(cap == 0 || atomic_load(&w.done2), 10000);
        CHECK_ST(main_try_recv(ch, &item), GC_OK);
        CHECK_PTR_EQ(item, V(1));
        WAIT_UNTIL(atomic_load(&w.done2), 10000);
        CHECK_ST(w.st2, GC_OK);
        CHECK_ST(main_try_recv(ch, &item), GC_WOULDBLOCK);
    }
    gc_test_join(w.t);
    CHECK(w.held_after && w.balanced);
    CHECK_EQ(atomic_load(&w.hook_calls), 1); /* none in the second call */
    CHECK_EQ(gc_chan_len(ch), 0);
    check_unregistered(ch);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_signal_with_stopping_hook_ends_call_with_intr(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        check_stop_hook(caps[k], GC_RECV, GC_FOREVER);
        check_stop_hook(caps[k], GC_SEND, GC_FOREVER);
        check_stop_hook(caps[k], GC_RECV, gc_deadline_after(60000 * GC_MS));
        check_stop_hook(caps[k], GC_SEND, gc_deadline_after(60000 * GC_MS));
    }
}

/* ---- 2. a hook answering 0: the wait goes on in the same place ---- */

static void
check_fifo_place_kept(size_t cap)
{
    enum { SIGNALS = 5 };
    gc_chan *ch = gc_chan_new(cap);
    waiter a, b;
    waiter_init(&a, ch, GC_RECV, NULL, hook_go_on);
    waiter_init(&b, ch, GC_RECV, NULL, hook_go_on);
    a.expect_queued = 2; /* inside A's hook: both entries still queued */
    waiter_start_blocked(&a);
    waiter_start_blocked(&b);
    CHECK_EQ(gc_test_waiting_receivers(ch), 2);
    for (int i = 0; i < SIGNALS; i++) {
        signal_until_hook(&a);
        /* back to sleep, claimable again */
        gc_test_wait_asleep(&a.tid);
    }
    CHECK(atomic_load(&a.hook_calls) >= SIGNALS);
    CHECK_EQ(atomic_load(&b.hook_calls), 0);
    CHECK(!atomic_load(&a.done) && !atomic_load(&b.done));
    CHECK_EQ(gc_test_waiting_receivers(ch), 2);

    CHECK_ST(main_try_send(ch, V(1)), GC_OK);
    WAIT_UNTIL(atomic_load(&a.done) || atomic_load(&b.done), 10000);
    CHECK(!atomic_load(&b.done)); /* B would mean A lost its place */
    WAIT_UNTIL(atomic_load(&a.done), 10000);
    CHECK_ST(a.st, GC_OK);
    CHECK_PTR_EQ(a.item, V(1));
    CHECK(!atomic_load(&b.done));
    CHECK_EQ(gc_chan_len(ch), 0);
    gc_test_wait_asleep(&b.tid);
    CHECK_ST(main_try_send(ch, V(2)), GC_OK);
    gc_test_join(a.t);
    gc_test_join(b.t);
    CHECK_ST(b.st, GC_OK);
    CHECK_PTR_EQ(b.item, V(2));
    CHECK(a.held_after && a.balanced && b.held_after && b.balanced);
    CHECK_EQ(gc_chan_len(ch), 0);
    check_unregistered(ch);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_signal_with_continuing_hook_keeps_fifo_place(void)
{
    for (size_t k = 0; k < NCAPS; k++)
        check_fifo_place_kept(caps[k]);
}

/* ---- 3. poll_ns without signals ---- */

static int
hook_stop_third(waiter *w, int depth)
{
    return atomic_load(&w->hook_calls) >= 3;
}

static void
test_poll_calls_hook_and_times_out_at_deadline(void)
{
    const int64_t poll = 20 * GC_MS, span = 200 * GC_MS;
    /* every capacity and direction at once, each on its own channel */
    waiter ws[NCAPS * 2];
    for (size_t k = 0; k < NCAPS; k++) {
        for (int d = 0; d < 2; d++) {
            int dir = d ? GC_RECV : GC_SEND;
            gc_chan *ch = gc_chan_new(caps[k]);
            if (dir == GC_SEND)
                fill(ch, caps[k], 50);
            waiter *w = &ws[k * 2 + d];
            waiter_init(w, ch, dir, V(1), hook_go_on);
            w->poll_ns = poll;
            w->expect_queued = 1;
            w->deadline = gc_deadline_after(span);
            waiter_start(w);
        }
    }
    for (size_t i = 0; i < NCAPS * 2; i++) {
        waiter *w = &ws[i];
        gc_chan *ch = w->ch;
        gc_test_join(w->t);
        CHECK_ST(w->st, GC_TIMEOUT);
        CHECK(w->returned_at >= w->deadline);
        CHECK(w->returned_at < w->deadline + 5000 * GC_MS);
        unsigned calls = atomic_load(&w->hook_calls);
        if (calls < 5 || calls > 15) {
            fprintf(stderr, "%s:%d: %u hook calls in 200 ms at 20 ms\n",
                    __FILE__, __LINE__, calls);
            abort();
        }
        CHECK(w->first_hook_at - w->call_at >= poll);
        CHECK(w->held_after && w->balanced);
        CHECK_EQ(w->queued_after, 0);
        check_unregistered(ch);
        CHECK_EQ(gc_chan_len(ch), w->dir == GC_SEND ? gc_chan_cap(ch) : 0);
        gc_chan_free(ch, NULL, NULL);
    }

    /* gc_wait with no cases, on the main thread */
    waiter m;
    waiter_init(&m, NULL, GC_RECV, NULL, hook_go_on);
    m.poll_ns = poll;
    tl_waiter = &m;
    gc_unlock u = unlock_for(&m);
    int64_t deadline = gc_deadline_after(span);
    gil_lock();
    m.call_at = gc_now_ns();
    CHECK_ST(gc_wait(NULL, 0, deadline, NULL, &u), GC_TIMEOUT);
    CHECK(gc_now_ns() >= deadline);
    CHECK(gil_held());
    CHECK_EQ(tl_releases, tl_acquires);
    gil_unlock();
    unsigned calls = atomic_load(&m.hook_calls);
    CHECK(calls >= 5 && calls <= 15);
    CHECK(m.first_hook_at - m.call_at >= poll);
    tl_waiter = &main_self;

    /* a hook that answers 1 on its 3rd call ends the wait there */
    gc_chan *ch = gc_chan_new(0);
    waiter w;
    waiter_init(&w, ch, GC_RECV, GC_P(3), hook_stop_third);
    w.poll_ns = poll;
    w.deadline = gc_deadline_after(60000 * GC_MS);
    waiter_start(&w);
    gc_test_join(w.t);
    CHECK_ST(w.st, GC_INTR);
    CHECK_EQ(atomic_load(&w.hook_calls), 3);
    CHECK(w.returned_at - w.call_at >= 3 * poll);
    CHECK(w.returned_at < w.deadline - 50000 * GC_MS);
    CHECK_PTR_EQ(w.item, GC_P(3));
    CHECK(w.held_after && w.balanced);
    CHECK_EQ(w.queued_after, 0);
    check_unregistered(ch);
    gc_chan_free(ch, NULL, NULL);
}

/* ---- 4. a value sent while the waiter is withdrawn ---- */

static waiter *withdrawn_peer; /* unbuffered: the peer the hook lets in */
static atomic_int peer_gate;

static int
hook_move_while_withdrawn(waiter *w, int depth)
{
    if (atomic_load(&w->hook_calls) != 1)
        return 0;
    gc_chan *ch = w->ch;
    CHECK_EQ(queued(ch, w->dir), 1); /* still queued, but passed by */
    size_t cap = gc_chan_cap(ch);
    void *item = NULL;
    if (cap > 0 && w->dir == GC_RECV) {
        /* the value goes to the ring, not into the withdrawn receiver */
        CHECK_ST(gc_chan_try_send(ch, V(7)), GC_OK);
        CHECK_EQ(gc_chan_len(ch), 1);
    }
    else if (cap > 0) {
        /* the slot freed is not given to the withdrawn sender */
        CHECK_ST(gc_chan_try_recv(ch, &item), GC_OK);
        CHECK_PTR_EQ(item, V(50));
        CHECK_EQ(gc_chan_len(ch), cap - 1);
    }
    else {
        /* nobody to hand it to: the only waiter is passed by */
        CHECK_ST(w->dir == GC_RECV ? gc_chan_try_send(ch, V(8))
                                   : gc_chan_try_recv(ch, &item),
                 GC_WOULDBLOCK);
        /* let go of the lock (as a Python handler may) while a peer
         * blocks on the channel, then take it back */
        gil_unlock();
        atomic_store(&peer_gate, 1);
        int other = w->dir == GC_RECV ? GC_SEND : GC_RECV;
        WAIT_UNTIL(queued(ch, other) == 1, 10000);
        gc_test_wait_asleep(&withdrawn_peer->tid);
        gil_lock();
    }
    CHECK_EQ(queued(ch, w->dir), 1);
    return 0;
}

static void
check_sent_while_withdrawn(size_t cap, int dir, int by_signal)
{
    gc_chan *ch = gc_chan_new(cap);
    if (dir == GC_SEND)
        fill(ch, cap, 50);
    waiter w, peer;
    waiter_init(&w, ch, dir, dir == GC_SEND ? V(9) : NULL,
                hook_move_while_withdrawn);
    if (!by_signal)
        w.poll_ns = 20 * GC_MS;
    /* a missed value shows as GC_TIMEOUT, not as a hang */
    w.deadline = gc_deadline_after(10000 * GC_MS);
    atomic_store(&peer_gate, 0);
    if (cap == 0) {
        waiter_init(&peer, ch, dir == GC_RECV ? GC_SEND : GC_RECV,
                    dir == GC_RECV ? V(7) : NULL, hook_go_on);
        peer.gate = &peer_gate;
        withdrawn_peer = &peer;
        waiter_start(&peer);
    }
    if (by_signal) {
        waiter_start_blocked(&w);
        signal_until_hook(&w);
    }
    else {
        waiter_start(&w);
    }
    gc_test_join(w.t);
    CHECK_ST(w.st, GC_OK);
    CHECK_EQ(atomic_load(&w.hook_calls), 1);
    CHECK(w.held_after && w.balanced);
    if (dir == GC_RECV)
        CHECK_PTR_EQ(w.item, V(7));
    void *item = NULL;
    if (cap == 0) {
        gc_test_join(peer.t);
        CHECK_ST(peer.st, GC_OK);
        CHECK_EQ(atomic_load(&peer.hook_calls), 0);
        if (dir == GC_SEND)
            CHECK_PTR_EQ(peer.item, V(9));
    }
    else if (dir == GC_SEND) {
        for (size_t i = 1; i < cap; i++) {
            CHECK_ST(main_try_recv(ch, &item), GC_OK);
            CHECK_PTR_EQ(item, V(50 + i));
        }
        CHECK_ST(main_try_recv(ch, &item), GC_OK);
        CHECK_PTR_EQ(item, V(9));
    }
    CHECK_ST(main_try_recv(ch, &item), GC_WOULDBLOCK);
    CHECK_EQ(gc_chan_len(ch), 0);
    check_unregistered(ch);
    gc_chan_free(ch, NULL, NULL);
}

static void
test_value_sent_while_withdrawn_is_not_lost(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        for (int by_signal = 0; by_signal < 2; by_signal++) {
            check_sent_while_withdrawn(caps[k], GC_RECV, by_signal);
            check_sent_while_withdrawn(caps[k], GC_SEND, by_signal);
        }
    }
}

/* A close while the waiter is withdrawn: close() wakes only waiters it can
 * claim, so the withdrawn one must see the close in its re-check. */
static int
hook_close(waiter *w, int depth)
{
    if (atomic_load(&w->hook_calls) == 1)
        CHECK_ST(gc_chan_close(w->ch), GC_OK);
    return 0;
}

static void
test_close_while_withdrawn_is_seen(void)
{
    for (size_t k = 0; k < NCAPS; k++) {
        for (int d = 0; d < 2; d++) {
            int dir = d ? GC_RECV : GC_SEND;
            size_t cap = caps[k];
            gc_chan *ch = gc_chan_new(cap);
            if (dir == GC_SEND)
                fill(ch, cap, 50);
            waiter w;
            waiter_init(&w, ch, dir, dir == GC_SEND ? V(9) : GC_P(3),
                        hook_close);
            w.poll_ns = 10 * GC_MS;
            waiter_start(&w);
            gc_test_join(w.t);
            CHECK_ST(w.st, GC_CLOSED);
            CHECK_EQ(atomic_load(&w.hook_calls), 1);
            CHECK(w.held_after && w.balanced);
            void *item = NULL;
            if (dir == GC_RECV)
                CHECK_PTR_EQ(w.item, GC_P(3));
            for (size_t i = 0; dir == GC_SEND && i < cap; i++) {
                CHECK_ST(main_try_recv(ch, &item), GC_OK);
                CHECK_PTR_EQ(item, V(50 + i));
            }
            CHECK_ST(main_try_recv(ch, &item), GC_CLOSED);
            check_unregistered(ch);
            gc_chan_free(ch, NULL, NULL);
        }
    }
}

/* ---- 5. a hook that waits on another channel ---- */

static gc_chan *nested_ch;
static atomic_int nested_done;

static int
hook_nested_wait(waiter *w, int depth)
{
    if (depth > 1)
        return 0; /* the nested wait's own poll */
    unsigned n = atomic_load(&w->hook_calls);
    if (n > 2)
        return 0;
    gc_unlock u = unlock_for(w);
    void *item = GC_P(3);
    CHECK_EQ(gc_test_waiting_receivers(w->ch), 1);
    if (n == 1) {
        /* nobody sends: the nested wait times out */
        int64_t t0 = gc_now_ns();
        int64_t deadline = t0 + 70 * GC_MS;
        CHECK_ST(gc_chan_recv(nested_ch, &item, deadline, &u), GC_TIMEOUT);
        CHECK(gc_now_ns() >= deadline);
        CHECK_PTR_EQ(item, GC_P(3));
    }
    else {
        atomic_store(&peer_gate, 1);
        CHECK_ST(gc_chan_recv(nested_ch, &item,
                              gc_deadline_after(10000 * GC_MS), &u),
                 GC_OK);
        CHECK_PTR_EQ(item, V(20));
        atomic_store(&nested_done, 1);
    }
    CHECK(gil_held());
    CHECK_EQ(gc_test_waiting_receivers(nested_ch), 0);
    CHECK_EQ(gc_test_waiting_receivers(w->ch), 1); /* the outer entry */
    return 0;
}

static void
test_hook_may_wait_on_another_channel(void)
{
    size_t outer_caps[] = {0, 2};
    for (int k = 0; k < 2; k++) {
        gc_chan *ch = gc_chan_new(outer_caps[k]);
        nested_ch = gc_chan_new(0);
        atomic_store(&nested_done, 0);
        atomic_store(&peer_gate, 0);
        waiter w, peer;
        waiter_init(&w, ch, GC_RECV, NULL, hook_nested_wait);
        w.poll_ns = 20 * GC_MS;
        waiter_init(&peer, nested_ch, GC_SEND, V(20), hook_go_on);
        peer.gate = &peer_gate;
        waiter_start(&peer);
        waiter_start(&w);
        WAIT_UNTIL(atomic_load(&nested_done), 10000);
        gc_test_join(peer.t);
        CHECK_ST(peer.st, GC_OK);
        CHECK(!atomic_load(&w.done));
        /* the outer wait receives its value normally */
        CHECK_ST(main_send(ch, V(10)), GC_OK);
        gc_test_join(w.t);
        CHECK_ST(w.st, GC_OK);
        CHECK_PTR_EQ(w.item, V(10));
        CHECK(atomic_load(&w.hook_calls) >= 2);
        CHECK(atomic_load(&w.nested_calls) >= 1); /* hooks of nested waits */
        CHECK(w.held_after && w.balanced);
        CHECK_EQ(gc_chan_len(ch), 0);
        check_unregistered(ch);
        check_unregistered(nested_ch);
        gc_chan_free(ch, NULL, NULL);
        gc_chan_free(nested_ch, NULL, NULL);
    }
}

/* ---- 6. the race: claims landing as signals arrive ---- */

enum { RACE_SENDERS = 2, RACE_RECEIVERS = 2 };
#define RACE_SEQ_BITS 24

typedef struct race {
    gc_chan *ch;
    unsigned n; /* values per sender */
    int64_t poll_ns, spin_ns;
    atomic_uchar *got[RACE_SENDERS]; /* times value i was received */
    atomic_uint workers_done;
    atomic_uint n_intr, n_timeout, n_wouldblock, n_hook, n_stop;
} race;

typedef struct race_worker {
    race *r;
    unsigned id;
    waiter w; /* hook bookkeeping */
    unsigned last_seq[RACE_SENDERS];
} race_worker;

static int
hook_every_third(waiter *w, int depth)
{
    return atomic_load(&w->hook_calls) % 3 == 0;
}

static int64_t
race_deadline(uint64_t *rng)
{
    uint64_t x = gc_test_rand(rng);
    if (x % 4)
        return GC_FOREVER;
    return gc_deadline_after((int64_t)(x >> 8) % (300 * 1000));
}

/* Between operations, let go of the lock now and then. */
static void
race_pause(uint64_t *rng)
{
    uint64_t x = gc_test_rand(rng);
    if (x % 4 == 0) {
        gil_unlock();
        if (x % 8 == 0)
            gc_test_sleep_ns((int64_t)(x >> 40) % 60000); /* peers park */
        else if (x % 16 == 4)
            sched_yield();
        gil_lock();
    }
}

static void
race_count(race *r, gc_status st)
{
    switch (st) {
    case GC_INTR:
        atomic_fetch_add_explicit(&r->n_intr, 1, memory_order_relaxed);
        break;
    case GC_TIMEOUT:
        atomic_fetch_add_explicit(&r->n_timeout, 1, memory_order_relaxed);
        break;
    case GC_WOULDBLOCK:
        atomic_fetch_add_explicit(&r->n_wouldblock, 1, memory_order_relaxed);
        break;
    default:
        break;
    }
}

static void *
race_sender(void *arg)
{
    race_worker *rw = arg;
    race *r = rw->r;
    waiter *w = &rw->w;
    tl_waiter = w;
    uint64_t rng = 0x51 + rw->id * 977;
    gil_lock();
    for (unsigned seq = 0; seq < r->n; seq++) {
        void *v = GC_P(((uintptr_t)rw->id << RACE_SEQ_BITS) | (seq + 1));
        for (;;) {
            gc_status st;
            if (gc_test_rand(&rng) % 5 == 0) {
                st = gc_chan_try_send(r->ch, v);
                if (st == GC_WOULDBLOCK) {
                    gil_unlock();
                    sched_yield();
                    gil_lock();
                }
            }
            else {
                w->deadline = race_deadline(&rng);
                st = call_once(w, &v);
                CHECK(w->held_after && w->balanced);
            }
            if (st == GC_OK)
                break;
            CHECK(st == GC_INTR || st == GC_TIMEOUT || st == GC_WOULDBLOCK);
            race_count(r, st);
        }
        race_pause(&rng);
    }
    gil_unlock();
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

static void
race_received(race_worker *rw, void *v)
{
    race *r = rw->r;
    uintptr_t x = GC_N(v);
    unsigned s = (unsigned)(x >> RACE_SEQ_BITS);
    unsigned seq = (unsigned)(x & ((1u << RACE_SEQ_BITS) - 1));
    CHECK(s < RACE_SENDERS);
    CHECK(seq >= 1 && seq <= r->n);
    CHECK(seq > rw->last_seq[s]); /* FIFO per sender */
    rw->last_seq[s] = seq;
    CHECK_EQ(atomic_fetch_add(&r->got[s][seq - 1], 1), 0);
}

static void *
race_receiver(void *arg)
{
    race_worker *rw = arg;
    race *r = rw->r;
    waiter *w = &rw->w;
    tl_waiter = w;
    uint64_t rng = 0x77 + rw->id * 131;
    gil_lock();
    for (;;) {
        gc_status st;
        void *v = NULL;
        if (gc_test_rand(&rng) % 5 == 0) {
            st = gc_chan_try_recv(r->ch, &v);
            if (st == GC_WOULDBLOCK) {
                gil_unlock();
                sched_yield();
                gil_lock();
            }
        }
        else {
            w->deadline = race_deadline(&rng);
            st = call_once(w, &v);
            CHECK(w->held_after && w->balanced);
        }
        if (st == GC_CLOSED)
            break;
        if (st == GC_OK) {
            race_received(rw, v);
            race_pause(&rng);
            continue;
        }
        CHECK(st == GC_INTR || st == GC_TIMEOUT || st == GC_WOULDBLOCK);
        race_count(r, st);
    }
    gil_unlock();
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

typedef struct signaller {
    pthread_t *targets;
    size_t n;
    atomic_uint *done;
    unsigned until;
    unsigned shots;
} signaller;

static void *
signaller_main(void *arg)
{
    signaller *s = arg;
    uint64_t rng = 0x1234;
    while (atomic_load(s->done) < s->until) {
        uint64_t x = gc_test_rand(&rng);
        pthread_kill(s->targets[x % s->n], SIGUSR1);
        s->shots++;
        gc_test_sleep_ns((int64_t)(5000 + (x >> 20) % 50000));
    }
    return NULL;
}

static void
race_once(size_t cap, int64_t poll_ns, int64_t spin_ns, unsigned n)
{
    race r;
    memset(&r, 0, sizeof r);
    r.ch = gc_chan_new(cap);
    r.n = n;
    for (int s = 0; s < RACE_SENDERS; s++) {
        r.got[s] = calloc(n, sizeof(atomic_uchar));
        CHECK(r.got[s] != NULL);
    }
    race_worker ws[RACE_SENDERS + RACE_RECEIVERS];
    memset(ws, 0, sizeof ws);
    pthread_t tids[RACE_SENDERS + RACE_RECEIVERS];
    for (unsigned i = 0; i < RACE_SENDERS + RACE_RECEIVERS; i++) {
        race_worker *rw = &ws[i];
        rw->r = &r;
        int send = i < RACE_SENDERS;
        rw->id = send ? i : i - RACE_SENDERS;
        waiter_init(&rw->w, r.ch, send ? GC_SEND : GC_RECV, NULL,
                    hook_every_third);
        rw->w.poll_ns = poll_ns;
        rw->w.spin_ns = spin_ns;
        tids[i] = gc_test_spawn(send ? race_sender : race_receiver, rw);
    }
    signaller sg = {tids, RACE_SENDERS + RACE_RECEIVERS, &r.workers_done,
                    RACE_SENDERS + RACE_RECEIVERS, 0};
    pthread_t st = gc_test_spawn(signaller_main, &sg);
    WAIT_UNTIL(atomic_load(&r.workers_done) >= RACE_SENDERS, 50000);
    gil_lock();
    CHECK_ST(gc_chan_close(r.ch), GC_OK);
    gil_unlock();
    WAIT_UNTIL(atomic_load(&r.workers_done) >= RACE_SENDERS + RACE_RECEIVERS,
               50000);
    gc_test_join(st); /* stops once every worker is done */
    for (unsigned i = 0; i < RACE_SENDERS + RACE_RECEIVERS; i++)
        gc_test_join(tids[i]);
    unsigned hooks = 0;
    for (unsigned i = 0; i < RACE_SENDERS + RACE_RECEIVERS; i++)
        hooks += atomic_load(&ws[i].w.hook_calls);
    for (int s = 0; s < RACE_SENDERS; s++) {
        for (unsigned i = 0; i < n; i++) {
            if (atomic_load(&r.got[s][i]) != 1) {
                fprintf(stderr,
                        "%s:%d: cap %zu poll %" PRId64 ": sender %d value %u "
                        "received %d times\n",
                        __FILE__, __LINE__, cap, poll_ns, s, i + 1,
                        (int)atomic_load(&r.got[s][i]));
                abort();
            }
        }
        free(r.got[s]);
    }
    check_unregistered(r.ch);
    CHECK_EQ(gc_chan_len(r.ch), 0);
    printf("    cap %zu poll %2" PRId64 " ms spin %2" PRId64
           " us: %u signals, %u hook calls, %u GC_INTR, %u GC_TIMEOUT\n",
           cap, poll_ns / GC_MS, spin_ns / 1000, sg.shots, hooks,
           atomic_load(&r.n_intr), atomic_load(&r.n_timeout));
    gc_chan_free(r.ch, NULL, NULL);
}

/* The targeted form: the receiver sleeps; then a sender's try_send (or a
 * short blocking send) and a signal to the receiver are released together,
 * each after a random delay of a few microseconds, so that claims land
 * around the moment the futex wait returns EINTR (including the window
 * where the claim is made but not yet completed, in which the waiter's
 * withdrawal fails and it must wait for the completion). */
typedef struct duel {
    gc_chan *ch;
    unsigned n;
    waiter rw, sw; /* hook bookkeeping of receiver and sender */
    pthread_t recv_t;
    atomic_int recv_tid;
    atomic_uint go, sender_gen, killer_gen;
    void **got; /* the receiver's values, in order */
    size_t ngot;
    unsigned char *sent; /* sent[i]: value i + 1 sent with GC_OK */
    unsigned intr;
    int64_t max_delay_ns;
} duel;

static void
spin_for(int64_t ns)
{
    int64_t until = gc_now_ns() + ns;
    while (gc_now_ns() < until)
        gc_cpu_relax();
}

static void *
duel_receiver(void *arg)
{
    duel *d = arg;
    tl_waiter = &d->rw;
    atomic_store(&d->recv_tid, gc_test_gettid());
    gil_lock();
    for (;;) {
        void *v = NULL;
        gc_status st = call_once(&d->rw, &v);
        CHECK(d->rw.held_after && d->rw.balanced);
        if (st == GC_CLOSED)
            break;
        if (st == GC_INTR) {
            d->intr++;
            continue;
        }
        CHECK_ST(st, GC_OK);
        CHECK(d->ngot < d->n);
        d->got[d->ngot++] = v;
    }
    gil_unlock();
    return NULL;
}

/* Wait for round `gen` (0: stop), then a random delay. */
static unsigned
duel_wait_round(duel *d, unsigned gen, uint64_t *rng)
{
    unsigned g;
    while ((g = atomic_load(&d->go)) < gen)
        sched_yield();
    if (g == UINT32_MAX)
        return 0;
    spin_for((int64_t)(gc_test_rand(rng) % (uint64_t)d->max_delay_ns));
    return g;
}

static void *
duel_sender(void *arg)
{
    duel *d = arg;
    tl_waiter = &d->sw;
    uint64_t rng = 99;
    for (unsigned gen = 1; duel_wait_round(d, gen, &rng); gen++) {
        void *v = V(gen);
        gil_lock();
        gc_status st;
        if (gen % 2) {
            st = gc_chan_try_send(d->ch, v);
        }
        else {
            d->sw.deadline = gc_deadline_after(2 * GC_MS);
            st = call_once(&d->sw, &v);
            CHECK(d->sw.held_after && d->sw.balanced);
        }
        CHECK(st == GC_OK || st == GC_WOULDBLOCK || st == GC_TIMEOUT);
        d->sent[gen - 1] = st == GC_OK;
        gil_unlock();
        atomic_store(&d->sender_gen, gen);
    }
    return NULL;
}

static void *
duel_killer(void *arg)
{
    duel *d = arg;
    uint64_t rng = 7;
    for (unsigned gen = 1; duel_wait_round(d, gen, &rng); gen++) {
        pthread_kill(d->recv_t, SIGUSR1);
        atomic_store(&d->killer_gen, gen);
    }
    return NULL;
}

static void
duel_once(size_t cap, unsigned n)
{
    duel d;
    memset(&d, 0, sizeof d);
    d.ch = gc_chan_new(cap);
    d.n = n;
    d.max_delay_ns = 30000;
    d.got = calloc(n, sizeof(void *));
    d.sent = calloc(n, 1);
    CHECK(d.got && d.sent);
    waiter_init(&d.rw, d.ch, GC_RECV, NULL, hook_every_third);
    waiter_init(&d.sw, d.ch, GC_SEND, NULL, hook_go_on);
    d.recv_t = gc_test_spawn(duel_receiver, &d);
    pthread_t st = gc_test_spawn(duel_sender, &d);
    pthread_t kt = gc_test_spawn(duel_killer, &d);
    WAIT_UNTIL(atomic_load(&d.recv_tid) != 0, 10000);
    int tid = atomic_load(&d.recv_tid);
    for (unsigned gen = 1; gen <= n; gen++) {
        /* the last round is over and the receiver sleeps again */
        WAIT_UNTIL(atomic_load(&d.sender_gen) == gen - 1 &&
                       atomic_load(&d.killer_gen) == gen - 1 &&
                       gc_test_waiting_receivers(d.ch) == 1 &&
                       gc_test_thread_sleeps(tid),
                   10000);
        atomic_store(&d.go, gen);
    }
    WAIT_UNTIL(atomic_load(&d.sender_gen) == n &&
                   atomic_load(&d.killer_gen) == n,
               10000);
    atomic_store(&d.go, UINT32_MAX);
    gc_test_join(st);
    gc_test_join(kt);
    gil_lock();
    CHECK_ST(gc_chan_close(d.ch), GC_OK);
    gil_unlock();
    gc_test_join(d.recv_t);
    /* exactly the values sent, in order */
    size_t k = 0;
    unsigned nsent = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!d.sent[i])
            continue;
        nsent++;
        CHECK(k < d.ngot);
        CHECK_PTR_EQ(d.got[k], V(i + 1));
        k++;
    }
    CHECK_EQ(k, d.ngot);
    check_unregistered(d.ch);
    CHECK_EQ(gc_chan_len(d.ch), 0);
    printf("    duel cap %zu: %u rounds, %u sent, %u hook calls, %u GC_INTR\n",
           cap, n, nsent, atomic_load(&d.rw.hook_calls), d.intr);
    free(d.got);
    free(d.sent);
    gc_chan_free(d.ch, NULL, NULL);
}

static void
test_claim_racing_signal_loses_nothing(void)
{
    unsigned rounds = (unsigned)(1000 * gc_test_scale());
    for (size_t k = 0; k < NCAPS; k++)
        duel_once(caps[k], rounds);
    unsigned n = (unsigned)(1500 * gc_test_scale());
    for (size_t k = 0; k < NCAPS; k++) {
        race_once(caps[k], 0, 0, n);
        race_once(caps[k], 2 * GC_MS, 50000, n);
    }
}

int
main(void)
{
    gc_test_catch_signal(SIGUSR1, gc_test_count_signal);
    main_init();
    GC_RUN(test_signal_with_stopping_hook_ends_call_with_intr);
    GC_RUN(test_signal_with_continuing_hook_keeps_fifo_place);
    GC_RUN(test_poll_calls_hook_and_times_out_at_deadline);
    GC_RUN(test_value_sent_while_withdrawn_is_not_lost);
    GC_RUN(test_close_while_withdrawn_is_seen);
    GC_RUN(test_hook_may_wait_on_another_channel);
    GC_RUN(test_claim_racing_signal_loses_nothing);
    return 0;
}
