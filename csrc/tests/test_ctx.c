/* test_ctx.c - contexts (gc_ctx): cancellation trees, deadlines,
 * callbacks, and the weak parent-to-child links.
 *
 * What it proves:
 *   - cancelling a node cancels its whole subtree, with its reason and
 *     with itself as cause_src, and nothing above or beside it; its done
 *     channel and theirs are closed; a child of a cancelled parent is born
 *     cancelled the same way; the first cancellation of a node wins and a
 *     second one changes nothing;
 *   - many threads cancelling every node of a tree at once: each node has
 *     exactly one winner (a direct cancel that returns 1 or the
 *     propagation from an ancestor), and each node's callbacks run exactly
 *     once;
 *   - a chain 100k deep is cancelled and freed on a thread with a 256 KiB
 *     stack (no recursion per link);
 *   - a long-lived parent does not grow: a million children, each
 *     cancelled or just dropped, leave its list empty;
 *   - a child dropped while its parent is being cancelled on another
 *     thread (the refcount race of the weak links), over and over;
 *   - children with deadlines created while the parent is cancelled all
 *     end cancelled with no timer left in the heap (and no race on the
 *     child's timer field, for ThreadSanitizer);
 *   - deadlines: fired by the timer thread (GC_CTX_DEADLINE_EXCEEDED, done
 *     closed) no earlier than due; inherited from the parent when earlier;
 *     a deadline already past gives a context already expired; err() acts
 *     at the deadline itself, for the ancestor that owns it, without
 *     waiting for the timer thread; a dropped context takes its timer out
 *     of the heap at once; cancel stops the timer;
 *   - waiters blocked in gc_chan_op with a done channel as `cancel` all
 *     wake with GC_CANCELLED on cancel, and a value sent at the same time
 *     is either received or reported not sent;
 *   - callbacks: added to a done context they are refused; removed before
 *     the cancel they never run; remove after they ran says 0.
 */
#include "gc_ctx.h"
#include "gc_test.h"
#include "gc_timer.h"

#define SMALL_STACK (256 * 1024)

static int
is_done(gc_ctx *c)
{
    return gc_chan_closed(gc_ctx_done(c));
}

/* ---- propagation ------------------------------------------------------- */

static void
test_cancel_propagates_down_a_tree_only(void)
{
    /*       root
     *      /    \
     *     a      b
     *    / \      \
     *   a1  a2     b1
     */
    gc_ctx *root = gc_ctx_new(NULL, GC_FOREVER);
    gc_ctx *a = gc_ctx_new(root, GC_FOREVER);
    gc_ctx *b = gc_ctx_new(root, GC_FOREVER);
    gc_ctx *a1 = gc_ctx_new(a, GC_FOREVER);
    gc_ctx *a2 = gc_ctx_new(a, GC_FOREVER);
    gc_ctx *b1 = gc_ctx_new(b, GC_FOREVER);
    CHECK(root && a && b && a1 && a2 && b1);
    CHECK_EQ(gc_ctx_children(root), 2);
    CHECK_EQ(gc_ctx_children(a), 2);
    CHECK_PTR_EQ(gc_ctx_parent(a1), a);
    CHECK_PTR_EQ(gc_ctx_cause_src(a), NULL);

    CHECK_EQ(gc_ctx_cancel(a, GC_CTX_CANCELLED), 1);
    gc_ctx *cancelled[] = {a, a1, a2};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(gc_ctx_state(cancelled[i]), GC_CTX_CANCELLED);
        CHECK_EQ(gc_ctx_err(cancelled[i]), GC_CTX_CANCELLED);
        CHECK(is_done(cancelled[i]));
        CHECK_PTR_EQ(gc_ctx_cause_src(cancelled[i]), a);
    }
    gc_ctx *active[] = {root, b, b1};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(gc_ctx_err(active[i]), GC_CTX_ACTIVE);
        CHECK(!is_done(active[i]));
    }
    /* a left root's list; a's own list was emptied. */
    CHECK_EQ(gc_ctx_children(root), 1);
    CHECK_EQ(gc_ctx_children(a), 0);

    /* The first cancellation wins. */
    CHECK_EQ(gc_ctx_cancel(a, GC_CTX_DEADLINE_EXCEEDED), 0);
    CHECK_EQ(gc_ctx_cancel(a1, GC_CTX_CANCELLED), 0);
    CHECK_EQ(gc_ctx_state(a), GC_CTX_CANCELLED);

    /* A child of a cancelled parent is born cancelled, with its cause. */
    gc_ctx *late = gc_ctx_new(a1, GC_FOREVER);
    CHECK_EQ(gc_ctx_state(late), GC_CTX_CANCELLED);
    CHECK(is_done(late));
    CHECK_PTR_EQ(gc_ctx_cause_src(late), a);
    CHECK_EQ(gc_ctx_children(a1), 0);

    CHECK_EQ(gc_ctx_cancel(root, GC_CTX_DEADLINE_EXCEEDED), 1);
    CHECK_EQ(gc_ctx_state(b1), GC_CTX_DEADLINE_EXCEEDED);
    CHECK_PTR_EQ(gc_ctx_cause_src(b1), root);
    CHECK_PTR_EQ(gc_ctx_cause_src(root), root);
    CHECK_EQ(gc_ctx_state(a), GC_CTX_CANCELLED); /* unchanged */

    gc_ctx *all[] = {late, b1, a2, a1, b, a, root};
    for (size_t i = 0; i < 7; i++)
        gc_ctx_decref(all[i]);
}

