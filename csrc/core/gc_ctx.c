/* gc_ctx.c - contexts (see gc_ctx.h for the contract).
 *
 * Each context has a lock that protects its list of children, the
 * `linked` flag and sibling links of those children, its list of
 * callbacks, and the moment it leaves ACTIVE.  Cancelling one takes its
 * lock, moves it out of ACTIVE, takes its whole children list and callback
 * list, and lets go; everything else (closing the done channel, running
 * the callbacks, cancelling the children, leaving the parent's list)
 * happens without that lock.  Children are cancelled from a work list, not
 * by recursion, so a chain of any depth costs no stack.
 *
 * Invariants:
 *   - locks: a thread holds at most one context lock at a time, and
 *     besides it may take only leaf locks below it (a timer box's lock,
 *     which may take the timer heap's lock; a channel's lock through
 *     gc_chan_close happens with no context lock held);
 *   - `state` leaves ACTIVE once, under the lock, after `cause_src` has
 *     been written (release store; readers load it with acquire);
 *   - a child is on its parent's list exactly while child->linked is 1;
 *     both are changed only under the parent's lock.  A child whose last
 *     reference is gone (refs == 0) may still be on the list until it
 *     takes the parent's lock to leave: whoever walks the list under that
 *     lock may take a reference to a child only with try_incref;
 *   - a child taken off the list by its parent's cancellation (linked set
 *     to 0, a reference taken) belongs to that cancellation's work list,
 *     which reuses its `sib_next` link; nobody else touches the sibling
 *     links of a child that is not linked;
 *   - a callback node is registered exactly while node->prev != NULL;
 *     cancellation sets prev to NULL for each node it takes, under the
 *     lock, so a remove() that finds prev NULL knows fn is being called;
 *   - the timer box outlives the context: the context and the timer heap
 *     each hold a reference to it; its `ctx` is cleared (under its lock)
 *     before the context is freed, and a fire takes a reference to the
 *     context only with try_incref, under that lock;
 *   - `timer` is set before the context is linked to its parent (a
 *     cancellation coming down reads it from then on) and never changes
 *     once the context is shared; the timer is armed after linking, and
 *     stopped again at once if a cancellation reached it meanwhile.
 */
#include "gc_ctx.h"

#include <stdlib.h>

#include "gc_timer.h"

/* The timer of a context with its own deadline.  Separate from the
 * context so that the timer does not keep the context alive: a fire in
 * flight may outlive the context, never the box. */
typedef struct ctx_timer {
    gc_timer tm;         /* first: a fire finds its box from it */
    gc_mutex lock;       /* the timer's owner lock; protects ctx */
    gc_ctx *ctx;         /* the context; NULL once it is being freed */
    _Atomic size_t refs; /* the context's, plus one while in the heap */
} ctx_timer;

struct gc_ctx {
    _Atomic int state;    /* GC_CTX_*: ACTIVE until cancelled */
    _Atomic size_t refs;  /* references; 0: being freed */
    gc_mutex lock;        /* see the invariants above */
    gc_chan *done;        /* closed once cancelled */
    gc_ctx *parent;       /* counted reference, or NULL */
    gc_ctx *cause_src;    /* set once with state (see above) */
    int64_t deadline;     /* effective deadline; fixed at creation */
    ctx_timer *timer;     /* own deadline's timer, or NULL; fixed
                           * before linking (see the invariants) */
    gc_ctx *children;     /* first linked child (lock) */
    size_t nchildren;     /* children linked (lock) */
    gc_ctx *sib_prev;     /* neighbours on the parent's list (the */
    gc_ctx *sib_next;     /*   parent's lock), or the work list link */
    int linked;           /* on the parent's list (the parent's lock) */
    gc_ctx_notify notify; /* sentinel of the circular callback list */
};

/* ---- references ----------------------------------------------------------
 */

