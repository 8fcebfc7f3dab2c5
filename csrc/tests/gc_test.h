/* gc_test.h - the tiny harness shared by the C tests of the core.
 *
 * Checks print file:line and what was expected, then abort() so that a
 * sanitizer or a debugger sees the stack.  GC_RUN() runs one test function
 * under a watchdog: a test that has not finished after GC_TEST_TIMEOUT
 * seconds (default 120) aborts the program, naming the test, instead of
 * hanging the build.  Threads are plain pthreads (the signal tests need
 * pthread_kill), started in groups (gc_test_threads_start) or one by one
 * (gc_test_spawn); gc_test_wait_asleep waits until one sleeps in the
 * kernel, and gc_test_catch_signal installs a handler whose signal
 * interrupts a blocking wait.  A select by hand (gc_test_select) does what
 * the binding does: poll every case with try_*, then gc_wait, until one
 * completes.
 */
#ifndef GC_TEST_H
#define GC_TEST_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc_chan.h"

static inline const char *
gc_test_status_name(long st)
{
    switch (st) {
    case GC_OK:
        return "GC_OK";
    case GC_WOULDBLOCK:
        return "GC_WOULDBLOCK";
    case GC_CLOSED:
        return "GC_CLOSED";
    case GC_TIMEOUT:
        return "GC_TIMEOUT";
    case GC_CANCELLED:
        return "GC_CANCELLED";
    case GC_INTR:
        return "GC_INTR";
    case GC_NOMEM:
        return "GC_NOMEM";
    case GC_RETRY:
        return "GC_RETRY";
    default:
        return "(not a gc_status)";
    }
}

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Integers of any width and signedness (compared as intmax_t). */
#define CHECK_EQ(a, b)                                                 \
    do {                                                               \
        intmax_t gc_a_ = (intmax_t)(a), gc_b_ = (intmax_t)(b);         \
        if (gc_a_ != gc_b_) {                                          \
            fprintf(stderr,                                            \
                    "%s:%d: CHECK_EQ failed: %s == %s (%jd != %jd)\n", \
                    __FILE__, __LINE__, #a, #b, gc_a_, gc_b_);         \
            abort();                                                   \
        }                                                              \
    } while (0)

/* Pointers (payloads). */
#define CHECK_PTR_EQ(a, b)                                     \
    do {                                                       \
        const void *gc_a_ = (a), *gc_b_ = (b);                 \
        if (gc_a_ != gc_b_) {                                  \
            fprintf(stderr,                                    \
                    "%s:%d: CHECK_PTR_EQ failed: %s == %s "    \
                    "(%p != %p)\n",                            \
                    __FILE__, __LINE__, #a, #b, (void *)gc_a_, \
                    (void *)gc_b_);                            \
            abort();                                           \
        }                                                      \
    } while (0)

/* A gc_status, printed by name. */
#define CHECK_ST(expr, want)                                                 \
    do {                                                                     \
        long gc_got_ = (long)(expr), gc_want_ = (long)(want);                \
        if (gc_got_ != gc_want_) {                                           \
            fprintf(stderr,                                                  \
                    "%s:%d: CHECK_ST failed: %s gave %s, "                   \
                    "expected %s\n",                                         \
                    __FILE__, __LINE__, #expr, gc_test_status_name(gc_got_), \
                    gc_test_status_name(gc_want_));                          \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Payloads are opaque pointers; the tests pass small integers, never 0. */
#define GC_P(n) ((void *)(uintptr_t)(n))
#define GC_N(p) ((uintptr_t)(p))

#define GC_MS ((int64_t)1000000)

static inline void
gc_test_sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Poll until cond holds, or abort after `ms` milliseconds. */
#define WAIT_UNTIL(cond, ms)                                         \
    do {                                                             \
        int64_t gc_until_ = gc_now_ns() + (int64_t)(ms)*GC_MS;       \
        while (!(cond)) {                                            \
            if (gc_now_ns() > gc_until_) {                           \
                fprintf(stderr, "%s:%d: WAIT_UNTIL timed out: %s\n", \
                        __FILE__, __LINE__, #cond);                  \
                abort();                                             \
            }                                                        \
            gc_test_sleep_ns(100000);                                \
        }                                                            \
    } while (0)

static inline size_t
gc_test_waiting_receivers(gc_chan *ch)
{
    gc_chan_stats s;
    gc_chan_stats_get(ch, &s);
    return s.waiting_receivers;
}

static inline size_t
gc_test_waiting_senders(gc_chan *ch)
{
    gc_chan_stats s;
    gc_chan_stats_get(ch, &s);
    return s.waiting_senders;
}

/* ---- the watchdog and the runner ---- */

static const char *_Atomic gc_test_current;
static atomic_int gc_test_watchdog_gen;

static inline void *
gc_test_watchdog(void *arg)
{
    (void)arg;
    const char *env = getenv("GC_TEST_TIMEOUT");
    int64_t limit = (env && atoi(env) > 0 ? atoi(env) : 120) * 1000 * GC_MS;
    int gen = -1;
    int64_t since = 0;
    for (;;) {
        gc_test_sleep_ns(100 * GC_MS);
        int g = atomic_load(&gc_test_watchdog_gen);
        int64_t now = gc_now_ns();
        if (g != gen) {
            gen = g;
            since = now;
        }
        else if (now - since > limit) {
            fprintf(stderr, "watchdog: %s still running after %s s: hung?\n",
                    atomic_load(&gc_test_current), env ? env : "120");
            abort();
        }
    }
    return NULL;
}

static inline void
gc_test_start_watchdog(void)
{
    static int started;
    if (started)
        return;
    started = 1;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, gc_test_watchdog, NULL) != 0) {
        perror("pthread_create");
        abort();
    }
    pthread_attr_destroy(&a);
}

#define GC_RUN(fn)                                    \
    do {                                              \
        gc_test_start_watchdog();                     \
        atomic_store(&gc_test_current, #fn);          \
        atomic_fetch_add(&gc_test_watchdog_gen, 1);   \
        int64_t gc_t0_ = gc_now_ns();                 \
        fn();                                         \
        atomic_fetch_add(&gc_test_watchdog_gen, 1);   \
        printf("%-50s ok  %8.1f ms\n", #fn,           \
               (double)(gc_now_ns() - gc_t0_) / 1e6); \
        fflush(stdout);                               \
    } while (0)

/* ---- threads ---- */

typedef struct gc_test_threads {
    size_t n;
    pthread_t *tid;
} gc_test_threads;

/* Start n threads running fn(args + i * arg_size) (args may be NULL:
 * every thread then gets NULL). */
static inline gc_test_threads
gc_test_threads_start(size_t n, void *(*fn)(void *), void *args,
                      size_t arg_size)
{
    gc_test_threads t = {n, calloc(n ? n : 1, sizeof(pthread_t))};
    CHECK(t.tid != NULL);
    for (size_t i = 0; i < n; i++) {
        void *a = args ? (char *)args + i * arg_size : NULL;
        int rc = pthread_create(&t.tid[i], NULL, fn, a);
        if (rc != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(rc));
            abort();
        }
    }
    return t;
}

static inline void
gc_test_threads_join(gc_test_threads *t)
{
    for (size_t i = 0; i < t->n; i++)
        CHECK_EQ(pthread_join(t->tid[i], NULL), 0);
    free(t->tid);
    t->tid = NULL;
    t->n = 0;
}

/* One thread: start it, join it. */
static inline pthread_t
gc_test_spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    if (rc != 0) {
        fprintf(stderr, "pthread_create: %s\n", strerror(rc));
        abort();
    }
    return t;
}

static inline void
gc_test_join(pthread_t t)
{
    CHECK_EQ(pthread_join(t, NULL), 0);
}

/* The child process pid exits with status 0. */
static inline void
gc_test_check_child_exits_ok(pid_t pid)
{
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

/* ---- signals ---- */

/* How many signals gc_test_count_signal has caught. */
static inline atomic_int *
gc_test_signals_caught(void)
{
    static atomic_int caught;
    return &caught;
}

/* A handler that only counts the signals it catches. */
static inline void
gc_test_count_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_fetch_add_explicit(gc_test_signals_caught(), 1,
                              memory_order_relaxed);
    errno = saved;
}

/* Install `handler` for sig without SA_RESTART: a blocking wait that the
 * signal interrupts sees EINTR, which the core reports as GC_INTR. */
static inline void
gc_test_catch_signal(int sig, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    CHECK_EQ(sigaction(sig, &sa, NULL), 0);
}

/* ---- one blocking operation on its own thread ---- */

/* A blocking gc_chan_send/gc_chan_recv run by a helper thread: fill ch,
 * dir, item (send) and deadline, then gc_test_op_start(); `done` turns 1
 * when the call returned, with its status in `st` and (receive) its value
 * in `item`. */
typedef struct gc_test_op {
    gc_chan *ch;
    int dir;
    void *item;
    int64_t deadline;
    gc_status st;
    atomic_int done;
    pthread_t tid;
} gc_test_op;

static inline void *
gc_test_op_main(void *arg)
{
    gc_test_op *op = arg;
    if (op->dir == GC_SEND)
        op->st = gc_chan_send(op->ch, op->item, op->deadline, NULL);
    else
        op->st = gc_chan_recv(op->ch, &op->item, op->deadline, NULL);
    atomic_store(&op->done, 1);
    return NULL;
}

static inline void
gc_test_op_start(gc_test_op *op, gc_chan *ch, int dir, void *item,
                 int64_t deadline)
{
    op->ch = ch;
    op->dir = dir;
    op->item = item;
    op->deadline = deadline;
    op->st = (gc_status)-1;
    atomic_store(&op->done, 0);
    op->tid = gc_test_spawn(gc_test_op_main, op);
}

/* Is thread tid (a kernel thread id) asleep in the kernel (state S)?  A
 * waiter counted on a queue may still be re-checking its cases or
 * spinning; only once it sleeps is it surely parked (and a signal surely
 * interrupts its futex wait). */
static inline int
gc_test_thread_sleeps(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] == 'S';
}

