/* test_limiter.c - the token bucket of gc_limiter.h.
 *
 * What it proves:
 *   - the bucket starts full, refills at the rate up to the burst, and
 *     allow takes tokens only when they are there (ports of Go's tables);
 *   - reservations may take the bucket below zero and say when to act;
 *     cancelling gives back what later reservations leave, once;
 *   - a clock that goes backwards refills nothing;
 *   - rates of 0, of +inf and too small to refill within an int64 of
 *     nanoseconds, and times near GC_FOREVER or at INT64_MIN, give no
 *     overflow (UBSan);
 *   - threads calling allow, reserve, cancel, set_rate and set_burst at
 *     once take exactly the tokens there are (and TSan sees no race).
 * Ports of Go's tests (golang.org/x/time/rate/rate_test.go):
 * TestLimiterBurst1, TestLimiterBurst3, TestLimiterJumpBackwards,
 * TestSimultaneousRequests, TestLongRunningQPS, TestSimpleReserve,
 * TestCancelLast, TestCancel1Token, TestCancelMulti, TestReserveMax,
 * TestZeroLimit, TestTinyLimit.
 */
#include <math.h>

#include "gc_limiter.h"
#include "gc_test.h"

/* Go's fake clock: T(k) = t0 + k * d with d = 100 ms. */
#define D    (100 * GC_MS)
#define T(k) ((int64_t)1000000000000 + (int64_t)(k)*D)

/* Multiples of D since t0, to the nearest (Go's dSince). */
static int64_t
d_since(int64_t t)
{
    return (t - T(0) + D / 2) / D;
}

static void
check_tokens(gc_limiter *l, int64_t now, double want)
{
    double got = gc_limiter_tokens(l, now);
    if (fabs(got - want) > 1e-9) {
        fprintf(stderr, "tokens at t%lld: %g, expected %g\n",
                (long long)d_since(now), got, want);
        abort();
    }
}

/* Reserve n at T(at); check ok and the time to act in multiples of D. */
static gc_reservation
check_reserve(gc_limiter *l, int at, int64_t n, int act, int ok)
{
    gc_reservation r = gc_limiter_reserve(l, T(at), n, GC_FOREVER);
    CHECK_EQ(r.ok, ok);
    if (ok) {
        CHECK_EQ(d_since(r.time_to_act), act);
        CHECK_EQ(r.tokens, n);
    }
    return r;
}

static void
test_burst_1(void)
{
    /* Port of Go's TestLimiterBurst1. */
    gc_limiter l;
    CHECK_EQ(gc_limiter_init(&l, 10, 1), 0);
    check_tokens(&l, T(0), 1);
    CHECK(gc_limiter_allow(&l, T(0), 1));
    CHECK(!gc_limiter_allow(&l, T(0), 1));
    CHECK(gc_limiter_allow(&l, T(1), 1));
    CHECK(!gc_limiter_allow(&l, T(1), 1));
    CHECK(!gc_limiter_allow(&l, T(2), 2)); /* n above the burst */
    CHECK(gc_limiter_allow(&l, T(2), 1));
    CHECK(!gc_limiter_allow(&l, T(2), 1));
    gc_limiter_destroy(&l);
}

static void
test_burst_3(void)
{
    /* Port of Go's TestLimiterBurst3. */
    static const struct {
        int at;
        double tokens;
        int n, ok;
    } steps[] = {
        {0, 3, 2, 1}, {0, 1, 2, 0}, {0, 1, 1, 1}, {0, 0, 1, 0}, {1, 1, 4, 0},
        {2, 2, 1, 1}, {3, 2, 1, 1}, {4, 2, 1, 1}, {4, 1, 1, 1}, {4, 0, 1, 0},
        {4, 0, 1, 0}, {9, 3, 3, 1}, {9, 0, 0, 1},
    };
    gc_limiter l;
    CHECK_EQ(gc_limiter_init(&l, 10, 3), 0);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        check_tokens(&l, T(steps[i].at), steps[i].tokens);
        CHECK_EQ(gc_limiter_allow(&l, T(steps[i].at), steps[i].n),
                 steps[i].ok);
    }
    gc_limiter_destroy(&l);
}

