/* test_sync.c - Mutex, RWMutex, weighted Semaphore and WaitGroup of the
 * core (gc_sync.h).
 *
 * What it proves:
 *   - the fast paths: try_lock/unlock, try_rlock/runlock, try_acquire/
 *     release and add answer at once and report misuse (unlock of an
 *     unlocked mutex, runlock of a write lock, unlock of a read lock,
 *     release of more than is held, a negative counter) without changing
 *     anything;
 *   - every blocking call honours its deadline (never returns early; a
 *     past deadline means "try once"), a cancellation channel closed before
 *     the call (nothing happens) or while it waits (it wakes at once), and
 *     signals (GC_INTR with nothing acquired; calling again goes on
 *     waiting); whatever it returns, it is no longer queued;
 *   - Mutex: unlock wakes a waiter; in starvation mode unlock hands the
 *     mutex to the oldest waiter (a newcomer cannot take it) and waiters
 *     are served in FIFO order; a waiter starved by a busy holder gets the
 *     mutex; mutual exclusion under stress (a plain counter, checked by
 *     ThreadSanitizer too);
 *   - RWMutex: readers share, writers exclude; a waiting writer blocks new
 *     readers; a writer's unlock admits the readers queued then, before
 *     the next writer; a writer that gives up lets the readers it held
 *     back in; after fork(), writers that waited in the parent do not
 *     keep the child's readers out, and a writer that forked from a
 *     signal handler inside its own wait is counted once in the child;
 *   - Semaphore: FIFO service even when a later request would fit;
 *     try_acquire fails while anyone is queued; a waiter leaving the head
 *     of the queue lets the next ones in;
 *   - WaitGroup: wait returns once the counter is zero, for every waiter;
 *   - idle workers (gc_idle): an item goes to the worker that went idle
 *     last, exactly once; with nobody waiting the hand-off fails; a wait
 *     ends at its deadline with nothing handed;
 *   - no lost wake-ups: threads mixing blocking calls, short deadlines and
 *     releases all finish (the watchdog would catch a hang) and leave
 *     every primitive free with empty queues.
 * Ports of Go's tests (written anew): sync/mutex_test.go TestMutex and
 * TestMutexMisuse, sync/rwmutex_test.go TestRWMutex (HammerRWMutex with
 * its activity counter), sync/waitgroup_test.go TestWaitGroup and
 * TestWaitGroupMisuse, golang.org/x/sync/semaphore's TestWeighted,
 * TestWeightedPanic, TestWeightedTryAcquire and
 * TestLargeAcquireDoesntStarve.
 */
#include <signal.h>
#include <sys/wait.h>

#include "gc_sync.h"
#include "gc_test.h"

static size_t
queued(gc_waitq *q)
{
    return atomic_load(&q->count);
}

/* ---- one blocking call on its own thread ---- */

enum op_kind {
    OP_MU_LOCK,
    OP_RW_RLOCK,
    OP_RW_LOCK,
    OP_SEM_ACQUIRE,
    OP_WG_WAIT,
};

typedef struct op {
    enum op_kind kind;
    void *prim;
    int64_t n; /* semaphore weight */
    int64_t deadline;
    gc_chan *cancel;
    int retry_intr; /* call again after GC_INTR */
    gc_status st;
    atomic_int intrs; /* GC_INTRs seen */
    atomic_int done;
    atomic_int ktid;
    atomic_int release_now; /* set by the test: release what was taken */
    int release;            /* release it after release_now (else keep) */
    int id;
    atomic_int *order; /* shared counter: ticket of this completion */
    int ticket;
    pthread_t tid;
} op;

static gc_status
op_call(op *o)
{
    switch (o->kind) {
    case OP_MU_LOCK:
        return gc_mu_lock(o->prim, o->deadline, o->cancel, NULL);
    case OP_RW_RLOCK:
        return gc_rw_rlock(o->prim, o->deadline, o->cancel, NULL);
    case OP_RW_LOCK:
        return gc_rw_lock(o->prim, o->deadline, o->cancel, NULL);
    case OP_SEM_ACQUIRE:
        return gc_sem_acquire(o->prim, o->n, o->deadline, o->cancel, NULL);
    case OP_WG_WAIT:
        return gc_wg_wait(o->prim, o->deadline, o->cancel, NULL);
    }
    abort();
}

static void
op_release(op *o)
{
    switch (o->kind) {
    case OP_MU_LOCK:
        CHECK_EQ(gc_mu_unlock(o->prim), GC_SYNC_OK);
        break;
    case OP_RW_RLOCK:
        CHECK_EQ(gc_rw_runlock(o->prim), GC_SYNC_OK);
        break;
    case OP_RW_LOCK:
        CHECK_EQ(gc_rw_unlock(o->prim), GC_SYNC_OK);
        break;
    case OP_SEM_ACQUIRE:
        CHECK_EQ(gc_sem_release(o->prim, o->n), GC_SYNC_OK);
        break;
    case OP_WG_WAIT:
        break;
    }
}

static void *
op_main(void *arg)
{
    op *o = arg;
    atomic_store(&o->ktid, gc_test_gettid());
    do {
        o->st = op_call(o);
        if (o->st == GC_INTR)
            atomic_fetch_add(&o->intrs, 1);
    } while (o->st == GC_INTR && o->retry_intr);
    if (o->order)
        o->ticket = atomic_fetch_add(o->order, 1);
    atomic_store(&o->done, 1);
    if (o->st == GC_OK && o->release) {
        while (!atomic_load(&o->release_now))
            gc_test_sleep_ns(100000);
        op_release(o);
    }
    return NULL;
}

static void
op_start(op *o, enum op_kind kind, void *prim, int64_t n)
{
    o->kind = kind;
    o->prim = prim;
    o->n = n;
    o->st = (gc_status)-1;
    atomic_store(&o->done, 0);
    atomic_store(&o->ktid, 0);
    atomic_store(&o->release_now, 0);
    atomic_store(&o->intrs, 0);
    o->tid = gc_test_spawn(op_main, o);
}

/* Start the call and wait until it sleeps in the kernel, queued on q. */
static void
op_start_parked(op *o, enum op_kind kind, void *prim, int64_t n, gc_waitq *q)
{
    size_t before = queued(q);
    op_start(o, kind, prim, n);
    WAIT_UNTIL(queued(q) > before, 10000);
    gc_test_wait_asleep(&o->ktid);
}

static gc_status
op_join(op *o)
{
    atomic_store(&o->release_now, 1);
    gc_test_join(o->tid);
    return o->st;
}

static op *
op_new(void)
{
    op *o = calloc(1, sizeof(op));
    CHECK(o != NULL);
    o->deadline = GC_FOREVER;
    return o;
}

/* A new call started and parked on q that, once it has taken the
 * primitive, keeps it until op_join and then lets go. */
static op *
op_start_holder(enum op_kind kind, void *prim, int64_t n, gc_waitq *q)
{
    op *o = op_new();
    o->release = 1;
    op_start_parked(o, kind, prim, n, q);
    return o;
}

/* A thread that must still be blocked: not done after a pause. */
static void
check_still_blocked(op *o)
{
    gc_test_sleep_ns(20 * GC_MS);
    CHECK(!atomic_load(&o->done));
}

/* ---- Mutex ---- */

