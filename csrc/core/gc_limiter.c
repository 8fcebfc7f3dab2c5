/* gc_limiter.c - the token bucket of gc_limiter.h.
 *
 * The arithmetic follows x/time/rate step by step (advance,
 * durationFromTokens, tokensFromDuration, reserveN, CancelAt), with
 * nanosecond integers for times as Go has, so that the same calls give the
 * same answers.  Two departures, both where Go's answer is an accident:
 * sums of times saturate at +-GC_FOREVER instead of wrapping, and a
 * reservation made at an infinite rate gives nothing back when cancelled
 * (it took nothing).
 */
#include <math.h>

#include "gc_limiter.h"

/* a + b, saturating at +-GC_FOREVER.  Any int64 may come in (the
 * binding's internal methods pass INT64_MIN through); the tests decide
 * before anything could overflow. */
static int64_t
sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > GC_FOREVER - b) {
        return GC_FOREVER;
    }
    if (b < 0 && a < -GC_FOREVER - b) {
        return -GC_FOREVER;
    }
    return a + b;
}

/* a - b, saturating likewise (not sat_add(a, -b): -INT64_MIN overflows). */
static int64_t
sat_sub(int64_t a, int64_t b)
{
    if (b < 0 && a > GC_FOREVER + b) {
        return GC_FOREVER;
    }
    if (b > 0 && a < -GC_FOREVER + b) {
        return -GC_FOREVER;
    }
    return a - b;
}

/* Tokens gained in d nanoseconds.  A zero duration gains nothing even at
 * an infinite rate (where 0 * inf would be NaN). */
static double
tokens_from_duration(double rate, int64_t d)
{
    if (!(rate > 0) || d == 0) {
        return 0.0;
    }
    return (double)d / 1e9 * rate;
}

/* Nanoseconds it takes to gain `tokens`, truncated as Go converts a float
 * to a Duration; GC_FOREVER when that never happens or does not fit. */
static int64_t
duration_from_tokens(double rate, double tokens)
{
    if (!(rate > 0)) {
        return GC_FOREVER;
    }
    /* 2^63 as a double: anything from there on does not fit an int64. */
    double ns = tokens / rate * 1e9;
    if (ns >= 9223372036854775808.0) {
        return GC_FOREVER;
    }
    if (ns <= -9223372036854775808.0) {
        return -GC_FOREVER;
    }
    return (int64_t)ns;
}

/* The tokens at time now, without changing l: what is left plus what the
 * time since `last` brought, at most the burst.  A clock that went back
 * before `last` brings nothing.  Caller holds l->mu. */
static double
advance(const gc_limiter *l, int64_t now)
{
    int64_t last = l->last < now ? l->last : now;
    double tokens =
        l->tokens + tokens_from_duration(l->rate, sat_sub(now, last));
    double burst = (double)l->burst;
    return tokens > burst ? burst : tokens;
}

int
gc_limiter_init(gc_limiter *l, double rate, int64_t burst)
{
    if (gc_mutex_init(&l->mu) != 0) {
        return -1;
    }
    l->rate = rate;
    l->burst = burst;
    l->tokens = (double)burst;
    l->last = 0;
    l->last_event = 0;
    return 0;
}

void
gc_limiter_destroy(gc_limiter *l)
{
    gc_mutex_destroy(&l->mu);
}

gc_reservation
gc_limiter_reserve(gc_limiter *l, int64_t now, int64_t n, int64_t max_wait)
{
    gc_reservation r = {0, 0, GC_FOREVER, 0.0};
    gc_mutex_lock(&l->mu);
    r.rate = l->rate;
    if (isinf(l->rate)) {
        r.ok = 1;
        r.tokens = n;
        r.time_to_act = now;
    }
    else {
        double tokens = advance(l, now) - (double)n;
        int64_t wait = tokens < 0 ? duration_from_tokens(l->rate, -tokens) : 0;
        if (n <= l->burst && wait <= max_wait) {
            r.ok = 1;
            r.tokens = n;
            r.time_to_act = sat_add(now, wait);
            l->last = now;
            l->tokens = tokens;
            l->last_event = r.time_to_act;
        }
    }
    gc_mutex_unlock(&l->mu);
    return r;
}

int
gc_limiter_allow(gc_limiter *l, int64_t now, int64_t n)
{
    return gc_limiter_reserve(l, now, n, 0).ok;
}

void
gc_limiter_cancel(gc_limiter *l, gc_reservation *r, int64_t now)
{
    if (!r->ok) {
        return;
    }
    gc_mutex_lock(&l->mu);
    int64_t held = r->tokens;
    r->tokens = 0;
    if (isinf(l->rate) || isinf(r->rate) || held == 0 ||
        r->time_to_act < now) {
        goto out;
    }
    /* Reservations made after r were counted from r's time to act on:
     * the tokens that time span holds are theirs, not r's to give back. */
    double restore =
        (double)held -
        tokens_from_duration(r->rate, sat_sub(l->last_event, r->time_to_act));
    if (restore <= 0) {
        goto out;
    }
    double tokens = advance(l, now) + restore;
    double burst = (double)l->burst;
    l->tokens = tokens > burst ? burst : tokens;
    l->last = now;
    if (r->time_to_act == l->last_event) {
        /* r was the latest: the latest is now whatever came before it. */
        int64_t prev = sat_add(r->time_to_act,
                               duration_from_tokens(r->rate, -(double)held));
        if (prev >= now) {
            l->last_event = prev;
        }
    }
out:
    gc_mutex_unlock(&l->mu);
}

double
gc_limiter_tokens(gc_limiter *l, int64_t now)
{
    gc_mutex_lock(&l->mu);
    double tokens = advance(l, now);
    gc_mutex_unlock(&l->mu);
    return tokens;
}

void
gc_limiter_set_rate(gc_limiter *l, int64_t now, double rate)
{
    gc_mutex_lock(&l->mu);
    l->tokens = advance(l, now);
    l->last = now;
    l->rate = rate;
    gc_mutex_unlock(&l->mu);
}

void
gc_limiter_set_burst(gc_limiter *l, int64_t now, int64_t burst)
{
    gc_mutex_lock(&l->mu);
    l->tokens = advance(l, now);
    l->last = now;
    l->burst = burst;
    gc_mutex_unlock(&l->mu);
}

double
gc_limiter_rate(gc_limiter *l)
{
    gc_mutex_lock(&l->mu);
    double rate = l->rate;
    gc_mutex_unlock(&l->mu);
    return rate;
}

int64_t
gc_limiter_burst(gc_limiter *l)
{
    gc_mutex_lock(&l->mu);
    int64_t burst = l->burst;
    gc_mutex_unlock(&l->mu);
    return burst;
}