static void
test_clock_jumping_back_refills_nothing(void)
{
    /* Port of Go's TestLimiterJumpBackwards. */
    gc_limiter l;
    CHECK_EQ(gc_limiter_init(&l, 10, 3), 0);
    CHECK(gc_limiter_allow(&l, T(1), 1));
    check_tokens(&l, T(0), 2); /* back to t0: two tokens remain */
    CHECK(gc_limiter_allow(&l, T(0), 1));
    CHECK(gc_limiter_allow(&l, T(0), 1));
    CHECK(!gc_limiter_allow(&l, T(0), 1));
    CHECK(gc_limiter_allow(&l, T(1), 1)); /* got a token */
    CHECK(!gc_limiter_allow(&l, T(1), 1));
    CHECK(gc_limiter_allow(&l, T(2), 1)); /* got another token */
    CHECK(!gc_limiter_allow(&l, T(2), 1));
    gc_limiter_destroy(&l);
}

static void
test_long_running_qps(void)
{
    /* Port of Go's TestLongRunningQPS, on the fake clock. */
    gc_limiter l;
    CHECK_EQ(gc_limiter_init(&l, 100, 100), 0);
    int64_t now = T(0), end = T(0) + 5000 * GC_MS;
    int allowed = 0;
    for (; now < end; now += 2 * GC_MS) {
        allowed += gc_limiter_allow(&l, now, 1);
    }
    double ideal = 100 + 100 * (double)(now - T(0)) / 1e9;
    CHECK(allowed <= (int)(ideal + 1));
    CHECK(allowed >= (int)(0.999 * ideal));
    gc_limiter_destroy(&l);
}

static void
test_reserve_and_cancel(void)
{
    /* Ports of Go's TestSimpleReserve, TestCancelLast, TestCancel1Token and
     * TestCancelMulti. */
    gc_limiter l;
    CHECK_EQ(gc_limiter_init(&l, 10, 2), 0);
    check_reserve(&l, 0, 2, 0, 1);
    check_reserve(&l, 0, 2, 2, 1);
    check_reserve(&l, 3, 2, 4, 1);
    gc_limiter_destroy(&l);

    CHECK_EQ(gc_limiter_init(&l, 10, 2), 0);
    check_reserve(&l, 0, 2, 0, 1);
    gc_reservation r = check_reserve(&l, 0, 2, 2, 1);
    gc_limiter_cancel(&l, &r, T(1)); /* 2 tokens back */
    CHECK_EQ(r.tokens, 0);
    check_reserve(&l, 1, 2, 2, 1);
    gc_limiter_destroy(&l);

    CHECK_EQ(gc_limiter_init(&l, 10, 2), 0);
    check_reserve(&l, 0, 2, 0, 1);
    r = check_reserve(&l, 0, 2, 2, 1);
    check_reserve(&l, 0, 1, 3, 1);
    gc_limiter_cancel(&l, &r, T(2)); /* 1 token back */
    gc_limiter_cancel(&l, &r, T(2)); /* nothing more */
    check_reserve(&l, 2, 2, 4, 1);
    gc_limiter_destroy(&l);

    CHECK_EQ(gc_limiter_init(&l, 10, 4), 0);
    check_reserve(&l, 0, 4, 0, 1);
    gc_reservation a = check_reserve(&l, 0, 3, 3, 1);
    check_reserve(&l, 0, 1, 4, 1);
    gc_reservation c = check_reserve(&l, 0, 1, 5, 1);
    gc_limiter_cancel(&l, &c, T(1)); /* 1 token back */
    gc_limiter_cancel(&l, &a, T(1)); /* 2 back, as if c never was */
    check_reserve(&l, 1, 3, 5, 1);
    gc_limiter_destroy(&l);
}

