/* gc_ctx.h - contexts: cancellation tokens arranged in trees.
 *
 * A context is cancelled once, by cancel(), by its deadline, or by the
 * cancellation of its parent, which reaches every descendant.  Whoever
 * waits for that waits on its done channel: a channel that nobody sends on
 * and that cancel() closes, so every blocking call takes it as one more
 * receive case (gc_chan_op, gc_wait) and wakes when it is closed.
 *
 * Ownership:
 *   - a context is reference counted; a child holds a reference to its
 *     parent, never the other way round: a parent lists its children
 *     weakly, and a child leaves that list when it is cancelled or freed,
 *     so a long-lived parent does not grow with short-lived children;
 *   - a deadline is one timer of the runtime's timer thread (gc_timer.h);
 *     the timer does not keep its context alive, so a context that nobody
 *     references any more is freed (and unlinked) at once even with its
 *     deadline far ahead;
 *   - the done channel belongs to the context and lives as long as it.
 *
 * The core does not know what a cause is.  It records, for each cancelled
 * context, the context whose cancellation it was (cause_src: itself, or the
 * ancestor whose cancel() or deadline reached it), and the binding keeps
 * the cause object next to that context.
 */
#ifndef GC_CTX_H
#define GC_CTX_H

#include "gc_chan.h"

typedef struct gc_ctx gc_ctx;

/* States of a context: one transition from ACTIVE, never back. */
enum {
    GC_CTX_ACTIVE = 0,           /* not cancelled */
    GC_CTX_CANCELLED = 1,        /* cancel() (its own or an ancestor's) */
    GC_CTX_DEADLINE_EXCEEDED = 2 /* the deadline (its own or inherited) */
};

/* A callback run once when a context is cancelled: embedded in its owner,
 * registered with gc_ctx_notify_add.  fn(node) runs on the cancelling
 * thread (which may be the timer thread) outside every lock, so it must be
 * short and must not take the binding's lock: the binding's after_func
 * only queues a task (gc_dispatch.h). */
typedef struct gc_ctx_notify {
    struct gc_ctx_notify *prev; /* neighbours while registered (the
                                 * context's lock); prev is NULL when not */
    struct gc_ctx_notify *next;
    void (*fn)(struct gc_ctx_notify *node);
} gc_ctx_notify;

/* A new context, child of `parent` (NULL for a root that only its own
 * cancel() and deadline can cancel), with the deadline `deadline`
 * (absolute monotonic ns; GC_FOREVER for none).  Its effective deadline is
 * the earlier of that and its parent's.  A parent already cancelled gives
 * a child already cancelled the same way; a deadline already past gives a
 * context already in GC_CTX_DEADLINE_EXCEEDED.  The caller owns the one
 * reference returned.  NULL when out of memory. */
gc_ctx *gc_ctx_new(gc_ctx *parent, int64_t deadline);

void gc_ctx_incref(gc_ctx *c);
/* Drop a reference; the last one unlinks the context from its parent and
 * frees it (and then drops its reference to the parent: a chain is freed
 * without recursion).  Callbacks still registered are never run. */
void gc_ctx_decref(gc_ctx *c);

/* Cancel c with `reason` (GC_CTX_CANCELLED or GC_CTX_DEADLINE_EXCEEDED),
 * then each of its descendants that is still active, with the same reason
 * and cause_src c; close their done channels; run their callbacks.  Returns
 * when all of that is done: 1 if this call cancelled c, 0 if something
 * else already had.  Thread-safe; no recursion whatever the depth. */
int gc_ctx_cancel(gc_ctx *c, int reason);

/* The state of c: one atomic load while it is active without a deadline.
 * With a deadline that has passed it cancels c's subtree (from the
 * ancestor that owns that deadline) itself rather than wait for the timer
 * thread, so a deadline is exact to the caller's clock.  Once this returns
 * a state other than ACTIVE, c's done channel is closed. */
int gc_ctx_err(gc_ctx *c);

/* The state without looking at the clock: one atomic load. */
int gc_ctx_state(const gc_ctx *c);

/* The done channel (capacity 0, never sent on, closed on cancellation). */
gc_chan *gc_ctx_done(const gc_ctx *c);

/* The effective deadline (GC_FOREVER: none).  Fixed at creation. */
int64_t gc_ctx_deadline(const gc_ctx *c);

/* The context whose cancellation cancelled c (c itself when cancelled
 * directly or by its own deadline), or NULL while c is active.  It is c or
 * one of its ancestors, so it lives as long as c. */
gc_ctx *gc_ctx_cause_src(const gc_ctx *c);

/* The parent given to gc_ctx_new (NULL for a root). */
gc_ctx *gc_ctx_parent(const gc_ctx *c);

/* Children linked now (for tests: it stays small when children are
 * cancelled or freed). */
size_t gc_ctx_children(gc_ctx *c);

/* Callbacks.  init prepares a node; add registers it: 1, or 0 when c is
 * already cancelled (then nothing is registered and fn will not be called
 * for it: the caller acts at once).  remove unregisters it: 1 if it was
 * registered (fn will not be called), 0 if it was not (fn has been called
 * or is being called, or the node was never added or already removed).
 * The caller keeps c alive while a node is registered, and the node itself
 * valid until fn(node) has been called: after a remove() that says 0, the
 * cancelling thread may not have read the node yet (it reads fn from it
 * and then calls it).  Nor may a node be added again before its fn ran. */
void gc_ctx_notify_init(gc_ctx_notify *node, void (*fn)(gc_ctx_notify *));
int gc_ctx_notify_add(gc_ctx *c, gc_ctx_notify *node);
int gc_ctx_notify_remove(gc_ctx *c, gc_ctx_notify *node);

#endif /* GC_CTX_H */