static void
test_dropping_a_parent_first_keeps_children_working(void)
{
    gc_ctx *root = gc_ctx_new(NULL, GC_FOREVER);
    gc_ctx *kid = gc_ctx_new(root, GC_FOREVER);
    gc_ctx *grandkid = gc_ctx_new(kid, GC_FOREVER);
    /* The children hold their parents. */
    gc_ctx_decref(root);
    gc_ctx_decref(kid);
    CHECK_EQ(gc_ctx_err(grandkid), GC_CTX_ACTIVE);
    CHECK_EQ(gc_ctx_cancel(gc_ctx_parent(gc_ctx_parent(grandkid)),
                           GC_CTX_CANCELLED),
             1);
    CHECK_EQ(gc_ctx_err(grandkid), GC_CTX_CANCELLED);
    gc_ctx_decref(grandkid); /* frees all three */
}

/* ---- simultaneous cancels ---------------------------------------------- */

#define TREE_NODES     120
#define CANCEL_THREADS 8

typedef struct counted_notify {
    gc_ctx_notify node;
    atomic_int calls;
} counted_notify;

static void
count_call(gc_ctx_notify *node)
{
    atomic_fetch_add(&((counted_notify *)node)->calls, 1);
}

static struct {
    gc_ctx *nodes[TREE_NODES];
    atomic_int wins[TREE_NODES];
    atomic_int go;
} tree;