static void
test_reserve_within_a_maximum_wait(void)
{
    /* Port of Go's TestReserveMax. */
    gc_limiter l;
    CHECK_EQ(gc_limiter_init(&l, 10, 2), 0);
    CHECK(gc_limiter_reserve(&l, T(0), 2, D).ok);
    gc_reservation r = gc_limiter_reserve(&l, T(0), 1, D);
    CHECK(r.ok);
    CHECK_EQ(d_since(r.time_to_act), 1);
    r = gc_limiter_reserve(&l, T(0), 1, D); /* too far ahead */
    CHECK(!r.ok);
    CHECK_EQ(r.time_to_act, GC_FOREVER);
    check_tokens(&l, T(0), -1); /* the failed one took nothing */
    gc_limiter_destroy(&l);
}

static void
test_extreme_rates_and_times(void)
{
    /* Ports of Go's TestZeroLimit and TestTinyLimit, and the edges where
     * sums of times would overflow. */
    gc_limiter l;
    CHECK_EQ(gc_limiter_init(&l, 0, 2), 0);
    CHECK(gc_limiter_allow(&l, T(0), 1));
    CHECK(gc_limiter_allow(&l, T(5), 1));
    CHECK(!gc_limiter_allow(&l, GC_FOREVER / 2, 1));
    gc_reservation r = gc_limiter_reserve(&l, T(0), 1, GC_FOREVER);
    CHECK(r.ok);
    CHECK_EQ(r.time_to_act, GC_FOREVER); /* never */
    gc_limiter_cancel(&l, &r, T(0));
    check_tokens(&l, T(0), 0);
    gc_limiter_set_rate(&l, T(0), 10); /* refills again */
    r = gc_limiter_reserve(&l, T(0), 1, GC_FOREVER);
    CHECK_EQ(d_since(r.time_to_act), 1);
    gc_limiter_destroy(&l);

    CHECK_EQ(gc_limiter_init(&l, 1e-10, 1), 0);
    CHECK(gc_limiter_allow(&l, T(0), 1));
    CHECK(!gc_limiter_allow(&l, T(0), 1));
    r = gc_limiter_reserve(&l, T(0), 1, GC_FOREVER);
    CHECK_EQ(r.time_to_act, GC_FOREVER);
    gc_limiter_destroy(&l);

    CHECK_EQ(gc_limiter_init(&l, INFINITY, 0), 0);
    CHECK(gc_limiter_allow(&l, T(0), 1000000));
    r = gc_limiter_reserve(&l, -GC_FOREVER, INT64_MAX, 0);
    CHECK(r.ok);
    gc_limiter_cancel(&l, &r, GC_FOREVER); /* took nothing, gives nothing */
    gc_limiter_set_rate(&l, T(1), 1);
    check_tokens(&l, T(1), 0);
    gc_limiter_destroy(&l);

    CHECK_EQ(gc_limiter_init(&l, 1e300, 3), 0);
    CHECK(gc_limiter_allow(&l, -GC_FOREVER + 1, 3));
    check_tokens(&l, GC_FOREVER, 3);
    CHECK(gc_limiter_allow(&l, GC_FOREVER, 3));
    r = gc_limiter_reserve(&l, GC_FOREVER, 3, GC_FOREVER);
    CHECK(r.ok);
    gc_limiter_cancel(&l, &r, -GC_FOREVER);
    gc_limiter_set_burst(&l, -GC_FOREVER, 1);
    CHECK_EQ(gc_limiter_burst(&l), 1);
    gc_limiter_destroy(&l);
}

/* ---- threads ---- */

enum { THREADS = 8, CALLS = 2000 };

static gc_limiter shared;
static atomic_int taken;

static void *
allow_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < CALLS; i++) {
        if (gc_limiter_allow(&shared, T(0), 1)) {
            atomic_fetch_add(&taken, 1);
        }
    }
    return NULL;
}