/* The calling thread's kernel thread id, for gc_test_thread_sleeps. */
static inline int
gc_test_gettid(void)
{
    return (int)syscall(SYS_gettid);
}

/* Wait until the thread whose kernel id *ktid holds (0 until that thread
 * has stored it) sleeps in the kernel. */
static inline void
gc_test_wait_asleep(atomic_int *ktid)
{
    WAIT_UNTIL(atomic_load(ktid) != 0 &&
                   gc_test_thread_sleeps(atomic_load(ktid)),
               10000);
}

/* A blocking operation on its own thread, started and then waited for
 * until its thread sleeps in the kernel.  Being counted on the queue is
 * not enough where order matters: a waiter counts as soon as its entry is
 * linked and only then re-checks the channel (case_ready); a peer that
 * changes the channel in that window lets the waiter withdraw for a moment
 * to retry, and the next waiter is served instead. */
typedef struct gc_test_parked_op {
    gc_test_op op; /* first: gc_test_op_main gets &op */
    atomic_int ktid;
} gc_test_parked_op;

static inline void *
gc_test_parked_op_main(void *arg)
{
    gc_test_parked_op *p = arg;
    atomic_store(&p->ktid, gc_test_gettid());
    return gc_test_op_main(&p->op);
}

static inline void
gc_test_parked_op_start(gc_test_parked_op *p, gc_chan *ch, int dir, void *item)
{
    size_t before = dir == GC_SEND ? gc_test_waiting_senders(ch)
                                   : gc_test_waiting_receivers(ch);
    p->op.ch = ch;
    p->op.dir = dir;
    p->op.item = item;
    p->op.deadline = GC_FOREVER;
    p->op.st = (gc_status)-1;
    atomic_store(&p->op.done, 0);
    atomic_store(&p->ktid, 0);
    p->op.tid = gc_test_spawn(gc_test_parked_op_main, p);
    if (dir == GC_SEND)
        WAIT_UNTIL(gc_test_waiting_senders(ch) > before, 10000);
    else
        WAIT_UNTIL(gc_test_waiting_receivers(ch) > before, 10000);
    gc_test_wait_asleep(&p->ktid);
}