/* Port of Go's TestMutexMisuse (src/sync/mutex_test.go): unlock of an
 * unlocked mutex is an error (Go: a fatal error; here a status). */
static void
test_go_TestMutexMisuse(void)
{
    gc_mu m;
    CHECK_EQ(gc_mu_init(&m), 0);
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_NOT_HELD);
    CHECK(gc_mu_try_lock(&m));
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_NOT_HELD);
    CHECK(!gc_mu_locked(&m));
    gc_mu_destroy(&m);
}

static void
test_mutex_fast_paths(void)
{
    gc_mu m;
    CHECK_EQ(gc_mu_init(&m), 0);
    CHECK(!gc_mu_locked(&m));
    CHECK(gc_mu_try_lock(&m));
    CHECK(gc_mu_locked(&m));
    CHECK(!gc_mu_try_lock(&m));
    /* a past deadline: try once */
    CHECK_ST(gc_mu_lock(&m, 0, NULL, NULL), GC_TIMEOUT);
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
    CHECK_ST(gc_mu_lock(&m, 0, NULL, NULL), GC_OK);
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
    CHECK_EQ(queued(&m.q), 0);
    gc_mu_destroy(&m);
}

static void
test_mutex_lock_times_out_at_deadline(void)
{
    gc_mu m;
    CHECK_EQ(gc_mu_init(&m), 0);
    CHECK(gc_mu_try_lock(&m));
    int64_t t0 = gc_now_ns();
    int64_t deadline = t0 + 30 * GC_MS;
    CHECK_ST(gc_mu_lock(&m, deadline, NULL, NULL), GC_TIMEOUT);
    gc_test_check_elapsed(t0, deadline);
    CHECK_EQ(queued(&m.q), 0);
    CHECK(gc_mu_locked(&m));
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
    gc_mu_destroy(&m);
}

static void
test_mutex_cancel(void)
{
    gc_mu m;
    CHECK_EQ(gc_mu_init(&m), 0);
    gc_chan *cancel = gc_chan_new(0);
    /* closed before the call: nothing happens, even though it is free */
    gc_chan *done = gc_chan_new(0);
    CHECK_ST(gc_chan_close(done), GC_OK);
    CHECK_ST(gc_mu_lock(&m, GC_FOREVER, done, NULL), GC_CANCELLED);
    CHECK(!gc_mu_locked(&m));
    /* closed while waiting: wakes at once */
    CHECK(gc_mu_try_lock(&m));
    op *o = op_new();
    o->cancel = cancel;
    op_start_parked(o, OP_MU_LOCK, &m, 0, &m.q);
    CHECK_ST(gc_chan_close(cancel), GC_OK);
    CHECK_ST(op_join(o), GC_CANCELLED);
    CHECK_EQ(queued(&m.q), 0);
    CHECK(gc_mu_locked(&m)); /* still ours */
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
    CHECK(gc_mu_try_lock(&m));
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
    free(o);
    gc_chan_free(cancel, NULL, NULL);
    gc_chan_free(done, NULL, NULL);
    gc_mu_destroy(&m);
}

static void
test_mutex_unlock_wakes_a_waiter(void)
{
    gc_mu m;
    CHECK_EQ(gc_mu_init(&m), 0);
    CHECK(gc_mu_try_lock(&m));
    op *o = op_start_holder(OP_MU_LOCK, &m, 0, &m.q);
    check_still_blocked(o);
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
    WAIT_UNTIL(atomic_load(&o->done), 10000);
    CHECK_ST(o->st, GC_OK);
    CHECK(gc_mu_locked(&m)); /* the waiter holds it until told */
    CHECK(!gc_mu_try_lock(&m));
    CHECK_ST(op_join(o), GC_OK);
    CHECK(!gc_mu_locked(&m));
    free(o);
    gc_mu_destroy(&m);
}

/* In starvation mode unlock hands the mutex over: a newcomer cannot take
 * it, and waiters get it in the order they came. */
static void
test_mutex_starvation_mode_hands_off_in_fifo_order(void)
{
    gc_mu m;
    CHECK_EQ(gc_mu_init(&m), 0);
    CHECK(gc_mu_try_lock(&m));
    atomic_int order = 0;
    op *w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = op_new();
        w[i]->order = &order;
        w[i]->release = 1;
        op_start_parked(w[i], OP_MU_LOCK, &m, 0, &m.q);
    }
    /* As a waiter does once it has waited GC_MU_STARVE_NS. */
    atomic_fetch_or(&m.state, GC_MU_STARVING);
    CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
    CHECK(!gc_mu_try_lock(&m)); /* w[0] owns it already */
    for (int i = 0; i < 3; i++) {
        WAIT_UNTIL(atomic_load(&w[i]->done), 10000);
        CHECK_EQ(w[i]->ticket, i);
        CHECK_ST(w[i]->st, GC_OK);
        if (i + 1 < 3)
            check_still_blocked(w[i + 1]);
        CHECK_ST(op_join(w[i]), GC_OK);
        free(w[i]);
    }
    /* the last hand-off found nobody else waiting: back to normal mode */
    CHECK_EQ(atomic_load(&m.state), 0);
    CHECK_EQ(queued(&m.q), 0);
    gc_mu_destroy(&m);
}

/* A holder that relocks at once would keep a waiter out for ever in
 * normal mode; starvation mode lets the waiter in. */
typedef struct busy {
    gc_mu *m;
    atomic_int stop;
    atomic_long rounds;
} busy;

static void *
busy_main(void *arg)
{
    busy *b = arg;
    while (!atomic_load(&b->stop)) {
        CHECK_ST(gc_mu_lock(b->m, GC_FOREVER, NULL, NULL), GC_OK);
        int64_t until = gc_now_ns() + 20000;
        while (gc_now_ns() < until)
            gc_cpu_relax();
        CHECK_EQ(gc_mu_unlock(b->m), GC_SYNC_OK);
        atomic_fetch_add(&b->rounds, 1);
    }
    return NULL;
}

static void
test_mutex_waiter_is_not_starved_by_a_busy_holder(void)
{
    gc_mu m;
    CHECK_EQ(gc_mu_init(&m), 0);
    busy b = {.m = &m};
    atomic_store(&b.stop, 0);
    atomic_store(&b.rounds, 0);
    pthread_t t = gc_test_spawn(busy_main, &b);
    WAIT_UNTIL(atomic_load(&b.rounds) > 100, 10000);
    for (int i = 0; i < 20; i++) {
        int64_t t0 = gc_now_ns();
        CHECK_ST(gc_mu_lock(&m, GC_FOREVER, NULL, NULL), GC_OK);
        /* generous: starvation mode kicks in after 1 ms */
        CHECK(gc_now_ns() - t0 < 5000 * GC_MS);
        CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
    }
    atomic_store(&b.stop, 1);
    gc_test_join(t);
    CHECK(!gc_mu_locked(&m));
    gc_mu_destroy(&m);
}

/* Port of Go's TestMutex (src/sync/mutex_test.go): goroutines hammering
 * one mutex, here with a plain counter that only the holder touches
 * (ThreadSanitizer checks that accesses are ordered), and some calls
 * with try_lock or a short deadline. */
typedef struct hammer_mu {
    gc_mu *m;
    long *counter;
    int iterations;
    int id;
    long mine; /* increments made by this thread */
} hammer_mu;