static void
test_simultaneous_requests_take_exactly_the_burst(void)
{
    /* Port of Go's TestSimultaneousRequests, on the fake clock. */
    CHECK_EQ(gc_limiter_init(&shared, 1, 5000), 0);
    atomic_store(&taken, 0);
    gc_test_threads t = gc_test_threads_start(THREADS, allow_many, NULL, 0);
    gc_test_threads_join(&t);
    CHECK_EQ(atomic_load(&taken), 5000);
    check_tokens(&shared, T(0), 0);
    gc_limiter_destroy(&shared);
}

static void *
mixed_calls(void *arg)
{
    unsigned seed = *(unsigned *)arg;
    for (int i = 0; i < CALLS; i++) {
        seed = seed * 1103515245u + 12345u;
        int64_t now = gc_now_ns();
        switch ((seed >> 16) % 6) {
        case 0:
            (void)gc_limiter_allow(&shared, now, 1);
            break;
        case 1: {
            gc_reservation r = gc_limiter_reserve(&shared, now, 2, 10 * GC_MS);
            if ((seed >> 20) & 1) {
                gc_limiter_cancel(&shared, &r, now);
            }
            break;
        }
        case 2:
            gc_limiter_set_rate(&shared, now, (double)((seed >> 18) % 1000));
            break;
        case 3:
            gc_limiter_set_burst(&shared, now, (int64_t)((seed >> 18) % 10));
            break;
        case 4:
            (void)gc_limiter_tokens(&shared, now);
            break;
        default:
            (void)gc_limiter_rate(&shared);
            (void)gc_limiter_burst(&shared);
            break;
        }
    }
    return NULL;
}

static void
test_every_call_at_once_from_threads(void)
{
    static unsigned seeds[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        seeds[i] = 7919u * (i + 1);
    }
    CHECK_EQ(gc_limiter_init(&shared, 100, 5), 0);
    gc_test_threads t =
        gc_test_threads_start(THREADS, mixed_calls, seeds, sizeof seeds[0]);
    gc_test_threads_join(&t);
    double tokens = gc_limiter_tokens(&shared, gc_now_ns());
    CHECK(tokens <= (double)gc_limiter_burst(&shared));
    gc_limiter_destroy(&shared);
}

/* The binding's internal _reserve and _cancel take any int64 time, -2**63
 * included.  A clock that went back that far refills nothing, as any
 * other step back (no overflow: the difference of two times used to be
 * computed as a + -b, and -INT64_MIN overflows, which UBSan reports). */
static void
test_the_most_negative_time_refills_nothing_and_never_overflows(void)
{
    gc_limiter l;
    CHECK_EQ(gc_limiter_init(&l, 1, 1), 0);
    check_tokens(&l, INT64_MIN, 1);
    gc_reservation r = gc_limiter_reserve(&l, INT64_MIN, 1, 0);
    CHECK(r.ok);
    CHECK_EQ(r.time_to_act, INT64_MIN);
    check_tokens(&l, INT64_MIN, 0);
    gc_reservation made_up = {1, 1, INT64_MIN, 1.0};
    gc_limiter_cancel(&l, &made_up, INT64_MIN);
    gc_limiter_destroy(&l);
}

int
main(void)
{
    GC_RUN(test_burst_1);
    GC_RUN(test_burst_3);
    GC_RUN(test_clock_jumping_back_refills_nothing);
    GC_RUN(test_long_running_qps);
    GC_RUN(test_reserve_and_cancel);
    GC_RUN(test_reserve_within_a_maximum_wait);
    GC_RUN(test_extreme_rates_and_times);
    GC_RUN(test_the_most_negative_time_refills_nothing_and_never_overflows);
    GC_RUN(test_simultaneous_requests_take_exactly_the_burst);
    GC_RUN(test_every_call_at_once_from_threads);
    return 0;
}
