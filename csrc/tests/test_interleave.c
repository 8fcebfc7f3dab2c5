/* test_interleave.c - races forced into one exact interleaving.
 *
 * Some bugs live in a window of a few hundred nanoseconds between two
 * steps of one thread.  To hit such a window every time, this program
 * defines uv_mutex_lock itself: the core's objects are linked into the
 * same executable, so their gc_mutex_lock calls reach this definition
 * instead of libuv's (ELF interposition), and a test can run a function
 * on a chosen thread just before its Nth lock acquisition, i.e. between
 * two steps of the core.  Unarmed, it does what libuv's does: lock,
 * and abort on an error.
 *
 * What it proves:
 *   - a waiter woken to retry (GC_RETRY: a value reached the buffer) whose
 *     cancel channel closes before it retries hands the wake-up on to the
 *     next waiter of that channel, in gc_chan_op and in gc_select; before,
 *     it left with GC_CANCELLED and the value stayed buffered while
 *     another receiver slept on;
 *   - a context whose parent is cancelled between linking the context and
 *     arming its deadline does not keep its timer in the heap;
 *   - err() of a context past its (inherited) deadline never says
 *     "active", even while a cancellation from above is still on its way
 *     down to it (it used to, until that cancellation arrived);
 *   - a channel timer whose lock cannot be made is not created (the
 *     status of that init used to be ignored).  uv_mutex_init is
 *     interposed the same way to make one call fail.
 */
#include "gc_ctx.h"
#include "gc_select.h"
#include "gc_test.h"
#include "gc_timer.h"

/* ---- the lock hook ------------------------------------------------------ */

/* Per thread: only the thread that armed the hook ever sees it. */
static _Thread_local void (*hook_fn)(void *);
static _Thread_local void *hook_arg;
static _Thread_local int hook_countdown;

/* Run fn(arg) on the calling thread just before its nth uv_mutex_lock
 * from now on (n >= 1). */
static void
hook_arm(int nth, void (*fn)(void *), void *arg)
{
    hook_arg = arg;
    hook_countdown = nth;
    hook_fn = fn;
}

void
uv_mutex_lock(uv_mutex_t *m)
{
    if (hook_fn != NULL && --hook_countdown == 0) {
        void (*fn)(void *) = hook_fn;
        hook_fn = NULL; /* once; fn may take locks itself */
        fn(hook_arg);
    }
    if (pthread_mutex_lock(m) != 0) {
        abort();
    }
}

/* Likewise for uv_mutex_init: make the calling thread's nth call from now
 * on fail as an out-of-memory would, leaving the mutex uninitialised. */
static _Thread_local int init_fails_in;

int
uv_mutex_init(uv_mutex_t *m)
{
    if (init_fails_in > 0 && --init_fails_in == 0) {
        return UV_ENOMEM;
    }
    return pthread_mutex_init(m, NULL) == 0 ? 0 : UV_ENOMEM;
}

/* ---- a cancelled waiter passes its wake-up on --------------------------- */

/* A caller's lock whose acquire() closes a channel: called first when the
 * waiter, already woken, takes its lock back, so the close lands between
 * the wake-up and the retry. */
static gc_chan *close_on_acquire;

static void *
release_nothing(void)
{
    return NULL;
}

static void
acquire_and_close(void *token)
{
    (void)token;
    (void)gc_chan_close(close_on_acquire);
}

static const gc_unlock closing_unlock = {
    .release = release_nothing,
    .acquire = acquire_and_close,
};

typedef struct cancellable_recv {
    gc_chan *ch;
    gc_chan *cancel;
    int use_select;
    gc_status st;
    void *item;
    atomic_int ktid;
} cancellable_recv;

static void *
cancellable_recv_main(void *arg)
{
    cancellable_recv *r = arg;
    atomic_store(&r->ktid, gc_test_gettid());
    if (r->use_select) {
        gc_case c = {.ch = r->ch, .dir = GC_RECV};
        size_t index;
        r->st = gc_select(&c, 1, 0, GC_FOREVER, r->cancel, &closing_unlock,
                          &index);
        r->item = c.item;
    }
    else {
        r->st = gc_chan_op(r->ch, GC_RECV, &r->item, GC_FOREVER, r->cancel,
                           &closing_unlock);
    }
    return NULL;
}