/* A call started at t0 that gave up at its deadline gave up no earlier,
 * and not absurdly later: the upper bound only catches "never woke up"
 * (10x and more). */
static inline void
gc_test_check_elapsed(int64_t t0, int64_t deadline)
{
    int64_t t1 = gc_now_ns();
    CHECK(t1 >= deadline);
    CHECK(t1 - t0 < 20 * (deadline - t0) + 500 * GC_MS);
}

/* A blocking call with a deadline gives up no earlier than the deadline
 * (and not absurdly later) and leaves nothing registered. */
static inline void
gc_test_check_times_out(gc_chan *ch, int dir, int64_t timeout_ns)
{
    int64_t t0 = gc_now_ns();
    int64_t deadline = t0 + timeout_ns;
    void *item = (void *)(uintptr_t)3;
    gc_status st = dir == GC_SEND
                       ? gc_chan_send(ch, (void *)(uintptr_t)4, deadline, NULL)
                       : gc_chan_recv(ch, &item, deadline, NULL);
    CHECK_ST(st, GC_TIMEOUT);
    gc_test_check_elapsed(t0, deadline);
    CHECK_EQ(gc_test_waiting_senders(ch), 0);
    CHECK_EQ(gc_test_waiting_receivers(ch), 0);
}

/* Join the thread and return the status of its call. */
static inline gc_status
gc_test_op_join(gc_test_op *op)
{
    gc_test_join(op->tid);
    CHECK(atomic_load(&op->done));
    return op->st;
}