static void *
hammer_mu_main(void *arg)
{
    hammer_mu *h = arg;
    uint64_t rng = 0x9e37 + (uint64_t)h->id;
    for (int i = 0; i < h->iterations; i++) {
        int got;
        switch (gc_test_rand(&rng) % 4) {
        case 0:
            got = gc_mu_try_lock(h->m);
            break;
        case 1:
            got = gc_mu_lock(h->m, gc_deadline_after(50000), NULL, NULL) ==
                  GC_OK;
            break;
        default:
            got = gc_mu_lock(h->m, GC_FOREVER, NULL, NULL) == GC_OK;
            CHECK(got);
            break;
        }
        if (!got)
            continue;
        long v = *h->counter;
        if (gc_test_rand(&rng) % 16 == 0)
            gc_cpu_relax();
        *h->counter = v + 1;
        h->mine++;
        CHECK_EQ(gc_mu_unlock(h->m), GC_SYNC_OK);
    }
    return NULL;
}

static void
test_go_TestMutex(void)
{
    gc_mu m;
    CHECK_EQ(gc_mu_init(&m), 0);
    long counter = 0;
    enum { N = 8 };
    hammer_mu h[N];
    int iterations = (int)(20000 * gc_test_scale());
    for (int i = 0; i < N; i++)
        h[i] = (hammer_mu){&m, &counter, iterations, i, 0};
    gc_test_threads t =
        gc_test_threads_start(N, hammer_mu_main, h, sizeof(hammer_mu));
    gc_test_threads_join(&t);
    long total = 0;
    for (int i = 0; i < N; i++)
        total += h[i].mine;
    CHECK_EQ(counter, total);
    CHECK(total >= (long)N * iterations / 2);
    CHECK_EQ(atomic_load(&m.state), 0);
    CHECK_EQ(queued(&m.q), 0);
    gc_mu_destroy(&m);
}

/* ---- signals ---- */

/* A signal interrupts each kind of blocked call (GC_INTR, nothing
 * acquired, not queued); calling again goes on waiting and succeeds once
 * the primitive is free. */
static void
test_signal_interrupts_blocked_calls(void)
{
    for (int kind = OP_MU_LOCK; kind <= OP_WG_WAIT; kind++) {
        gc_mu m;
        gc_rw rw;
        gc_sem s;
        gc_wg wg;
        CHECK_EQ(gc_mu_init(&m), 0);
        CHECK_EQ(gc_rw_init(&rw), 0);
        CHECK_EQ(gc_sem_init(&s, 1), 0);
        CHECK_EQ(gc_wg_init(&wg, 1), 0);
        void *prim;
        gc_waitq *q;
        switch (kind) {
        case OP_MU_LOCK:
            CHECK(gc_mu_try_lock(&m));
            prim = &m;
            q = &m.q;
            break;
        case OP_RW_RLOCK:
        case OP_RW_LOCK:
            CHECK(gc_rw_try_lock(&rw));
            prim = &rw;
            q = kind == OP_RW_LOCK ? &rw.wq : &rw.rq;
            break;
        case OP_SEM_ACQUIRE:
            CHECK(gc_sem_try_acquire(&s, 1));
            prim = &s;
            q = &s.q;
            break;
        default:
            prim = &wg;
            q = &wg.q;
            break;
        }
        op *o = op_new();
        o->retry_intr = 1;
        o->release = 1;
        op_start_parked(o, (enum op_kind)kind, prim, 1, q);
        /* A signal that lands before the thread parks interrupts nothing,
         * so keep sending until one does. */
        int64_t give_up = gc_now_ns() + 20000 * GC_MS;
        while (atomic_load(&o->intrs) == 0) {
            CHECK_EQ(pthread_kill(o->tid, SIGUSR1), 0);
            gc_test_sleep_ns(2 * GC_MS);
            CHECK(gc_now_ns() < give_up);
        }
        CHECK(atomic_load(gc_test_signals_caught()) > 0);
        /* back in the queue, asleep again */
        WAIT_UNTIL(queued(q) == 1 &&
                       gc_test_thread_sleeps(atomic_load(&o->ktid)),
                   10000);
        CHECK(!atomic_load(&o->done));
        switch (kind) {
        case OP_MU_LOCK:
            CHECK_EQ(gc_mu_unlock(&m), GC_SYNC_OK);
            break;
        case OP_RW_RLOCK:
        case OP_RW_LOCK:
            CHECK_EQ(gc_rw_unlock(&rw), GC_SYNC_OK);
            break;
        case OP_SEM_ACQUIRE:
            CHECK_EQ(gc_sem_release(&s, 1), GC_SYNC_OK);
            break;
        default:
            CHECK_EQ(gc_wg_add(&wg, -1), GC_SYNC_OK);
            break;
        }
        CHECK_ST(op_join(o), GC_OK);
        CHECK(atomic_load(&o->intrs) >= 1);
        CHECK_EQ(queued(q), 0);
        CHECK(!gc_mu_locked(&m));
        CHECK_EQ(atomic_load(&rw.state), 0);
        CHECK_EQ(gc_sem_available(&s), 1);
        free(o);
        gc_mu_destroy(&m);
        gc_rw_destroy(&rw);
        gc_sem_destroy(&s);
        gc_wg_destroy(&wg);
    }
}

/* ---- RWMutex ---- */

static void
test_rwmutex_misuse(void)
{
    gc_rw rw;
    CHECK_EQ(gc_rw_init(&rw), 0);
    CHECK_EQ(gc_rw_unlock(&rw), GC_SYNC_NOT_HELD);
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_NOT_HELD);
    CHECK(gc_rw_try_rlock(&rw));
    CHECK_EQ(gc_rw_unlock(&rw), GC_SYNC_WRONG_MODE);
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK);
    CHECK(gc_rw_try_lock(&rw));
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_WRONG_MODE);
    CHECK_EQ(gc_rw_unlock(&rw), GC_SYNC_OK);
    CHECK_EQ(atomic_load(&rw.state), 0);
    gc_rw_destroy(&rw);
}

static void
test_rwmutex_readers_share_writers_exclude(void)
{
    gc_rw rw;
    CHECK_EQ(gc_rw_init(&rw), 0);
    CHECK(gc_rw_try_rlock(&rw));
    CHECK(gc_rw_try_rlock(&rw));
    CHECK(!gc_rw_try_lock(&rw));
    CHECK_ST(gc_rw_lock(&rw, 0, NULL, NULL), GC_TIMEOUT);
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK);
    CHECK(!gc_rw_try_lock(&rw));
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK);
    CHECK(gc_rw_try_lock(&rw));
    CHECK(!gc_rw_try_lock(&rw));
    CHECK(!gc_rw_try_rlock(&rw));
    int64_t t0 = gc_now_ns();
    int64_t deadline = t0 + 20 * GC_MS;
    CHECK_ST(gc_rw_rlock(&rw, deadline, NULL, NULL), GC_TIMEOUT);
    gc_test_check_elapsed(t0, deadline);
    CHECK_EQ(gc_rw_unlock(&rw), GC_SYNC_OK);
    CHECK_EQ(atomic_load(&rw.state), 0);
    CHECK_EQ(queued(&rw.rq) + queued(&rw.wq), 0);
    gc_rw_destroy(&rw);
}