static void *
cancel_all_in_some_order(void *arg)
{
    uint64_t rng = *(uint64_t *)arg * 7919 + 1;
    size_t order[TREE_NODES];
    for (size_t i = 0; i < TREE_NODES; i++)
        order[i] = i;
    for (size_t i = TREE_NODES - 1; i > 0; i--) {
        size_t j = gc_test_rand(&rng) % (i + 1);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    while (!atomic_load(&tree.go))
        gc_cpu_relax();
    for (size_t i = 0; i < TREE_NODES; i++) {
        size_t k = order[i];
        if (gc_ctx_cancel(tree.nodes[k], GC_CTX_CANCELLED))
            atomic_fetch_add(&tree.wins[k], 1);
    }
    return NULL;
}

/* Port of Go's context.TestSimultaneousCancels (src/context/x_test.go),
 * with exact counts: a tree of 4-ary fan-out, every node cancelled by
 * every thread in its own random order. */
static void
test_go_TestSimultaneousCancels(void)
{
    for (int round = 0; round < 20; round++) {
        counted_notify notes[TREE_NODES][2];
        tree.nodes[0] = gc_ctx_new(NULL, GC_FOREVER);
        for (size_t i = 1; i < TREE_NODES; i++)
            tree.nodes[i] = gc_ctx_new(tree.nodes[(i - 1) / 4], GC_FOREVER);
        for (size_t i = 0; i < TREE_NODES; i++) {
            atomic_store(&tree.wins[i], 0);
            for (int k = 0; k < 2; k++) {
                gc_ctx_notify_init(&notes[i][k].node, count_call);
                atomic_store(&notes[i][k].calls, 0);
                CHECK_EQ(gc_ctx_notify_add(tree.nodes[i], &notes[i][k].node),
                         1);
            }
        }
        atomic_store(&tree.go, 0);
        uint64_t seeds[CANCEL_THREADS];
        for (size_t t = 0; t < CANCEL_THREADS; t++)
            seeds[t] = (uint64_t)round * CANCEL_THREADS + t;
        gc_test_threads th = gc_test_threads_start(
            CANCEL_THREADS, cancel_all_in_some_order, seeds, sizeof(seeds[0]));
        atomic_store(&tree.go, 1);
        gc_test_threads_join(&th);
        /* The root can only be cancelled directly: one winner.  Every
         * other node: at most one direct winner (else an ancestor's
         * propagation won it). */
        CHECK_EQ(atomic_load(&tree.wins[0]), 1);
        for (size_t i = 0; i < TREE_NODES; i++) {
            CHECK(atomic_load(&tree.wins[i]) <= 1);
            CHECK_EQ(gc_ctx_state(tree.nodes[i]), GC_CTX_CANCELLED);
            CHECK(is_done(tree.nodes[i]));
            CHECK_EQ(gc_ctx_children(tree.nodes[i]), 0);
            for (int k = 0; k < 2; k++)
                CHECK_EQ(atomic_load(&notes[i][k].calls), 1);
            /* A node's cause is itself when it won directly, else an
             * ancestor. */
            gc_ctx *src = gc_ctx_cause_src(tree.nodes[i]);
            if (atomic_load(&tree.wins[i]))
                CHECK_PTR_EQ(src, tree.nodes[i]);
            else
                CHECK(src != tree.nodes[i] && src != NULL);
            CHECK_EQ(gc_ctx_notify_remove(tree.nodes[i], &notes[i][0].node),
                     0);
        }
        for (size_t i = TREE_NODES; i-- > 0;)
            gc_ctx_decref(tree.nodes[i]);
    }
}

/* Port of Go's context.TestInterlockedCancels (src/context/x_test.go):
 * a thread that waits for the parent's done channel cancels the child
 * while the parent's cancellation runs. */
typedef struct interlocked {
    gc_ctx *parent, *child;
} interlocked;

static void *
cancel_child_after_parent(void *arg)
{
    interlocked *il = arg;
    void *item;
    CHECK_ST(gc_chan_recv(gc_ctx_done(il->parent), &item, GC_FOREVER, NULL),
             GC_CLOSED);
    gc_ctx_cancel(il->child, GC_CTX_CANCELLED);
    return NULL;
}

static void
test_go_TestInterlockedCancels(void)
{
    for (int i = 0; i < 200; i++) {
        interlocked il;
        il.parent = gc_ctx_new(NULL, GC_FOREVER);
        il.child = gc_ctx_new(il.parent, GC_FOREVER);
        pthread_t t = gc_test_spawn(cancel_child_after_parent, &il);
        gc_ctx_cancel(il.parent, GC_CTX_CANCELLED);
        void *item;
        CHECK_ST(gc_chan_recv(gc_ctx_done(il.child), &item,
                              gc_now_ns() + 10000 * GC_MS, NULL),
                 GC_CLOSED);
        gc_test_join(t);
        gc_ctx_decref(il.child);
        gc_ctx_decref(il.parent);
    }
}

/* ---- depth and breadth -------------------------------------------------- */

#define CHAIN 100000

static void *
deep_chain_main(void *arg)
{
    gc_ctx **chain = malloc(CHAIN * sizeof(*chain));
    CHECK(chain != NULL);
    chain[0] = gc_ctx_new(NULL, GC_FOREVER);
    for (size_t i = 1; i < CHAIN; i++) {
        chain[i] = gc_ctx_new(chain[i - 1], GC_FOREVER);
        CHECK(chain[i] != NULL);
    }
    counted_notify leaf_note;
    gc_ctx_notify_init(&leaf_note.node, count_call);
    atomic_store(&leaf_note.calls, 0);
    CHECK_EQ(gc_ctx_notify_add(chain[CHAIN - 1], &leaf_note.node), 1);

    CHECK_EQ(gc_ctx_cancel(chain[0], GC_CTX_CANCELLED), 1);
    CHECK_EQ(gc_ctx_err(chain[CHAIN - 1]), GC_CTX_CANCELLED);
    CHECK_PTR_EQ(gc_ctx_cause_src(chain[CHAIN - 1]), chain[0]);
    CHECK_EQ(atomic_load(&leaf_note.calls), 1);

    /* Every link held only by its child: dropping the leaf frees all. */
    for (size_t i = 0; i < CHAIN - 1; i++)
        gc_ctx_decref(chain[i]);
    gc_ctx_decref(chain[CHAIN - 1]);

    /* The same, never cancelled, freed from the leaf. */
    gc_ctx *c = gc_ctx_new(NULL, GC_FOREVER);
    for (size_t i = 1; i < CHAIN; i++) {
        gc_ctx *next = gc_ctx_new(c, GC_FOREVER);
        gc_ctx_decref(c);
        c = next;
    }
    gc_ctx_decref(c);
    free(chain);
    return NULL;
}

static void
test_deep_chain_is_cancelled_and_freed_without_recursion(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SMALL_STACK);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, &attr, deep_chain_main, NULL), 0);
    pthread_attr_destroy(&attr);
    gc_test_join(t);
}