void
gc_ctx_incref(gc_ctx *c)
{
    /* relaxed: the caller already holds a reference (nothing to order). */
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* Take a reference to a context only reachable through a weak link (a
 * parent's list, a timer box), under the lock that protects that link:
 * fails once the count is 0, as the context is then being freed. */
static int
try_incref(gc_ctx *c)
{
    /* relaxed load: only a first guess for the CAS. */
    size_t n = atomic_load_explicit(&c->refs, memory_order_relaxed);
    while (n != 0) {
        /* acquire: pairs with the release part of a decref, so that what
         * the last holder wrote is visible to the new one. */
        if (atomic_compare_exchange_weak_explicit(&c->refs, &n, n + 1,
                                                  memory_order_acquire,
                                                  memory_order_relaxed)) {
            return 1;
        }
    }
    return 0;
}

static void
box_decref(ctx_timer *box)
{
    /* acq_rel: the last one sees every write of the others. */
    if (atomic_fetch_sub_explicit(&box->refs, 1, memory_order_acq_rel) == 1) {
        gc_mutex_destroy(&box->lock);
        free(box);
    }
}

/* Take c off its parent's list, if it is still on it. */
static void
unlink_from_parent(gc_ctx *c)
{
    gc_ctx *p = c->parent;
    if (p == NULL) {
        return;
    }
    gc_mutex_lock(&p->lock);
    if (c->linked) {
        if (c->sib_prev != NULL) {
            c->sib_prev->sib_next = c->sib_next;
        }
        else {
            p->children = c->sib_next;
        }
        if (c->sib_next != NULL) {
            c->sib_next->sib_prev = c->sib_prev;
        }
        c->sib_prev = c->sib_next = NULL;
        c->linked = 0;
        p->nchildren--;
    }
    gc_mutex_unlock(&p->lock);
}

/* Stop c's timer if it is still pending (no effect from inside a fire). */
static void
stop_timer(gc_ctx *c, int forget)
{
    ctx_timer *box = c->timer;
    if (box == NULL) {
        return;
    }
    gc_mutex_lock(&box->lock);
    if (forget) {
        box->ctx = NULL;
    }
    int was_in_heap = gc_timer_stop(&box->tm);
    gc_mutex_unlock(&box->lock);
    if (was_in_heap) {
        box_decref(box); /* the heap's reference */
    }
}

void
gc_ctx_decref(gc_ctx *c)
{
    /* A chain whose links each hold the only reference to the next is
     * freed link by link in this loop, not by recursion. */
    while (c != NULL) {
        /* acq_rel: the thread that frees sees every other holder's
         * writes (release), and they happen before the free (acquire). */
        if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) !=
            1) {
            return;
        }
        gc_ctx *parent = c->parent;
        unlink_from_parent(c);
        if (c->timer != NULL) {
            stop_timer(c, 1);
            box_decref(c->timer); /* the context's reference */
        }
        gc_chan_free(c->done, NULL, NULL);
        gc_mutex_destroy(&c->lock);
        free(c);
        c = parent;
    }
}

/* ---- cancellation --------------------------------------------------------
 */

/* Cancel c alone, if it is active: state, children taken onto *work (each
 * with a reference), done channel closed, callbacks run.  1 if this call
 * cancelled it. */
static int
cancel_one(gc_ctx *c, int reason, gc_ctx *src, gc_ctx **work)
{
    gc_mutex_lock(&c->lock);
    /* relaxed: written only under the lock, which we hold. */
    if (atomic_load_explicit(&c->state, memory_order_relaxed) !=
        GC_CTX_ACTIVE) {
        gc_mutex_unlock(&c->lock);
        return 0;
    }
    c->cause_src = src;
    /* release: pairs with the acquire loads of gc_ctx_state and
     * gc_ctx_cause_src, which then see cause_src. */
    atomic_store_explicit(&c->state, reason, memory_order_release);

    /* Children: those still alive go onto the work list; a child whose
     * last reference is gone is only taken off (it is being freed and
     * will find itself unlinked). */
    gc_ctx *kid = c->children;
    while (kid != NULL) {
        gc_ctx *next = kid->sib_next;
        kid->linked = 0;
        kid->sib_prev = NULL;
        if (try_incref(kid)) {
            kid->sib_next = *work;
            *work = kid;
        }
        else {
            kid->sib_next = NULL;
        }
        kid = next;
    }
    c->children = NULL;
    c->nchildren = 0;

    /* Callbacks: the whole ring, each node marked as taken. */
    gc_ctx_notify *chain = NULL, **tail = &chain;
    gc_ctx_notify *n = c->notify.next;
    while (n != &c->notify) {
        gc_ctx_notify *next = n->next;
        n->prev = NULL;
        n->next = NULL;
        *tail = n;
        tail = &n->next;
        n = next;
    }
    c->notify.next = c->notify.prev = &c->notify;
    gc_mutex_unlock(&c->lock);

    stop_timer(c, 0);
    /* Wakes every thread waiting with c as its context. */
    (void)gc_chan_close(c->done);
    while (chain != NULL) {
        gc_ctx_notify *next = chain->next; /* fn may free the node */
        chain->fn(chain);
        chain = next;
    }
    return 1;
}

/* Cancel c and then its descendants, with cause_src src. */
static int
cancel_tree(gc_ctx *c, int reason, gc_ctx *src)
{
    gc_ctx *work = NULL;
    if (!cancel_one(c, reason, src, &work)) {
        return 0;
    }
    unlink_from_parent(c);
    while (work != NULL) {
        gc_ctx *kid = work;
        work = kid->sib_next;
        kid->sib_next = NULL;
        (void)cancel_one(kid, reason, src, &work);
        gc_ctx_decref(kid);
    }
    return 1;
}