static void
test_rwmutex_waiting_writer_blocks_new_readers(void)
{
    gc_rw rw;
    CHECK_EQ(gc_rw_init(&rw), 0);
    CHECK(gc_rw_try_rlock(&rw));
    op *w = op_start_holder(OP_RW_LOCK, &rw, 0, &rw.wq);
    CHECK(!gc_rw_try_rlock(&rw));
    CHECK_ST(gc_rw_rlock(&rw, gc_deadline_after(20 * GC_MS), NULL, NULL),
             GC_TIMEOUT);
    check_still_blocked(w);
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK); /* the last reader leaves */
    WAIT_UNTIL(atomic_load(&w->done), 10000);
    CHECK_ST(w->st, GC_OK);
    CHECK(!gc_rw_try_rlock(&rw));
    CHECK_ST(op_join(w), GC_OK);
    CHECK(gc_rw_try_rlock(&rw));
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK);
    CHECK_EQ(atomic_load(&rw.state), 0);
    free(w);
    gc_rw_destroy(&rw);
}

/* After fork() the child has only the thread that forked: a writer that
 * was waiting in the parent does not exist there, so its announcement
 * must not keep the child's readers out for ever (writers still get in,
 * and readers after them). */
static void
test_rwmutex_parents_waiting_writer_lets_childs_readers_in(void)
{
    gc_rw rw;
    CHECK_EQ(gc_rw_init(&rw), 0);
    CHECK(gc_rw_try_rlock(&rw));
    op *w = op_start_holder(OP_RW_LOCK, &rw, 0, &rw.wq);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(30); /* a hung child dies instead of outliving the test */
        if (gc_rw_runlock(&rw) != GC_SYNC_OK) {
            _exit(2);
        }
        if (gc_rw_rlock(&rw, gc_deadline_after(2000 * GC_MS), NULL, NULL) !=
            GC_OK) {
            _exit(3); /* the parent's writer kept us out */
        }
        if (gc_rw_lock(&rw, gc_deadline_after(20 * GC_MS), NULL, NULL) !=
                GC_TIMEOUT ||
            gc_rw_runlock(&rw) != GC_SYNC_OK || !gc_rw_try_lock(&rw) ||
            gc_rw_unlock(&rw) != GC_SYNC_OK || !gc_rw_try_rlock(&rw) ||
            gc_rw_runlock(&rw) != GC_SYNC_OK || atomic_load(&rw.state) != 0) {
            _exit(4);
        }
        _exit(0);
    }
    gc_test_check_child_exits_ok(pid);
    /* The parent is unchanged: its writer gets in once we leave. */
    check_still_blocked(w);
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK);
    WAIT_UNTIL(atomic_load(&w->done), 10000);
    CHECK_ST(op_join(w), GC_OK);
    CHECK_EQ(atomic_load(&rw.state), 0);
    free(w);
    gc_rw_destroy(&rw);
}

/* The same when the fork comes from a signal handler run inside a writer's
 * own wait (the `interrupted` hook, called here every poll_ns): in the
 * child the forking writer keeps waiting, counted once, while the other
 * parent writer is forgotten. */
static pid_t hook_child; /* 0: not forked yet; -1: we are the child */

static int
fork_from_the_hook(void)
{
    if (hook_child == 0) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        CHECK(pid >= 0);
        hook_child = pid == 0 ? -1 : pid;
    }
    return 0; /* go on waiting, in the parent and in the child */
}

typedef struct forking_writer {
    gc_rw *rw;
    gc_status st;
} forking_writer;

static void *
forking_writer_main(void *arg)
{
    forking_writer *f = arg;
    const gc_unlock u = {.interrupted = fork_from_the_hook,
                         .poll_ns = 10 * GC_MS};
    f->st = gc_rw_lock(f->rw, gc_deadline_after(300 * GC_MS), NULL, &u);
    if (hook_child == -1) {
        /* The child: only the parent's reader (which never leaves) is
         * counted; no writer waits or holds. */
        uint64_t s = atomic_load(&f->rw->state);
        if (f->st != GC_TIMEOUT) {
            _exit(2);
        }
        if (s != GC_RW_READER || !gc_rw_try_rlock(f->rw) ||
            gc_rw_runlock(f->rw) != GC_SYNC_OK) {
            _exit(3);
        }
        _exit(0);
    }
    return NULL;
}

static void
test_rwmutex_writer_forking_inside_its_wait_stays_counted_once(void)
{
    gc_rw rw;
    CHECK_EQ(gc_rw_init(&rw), 0);
    CHECK(gc_rw_try_rlock(&rw));
    op *w = op_start_holder(OP_RW_LOCK, &rw, 0, &rw.wq);
    hook_child = 0;
    forking_writer f = {&rw, (gc_status)-1};
    pthread_t t = gc_test_spawn(forking_writer_main, &f);
    gc_test_join(t);
    CHECK_ST(f.st, GC_TIMEOUT);
    CHECK(hook_child > 0);
    gc_test_check_child_exits_ok(hook_child);
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK);
    WAIT_UNTIL(atomic_load(&w->done), 10000);
    CHECK_ST(op_join(w), GC_OK);
    CHECK_EQ(atomic_load(&rw.state), 0);
    free(w);
    gc_rw_destroy(&rw);
}

static void
test_rwmutex_writer_unlock_admits_queued_readers_first(void)
{
    gc_rw rw;
    CHECK_EQ(gc_rw_init(&rw), 0);
    CHECK(gc_rw_try_lock(&rw));
    op *r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = op_start_holder(OP_RW_RLOCK, &rw, 0, &rw.rq);
    }
    op *w = op_start_holder(OP_RW_LOCK, &rw, 0, &rw.wq);
    CHECK_EQ(gc_rw_unlock(&rw), GC_SYNC_OK);
    /* the three readers are in (counted at once), the writer waits */
    CHECK_EQ(GC_RW_READERS(atomic_load(&rw.state)), 3);
    for (int i = 0; i < 3; i++)
        WAIT_UNTIL(atomic_load(&r[i]->done), 10000);
    check_still_blocked(w);
    for (int i = 0; i < 3; i++) {
        CHECK_ST(r[i]->st, GC_OK);
        CHECK_ST(op_join(r[i]), GC_OK);
        free(r[i]);
    }
    WAIT_UNTIL(atomic_load(&w->done), 10000);
    CHECK_ST(op_join(w), GC_OK);
    CHECK_EQ(atomic_load(&rw.state), 0);
    free(w);
    gc_rw_destroy(&rw);
}

static void
test_rwmutex_writer_giving_up_lets_readers_in(void)
{
    gc_rw rw;
    CHECK_EQ(gc_rw_init(&rw), 0);
    CHECK(gc_rw_try_rlock(&rw));
    gc_chan *cancel = gc_chan_new(0);
    op *w = op_new();
    w->cancel = cancel;
    op_start_parked(w, OP_RW_LOCK, &rw, 0, &rw.wq);
    op *r = op_start_holder(OP_RW_RLOCK, &rw, 0, &rw.rq); /* held back by w */
    CHECK_ST(gc_chan_close(cancel), GC_OK);
    CHECK_ST(op_join(w), GC_CANCELLED);
    WAIT_UNTIL(atomic_load(&r->done), 10000);
    CHECK_ST(op_join(r), GC_OK);
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK);
    CHECK_EQ(atomic_load(&rw.state), 0);
    CHECK_EQ(queued(&rw.rq) + queued(&rw.wq), 0);
    /* a writer that times out does the same */
    CHECK(gc_rw_try_rlock(&rw));
    int64_t t0 = gc_now_ns();
    int64_t deadline = t0 + 20 * GC_MS;
    CHECK_ST(gc_rw_lock(&rw, deadline, NULL, NULL), GC_TIMEOUT);
    gc_test_check_elapsed(t0, deadline);
    CHECK(gc_rw_try_rlock(&rw));
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK);
    CHECK_EQ(gc_rw_runlock(&rw), GC_SYNC_OK);
    CHECK_EQ(atomic_load(&rw.state), 0);
    free(w);
    free(r);
    gc_chan_free(cancel, NULL, NULL);
    gc_rw_destroy(&rw);
}