typedef struct handoff_scene {
    gc_chan *ch;
    cancellable_recv first;   /* oldest receiver: woken, then cancelled */
    gc_test_parked_op second; /* plain receiver, registered after it */
    pthread_t first_tid;
} handoff_scene;

/* Run by the main thread inside its try_recv, after it took the buffered
 * value and before it moves the waiting sender's value into the freed
 * slot: both receivers find the buffer empty and go to sleep, the
 * cancellable one first. */
static void
start_two_receivers(void *arg)
{
    handoff_scene *s = arg;
    s->first_tid = gc_test_spawn(cancellable_recv_main, &s->first);
    WAIT_UNTIL(gc_test_waiting_receivers(s->ch) == 1, 10000);
    gc_test_wait_asleep(&s->first.ktid);
    gc_test_parked_op_start(&s->second, s->ch, GC_RECV, NULL);
}

static void
check_cancelled_waiter_passes_wakeup_on(int use_select)
{
    handoff_scene s;
    memset(&s, 0, sizeof s);
    s.ch = gc_chan_new(1);
    gc_chan *cancel = gc_chan_new(0);
    close_on_acquire = cancel;
    s.first.ch = s.ch;
    s.first.cancel = cancel;
    s.first.use_select = use_select;

    CHECK_ST(gc_chan_try_send(s.ch, GC_P(10)), GC_OK); /* full */
    gc_test_parked_op sender;
    gc_test_parked_op_start(&sender, s.ch, GC_SEND, GC_P(11));

    /* try_recv takes 10, then (its first lock: the senders' queue) claims
     * the sender, puts 11 in the slot and wakes the oldest receiver to
     * retry: the cancellable one, whose cancel then closes. */
    hook_arm(1, start_two_receivers, &s);
    void *got = NULL;
    CHECK_ST(gc_chan_try_recv(s.ch, &got), GC_OK);
    CHECK_PTR_EQ(got, GC_P(10));
    CHECK(hook_fn == NULL); /* the hook ran */
    CHECK_ST(gc_test_op_join(&sender.op), GC_OK);

    gc_test_join(s.first_tid);
    CHECK_ST(s.first.st, GC_CANCELLED);
    /* The wake-up it did not use went on to the other receiver. */
    WAIT_UNTIL(atomic_load(&s.second.op.done), 10000);
    CHECK_ST(gc_test_op_join(&s.second.op), GC_OK);
    CHECK_PTR_EQ(s.second.op.item, GC_P(11));
    CHECK_EQ(gc_chan_len(s.ch), 0);
    gc_chan_free(s.ch, NULL, NULL);
    gc_chan_free(cancel, NULL, NULL);
}

static void
test_chan_op_cancelled_after_a_wakeup_passes_it_on(void)
{
    check_cancelled_waiter_passes_wakeup_on(0);
}

static void
test_select_cancelled_after_a_wakeup_passes_it_on(void)
{
    check_cancelled_waiter_passes_wakeup_on(1);
}

/* ---- a context cancelled before it arms its deadline -------------------- */

static void
cancel_the_context(void *arg)
{
    CHECK_EQ(gc_ctx_cancel(arg, GC_CTX_CANCELLED), 1);
}

static void
test_parent_cancelled_before_child_arms_deadline_leaves_no_timer(void)
{
    size_t before = gc_timer_pending_count();
    gc_ctx *parent = gc_ctx_new(NULL, GC_FOREVER);
    /* gc_ctx_new's first lock links the child under the parent's lock;
     * the second is the child's timer lock, taken to arm the deadline:
     * cancel the parent (and so the child) just before it. */
    hook_arm(2, cancel_the_context, parent);
    gc_ctx *child = gc_ctx_new(parent, gc_now_ns() + 3600000 * GC_MS);
    CHECK(child != NULL);
    CHECK(hook_fn == NULL);
    CHECK_EQ(gc_ctx_state(child), GC_CTX_CANCELLED);
    CHECK_EQ(gc_timer_pending_count(), before);
    gc_ctx_decref(child);
    gc_ctx_decref(parent);
    CHECK_EQ(gc_timer_pending_count(), before);
}