static void
test_million_short_lived_children_leave_the_parent_list_empty(void)
{
    gc_ctx *parent = gc_ctx_new(NULL, GC_FOREVER);
    gc_ctx *keep = gc_ctx_new(parent, GC_FOREVER); /* one long-lived child */
    size_t n = (size_t)(1000000 * gc_test_scale());
    for (size_t i = 0; i < n; i++) {
        gc_ctx *kid = gc_ctx_new(parent, GC_FOREVER);
        CHECK(kid != NULL);
        if (i % 2 == 0) {
            gc_ctx *grandkid = gc_ctx_new(kid, GC_FOREVER);
            CHECK_EQ(gc_ctx_cancel(kid, GC_CTX_CANCELLED), 1);
            CHECK_EQ(gc_ctx_state(grandkid), GC_CTX_CANCELLED);
            gc_ctx_decref(grandkid);
        }
        /* odd ones are dropped without a cancel */
        gc_ctx_decref(kid);
        if (i % 100000 == 0)
            CHECK_EQ(gc_ctx_children(parent), 1);
    }
    CHECK_EQ(gc_ctx_children(parent), 1);
    CHECK_EQ(gc_ctx_err(parent), GC_CTX_ACTIVE);
    gc_ctx_decref(keep);
    CHECK_EQ(gc_ctx_children(parent), 0);
    gc_ctx_decref(parent);
}

/* ---- refcount races of the weak links ----------------------------------- */

typedef struct drop_race {
    gc_ctx *parent;
    gc_ctx *kids[64];
    gc_ctx *grandkids[8];
    atomic_int go;
} drop_race;

static void *
drop_kids(void *arg)
{
    drop_race *r = arg;
    while (!atomic_load(&r->go))
        gc_cpu_relax();
    for (size_t i = 0; i < 64; i++)
        gc_ctx_decref(r->kids[i]);
    return NULL;
}

static void *
cancel_parent(void *arg)
{
    drop_race *r = arg;
    while (!atomic_load(&r->go))
        gc_cpu_relax();
    CHECK_EQ(gc_ctx_cancel(r->parent, GC_CTX_CANCELLED), 1);
    return NULL;
}

static void
test_children_dropped_while_the_parent_is_cancelled(void)
{
    for (int round = 0; round < 2000; round++) {
        drop_race r;
        atomic_store(&r.go, 0);
        r.parent = gc_ctx_new(NULL, GC_FOREVER);
        for (size_t i = 0; i < 64; i++) {
            r.kids[i] = gc_ctx_new(r.parent, GC_FOREVER);
            if (i % 8 == 0) {
                /* keeps its parent alive: only the cancel reaches it */
                r.grandkids[i / 8] = gc_ctx_new(r.kids[i], GC_FOREVER);
            }
        }
        pthread_t a = gc_test_spawn(drop_kids, &r);
        pthread_t b = gc_test_spawn(cancel_parent, &r);
        atomic_store(&r.go, 1);
        gc_test_join(a);
        gc_test_join(b);
        CHECK_EQ(gc_ctx_children(r.parent), 0);
        for (size_t i = 0; i < 8; i++) {
            CHECK_EQ(gc_ctx_state(r.grandkids[i]), GC_CTX_CANCELLED);
            gc_ctx_decref(r.grandkids[i]);
        }
        gc_ctx_decref(r.parent);
    }
}

/* Children created on one thread while another cancels their parent:
 * each is either linked and then cancelled, or born cancelled. */
typedef struct create_race {
    gc_ctx *parent;
    gc_ctx *kids[256];
    atomic_int go;
} create_race;

static void *
create_kids(void *arg)
{
    create_race *r = arg;
    while (!atomic_load(&r->go))
        gc_cpu_relax();
    for (size_t i = 0; i < 256; i++)
        r->kids[i] = gc_ctx_new(r->parent, GC_FOREVER);
    return NULL;
}

static void *
cancel_created_parent(void *arg)
{
    create_race *r = arg;
    while (!atomic_load(&r->go))
        gc_cpu_relax();
    CHECK_EQ(gc_ctx_cancel(r->parent, GC_CTX_CANCELLED), 1);
    return NULL;
}