/* Port of Go's TestRWMutex / HammerRWMutex (src/sync/rwmutex_test.go):
 * readers add 1 to an activity counter and writers 10000; a reader must
 * never see a writer's share, a writer must see nothing but its own. */
typedef struct hammer_rw {
    gc_rw *rw;
    atomic_long *activity;
    int iterations;
    int writer;
    int id;
} hammer_rw;

static void *
hammer_rw_main(void *arg)
{
    hammer_rw *h = arg;
    uint64_t rng = 77 + (uint64_t)h->id;
    for (int i = 0; i < h->iterations; i++) {
        int timed = gc_test_rand(&rng) % 8 == 0;
        int64_t deadline = timed ? gc_deadline_after(100000) : GC_FOREVER;
        if (h->writer) {
            if (gc_rw_lock(h->rw, deadline, NULL, NULL) != GC_OK) {
                CHECK(timed);
                continue;
            }
            long n = atomic_fetch_add(h->activity, 10000);
            CHECK_EQ(n, 0);
            for (int k = 0; k < 100; k++)
                gc_cpu_relax();
            atomic_fetch_sub(h->activity, 10000);
            CHECK_EQ(gc_rw_unlock(h->rw), GC_SYNC_OK);
        }
        else {
            if (gc_rw_rlock(h->rw, deadline, NULL, NULL) != GC_OK) {
                CHECK(timed);
                continue;
            }
            long n = atomic_fetch_add(h->activity, 1);
            CHECK(n < 10000);
            for (int k = 0; k < 100; k++)
                gc_cpu_relax();
            atomic_fetch_sub(h->activity, 1);
            CHECK_EQ(gc_rw_runlock(h->rw), GC_SYNC_OK);
        }
    }
    return NULL;
}

static void
hammer_rwmutex(int readers, int iterations)
{
    gc_rw rw;
    CHECK_EQ(gc_rw_init(&rw), 0);
    atomic_long activity = 0;
    int n = readers + 2;
    hammer_rw *h = calloc((size_t)n, sizeof(hammer_rw));
    CHECK(h != NULL);
    for (int i = 0; i < n; i++)
        h[i] = (hammer_rw){&rw, &activity, iterations, i < 2, i};
    gc_test_threads t =
        gc_test_threads_start((size_t)n, hammer_rw_main, h, sizeof(hammer_rw));
    gc_test_threads_join(&t);
    CHECK_EQ(atomic_load(&activity), 0);
    CHECK_EQ(atomic_load(&rw.state), 0);
    CHECK_EQ(queued(&rw.rq) + queued(&rw.wq), 0);
    free(h);
    gc_rw_destroy(&rw);
}

static void
test_go_TestRWMutex(void)
{
    int iterations = (int)(2000 * gc_test_scale());
    hammer_rwmutex(1, iterations);
    hammer_rwmutex(3, iterations);
    hammer_rwmutex(10, iterations);
}

/* ---- Semaphore ---- */

/* Port of x/sync/semaphore TestWeightedPanic: releasing what is not held
 * is an error (a panic there), and changes nothing. */
static void
test_go_TestWeightedPanic(void)
{
    gc_sem s;
    CHECK_EQ(gc_sem_init(&s, 1), 0);
    CHECK_EQ(gc_sem_release(&s, 1), GC_SYNC_NOT_HELD);
    CHECK_EQ(gc_sem_available(&s), 1);
    CHECK(gc_sem_try_acquire(&s, 1));
    CHECK_EQ(gc_sem_release(&s, 2), GC_SYNC_NOT_HELD);
    CHECK_EQ(gc_sem_release(&s, 1), GC_SYNC_OK);
    gc_sem_destroy(&s);
}

/* Port of x/sync/semaphore TestWeightedTryAcquire. */
static void
test_go_TestWeightedTryAcquire(void)
{
    gc_sem s;
    CHECK_EQ(gc_sem_init(&s, 2), 0);
    int tries[4];
    CHECK_ST(gc_sem_acquire(&s, 1, GC_FOREVER, NULL, NULL), GC_OK);
    tries[0] = gc_sem_try_acquire(&s, 1);
    tries[1] = gc_sem_try_acquire(&s, 1);
    CHECK_EQ(gc_sem_release(&s, 2), GC_SYNC_OK);
    tries[2] = gc_sem_try_acquire(&s, 1);
    CHECK_ST(gc_sem_acquire(&s, 1, GC_FOREVER, NULL, NULL), GC_OK);
    tries[3] = gc_sem_try_acquire(&s, 1);
    CHECK_EQ(tries[0], 1);
    CHECK_EQ(tries[1], 0);
    CHECK_EQ(tries[2], 1);
    CHECK_EQ(tries[3], 0);
    CHECK_EQ(gc_sem_release(&s, 2), GC_SYNC_OK);
    CHECK(gc_sem_try_acquire(&s, 0)); /* zero tokens: free when nobody waits */
    gc_sem_destroy(&s);
}

/* Port of x/sync/semaphore TestWeighted / HammerWeighted: threads taking
 * weights 1..n of a semaphore of size n; the tokens in use never exceed n
 * (here counted, where the original only checks that it finishes). */
typedef struct hammer_sem {
    gc_sem *s;
    atomic_long *in_use;
    int64_t weight;
    int loops;
} hammer_sem;

static void *
hammer_sem_main(void *arg)
{
    hammer_sem *h = arg;
    for (int i = 0; i < h->loops; i++) {
        CHECK_ST(gc_sem_acquire(h->s, h->weight, GC_FOREVER, NULL, NULL),
                 GC_OK);
        long n = atomic_fetch_add(h->in_use, (long)h->weight) + h->weight;
        CHECK(n <= h->s->size);
        gc_cpu_relax();
        atomic_fetch_sub(h->in_use, (long)h->weight);
        CHECK_EQ(gc_sem_release(h->s, h->weight), GC_SYNC_OK);
    }
    return NULL;
}

static void
test_go_TestWeighted(void)
{
    enum { N = 6 };
    gc_sem s;
    CHECK_EQ(gc_sem_init(&s, N), 0);
    atomic_long in_use = 0;
    hammer_sem h[N];
    int loops = (int)(3000 * gc_test_scale()) / N;
    for (int i = 0; i < N; i++)
        h[i] = (hammer_sem){&s, &in_use, i + 1, loops};
    gc_test_threads t =
        gc_test_threads_start(N, hammer_sem_main, h, sizeof(hammer_sem));
    gc_test_threads_join(&t);
    CHECK_EQ(gc_sem_available(&s), N);
    CHECK_EQ(queued(&s.q), 0);
    gc_sem_destroy(&s);
}

