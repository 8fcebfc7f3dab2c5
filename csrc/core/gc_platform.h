/* gc_platform.h - the seam between the core and the operating system.
 *
 * libuv supplies what is portable (mutexes, the monotonic clock, CPU
 * count).  Parking is done here: on Linux a futex wait with an absolute
 * CLOCK_MONOTONIC deadline that returns on signals; elsewhere a
 * condition variable that wakes every few milliseconds so that the caller
 * can look for signals.
 */
#ifndef GC_PLATFORM_H
#define GC_PLATFORM_H

#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "gc_base.h"

/* A leaf lock: never call out, free memory or wake a thread holding it. */
typedef uv_mutex_t gc_mutex;

static inline int
gc_mutex_init(gc_mutex *m)
{
    return uv_mutex_init(m);
}
static inline void
gc_mutex_destroy(gc_mutex *m)
{
    uv_mutex_destroy(m);
}
static inline void
gc_mutex_lock(gc_mutex *m)
{
    uv_mutex_lock(m);
}
static inline void
gc_mutex_unlock(gc_mutex *m)
{
    uv_mutex_unlock(m);
}

/* A parking word: a thread sleeps while *word == expected. */
typedef _Atomic uint32_t gc_parkword;

/* Sleep while *word == expected, until woken, the deadline passes, or a
 * signal arrives.  Returns GC_OK (woken or spurious: recheck the word),
 * GC_TIMEOUT or GC_INTR. */
gc_status gc_park(gc_parkword *word, uint32_t expected, int64_t deadline);

/* Wake every thread parked on word. */
void gc_unpark(gc_parkword *word);

/* The fork generation: 0 in the first process, one more in each child
 * after fork().  Threads do not survive a fork; whatever records one
 * (a waiter's queue entry) records the generation it was made in, so that
 * a child can tell the waiters of threads that no longer exist. */
unsigned gc_fork_generation(void);

/* A thread that takes core locks without its caller's lock (the GIL)
 * brackets that with these, so that fork() waits for it: a lock held at
 * the moment of a fork would stay held for ever in the child. */
void gc_fork_guard_enter(void);
void gc_fork_guard_exit(void);

/* Number of CPUs this process may run on (at least 1). */
int gc_ncpu(void);

/* May the calling thread spin now?  Only while spinning takes no CPU that
 * another runnable thread needs.  On Linux the count of runnable threads in
 * /proc/loadavg is sampled every few milliseconds; less our own spinners
 * and the reader it is what else wants a CPU (the thread holding the GIL,
 * other processes), and its minimum over the recent samples estimates the
 * demand that does not come and go with our own hand-offs.  Spinning is
 * allowed while that demand leaves a CPU for the spinner besides one for
 * the GIL holder, and at most CPUs - 1 threads spin at once.  A "waiter"
 * spins before parking; an "aspirant" has been woken and spins until the
 * GIL is let go.  A 1 from gc_spin_begin must be paired with gc_spin_end
 * of the same kind. */
enum { GC_SPIN_WAITER = 0, GC_SPIN_ASPIRANT = 1 };
int gc_spin_begin(int kind);
void gc_spin_end(int kind);

/* Tell the CPU we are spinning. */
static inline void
gc_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* A full (seq_cst) fence.  ThreadSanitizer does not model fences, so its
 * builds use a seq_cst read-modify-write of a shared word instead, which
 * is a full barrier on the hardware and an operation TSan understands. */
#if defined(__SANITIZE_THREAD__)
#define GC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GC_TSAN 1
#endif
#endif
#ifdef GC_TSAN
extern _Atomic unsigned gc_fence_word;
#define gc_fence() \
    ((void)atomic_fetch_add_explicit(&gc_fence_word, 0, memory_order_seq_cst))
#else
#define gc_fence() atomic_thread_fence(memory_order_seq_cst)
#endif

/* Back off inside a lock-free retry loop (a peer is mid-operation). */
void gc_backoff(unsigned *step);

#endif /* GC_PLATFORM_H */
