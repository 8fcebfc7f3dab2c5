/* gc_dispatch.h - hand work from threads that may not run it to one that
 * may.
 *
 * The timer thread (and a context's cancel()) must never take a binding's
 * lock (the GIL), yet some of what they trigger has to run under it: a
 * callable given to after_func.  They push a gc_task here; one dispatcher
 * thread of the binding pops tasks with its lock held and runs them.
 *
 * Invariants:
 *   - a task is on the queue at most once, from gc_dispatch_push until a
 *     gc_dispatch_pop returns it; the queue's lock protects the links;
 *   - tasks are popped in the order pushed;
 *   - push never blocks for longer than a leaf lock, never allocates, and
 *     may be called from any thread holding any core lock except the
 *     queue's own.
 */
#ifndef GC_DISPATCH_H
#define GC_DISPATCH_H

#include "gc_chan.h"

typedef struct gc_task {
    struct gc_task *next;          /* link on the queue (queue's lock) */
    void (*run)(struct gc_task *); /* called by the dispatcher thread */
} gc_task;

/* Queue t to be run by the dispatcher and wake it.  The task's memory must
 * stay valid until run() is called. */
void gc_dispatch_push(gc_task *t);

/* Wait for a task until `deadline`, letting go of the caller's lock (`u`,
 * may be NULL) while waiting, as gc_wait does.  GC_OK with *out set,
 * GC_TIMEOUT, or GC_INTR (a signal arrived; call again). */
gc_status gc_dispatch_pop(gc_task **out, int64_t deadline, const gc_unlock *u);

/* Tasks queued and not yet popped (a gauge, for tests). */
size_t gc_dispatch_pending(void);

#endif /* GC_DISPATCH_H */