static void
test_children_created_while_the_parent_is_cancelled(void)
{
    for (int round = 0; round < 500; round++) {
        create_race r;
        atomic_store(&r.go, 0);
        r.parent = gc_ctx_new(NULL, GC_FOREVER);
        pthread_t a = gc_test_spawn(create_kids, &r);
        pthread_t b = gc_test_spawn(cancel_created_parent, &r);
        atomic_store(&r.go, 1);
        gc_test_join(a);
        gc_test_join(b);
        for (size_t i = 0; i < 256; i++) {
            CHECK_EQ(gc_ctx_state(r.kids[i]), GC_CTX_CANCELLED);
            CHECK(is_done(r.kids[i]));
            CHECK_PTR_EQ(gc_ctx_cause_src(r.kids[i]), r.parent);
            gc_ctx_decref(r.kids[i]);
        }
        CHECK_EQ(gc_ctx_children(r.parent), 0);
        gc_ctx_decref(r.parent);
    }
}

/* The same race with children that have deadlines of their own: every
 * child ends cancelled and none leaves its timer in the heap (a child
 * linked just before the cancel used to arm its timer after the cancel had
 * looked for it: its `timer` field was written unsynchronized, a data race
 * that ThreadSanitizer reports, and the timer stayed pending). */
typedef struct deadline_race {
    gc_ctx *parent;
    gc_ctx *kids[8];
    atomic_int made;
} deadline_race;

static void *
create_kids_with_deadlines(void *arg)
{
    deadline_race *r = arg;
    int64_t far = gc_now_ns() + 3600000 * GC_MS;
    for (size_t i = 0; i < 8; i++) {
        r->kids[i] = gc_ctx_new(r->parent, far);
        CHECK(r->kids[i] != NULL);
        atomic_store(&r->made, (int)i + 1);
    }
    return NULL;
}

static void
test_children_with_deadlines_created_while_the_parent_is_cancelled(void)
{
    size_t before = gc_timer_pending_count();
    for (int round = 0; round < 2000; round++) {
        deadline_race r;
        atomic_store(&r.made, 0);
        r.parent = gc_ctx_new(NULL, GC_FOREVER);
        pthread_t a = gc_test_spawn(create_kids_with_deadlines, &r);
        /* Cancel while the first children are being made. */
        while (atomic_load(&r.made) < 1 + round % 3)
            gc_cpu_relax();
        CHECK_EQ(gc_ctx_cancel(r.parent, GC_CTX_CANCELLED), 1);
        gc_test_join(a);
        for (size_t i = 0; i < 8; i++)
            CHECK_EQ(gc_ctx_state(r.kids[i]), GC_CTX_CANCELLED);
        CHECK_EQ(gc_timer_pending_count(), before);
        for (size_t i = 0; i < 8; i++)
            gc_ctx_decref(r.kids[i]);
        gc_ctx_decref(r.parent);
    }
}

/* ---- deadlines ---------------------------------------------------------- */

static void
wait_done(gc_ctx *c, int64_t limit_ns)
{
    void *item;
    CHECK_ST(gc_chan_recv(gc_ctx_done(c), &item, gc_now_ns() + limit_ns, NULL),
             GC_CLOSED);
}

static void
test_deadline_fires_from_the_timer_thread(void)
{
    int64_t t0 = gc_now_ns();
    int64_t deadline = t0 + 20 * GC_MS;
    gc_ctx *c = gc_ctx_new(NULL, deadline);
    CHECK_EQ(gc_ctx_deadline(c), deadline);
    CHECK_EQ(gc_ctx_state(c), GC_CTX_ACTIVE);
    /* Wait on the done channel only: nobody calls err() meanwhile. */
    wait_done(c, 10000 * GC_MS);
    CHECK(gc_now_ns() >= deadline);
    CHECK_EQ(gc_ctx_state(c), GC_CTX_DEADLINE_EXCEEDED);
    CHECK_PTR_EQ(gc_ctx_cause_src(c), c);
    gc_ctx_decref(c);
}

static void
test_deadline_is_inherited_when_earlier(void)
{
    int64_t now = gc_now_ns();
    gc_ctx *parent = gc_ctx_new(NULL, now + 30 * GC_MS);
    gc_ctx *later = gc_ctx_new(parent, now + 3600000 * GC_MS);
    gc_ctx *sooner = gc_ctx_new(parent, now + 10 * GC_MS);
    gc_ctx *none = gc_ctx_new(parent, GC_FOREVER);
    CHECK_EQ(gc_ctx_deadline(later), now + 30 * GC_MS);
    CHECK_EQ(gc_ctx_deadline(none), now + 30 * GC_MS);
    CHECK_EQ(gc_ctx_deadline(sooner), now + 10 * GC_MS);

    wait_done(sooner, 10000 * GC_MS);
    CHECK_EQ(gc_ctx_state(sooner), GC_CTX_DEADLINE_EXCEEDED);
    CHECK_PTR_EQ(gc_ctx_cause_src(sooner), sooner);
    CHECK_EQ(gc_ctx_state(parent), GC_CTX_ACTIVE);

    /* The parent's cancellation reaches its children one after the
     * other: wait for each of them. */
    wait_done(later, 10000 * GC_MS);
    wait_done(none, 10000 * GC_MS);
    CHECK(gc_now_ns() >= now + 30 * GC_MS);
    CHECK_EQ(gc_ctx_state(later), GC_CTX_DEADLINE_EXCEEDED);
    CHECK_EQ(gc_ctx_state(none), GC_CTX_DEADLINE_EXCEEDED);
    CHECK_PTR_EQ(gc_ctx_cause_src(later), parent);
    gc_ctx_decref(none);
    gc_ctx_decref(sooner);
    gc_ctx_decref(later);
    gc_ctx_decref(parent);
}

