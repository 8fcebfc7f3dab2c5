/* gc_timer.h - the runtime's timers: one timer thread per process, a 4-ary
 * min-heap of deadlines, and the channel timers built on it (after, Timer,
 * Ticker).
 *
 * A gc_timer is embedded in its owner.  The owner starts and stops it
 * holding its own lock; the timer thread pops every due timer, records its
 * seq, lets go of the heap lock and calls fire(t, seq, now).  The owner
 * takes its own lock there and ignores a call whose seq is not t->seq any
 * more: the timer was stopped or restarted after the thread popped it.
 *
 * Lifetime: an owner outlives its timer while it is in the heap and while
 * a fire is in flight.  The owner holds one reference "for the heap": taken
 * when gc_timer_start reports it was not pending (before the owner lets go
 * of its lock: the fire may run as soon as it does), dropped at the end of
 * the fire callback, or by the caller of gc_timer_stop when it returns 1.
 *
 * Locks: the heap lock is a leaf below every owner's lock; fire is never
 * called under it, and a fire callback may call gc_timer_start/stop (a
 * ticker re-arms).  The timer thread never runs binding code (no GIL).
 */
#ifndef GC_TIMER_H
#define GC_TIMER_H

#include <stdatomic.h>
#include <stdint.h>

#include "gc_chan.h"
#include "gc_dispatch.h"
#include "gc_platform.h"

typedef struct gc_timer gc_timer;
typedef void (*gc_timer_fn)(gc_timer *t, uint64_t seq, int64_t now);

struct gc_timer {     /* embedded in its owner; private to gc_timer.c
                       * except as stated */
    int64_t when;     /* deadline, monotonic ns (heap lock) */
    size_t pos;       /* heap position + 1; 0 when not in the heap (heap
                       * lock) */
    uint64_t seq;     /* changed by every start and stop; the owner reads
                       * it under its own lock */
    gc_timer_fn fire; /* called by the timer thread, without the heap lock */
};

void gc_timer_init(gc_timer *t, gc_timer_fn fire);

/* Schedule t to fire at `when` (absolute, monotonic ns), moving it if it
 * is pending.  The owner calls it holding its own lock.  *was_pending (may
 * be NULL) tells whether it was in the heap.  GC_OK or GC_NOMEM (heap
 * growth; t is then left as it was). */
gc_status gc_timer_start(gc_timer *t, int64_t when, int *was_pending);

/* Take t out of the heap; 1 if it was there.  Changes t->seq, so that a
 * fire already popped by the timer thread (in flight) sees that it is
 * stale.  Owner's lock held. */
int gc_timer_stop(gc_timer *t);

/* Sleep until `deadline` or until `cancel` (a channel closed to cancel, or
 * NULL) is closed, letting go of the caller's lock as gc_wait does: GC_OK
 * (slept), GC_CANCELLED, GC_INTR (a signal; call again to go on). */
gc_status gc_sleep_until(int64_t deadline, gc_chan *cancel,
                         const gc_unlock *u);

/* In a child after fork(): the timer thread is gone.  Restart it now if
 * timers are pending (else the next gc_timer_start does).  Also done by
 * the core's own atfork handler; calling it again is harmless. */
void gc_timer_after_fork(void);

/* Timers in the heap now (a gauge, for tests and statistics). */
size_t gc_timer_pending_count(void);

/* Check the heap's invariants (order, positions); 1 if they hold.  For
 * tests. */
int gc_timer_heap_check(void);

/* ---- channel timers: after(), Timer, Ticker ---- */

typedef struct gc_chantimer gc_chantimer;

/* A timer with a channel of capacity 1 that it sends its firing time on
 * (gc_item_from_time).  period 0: one-shot, fires once at `when`; else a
 * ticker, first at `when`, then at every multiple of `period` after it
 * that comes after the previous send (ticks missed while the channel is
 * full are dropped).  Refcounted: the creator holds one reference; the
 * timer holds one while armed.  NULL when out of memory. */
gc_chantimer *gc_chantimer_new(int64_t when, int64_t period);

/* Like gc_chantimer_new but with the timer not armed (a Timer built
 * stopped, to be armed by gc_chantimer_reset). */
gc_chantimer *gc_chantimer_new_stopped(int64_t period);

void gc_chantimer_incref(gc_chantimer *ct);
void gc_chantimer_decref(gc_chantimer *ct);

/* The channel (owned by the chantimer; freed with it). */
gc_chan *gc_chantimer_chan(gc_chantimer *ct);

/* The deadline of the next send (GC_FOREVER when not armed). */
int64_t gc_chantimer_when(gc_chantimer *ct);

/* Disarm and drain the channel.  1 if the timer was pending: armed, or
 * fired with its value still unreceived (Go 1.23). */
int gc_chantimer_stop(gc_chantimer *ct);

/* Disarm, drain, and arm again for `when`, with a new period (0 for
 * one-shot; a ticker keeps its kind).  *was_pending as for stop.  GC_OK or
 * GC_NOMEM. */
gc_status gc_chantimer_reset(gc_chantimer *ct, int64_t when, int64_t period,
                             int *was_pending);

#endif /* GC_TIMER_H */
