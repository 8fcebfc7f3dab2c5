/* gc_base.h - vocabulary shared by every file of the core.
 *
 * The core knows nothing of Python.  Payloads are `void *`, deadlines are
 * absolute monotonic nanoseconds, and every operation answers with a
 * gc_status.  Ownership of a payload moves with it: a successful send moves
 * the caller's reference into the channel, a successful receive moves it
 * out, and a send that fails leaves it with the caller.
 */
#ifndef GC_BASE_H
#define GC_BASE_H

#include <stddef.h>
#include <stdint.h>

typedef enum gc_status {
    GC_OK = 0,     /* the operation completed */
    GC_WOULDBLOCK, /* it cannot complete without waiting */
    GC_CLOSED,     /* the channel is closed (and, for a receive, drained) */
    GC_TIMEOUT,    /* the deadline passed first */
    GC_CANCELLED,  /* a cancellation token fired first */
    GC_INTR,       /* a signal arrived; the wait was withdrawn */
    GC_NOMEM,      /* memory could not be allocated */
    GC_RETRY       /* woken because the state changed: try again */
} gc_status;

/* A deadline meaning "wait forever". */
#define GC_FOREVER INT64_MAX

/* Monotonic clock in nanoseconds (the clock of time.monotonic()). */
int64_t gc_now_ns(void);

/* Absolute deadline for a relative timeout in nanoseconds, saturating at
 * GC_FOREVER. */
int64_t gc_deadline_after(int64_t timeout_ns);

/* Immediate values.  A payload whose lowest bit is set is not a pointer
 * but a timestamp (monotonic ns, shifted left by one) that the core's
 * timers send; payload pointers are always even.  A binding converts it
 * when it hands a received value to its caller and never frees it. */
static inline void *
gc_item_from_time(int64_t ns)
{
    return (void *)(((uintptr_t)ns << 1) | 1u);
}

static inline int
gc_item_is_time(const void *item)
{
    return ((uintptr_t)item & 1u) != 0;
}

static inline int64_t
gc_item_time(const void *item)
{
    return (int64_t)((uintptr_t)item >> 1);
}

#endif /* GC_BASE_H */