static void
test_deadline_in_the_past_gives_an_expired_context(void)
{
    int64_t now = gc_now_ns();
    gc_ctx *c = gc_ctx_new(NULL, now - 1);
    CHECK_EQ(gc_ctx_state(c), GC_CTX_DEADLINE_EXCEEDED);
    CHECK(is_done(c));
    gc_ctx *d = gc_ctx_new(NULL, now);
    CHECK_EQ(gc_ctx_state(d), GC_CTX_DEADLINE_EXCEEDED);
    gc_ctx_decref(c);
    gc_ctx_decref(d);
}

static void
test_err_acts_at_the_deadline_for_its_owner(void)
{
    size_t before = gc_timer_pending_count();
    int64_t deadline = gc_now_ns() + 200 * GC_MS;
    gc_ctx *owner = gc_ctx_new(NULL, deadline);
    gc_ctx *mid = gc_ctx_new(owner, GC_FOREVER);
    gc_ctx *leaf = gc_ctx_new(mid, deadline + 1000 * GC_MS);
    CHECK_EQ(gc_timer_pending_count(), before + 1); /* only owner's */
    CHECK_EQ(gc_ctx_err(leaf), GC_CTX_ACTIVE);
    /* Spin to the deadline, then ask at once: the timer thread may not
     * have acted, but err() does. */
    while (gc_now_ns() < deadline)
        gc_cpu_relax();
    CHECK_EQ(gc_ctx_err(leaf), GC_CTX_DEADLINE_EXCEEDED);
    CHECK(is_done(leaf));
    CHECK_EQ(gc_ctx_state(owner), GC_CTX_DEADLINE_EXCEEDED);
    CHECK_PTR_EQ(gc_ctx_cause_src(leaf), owner);
    gc_ctx_decref(leaf);
    gc_ctx_decref(mid);
    gc_ctx_decref(owner);
    WAIT_UNTIL(gc_timer_pending_count() == before, 10000);
}

static void
test_cancel_and_drop_take_the_timer_out_of_the_heap(void)
{
    size_t before = gc_timer_pending_count();
    int64_t far = gc_now_ns() + 3600000 * GC_MS;
    gc_ctx *parent = gc_ctx_new(NULL, GC_FOREVER);
    gc_ctx *cancelled = gc_ctx_new(parent, far);
    gc_ctx *dropped = gc_ctx_new(parent, far);
    CHECK_EQ(gc_timer_pending_count(), before + 2);
    CHECK_EQ(gc_ctx_children(parent), 2);
    gc_ctx_cancel(cancelled, GC_CTX_CANCELLED);
    CHECK_EQ(gc_timer_pending_count(), before + 1);
    CHECK_EQ(gc_ctx_state(cancelled), GC_CTX_CANCELLED);
    CHECK_EQ(gc_ctx_children(parent), 1);
    /* Dropped without a cancel: nothing keeps it, not even its timer. */
    gc_ctx_decref(dropped);
    CHECK_EQ(gc_timer_pending_count(), before);
    CHECK_EQ(gc_ctx_children(parent), 0);
    gc_ctx_decref(cancelled);
    gc_ctx_decref(parent);
}

/* Contexts dropped just as their deadlines fire: the fire finds the
 * context being freed (or freed) and must leave it alone. */
static void
test_contexts_dropped_as_their_deadlines_fire(void)
{
    gc_ctx *parent = gc_ctx_new(NULL, GC_FOREVER);
    for (int round = 0; round < 200; round++) {
        gc_ctx *kids[32];
        int64_t when = gc_now_ns() + 1 * GC_MS;
        for (size_t i = 0; i < 32; i++)
            kids[i] = gc_ctx_new(parent, when + (int64_t)i * 10000);
        while (gc_now_ns() < when)
            gc_cpu_relax();
        for (size_t i = 0; i < 32; i++)
            gc_ctx_decref(kids[i]);
    }
    /* A fire in flight holds its context for the time of its cancel: the
     * last of them unlinks it a moment after our decref. */
    WAIT_UNTIL(gc_ctx_children(parent) == 0, 10000);
    gc_ctx_decref(parent);
}