/* ---- err() past a deadline while a cancellation is on its way down ------ */

/* A cancel() of `owner` runs on another thread and is held up half-way
 * down the tree (just before it locks `mid`, its 5th lock: owner's lock,
 * owner's timer box, the heap, owner's done channel, then mid's) while the
 * main thread, past owner's deadline, asks err() of `leaf`. */
typedef struct halfway {
    gc_ctx *owner;
    atomic_int paused;  /* the cancel is held up */
    atomic_int checked; /* the main thread is done looking */
} halfway;

static void
hold_up_the_cancel(void *arg)
{
    halfway *h = arg;
    atomic_store(&h->paused, 1);
    while (!atomic_load(&h->checked))
        gc_test_sleep_ns(100000);
}

static void *
cancel_owner_slowly(void *arg)
{
    halfway *h = arg;
    hook_arm(5, hold_up_the_cancel, h);
    CHECK_EQ(gc_ctx_cancel(h->owner, GC_CTX_CANCELLED), 1);
    CHECK(hook_fn == NULL);
    return NULL;
}

static void
test_err_past_deadline_during_a_cancel_from_above_is_not_active(void)
{
    int64_t deadline = gc_now_ns() + 100 * GC_MS;
    halfway h;
    h.owner = gc_ctx_new(NULL, deadline);
    gc_ctx *mid = gc_ctx_new(h.owner, GC_FOREVER);
    gc_ctx *leaf = gc_ctx_new(mid, GC_FOREVER);
    atomic_store(&h.paused, 0);
    atomic_store(&h.checked, 0);
    pthread_t t = gc_test_spawn(cancel_owner_slowly, &h);
    WAIT_UNTIL(atomic_load(&h.paused), 10000);
    CHECK_EQ(gc_ctx_state(h.owner), GC_CTX_CANCELLED);
    CHECK_EQ(gc_ctx_state(mid), GC_CTX_ACTIVE); /* not reached yet */
    while (gc_now_ns() < deadline)
        gc_cpu_relax();
    /* Past the deadline err() never answers "active"; here it gives what
     * the cancellation on its way down will give (cancel() came first). */
    CHECK_EQ(gc_ctx_err(leaf), GC_CTX_CANCELLED);
    CHECK(gc_chan_closed(gc_ctx_done(leaf)));
    CHECK_PTR_EQ(gc_ctx_cause_src(leaf), h.owner);
    atomic_store(&h.checked, 1);
    gc_test_join(t);
    CHECK_EQ(gc_ctx_state(mid), GC_CTX_CANCELLED);
    CHECK_PTR_EQ(gc_ctx_cause_src(mid), h.owner);
    gc_ctx_decref(leaf);
    gc_ctx_decref(mid);
    gc_ctx_decref(h.owner);
}

/* ---- a lock that could not be made ------------------------------------ */

static void
test_chantimer_whose_lock_cannot_be_made_is_not_created(void)
{
    /* A chantimer makes its channel (two locks) and then its own lock. */
    init_fails_in = 3;
    gc_chantimer *ct = gc_chantimer_new(gc_now_ns() + 3600000 * GC_MS, 0);
    CHECK_EQ(init_fails_in, 0); /* the third init was the one refused */
    CHECK(ct == NULL);
    init_fails_in = 3;
    CHECK(gc_chantimer_new_stopped(GC_MS) == NULL);
    CHECK_EQ(init_fails_in, 0);
}

int
main(void)
{
    GC_RUN(test_chan_op_cancelled_after_a_wakeup_passes_it_on);
    GC_RUN(test_select_cancelled_after_a_wakeup_passes_it_on);
    GC_RUN(test_parent_cancelled_before_child_arms_deadline_leaves_no_timer);
    GC_RUN(test_err_past_deadline_during_a_cancel_from_above_is_not_active);
    GC_RUN(test_chantimer_whose_lock_cannot_be_made_is_not_created);
    return 0;
}