int
gc_ctx_cancel(gc_ctx *c, int reason)
{
    return cancel_tree(c, reason, c);
}

/* ---- deadlines -----------------------------------------------------------
 */

static void
ctx_timer_fire(gc_timer *t, uint64_t seq, int64_t now)
{
    ctx_timer *box = (ctx_timer *)t;
    gc_ctx *c = NULL;
    gc_mutex_lock(&box->lock);
    if (seq == box->tm.seq && box->ctx != NULL && try_incref(box->ctx)) {
        c = box->ctx;
    }
    gc_mutex_unlock(&box->lock);
    if (c != NULL) {
        (void)gc_ctx_cancel(c, GC_CTX_DEADLINE_EXCEEDED);
        gc_ctx_decref(c);
    }
    box_decref(box); /* the heap's reference, for this fire */
}

/* Give c a timer box for its own deadline, not armed yet.  Done before c
 * is linked to its parent: from then on a cancellation of the parent may
 * reach c and read c->timer (stop_timer), so the field must be final by
 * then.  GC_OK or GC_NOMEM. */
static gc_status
make_timer(gc_ctx *c)
{
    ctx_timer *box = malloc(sizeof(*box));
    if (box == NULL) {
        return GC_NOMEM;
    }
    if (gc_mutex_init(&box->lock) != 0) {
        free(box);
        return GC_NOMEM;
    }
    gc_timer_init(&box->tm, ctx_timer_fire);
    box->ctx = c;
    /* The context's reference; the heap's is taken by arm_deadline. */
    atomic_init(&box->refs, 1);
    c->timer = box;
    return GC_OK;
}

/* Arm c's own deadline (c->timer from make_timer).  GC_OK or GC_NOMEM. */
static gc_status
arm_deadline(gc_ctx *c, int64_t deadline)
{
    ctx_timer *box = c->timer;
    /* The heap's reference, taken before the timer can fire (its fire
     * drops it).  relaxed: we hold the context's reference. */
    atomic_fetch_add_explicit(&box->refs, 1, memory_order_relaxed);
    gc_mutex_lock(&box->lock);
    gc_status st = gc_timer_start(&box->tm, deadline, NULL);
    gc_mutex_unlock(&box->lock);
    if (st != GC_OK) {
        box_decref(box); /* never in the heap: not the last reference */
        return st;
    }
    /* A cancellation that reached c since it was linked looked for the
     * timer before we armed it, and found nothing to stop: stop it now.
     * Airtight: that cancellation stored the state (release, under c's
     * lock) before it took box->lock in stop_timer; if its stop_timer came
     * before our start, our box->lock comes after its unlock, so this
     * acquire load sees the state; if it came after, it stopped the timer
     * itself. */
    if (gc_ctx_state(c) != GC_CTX_ACTIVE) {
        stop_timer(c, 0);
    }
    return GC_OK;
}

gc_ctx *
gc_ctx_new(gc_ctx *parent, int64_t deadline)
{
    gc_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->done = gc_chan_new(0);
    if (c->done == NULL) {
        free(c);
        return NULL;
    }
    if (gc_mutex_init(&c->lock) != 0) {
        gc_chan_free(c->done, NULL, NULL);
        free(c);
        return NULL;
    }
    atomic_init(&c->state, GC_CTX_ACTIVE);
    atomic_init(&c->refs, 1);
    c->notify.prev = c->notify.next = &c->notify;
    c->deadline = deadline;

    /* The deadline is c's own unless an ancestor's is as early (that one
     * is enforced by the ancestor's timer). */
    int own = deadline != GC_FOREVER &&
              (parent == NULL || deadline < parent->deadline);
    int expired = own && deadline <= gc_now_ns();
    if (own && !expired && make_timer(c) != GC_OK) {
        gc_chan_free(c->done, NULL, NULL);
        gc_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }

    int inherited = GC_CTX_ACTIVE;
    gc_ctx *inherited_src = NULL;
    if (parent != NULL) {
        gc_ctx_incref(parent);
        c->parent = parent;
        if (parent->deadline < c->deadline) {
            c->deadline = parent->deadline;
        }
        gc_mutex_lock(&parent->lock);
        /* relaxed: written only under the parent's lock, held here. */
        inherited = atomic_load_explicit(&parent->state, memory_order_relaxed);
        if (inherited == GC_CTX_ACTIVE) {
            c->sib_next = parent->children;
            if (parent->children != NULL) {
                parent->children->sib_prev = c;
            }
            parent->children = c;
            parent->nchildren++;
            c->linked = 1;
        }
        else {
            inherited_src = parent->cause_src;
        }
        gc_mutex_unlock(&parent->lock);
    }

    if (inherited != GC_CTX_ACTIVE) {
        if (c->timer != NULL) {
            /* Never armed, and c is still ours alone. */
            box_decref(c->timer);
            c->timer = NULL;
        }
        (void)cancel_tree(c, inherited, inherited_src);
    }
    else if (expired) {
        (void)gc_ctx_cancel(c, GC_CTX_DEADLINE_EXCEEDED);
    }
    else if (c->timer != NULL && arm_deadline(c, deadline) != GC_OK) {
        gc_ctx_decref(c);
        return NULL;
    }
    return c;
}