/* ---- waiters ------------------------------------------------------------ */

#define WAITERS 16

typedef struct waiter_arg {
    gc_chan *ch;
    gc_chan *cancel;
    int dir;
    void *item;
    gc_status st;
} waiter_arg;

static void *
op_with_cancel(void *arg)
{
    waiter_arg *w = arg;
    w->st = gc_chan_op(w->ch, w->dir, &w->item, GC_FOREVER, w->cancel, NULL);
    return NULL;
}

static void
test_cancel_wakes_every_waiter_in_gc_chan_op(void)
{
    gc_ctx *c = gc_ctx_new(NULL, GC_FOREVER);
    gc_chan *recv_ch = gc_chan_new(4);
    gc_chan *send_ch = gc_chan_new(0);
    waiter_arg args[WAITERS];
    for (size_t i = 0; i < WAITERS; i++) {
        args[i].ch = i % 2 ? send_ch : recv_ch;
        args[i].dir = i % 2 ? GC_SEND : GC_RECV;
        args[i].item = i % 2 ? GC_P(i + 1) : NULL;
        args[i].cancel = gc_ctx_done(c);
        args[i].st = (gc_status)-1;
    }
    gc_test_threads th =
        gc_test_threads_start(WAITERS, op_with_cancel, args, sizeof(args[0]));
    WAIT_UNTIL(gc_test_waiting_receivers(recv_ch) == WAITERS / 2, 10000);
    WAIT_UNTIL(gc_test_waiting_senders(send_ch) == WAITERS / 2, 10000);
    CHECK_EQ(gc_test_waiting_receivers(gc_ctx_done(c)), WAITERS);
    gc_ctx_cancel(c, GC_CTX_CANCELLED);
    gc_test_threads_join(&th);
    for (size_t i = 0; i < WAITERS; i++)
        CHECK_ST(args[i].st, GC_CANCELLED);
    CHECK_EQ(gc_test_waiting_receivers(recv_ch), 0);
    CHECK_EQ(gc_test_waiting_senders(send_ch), 0);
    /* A call with a done context gives up before trying. */
    CHECK_ST(gc_chan_try_send(recv_ch, GC_P(7)), GC_OK);
    void *item = NULL;
    CHECK_ST(
        gc_chan_op(recv_ch, GC_RECV, &item, GC_FOREVER, gc_ctx_done(c), NULL),
        GC_CANCELLED);
    CHECK_EQ(gc_chan_len(recv_ch), 1);
    gc_chan_free(recv_ch, NULL, NULL);
    gc_chan_free(send_ch, NULL, NULL);
    gc_ctx_decref(c);
}

/* A sender and a cancel race for a receiver blocked with the context:
 * the value is received or the send reports it was not. */
typedef struct handoff {
    gc_chan *ch;
    gc_ctx *c;
    void *sent_item;
    gc_status send_st;
    atomic_int go;
} handoff;

static void *
send_one(void *arg)
{
    handoff *h = arg;
    while (!atomic_load(&h->go))
        gc_cpu_relax();
    h->send_st =
        gc_chan_send(h->ch, h->sent_item, gc_now_ns() + 20 * GC_MS, NULL);
    return NULL;
}

static void *
cancel_it(void *arg)
{
    handoff *h = arg;
    while (!atomic_load(&h->go))
        gc_cpu_relax();
    gc_ctx_cancel(h->c, GC_CTX_CANCELLED);
    return NULL;
}

static void
test_value_sent_during_cancel_is_received_or_not_sent(void)
{
    int received = 0, cancelled = 0;
    for (int round = 0; round < 200; round++) {
        handoff h = {.ch = gc_chan_new(0),
                     .c = gc_ctx_new(NULL, GC_FOREVER),
                     .sent_item = GC_P(round + 1)};
        atomic_store(&h.go, 0);
        waiter_arg w = {.ch = h.ch,
                        .cancel = gc_ctx_done(h.c),
                        .dir = GC_RECV,
                        .item = NULL};
        pthread_t rt = gc_test_spawn(op_with_cancel, &w);
        WAIT_UNTIL(gc_test_waiting_receivers(h.ch) == 1, 10000);
        pthread_t st = gc_test_spawn(send_one, &h);
        pthread_t ct = gc_test_spawn(cancel_it, &h);
        atomic_store(&h.go, 1);
        gc_test_join(rt);
        gc_test_join(st);
        gc_test_join(ct);
        if (w.st == GC_OK) {
            CHECK_PTR_EQ(w.item, h.sent_item);
            CHECK_ST(h.send_st, GC_OK);
            received++;
        }
        else {
            CHECK_ST(w.st, GC_CANCELLED);
            CHECK_ST(h.send_st, GC_TIMEOUT); /* nobody took it */
            cancelled++;
        }
        gc_chan_free(h.ch, NULL, NULL);
        gc_ctx_decref(h.c);
    }
    CHECK_EQ(received + cancelled, 200);
}