/* Port of x/sync/semaphore TestLargeAcquireDoesntStarve: while small
 * holders keep cycling, a request for the whole semaphore is served. */
typedef struct cycler {
    gc_sem *s;
    atomic_int *running;
} cycler;

static void *
cycler_main(void *arg)
{
    cycler *c = arg;
    while (atomic_load(c->running)) {
        gc_test_sleep_ns(GC_MS);
        CHECK_EQ(gc_sem_release(c->s, 1), GC_SYNC_OK);
        CHECK_ST(gc_sem_acquire(c->s, 1, GC_FOREVER, NULL, NULL), GC_OK);
    }
    CHECK_EQ(gc_sem_release(c->s, 1), GC_SYNC_OK);
    return NULL;
}

static void
test_go_TestLargeAcquireDoesntStarve(void)
{
    enum { N = 4 };
    gc_sem s;
    CHECK_EQ(gc_sem_init(&s, N), 0);
    atomic_int running = 1;
    cycler c[N];
    for (int i = 0; i < N; i++) {
        CHECK_ST(gc_sem_acquire(&s, 1, GC_FOREVER, NULL, NULL), GC_OK);
        c[i] = (cycler){&s, &running};
    }
    gc_test_threads t =
        gc_test_threads_start(N, cycler_main, c, sizeof(cycler));
    CHECK_ST(gc_sem_acquire(&s, N, GC_FOREVER, NULL, NULL), GC_OK);
    atomic_store(&running, 0);
    CHECK_EQ(gc_sem_release(&s, N), GC_SYNC_OK);
    gc_test_threads_join(&t);
    CHECK_EQ(gc_sem_available(&s), N);
    gc_sem_destroy(&s);
}

static void
test_semaphore_serves_in_fifo_order(void)
{
    gc_sem s;
    CHECK_EQ(gc_sem_init(&s, 3), 0);
    CHECK(gc_sem_try_acquire(&s, 3));
    atomic_int order = 0;
    int64_t weights[3] = {2, 1, 3};
    op *w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = op_new();
        w[i]->order = &order;
        op_start_parked(w[i], OP_SEM_ACQUIRE, &s, weights[i], &s.q);
    }
    /* one token free: w[1] would fit, but w[0] is first */
    CHECK_EQ(gc_sem_release(&s, 1), GC_SYNC_OK);
    CHECK(!gc_sem_try_acquire(&s, 1)); /* others are queued */
    check_still_blocked(w[1]);
    CHECK_EQ(gc_sem_release(&s, 1), GC_SYNC_OK); /* two: w[0] */
    WAIT_UNTIL(atomic_load(&w[0]->done), 10000);
    CHECK_EQ(gc_sem_release(&s, 1), GC_SYNC_OK); /* one more: w[1] */
    WAIT_UNTIL(atomic_load(&w[1]->done), 10000);
    check_still_blocked(w[2]);
    CHECK_EQ(gc_sem_available(&s), 0);
    CHECK_EQ(gc_sem_release(&s, 3), GC_SYNC_OK); /* as w[0], w[1] would */
    WAIT_UNTIL(atomic_load(&w[2]->done), 10000);
    for (int i = 0; i < 3; i++) {
        CHECK_ST(op_join(w[i]), GC_OK);
        CHECK_EQ(w[i]->ticket, i);
        free(w[i]);
    }
    CHECK_EQ(gc_sem_available(&s), 0);
    CHECK_EQ(gc_sem_release(&s, 3), GC_SYNC_OK);
    CHECK_EQ(queued(&s.q), 0);
    gc_sem_destroy(&s);
}

/* The oldest waiter leaving (timeout, cancel) lets the next ones in. */
static void
test_semaphore_head_leaving_lets_the_next_in(void)
{
    for (int by_cancel = 0; by_cancel < 2; by_cancel++) {
        gc_sem s;
        CHECK_EQ(gc_sem_init(&s, 2), 0);
        CHECK(gc_sem_try_acquire(&s, 1)); /* one token left */
        gc_chan *cancel = gc_chan_new(0);
        op *big = op_new();
        if (by_cancel)
            big->cancel = cancel;
        else
            big->deadline = gc_deadline_after(200 * GC_MS);
        op_start_parked(big, OP_SEM_ACQUIRE, &s, 2, &s.q);
        op *small = op_start_holder(OP_SEM_ACQUIRE, &s, 1, &s.q);
        if (by_cancel)
            CHECK_ST(gc_chan_close(cancel), GC_OK);
        CHECK_ST(op_join(big), by_cancel ? GC_CANCELLED : GC_TIMEOUT);
        WAIT_UNTIL(atomic_load(&small->done), 10000);
        CHECK_ST(op_join(small), GC_OK);
        CHECK_EQ(gc_sem_release(&s, 1), GC_SYNC_OK);
        CHECK_EQ(gc_sem_available(&s), 2);
        CHECK_EQ(queued(&s.q), 0);
        free(big);
        free(small);
        gc_chan_free(cancel, NULL, NULL);
        gc_sem_destroy(&s);
    }
}

static void
test_semaphore_deadline_and_cancel(void)
{
    gc_sem s;
    CHECK_EQ(gc_sem_init(&s, 1), 0);
    gc_chan *done = gc_chan_new(0);
    CHECK_ST(gc_chan_close(done), GC_OK);
    CHECK_ST(gc_sem_acquire(&s, 1, GC_FOREVER, done, NULL), GC_CANCELLED);
    CHECK_EQ(gc_sem_available(&s), 1);
    CHECK(gc_sem_try_acquire(&s, 1));
    int64_t t0 = gc_now_ns();
    int64_t deadline = t0 + 20 * GC_MS;
    CHECK_ST(gc_sem_acquire(&s, 1, deadline, NULL, NULL), GC_TIMEOUT);
    gc_test_check_elapsed(t0, deadline);
    CHECK_ST(gc_sem_acquire(&s, 1, 0, NULL, NULL), GC_TIMEOUT);
    CHECK_EQ(gc_sem_release(&s, 1), GC_SYNC_OK);
    CHECK_ST(gc_sem_acquire(&s, 1, 0, NULL, NULL), GC_OK);
    CHECK_EQ(gc_sem_release(&s, 1), GC_SYNC_OK);
    CHECK_EQ(queued(&s.q), 0);
    gc_chan_free(done, NULL, NULL);
    gc_sem_destroy(&s);
}

/* ---- WaitGroup ---- */

/* Port of Go's TestWaitGroup (src/sync/waitgroup_test.go): n workers each
 * call wg1.done() and then wait on wg2; the main thread's wait on wg1
 * returns only once all have, and none passes wg2 before the main thread's
 * done().  Run twice on the same pair (reuse). */
typedef struct wg_pair {
    gc_wg *wg1, *wg2;
    atomic_int *exited;
} wg_pair;

static void *
wg_worker(void *arg)
{
    wg_pair *p = arg;
    CHECK_EQ(gc_wg_add(p->wg1, -1), GC_SYNC_OK);
    CHECK_ST(gc_wg_wait(p->wg2, GC_FOREVER, NULL, NULL), GC_OK);
    atomic_fetch_add(p->exited, 1);
    return NULL;
}

