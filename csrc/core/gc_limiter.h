/* gc_limiter.h - a token bucket: the arithmetic of Go's x/time/rate.
 *
 * A limiter holds up to `burst` tokens and gains `rate` tokens per second.
 * An event of n tokens takes them from the bucket; a reservation may take
 * more than the bucket holds (tokens go negative), and its caller then
 * waits until the deficit has been refilled.  Times are monotonic
 * nanoseconds given by the caller, so that tests can drive a fake clock;
 * GC_FOREVER stands for "never".  The bucket starts full.
 *
 * Semantics are x/time/rate's, case by case: a rate of +inf allows every
 * event whatever the burst; a rate of 0 allows the tokens in the bucket and
 * then nothing; a clock that goes backwards refills nothing and moves the
 * limiter's clock back with it; cancelling a reservation gives back the
 * tokens that later reservations have not already counted on.
 */
#ifndef GC_LIMITER_H
#define GC_LIMITER_H

#include "gc_platform.h"

/* Invariants: every field is read and written with `mu` held, and `mu` is
 * a leaf lock held for a few arithmetic operations only. */
typedef struct gc_limiter {
    gc_mutex mu;        /* protects the fields below */
    double rate;        /* tokens per second: >= 0, +inf for no limit */
    int64_t burst;      /* capacity of the bucket, >= 0 */
    double tokens;      /* tokens at time `last`; < 0 once reserved ahead */
    int64_t last;       /* when `tokens` was brought up to date */
    int64_t last_event; /* time to act of the latest reservation */
} gc_limiter;

/* What gc_limiter_reserve granted.  A reservation that is not ok took
 * nothing and has time_to_act GC_FOREVER. */
typedef struct gc_reservation {
    int ok;              /* the tokens are granted (possibly later) */
    int64_t tokens;      /* tokens it holds; 0 once cancelled */
    int64_t time_to_act; /* when they are available; GC_FOREVER: never */
    double rate;         /* the limiter's rate when it was made */
} gc_reservation;

/* Initialise a full bucket.  rate >= 0 (or +inf), burst >= 0; the caller
 * checks them.  0, or -1 if the mutex could not be created. */
int gc_limiter_init(gc_limiter *l, double rate, int64_t burst);
void gc_limiter_destroy(gc_limiter *l);

/* Take n tokens at time now if the bucket holds them: x/time/rate's
 * AllowN.  1 if taken, 0 if not (nothing changes then). */
int gc_limiter_allow(gc_limiter *l, int64_t now, int64_t n);

/* Reserve n tokens at time now: ok unless n exceeds the burst (and the
 * rate is finite) or the tokens would come later than now + max_wait
 * (GC_FOREVER: no limit).  A reservation that is not ok changes nothing. */
gc_reservation gc_limiter_reserve(gc_limiter *l, int64_t now, int64_t n,
                                  int64_t max_wait);

/* Give back what r still holds, at time now, as far as later reservations
 * allow (x/time/rate's CancelAt), and empty r: only the first cancel of a
 * reservation has an effect.  r must come from this limiter. */
void gc_limiter_cancel(gc_limiter *l, gc_reservation *r, int64_t now);

/* Tokens in the bucket at time now (negative while reserved ahead). */
double gc_limiter_tokens(gc_limiter *l, int64_t now);

/* Change the rate or the burst from time now on: the tokens gained until
 * now are counted at the old rate and capped by the old burst. */
void gc_limiter_set_rate(gc_limiter *l, int64_t now, double rate);
void gc_limiter_set_burst(gc_limiter *l, int64_t now, int64_t burst);

double gc_limiter_rate(gc_limiter *l);
int64_t gc_limiter_burst(gc_limiter *l);

#endif /* GC_LIMITER_H */
