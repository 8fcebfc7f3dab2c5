/* gc_select.h - Go's select: complete exactly one of several channel
 * operations, waiting until one can proceed.
 *
 *     gc_case cases[2] = {
 *         {.ch = jobs, .dir = GC_RECV},
 *         {.ch = results, .dir = GC_SEND, .item = value},
 *     };
 *     size_t i;
 *     gc_status st = gc_select(cases, 2, 0, deadline, NULL, unlock, &i);
 *     // GC_OK: case i completed (a receive's value is in cases[i].item)
 *
 * Of several cases that can proceed, one is chosen uniformly at random
 * (GC_SELECT_BIASED: the first in array order).  A case on a NULL channel
 * is never ready.  The same channel may appear in several cases.  When
 * gc_select returns, none of its cases is registered anywhere.
 */
#ifndef GC_SELECT_H
#define GC_SELECT_H

#include "gc_chan.h"

/* Flags of gc_select. */
enum {
    GC_SELECT_BIASED = 1, /* prefer cases in array order, not at random */
    GC_SELECT_NOWAIT = 2, /* Go's `default:`: never wait */
};

/* Largest number of cases gc_select handles without allocating. */
#define GC_SELECT_STACK_CASES 8

/* Complete one of the n cases.  `cancel` (may be NULL) is a channel that
 * nobody sends on and that is closed to cancel the select (a context's
 * done channel); `unlock` (may be NULL) is let go of while waiting, as in
 * gc_wait.  Returns:
 *   GC_OK          case *index completed;
 *   GC_CLOSED      case *index is on a closed channel: a receive found it
 *                  closed and drained (Go's ok == false), or a send found
 *                  it closed (an error for the caller);
 *   GC_WOULDBLOCK  GC_SELECT_NOWAIT and no case could proceed;
 *   GC_TIMEOUT     the deadline passed (GC_FOREVER: never; a deadline
 *                  already past tries every case once);
 *   GC_CANCELLED   `cancel` was closed, before or during the wait (checked
 *                  first: a cancelled select does nothing);
 *   GC_INTR        a signal interrupted the wait; nothing happened;
 *   GC_NOMEM       more than GC_SELECT_STACK_CASES cases and no memory.
 * With n == 0 it waits for the deadline, the cancel channel or a signal.
 * Cases move payloads as try_send/try_recv do: call it under the same lock
 * as those (gc_chan.h). */
gc_status gc_select(gc_case *cases, size_t n, int flags, int64_t deadline,
                    gc_chan *cancel, const gc_unlock *unlock, size_t *index);

/* A uniformly random integer below n (n >= 1), from a per-thread
 * generator: cheap, not for secrets. */
size_t gc_random_below(size_t n);

#endif /* GC_SELECT_H */