/* ---- queries -------------------------------------------------------------
 */

int
gc_ctx_state(const gc_ctx *c)
{
    /* acquire: pairs with cancel_one's release store. */
    return atomic_load_explicit(&((gc_ctx *)c)->state, memory_order_acquire);
}

int
gc_ctx_err(gc_ctx *c)
{
    int state = gc_ctx_state(c);
    if (state == GC_CTX_ACTIVE) {
        if (c->deadline == GC_FOREVER || gc_now_ns() < c->deadline) {
            return GC_CTX_ACTIVE;
        }
        /* The deadline has passed and the timer thread has not acted yet:
         * act for it, from the context that owns the deadline (the highest
         * ancestor with the same one), as its timer would. */
        gc_ctx *owner = c;
        while (owner->parent != NULL &&
               owner->parent->deadline == c->deadline) {
            owner = owner->parent;
        }
        if (!gc_ctx_cancel(owner, GC_CTX_DEADLINE_EXCEEDED) &&
            gc_ctx_state(c) == GC_CTX_ACTIVE) {
            /* The owner was cancelled by something else (its timer, a
             * cancel(), an ancestor) whose work list has not reached c
             * yet.  Do for c what that cancellation is about to do, with
             * the owner's reason and cause: it reaches every descendant
             * linked when the owner was cancelled, which c is (c is
             * active, so it was not born cancelled).  Whichever of the two
             * cancels c first wins, with the same outcome. */
            (void)cancel_tree(c, gc_ctx_state(owner), gc_ctx_cause_src(owner));
        }
        state = gc_ctx_state(c);
    }
    /* The state leaves ACTIVE a moment before the canceller closes the
     * done channel.  Whoever sees the state first closes it, so that a
     * context that reports an error is always done (close is idempotent:
     * the canceller's own close then finds it closed). */
    if (!gc_chan_closed(c->done)) {
        (void)gc_chan_close(c->done);
    }
    return state;
}

gc_chan *
gc_ctx_done(const gc_ctx *c)
{
    return c->done;
}

int64_t
gc_ctx_deadline(const gc_ctx *c)
{
    return c->deadline;
}

gc_ctx *
gc_ctx_cause_src(const gc_ctx *c)
{
    if (gc_ctx_state(c) == GC_CTX_ACTIVE) {
        return NULL;
    }
    return c->cause_src;
}

gc_ctx *
gc_ctx_parent(const gc_ctx *c)
{
    return c->parent;
}

size_t
gc_ctx_children(gc_ctx *c)
{
    gc_mutex_lock(&c->lock);
    size_t n = c->nchildren;
    gc_mutex_unlock(&c->lock);
    return n;
}

/* ---- callbacks -----------------------------------------------------------
 */

void
gc_ctx_notify_init(gc_ctx_notify *node, void (*fn)(gc_ctx_notify *))
{
    node->prev = node->next = NULL;
    node->fn = fn;
}

int
gc_ctx_notify_add(gc_ctx *c, gc_ctx_notify *node)
{
    gc_mutex_lock(&c->lock);
    /* relaxed: written only under the lock, held here. */
    if (atomic_load_explicit(&c->state, memory_order_relaxed) !=
        GC_CTX_ACTIVE) {
        gc_mutex_unlock(&c->lock);
        return 0;
    }
    node->next = &c->notify;
    node->prev = c->notify.prev;
    c->notify.prev->next = node;
    c->notify.prev = node;
    gc_mutex_unlock(&c->lock);
    return 1;
}

int
gc_ctx_notify_remove(gc_ctx *c, gc_ctx_notify *node)
{
    gc_mutex_lock(&c->lock);
    int registered = node->prev != NULL;
    if (registered) {
        node->prev->next = node->next;
        node->next->prev = node->prev;
        node->prev = node->next = NULL;
    }
    gc_mutex_unlock(&c->lock);
    return registered;
}