static void
test_go_TestWaitGroup(void)
{
    enum { N = 16 };
    gc_wg wg1, wg2;
    CHECK_EQ(gc_wg_init(&wg1, 0), 0);
    CHECK_EQ(gc_wg_init(&wg2, 0), 0);
    for (int round = 0; round < 2; round++) {
        atomic_int exited = 0;
        CHECK_EQ(gc_wg_add(&wg1, N), GC_SYNC_OK);
        CHECK_EQ(gc_wg_add(&wg2, N), GC_SYNC_OK);
        wg_pair p = {&wg1, &wg2, &exited};
        /* every worker gets &p */
        gc_test_threads t = gc_test_threads_start(N, wg_worker, &p, 0);
        CHECK_ST(gc_wg_wait(&wg1, GC_FOREVER, NULL, NULL), GC_OK);
        gc_test_sleep_ns(5 * GC_MS);
        CHECK_EQ(atomic_load(&exited), 0); /* released too soon? */
        for (int i = 0; i < N; i++)
            CHECK_EQ(gc_wg_add(&wg2, -1), GC_SYNC_OK);
        gc_test_threads_join(&t);
        CHECK_EQ(atomic_load(&exited), N);
    }
    CHECK_EQ(queued(&wg1.q) + queued(&wg2.q), 0);
    gc_wg_destroy(&wg1);
    gc_wg_destroy(&wg2);
}

/* Port of Go's TestWaitGroupMisuse: a negative counter is an error (Go
 * panics); here the counter stays as it was. */
static void
test_go_TestWaitGroupMisuse(void)
{
    gc_wg wg;
    CHECK_EQ(gc_wg_init(&wg, 0), 0);
    CHECK_EQ(gc_wg_add(&wg, 1), GC_SYNC_OK);
    CHECK_EQ(gc_wg_add(&wg, -1), GC_SYNC_OK);
    CHECK_EQ(gc_wg_add(&wg, -1), GC_SYNC_NEGATIVE);
    CHECK_EQ(gc_wg_count(&wg), 0);
    CHECK_EQ(gc_wg_add(&wg, INT64_MAX), GC_SYNC_OK);
    CHECK_EQ(gc_wg_add(&wg, 1), GC_SYNC_OVERFLOW);
    CHECK_EQ(gc_wg_add(&wg, INT64_MIN), GC_SYNC_NEGATIVE);
    CHECK_EQ(gc_wg_count(&wg), INT64_MAX);
    gc_wg_destroy(&wg);
}

static void
test_waitgroup_wakes_every_waiter_and_honours_deadline_and_cancel(void)
{
    gc_wg wg;
    CHECK_EQ(gc_wg_init(&wg, 0), 0);
    CHECK_ST(gc_wg_wait(&wg, 0, NULL, NULL), GC_OK); /* zero: at once */
    gc_chan *done = gc_chan_new(0);
    CHECK_ST(gc_chan_close(done), GC_OK);
    CHECK_ST(gc_wg_wait(&wg, GC_FOREVER, done, NULL), GC_CANCELLED);
    CHECK_EQ(gc_wg_add(&wg, 2), GC_SYNC_OK);
    int64_t t0 = gc_now_ns();
    int64_t deadline = t0 + 20 * GC_MS;
    CHECK_ST(gc_wg_wait(&wg, deadline, NULL, NULL), GC_TIMEOUT);
    gc_test_check_elapsed(t0, deadline);
    op *w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = op_new();
        op_start_parked(w[i], OP_WG_WAIT, &wg, 0, &wg.q);
    }
    CHECK_EQ(gc_wg_add(&wg, -1), GC_SYNC_OK);
    check_still_blocked(w[3]);
    CHECK_EQ(gc_wg_add(&wg, -1), GC_SYNC_OK);
    for (int i = 0; i < 4; i++) {
        CHECK_ST(op_join(w[i]), GC_OK);
        free(w[i]);
    }
    CHECK_EQ(queued(&wg.q), 0);
    gc_chan_free(done, NULL, NULL);
    gc_wg_destroy(&wg);
}

/* ---- idle workers ---- */

typedef struct idler {
    gc_idle *p;
    int64_t deadline;
    void *item;
    gc_status st;
    atomic_int done;
    atomic_int ktid;
    pthread_t tid;
} idler;

static void *
idler_main(void *arg)
{
    idler *w = arg;
    atomic_store(&w->ktid, gc_test_gettid());
    w->st = gc_idle_wait(w->p, &w->item, w->deadline, NULL);
    atomic_store(&w->done, 1);
    return NULL;
}

static void
idler_start_parked(idler *w, gc_idle *p)
{
    size_t before = gc_idle_count(p);
    w->p = p;
    w->deadline = GC_FOREVER;
    w->item = NULL;
    atomic_store(&w->done, 0);
    atomic_store(&w->ktid, 0);
    w->tid = gc_test_spawn(idler_main, w);
    WAIT_UNTIL(gc_idle_count(p) > before, 10000);
    gc_test_wait_asleep(&w->ktid);
}

static void
test_idle_hands_work_to_the_newest_waiter(void)
{
    gc_idle p;
    CHECK_EQ(gc_idle_init(&p), 0);
    CHECK(!gc_idle_hand(&p, GC_P(1))); /* nobody waits */
    idler w[3];
    for (int i = 0; i < 3; i++)
        idler_start_parked(&w[i], &p);
    for (int i = 2; i >= 0; i--) {
        CHECK(gc_idle_hand(&p, GC_P(10 + i)));
        WAIT_UNTIL(atomic_load(&w[i].done), 10000);
        gc_test_join(w[i].tid);
        CHECK_ST(w[i].st, GC_OK);
        CHECK_PTR_EQ(w[i].item, GC_P(10 + i));
        for (int k = 0; k < i; k++)
            CHECK(!atomic_load(&w[k].done));
    }
    CHECK(!gc_idle_hand(&p, GC_P(2)));
    CHECK_EQ(gc_idle_count(&p), 0);
    int64_t t0 = gc_now_ns();
    int64_t deadline = t0 + 20 * GC_MS;
    void *item = GC_P(3);
    CHECK_ST(gc_idle_wait(&p, &item, deadline, NULL), GC_TIMEOUT);
    gc_test_check_elapsed(t0, deadline);
    CHECK_PTR_EQ(item, GC_P(3));
    CHECK_EQ(gc_idle_count(&p), 0);
    gc_idle_destroy(&p);
}

/* Items handed by several threads to workers that come and go with short
 * deadlines: each item is taken exactly once, and a hand-off succeeds
 * only when a worker takes the item. */
typedef struct idle_storm {
    gc_idle *p;
    atomic_long *taken_sum;
    atomic_long *taken;
    atomic_int *stop;
    int id;
} idle_storm;

static void *
idle_storm_worker(void *arg)
{
    idle_storm *s = arg;
    uint64_t rng = 99 + (uint64_t)s->id;
    while (!atomic_load(s->stop)) {
        void *item;
        int64_t deadline =
            gc_deadline_after((int64_t)(gc_test_rand(&rng) % 300000));
        if (gc_idle_wait(s->p, &item, deadline, NULL) == GC_OK) {
            atomic_fetch_add(s->taken_sum, (long)GC_N(item));
            atomic_fetch_add(s->taken, 1);
        }
    }
    return NULL;
}

