/* gc_platform.c - clock, parking and CPU facts (see gc_platform.h). */
#include "gc_platform.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#if defined(__linux__) && !defined(GC_NO_FUTEX)
#define GC_USE_FUTEX 1
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#ifdef GC_TSAN
_Atomic unsigned gc_fence_word;
#endif

int64_t
gc_now_ns(void)
{
    /* uv_hrtime() reads CLOCK_MONOTONIC on Linux, the clock of
     * time.monotonic() and of the futex deadlines below. */
    return (int64_t)uv_hrtime();
}

int64_t
gc_deadline_after(int64_t timeout_ns)
{
    int64_t now = gc_now_ns();
    if (timeout_ns <= 0) {
        return now;
    }
    if (timeout_ns >= GC_FOREVER - now) {
        return GC_FOREVER;
    }
    return now + timeout_ns;
}

static _Atomic unsigned fork_generation;
static uv_once_t fork_once = UV_ONCE_INIT;
/* Read-held by threads inside gc_fork_guard_enter/exit, write-held by the
 * forking thread across fork(). */
static uv_rwlock_t fork_guard;

static void
fork_prepare(void)
{
    uv_rwlock_wrlock(&fork_guard);
}

static void
fork_parent(void)
{
    uv_rwlock_wrunlock(&fork_guard);
}

static void
fork_child(void)
{
    /* The child's only thread is the one that took the guard, but the
     * lock's copy may still count parent threads that were queued for it
     * (they do not exist here and would never let go): start afresh
     * rather than unlock.  The old lock is abandoned, not destroyed:
     * destroying a lock with waiters is undefined. */
    uv_rwlock_init(&fork_guard);
    /* relaxed: the child has one thread right now. */
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void
fork_watch(void)
{
    uv_rwlock_init(&fork_guard);
#ifndef _WIN32
    pthread_atfork(fork_prepare, fork_parent, fork_child);
#endif
}

unsigned
gc_fork_generation(void)
{
    uv_once(&fork_once, fork_watch);
    /* relaxed: changes only in a child's single thread, before any other
     * thread exists there. */
    return atomic_load_explicit(&fork_generation, memory_order_relaxed);
}

void
gc_fork_guard_enter(void)
{
    uv_once(&fork_once, fork_watch);
    uv_rwlock_rdlock(&fork_guard);
}

void
gc_fork_guard_exit(void)
{
    uv_rwlock_rdunlock(&fork_guard);
}

int
gc_ncpu(void)
{
    static _Atomic int cached = 0;
    /* relaxed: any thread computes the same value; a race only repeats
     * the call. */
    int n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (n == 0) {
        n = (int)uv_available_parallelism();
        if (n < 1) {
            n = 1;
        }
        atomic_store_explicit(&cached, n, memory_order_relaxed);
    }
    return n;
}

/* gochan threads spinning now, by kind. */
#define GC_SPIN_CAP_TRIES 64
static _Atomic int spinning[2];

/* Samples of "runnable threads other than our spinners and the reader". */
#define GC_LOAD_SAMPLES   8
#define GC_LOAD_PERIOD_NS 2000000
static _Atomic int load_samples[GC_LOAD_SAMPLES];
static _Atomic unsigned load_next;
static _Atomic int64_t load_read_at = INT64_MIN / 2;

#ifdef __linux__
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* The first number of /proc/loadavg's fourth field: threads runnable now,
 * the caller included; -1 if unknown. */
static int
runnable_now(void)
{
    char buf[128];
    int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    int fields = 0;
    for (char *p = buf; *p; p++) {
        if (*p == ' ' && ++fields == 3) {
            return atoi(p + 1);
        }
    }
    return -1;
}
#else
static int
runnable_now(void)
{
    return -1;
}
#endif

/* Estimated runnable threads that are not ours to stop: see
 * gc_spin_begin's comment in the header.  Relaxed throughout: a heuristic;
 * a stale or racy view changes only whether someone spins. */
static int
other_demand(void)
{
    int64_t now = gc_now_ns();
    int64_t at = atomic_load_explicit(&load_read_at, memory_order_relaxed);
    if (now - at >= GC_LOAD_PERIOD_NS &&
        atomic_compare_exchange_strong_explicit(&load_read_at, &at, now,
                                                memory_order_relaxed,
                                                memory_order_relaxed)) {
        int running = runnable_now();
        if (running >= 0) {
            int ours =
                atomic_load_explicit(&spinning[0], memory_order_relaxed) +
                atomic_load_explicit(&spinning[1], memory_order_relaxed) + 1;
            int others = running > ours ? running - ours : 0;
            unsigned i =
                atomic_fetch_add_explicit(&load_next, 1, memory_order_relaxed);
            atomic_store_explicit(&load_samples[i % GC_LOAD_SAMPLES], others,
                                  memory_order_relaxed);
        }
    }
    int least = INT32_MAX;
    for (int i = 0; i < GC_LOAD_SAMPLES; i++) {
        int v = atomic_load_explicit(&load_samples[i], memory_order_relaxed);
        least = v < least ? v : least;
    }
    return least;
}

int
gc_spin_begin(int kind)
{
    int ncpu = gc_ncpu();
    if (ncpu < 2) {
        return 0;
    }
    /* At most CPUs - 1 spinners, leaving a CPU for the GIL holder.  The
     * spinner that handed over to us is often still counted for the few
     * hundred nanoseconds it takes to notice: allow for that before giving
     * up.  relaxed: a gauge; one spinner too many is harmless. */
    for (int i = 0;; i++) {
        int n = atomic_load_explicit(&spinning[0], memory_order_relaxed) +
                atomic_load_explicit(&spinning[1], memory_order_relaxed);
        if (n < ncpu - 1) {
            break;
        }
        if (i == GC_SPIN_CAP_TRIES) {
            return 0;
        }
        gc_cpu_relax();
    }
    /* Room for the GIL holder and for this spinner? */
    if (other_demand() + 2 > ncpu) {
        return 0;
    }
    atomic_fetch_add_explicit(&spinning[kind], 1, memory_order_relaxed);
    return 1;
}

void
gc_spin_end(int kind)
{
    atomic_fetch_sub_explicit(&spinning[kind], 1, memory_order_relaxed);
}

void
gc_backoff(unsigned *step)
{
    /* A peer holds a slot mid-operation; it finishes within a few
     * instructions unless it was preempted, in which case spinning longer
     * only burns the CPU it needs, so yield after a short while. */
    if (*step < 6) {
        for (unsigned i = 0; i < (1u << *step); i++) {
            gc_cpu_relax();
        }
        (*step)++;
    }
    else {
        sched_yield();
    }
}

#ifdef GC_USE_FUTEX

gc_status
gc_park(gc_parkword *word, uint32_t expected, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != GC_FOREVER) {
        if (deadline < 0) {
            deadline = 0;
        }
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
     * retry after EINTR keeps the original deadline. */
    long r = syscall(SYS_futex, (uint32_t *)word,
                     FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tsp,
                     NULL, FUTEX_BITSET_MATCH_ANY);
    if (r == 0) {
        return GC_OK;
    }
    switch (errno) {
    case ETIMEDOUT:
        return GC_TIMEOUT;
    case EINTR:
        return GC_INTR;
    case EAGAIN: /* the word already changed */
        return GC_OK;
    default: {
        /* No futex (seccomp, an odd kernel): rest a little so that the
         * caller's recheck loop polls instead of spinning flat out. */
        struct timespec rest = {0, 1000000};
        nanosleep(&rest, NULL);
        return GC_OK;
    }
    }
}

void
gc_unpark(gc_parkword *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
            INT32_MAX, NULL, NULL, 0);
}

