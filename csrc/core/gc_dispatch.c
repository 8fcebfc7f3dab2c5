/* gc_dispatch.c - the dispatcher's queue (see gc_dispatch.h).
 *
 * An intrusive FIFO under a leaf lock, plus a "doorbell": a channel of
 * capacity 1 that push rings (a try_send that finds it full is dropped: a
 * ring is already pending) and pop waits on with gc_chan_recv, so that the
 * dispatcher's wait lets go of the binding's lock, spins, parks and looks
 * for signals exactly as any channel receive does.
 *
 * Invariants:
 *   - `head`/`tail`/`count` change only under `lock`;
 *   - after a push, the doorbell holds a ring until a pop takes it, and a
 *     pop waits on the doorbell only after finding the queue empty, so a
 *     task pushed before the doorbell was emptied is seen by the next look
 *     at the queue: no task waits for a later push.
 */
#include "gc_dispatch.h"

#include <stdlib.h>

static struct {
    gc_mutex lock;     /* protects head, tail and count */
    gc_task *head;     /* oldest task */
    gc_task *tail;     /* newest task */
    size_t count;      /* tasks queued */
    gc_chan *doorbell; /* capacity 1, immediate values only */
} dq;

static uv_once_t dq_once = UV_ONCE_INIT;

static void
dq_init(void)
{
    gc_mutex_init(&dq.lock);
    /* Made once for the life of the process; without it push would have
     * to allocate.  An allocation failure this early leaves doorbell NULL
     * and pop polling (see gc_dispatch_pop). */
    dq.doorbell = gc_chan_new(1);
}

void
gc_dispatch_push(gc_task *t)
{
    uv_once(&dq_once, dq_init);
    t->next = NULL;
    gc_mutex_lock(&dq.lock);
    if (dq.tail) {
        dq.tail->next = t;
    }
    else {
        dq.head = t;
    }
    dq.tail = t;
    dq.count++;
    gc_mutex_unlock(&dq.lock);
    if (dq.doorbell) {
        gc_chan_try_send(dq.doorbell, gc_item_from_time(0));
    }
}

static gc_task *
take(void)
{
    gc_mutex_lock(&dq.lock);
    gc_task *t = dq.head;
    if (t) {
        dq.head = t->next;
        if (!dq.head) {
            dq.tail = NULL;
        }
        dq.count--;
        t->next = NULL;
    }
    gc_mutex_unlock(&dq.lock);
    return t;
}

gc_status
gc_dispatch_pop(gc_task **out, int64_t deadline, const gc_unlock *u)
{
    uv_once(&dq_once, dq_init);
    for (;;) {
        gc_task *t = take();
        if (t) {
            *out = t;
            return GC_OK;
        }
        if (deadline != GC_FOREVER && gc_now_ns() >= deadline) {
            return GC_TIMEOUT;
        }
        void *ring;
        gc_status st;
        if (dq.doorbell) {
            st = gc_chan_recv(dq.doorbell, &ring, deadline, u);
        }
        else {
            /* No doorbell: look again every millisecond. */
            int64_t soon = gc_deadline_after(1000000);
            st = gc_wait(NULL, 0, soon < deadline ? soon : deadline, NULL, u);
            st = st == GC_INTR ? GC_INTR : GC_OK;
        }
        if (st == GC_INTR || st == GC_TIMEOUT) {
            return st;
        }
    }
}

size_t
gc_dispatch_pending(void)
{
    uv_once(&dq_once, dq_init);
    gc_mutex_lock(&dq.lock);
    size_t n = dq.count;
    gc_mutex_unlock(&dq.lock);
    return n;
}