/* ---- callbacks ---------------------------------------------------------- */

static void
test_callbacks_add_remove_and_run_once(void)
{
    gc_ctx *c = gc_ctx_new(NULL, GC_FOREVER);
    counted_notify kept, removed, never_added;
    gc_ctx_notify_init(&kept.node, count_call);
    gc_ctx_notify_init(&removed.node, count_call);
    gc_ctx_notify_init(&never_added.node, count_call);
    atomic_store(&kept.calls, 0);
    atomic_store(&removed.calls, 0);
    atomic_store(&never_added.calls, 0);
    CHECK_EQ(gc_ctx_notify_add(c, &kept.node), 1);
    CHECK_EQ(gc_ctx_notify_add(c, &removed.node), 1);
    CHECK_EQ(gc_ctx_notify_remove(c, &never_added.node), 0);
    CHECK_EQ(gc_ctx_notify_remove(c, &removed.node), 1);
    CHECK_EQ(gc_ctx_notify_remove(c, &removed.node), 0);
    gc_ctx_cancel(c, GC_CTX_CANCELLED);
    gc_ctx_cancel(c, GC_CTX_CANCELLED);
    CHECK_EQ(atomic_load(&kept.calls), 1);
    CHECK_EQ(atomic_load(&removed.calls), 0);
    CHECK_EQ(gc_ctx_notify_remove(c, &kept.node), 0);
    /* Too late: refused, not called. */
    CHECK_EQ(gc_ctx_notify_add(c, &never_added.node), 0);
    CHECK_EQ(atomic_load(&never_added.calls), 0);
    gc_ctx_decref(c);
}

/* A callback may drop the last reference to its own context: the
 * canceller holds one of its own until it is done. */
typedef struct self_drop {
    gc_ctx_notify node;
    gc_ctx *c;
} self_drop;

static void
drop_context(gc_ctx_notify *node)
{
    self_drop *sd = (self_drop *)node;
    gc_ctx_decref(sd->c);
}

static void
test_callback_may_drop_its_context(void)
{
    gc_ctx *parent = gc_ctx_new(NULL, GC_FOREVER);
    self_drop sd;
    sd.c = gc_ctx_new(parent, GC_FOREVER);
    gc_ctx_notify_init(&sd.node, drop_context);
    CHECK_EQ(gc_ctx_notify_add(sd.c, &sd.node), 1);
    gc_ctx_cancel(parent, GC_CTX_CANCELLED); /* reaches sd.c, which dies */
    CHECK_EQ(gc_ctx_children(parent), 0);
    gc_ctx_decref(parent);
}

int
main(void)
{
    GC_RUN(test_cancel_propagates_down_a_tree_only);
    GC_RUN(test_dropping_a_parent_first_keeps_children_working);
    GC_RUN(test_go_TestSimultaneousCancels);
    GC_RUN(test_go_TestInterlockedCancels);
    GC_RUN(test_deep_chain_is_cancelled_and_freed_without_recursion);
    GC_RUN(test_million_short_lived_children_leave_the_parent_list_empty);
    GC_RUN(test_children_dropped_while_the_parent_is_cancelled);
    GC_RUN(test_children_created_while_the_parent_is_cancelled);
    GC_RUN(test_children_with_deadlines_created_while_the_parent_is_cancelled);
    GC_RUN(test_deadline_fires_from_the_timer_thread);
    GC_RUN(test_deadline_is_inherited_when_earlier);
    GC_RUN(test_deadline_in_the_past_gives_an_expired_context);
    GC_RUN(test_err_acts_at_the_deadline_for_its_owner);
    GC_RUN(test_cancel_and_drop_take_the_timer_out_of_the_heap);
    GC_RUN(test_contexts_dropped_as_their_deadlines_fire);
    GC_RUN(test_cancel_wakes_every_waiter_in_gc_chan_op);
    GC_RUN(test_value_sent_during_cancel_is_received_or_not_sent);
    GC_RUN(test_callbacks_add_remove_and_run_once);
    GC_RUN(test_callback_may_drop_its_context);
    return 0;
}