#else /* portable fallback: one condition variable for all parked threads */

static uv_once_t park_once = UV_ONCE_INIT;
static uv_mutex_t park_mutex;
static uv_cond_t park_cond;

static void
park_init(void)
{
    uv_mutex_init(&park_mutex);
    uv_cond_init(&park_cond);
}

/* Without a wait that returns on signals, wake at this period so that the
 * caller can look for them. */
#define GC_PARK_POLL_NS 20000000

gc_status
gc_park(gc_parkword *word, uint32_t expected, int64_t deadline)
{
    gc_status st = GC_OK;
    uv_once(&park_once, park_init);
    uv_mutex_lock(&park_mutex);
    /* seq_cst: pairs with the store the waker makes before gc_unpark,
     * which takes park_mutex before broadcasting. */
    if (atomic_load(word) == expected) {
        int64_t now = gc_now_ns();
        int64_t wait =
            deadline == GC_FOREVER ? GC_PARK_POLL_NS : deadline - now;
        if (wait <= 0) {
            st = GC_TIMEOUT;
        }
        else {
            int poll = wait > GC_PARK_POLL_NS;
            if (poll) {
                wait = GC_PARK_POLL_NS;
            }
            if (uv_cond_timedwait(&park_cond, &park_mutex, (uint64_t)wait) ==
                UV_ETIMEDOUT) {
                st = poll ? GC_INTR : GC_TIMEOUT;
            }
        }
    }
    uv_mutex_unlock(&park_mutex);
    return st;
}

void
gc_unpark(gc_parkword *word)
{
    (void)word;
    uv_once(&park_once, park_init);
    uv_mutex_lock(&park_mutex);
    uv_cond_broadcast(&park_cond);
    uv_mutex_unlock(&park_mutex);
}

#endif