/* Start a blocking operation (no deadline) and wait until it is
 * registered on ch. */
static inline void
gc_test_op_start_blocked(gc_test_op *op, gc_chan *ch, int dir, void *item)
{
    size_t before = dir == GC_SEND ? gc_test_waiting_senders(ch)
                                   : gc_test_waiting_receivers(ch);
    gc_test_op_start(op, ch, dir, item, GC_FOREVER);
    if (dir == GC_SEND)
        WAIT_UNTIL(gc_test_waiting_senders(ch) > before, 10000);
    else
        WAIT_UNTIL(gc_test_waiting_receivers(ch) > before, 10000);
}

/* ---- a small per-thread random source (xorshift64*) ---- */

static inline uint64_t
gc_test_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15u;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Du;
}

/* ---- select by hand ---- */

/* What the binding's select does: poll the cases (starting at a random
 * one unless `biased`), and if none can proceed, wait on all of them and
 * poll again.  A case with ch == NULL is skipped.  Returns GC_OK with
 * *index the case that completed (a receive's value in cases[*index].item),
 * GC_CLOSED with *index the closed case (a send's value stays with the
 * caller), GC_TIMEOUT when the deadline passed first, or GC_INTR.
 *
 * gc_wait registers the cases in array order and a peer completes the
 * oldest entry of a queue, so when two cases sit on one channel the lower
 * index would always win a peer that arrives later.  An unbiased select
 * therefore hands gc_wait its cases rotated by a random amount (Go gets
 * the same effect from its random lock order).
 *
 * A GC_RETRY that a peer's notification caused must not be dropped: if
 * gc_wait names the case it was (*index < n), that case is polled first,
 * so a select cannot leave by another case while the notified value stays
 * in a buffer with other receivers asleep. */
#define GC_TEST_SELECT_MAX 8

static inline gc_status
gc_test_select(gc_case *cases, size_t n, int64_t deadline, size_t *index,
               int biased, uint64_t *rng)
{
    CHECK(n <= GC_TEST_SELECT_MAX);
    size_t notified = SIZE_MAX;
    for (;;) {
        size_t start = (biased || n == 0) ? 0 : gc_test_rand(rng) % n;
        if (notified < n)
            start = notified;
        for (size_t k = 0; k < n; k++) {
            size_t i = (start + k) % n;
            gc_case *c = &cases[i];
            if (c->ch == NULL)
                continue;
            gc_status st = c->dir == GC_SEND
                               ? gc_chan_try_send(c->ch, c->item)
                               : gc_chan_try_recv(c->ch, &c->item);
            if (st == GC_OK || st == GC_CLOSED) {
                *index = i;
                return st;
            }
            CHECK_ST(st, GC_WOULDBLOCK);
        }
        if (deadline != GC_FOREVER && gc_now_ns() >= deadline)
            return GC_TIMEOUT;
        gc_case rotated[GC_TEST_SELECT_MAX];
        size_t shift = (biased || n == 0) ? 0 : gc_test_rand(rng) % n;
        for (size_t k = 0; k < n; k++)
            rotated[k] = cases[(shift + k) % n];
        size_t idx = SIZE_MAX;
        gc_status st = gc_wait(rotated, n, deadline, &idx, NULL);
        if (st == GC_OK) {
            CHECK(idx < n);
            CHECK(rotated[idx].ch != NULL);
            idx = (shift + idx) % n;
            cases[idx].item = rotated[(idx + n - shift) % n].item;
            *index = idx;
            return GC_OK;
        }
        if (st == GC_TIMEOUT || st == GC_INTR)
            return st;
        CHECK_ST(st, GC_RETRY);
        notified = idx < n ? (shift + idx) % n : SIZE_MAX;
    }
}

/* GC_STRESS_SCALE (default 1) multiplies iteration counts. */
static inline double
gc_test_scale(void)
{
    const char *env = getenv("GC_STRESS_SCALE");
    double s = env ? atof(env) : 1.0;
    return s > 0 ? s : 1.0;
}

#endif /* GC_TEST_H */