static void
test_idle_storm_each_item_taken_once(void)
{
    gc_idle p;
    CHECK_EQ(gc_idle_init(&p), 0);
    atomic_long sum = 0, taken = 0;
    atomic_int stop = 0;
    enum { W = 4 };
    idle_storm s[W];
    for (int i = 0; i < W; i++)
        s[i] = (idle_storm){&p, &sum, &taken, &stop, i};
    gc_test_threads t =
        gc_test_threads_start(W, idle_storm_worker, s, sizeof(idle_storm));
    long handed = 0, handed_sum = 0;
    int rounds = (int)(20000 * gc_test_scale());
    for (long i = 1; i <= rounds; i++) {
        if (gc_idle_hand(&p, GC_P(i))) {
            handed++;
            handed_sum += i;
        }
        if (i % 64 == 0)
            gc_test_sleep_ns(10000);
    }
    atomic_store(&stop, 1);
    gc_test_threads_join(&t);
    CHECK(handed > 0);
    CHECK_EQ(atomic_load(&taken), handed);
    CHECK_EQ(atomic_load(&sum), handed_sum);
    CHECK_EQ(gc_idle_count(&p), 0);
    gc_idle_destroy(&p);
}

/* ---- no lost wake-ups ---- */

/* Threads mixing every blocking call with short deadlines, cancellation
 * and releases.  A lost wake-up shows as a hang (the watchdog) or as a
 * primitive left held or queued at the end. */
typedef struct storm {
    gc_mu *m;
    gc_rw *rw;
    gc_sem *s;
    gc_chan *cancel; /* closed half-way through */
    int iterations;
    int id;
    long *under_mu; /* touched only with m held */
    long *under_rw; /* touched only with rw write-locked */
} storm;

static int64_t
storm_deadline(uint64_t *rng)
{
    switch (gc_test_rand(rng) % 4) {
    case 0:
        return 0; /* try once */
    case 1:
        return gc_deadline_after((int64_t)(gc_test_rand(rng) % 200000));
    default:
        return GC_FOREVER;
    }
}

static void *
storm_main(void *arg)
{
    storm *st = arg;
    uint64_t rng = 1234 + (uint64_t)st->id;
    for (int i = 0; i < st->iterations; i++) {
        int64_t deadline = storm_deadline(&rng);
        gc_chan *cancel = gc_test_rand(&rng) % 8 == 0 ? st->cancel : NULL;
        gc_status r;
        switch (gc_test_rand(&rng) % 4) {
        case 0:
            r = gc_mu_lock(st->m, deadline, cancel, NULL);
            if (r == GC_OK) {
                (*st->under_mu)++;
                CHECK_EQ(gc_mu_unlock(st->m), GC_SYNC_OK);
            }
            break;
        case 1:
            r = gc_rw_lock(st->rw, deadline, cancel, NULL);
            if (r == GC_OK) {
                (*st->under_rw)++;
                CHECK_EQ(gc_rw_unlock(st->rw), GC_SYNC_OK);
            }
            break;
        case 2:
            r = gc_rw_rlock(st->rw, deadline, cancel, NULL);
            if (r == GC_OK)
                CHECK_EQ(gc_rw_runlock(st->rw), GC_SYNC_OK);
            break;
        default: {
            int64_t n = 1 + (int64_t)(gc_test_rand(&rng) % 3);
            r = gc_sem_acquire(st->s, n, deadline, cancel, NULL);
            if (r == GC_OK)
                CHECK_EQ(gc_sem_release(st->s, n), GC_SYNC_OK);
            break;
        }
        }
        if (deadline == GC_FOREVER && cancel == NULL)
            CHECK_ST(r, GC_OK);
        else
            CHECK(r == GC_OK || r == GC_TIMEOUT || r == GC_CANCELLED);
    }
    return NULL;
}

static void
test_no_lost_wakeups_under_a_storm_of_timeouts_and_cancels(void)
{
    gc_mu m;
    gc_rw rw;
    gc_sem s;
    CHECK_EQ(gc_mu_init(&m), 0);
    CHECK_EQ(gc_rw_init(&rw), 0);
    CHECK_EQ(gc_sem_init(&s, 3), 0);
    gc_chan *cancel = gc_chan_new(0);
    long under_mu = 0, under_rw = 0;
    enum { N = 8 };
    storm st[N];
    int iterations = (int)(4000 * gc_test_scale());
    for (int i = 0; i < N; i++)
        st[i] =
            (storm){&m, &rw, &s, cancel, iterations, i, &under_mu, &under_rw};
    gc_test_threads t =
        gc_test_threads_start(N, storm_main, st, sizeof(storm));
    gc_test_sleep_ns(50 * GC_MS);
    CHECK_ST(gc_chan_close(cancel), GC_OK);
    gc_test_threads_join(&t);
    CHECK_EQ(atomic_load(&m.state), 0);
    CHECK_EQ(atomic_load(&rw.state), 0);
    CHECK_EQ(gc_sem_available(&s), 3);
    CHECK_EQ(queued(&m.q) + queued(&rw.rq) + queued(&rw.wq) + queued(&s.q), 0);
    gc_chan_free(cancel, NULL, NULL);
    gc_mu_destroy(&m);
    gc_rw_destroy(&rw);
    gc_sem_destroy(&s);
}

int
main(void)
{
    gc_test_catch_signal(SIGUSR1, gc_test_count_signal);
    GC_RUN(test_go_TestMutexMisuse);
    GC_RUN(test_mutex_fast_paths);
    GC_RUN(test_mutex_lock_times_out_at_deadline);
    GC_RUN(test_mutex_cancel);
    GC_RUN(test_mutex_unlock_wakes_a_waiter);
    GC_RUN(test_mutex_starvation_mode_hands_off_in_fifo_order);
    GC_RUN(test_mutex_waiter_is_not_starved_by_a_busy_holder);
    GC_RUN(test_go_TestMutex);
    GC_RUN(test_signal_interrupts_blocked_calls);
    GC_RUN(test_rwmutex_misuse);
    GC_RUN(test_rwmutex_readers_share_writers_exclude);
    GC_RUN(test_rwmutex_waiting_writer_blocks_new_readers);
    GC_RUN(test_rwmutex_parents_waiting_writer_lets_childs_readers_in);
    GC_RUN(test_rwmutex_writer_forking_inside_its_wait_stays_counted_once);
    GC_RUN(test_rwmutex_writer_unlock_admits_queued_readers_first);
    GC_RUN(test_rwmutex_writer_giving_up_lets_readers_in);
    GC_RUN(test_go_TestRWMutex);
    GC_RUN(test_go_TestWeightedPanic);
    GC_RUN(test_go_TestWeightedTryAcquire);
    GC_RUN(test_go_TestWeighted);
    GC_RUN(test_go_TestLargeAcquireDoesntStarve);
    GC_RUN(test_semaphore_serves_in_fifo_order);
    GC_RUN(test_semaphore_head_leaving_lets_the_next_in);
    GC_RUN(test_semaphore_deadline_and_cancel);
    GC_RUN(test_go_TestWaitGroup);
    GC_RUN(test_go_TestWaitGroupMisuse);
    GC_RUN(test_waitgroup_wakes_every_waiter_and_honours_deadline_and_cancel);
    GC_RUN(test_idle_hands_work_to_the_newest_waiter);
    GC_RUN(test_idle_storm_each_item_taken_once);
    GC_RUN(test_no_lost_wakeups_under_a_storm_of_timeouts_and_cancels);
    return 0;
}
