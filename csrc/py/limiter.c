/* limiter.c - gochan._core._TokenBucket, the base class of gochan.Limiter.
 *
 * The token bucket of csrc/core/gc_limiter.h as a type that
 * gochan/_ratelimit.py subclasses: the calls that never wait (allow,
 * tokens, set_rate, set_burst and the _reserve/_cancel primitives) are
 * here, where allow() costs a method call, a clock read and a mutex; the
 * Python subclass adds reserve() and wait().  gochan/_ratelimit.py has the
 * same class in Python (_PyTokenBucket), with the same names, messages and
 * arithmetic, for when this module does not provide it.
 *
 * Public times are seconds on the time.monotonic() clock (floats);
 * the core and the underscore methods use integer nanoseconds.
 *
 * Invariants:
 *   - the core's mutex is taken with the GIL held and never across a call
 *     into Python: arguments are converted before, results built after.
 *     So no thread holds it when another forks (os.fork() holds the GIL),
 *     and a child never inherits it locked;
 *   - the type is subclassable, so methods never assume Py_TYPE(self) is
 *     this type, and it holds no Python objects (no GC support needed).
 *
 * The module registers it through gc_py_limiter_init(m, st).
 */
#include <math.h>

#include "binding.h"
#include "gc_limiter.h"

typedef struct token_bucket {
    PyObject ob_base; /* PyObject_HEAD, spelled out for clang-format */
    gc_limiter lim;   /* the bucket; initialised by TokenBucket_new */
} token_bucket;

#define LIM(self) (&((token_bucket *)(self))->lim)

/* Times given as now= are kept within +-2^62 ns (about 146 years) so that
 * the difference of two of them fits an int64. */
#define NOW_LIMIT_NS 4611686018427387904.0

/* --- argument conversion ------------------------------------------------- */

/* A number as a double, as float(obj) gives it, except that an int too
 * large for a double is an infinity rather than an OverflowError.  A str
 * is not a number: TypeError "<what>, not str". */
static int
as_double(PyObject *obj, const char *what, double *out)
{
    double value = PyFloat_AsDouble(obj);
    if (value == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            int positive = PyObject_RichCompareBool(obj, Py_False, Py_GT);
            if (positive < 0) {
                return -1;
            }
            value = positive ? INFINITY : -INFINITY;
        }
        else {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Format(PyExc_TypeError, "%s, not %.200s", what,
                             Py_TYPE(obj)->tp_name);
            }
            return -1;
        }
    }
    *out = value;
    return 0;
}

/* now= (seconds on the time.monotonic() clock, or None) to nanoseconds. */
static int
parse_now(PyObject *obj, int64_t *ns)
{
    if (obj == NULL || obj == Py_None) {
        *ns = gc_now_ns();
        return 0;
    }
    double seconds;
    if (as_double(obj,
                  "now must be a number (seconds on the time.monotonic() "
                  "clock) or None",
                  &seconds) < 0) {
        return -1;
    }
    double x = nearbyint(seconds * 1e9);
    if (!(fabs(x) < NOW_LIMIT_NS)) {
        gc_py_bad_value(obj, "now must be a finite time.monotonic() value");
        return -1;
    }
    *ns = (int64_t)x;
    return 0;
}

/* n: an int >= 0; one larger than any burst becomes INT64_MAX. */
static int
parse_n(PyObject *obj, int64_t *n)
{
    if (obj == NULL) {
        *n = 1;
        return 0;
    }
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "n must be an int, not %.200s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow > 0) {
        *n = INT64_MAX;
        return 0;
    }
    if (overflow < 0 || value < 0) {
        gc_py_bad_value(obj, "n must be >= 0");
        return -1;
    }
    *n = (int64_t)value;
    return 0;
}

/* rate: a number >= 0 of events per second; inf for no limit. */
static int
parse_rate(PyObject *obj, double *rate)
{
    double value;
    const char *what = "rate must be a number of events per second";
    if (as_double(obj, what, &value) < 0) {
        return -1;
    }
    if (!(value >= 0)) {
        gc_py_bad_value(obj, "rate must be >= 0 events per second "
                             "(float('inf') for no limit)");
        return -1;
    }
    *rate = value;
    return 0;
}

/* burst: an int from 0 to 2**63 - 1. */
static int
parse_burst(PyObject *obj, int64_t *burst)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "burst must be an int, not %.200s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow != 0 || value < 0) {
        gc_py_bad_value(obj, "burst must be between 0 and 2**63 - 1");
        return -1;
    }
    *burst = (int64_t)value;
    return 0;
}

/* An int argument of the underscore methods, saturated to an int64. */
static int
parse_ns(PyObject *obj, int64_t *ns)
{
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    *ns = overflow > 0 ? INT64_MAX : overflow < 0 ? -INT64_MAX : value;
    return 0;
}

/* The underscore methods take exactly `want` positional arguments. */
static int
check_nargs(const char *fname, Py_ssize_t nargs, Py_ssize_t want)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)",
                     fname, want, nargs);
        return -1;
    }
    return 0;
}

/* Arguments (first=..., *, now=None) of a vectorcall: `first` is named
 * `name` and may be given by position or keyword (NULL when absent); `now`
 * only by keyword.  With name NULL there is no first argument.  0, or -1
 * with TypeError. */
static int
parse_args(const char *fname, const char *name, int required,
           PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
           PyObject **first, PyObject **now)
{
    Py_ssize_t max_pos = name != NULL;
    if (nargs > max_pos) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes at most %zd positional argument%s (%zd "
                     "given)",
                     fname, max_pos, max_pos == 1 ? "" : "s", nargs);
        return -1;
    }
    *first = nargs > 0 ? args[0] : NULL;
    *now = NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *value = args[nargs + i];
        if (name != NULL && PyUnicode_CompareWithASCIIString(key, name) == 0) {
            if (*first != NULL) {
                PyErr_Format(PyExc_TypeError,
                             "%s() got multiple values for argument '%s'",
                             fname, name);
                return -1;
            }
            *first = value;
        }
        else if (PyUnicode_CompareWithASCIIString(key, "now") == 0) {
            *now = value;
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument '%U'", fname,
                         key);
            return -1;
        }
    }
    if (required && *first == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'",
                     fname, name);
        return -1;
    }
    return 0;
}

/* --- the type ------------------------------------------------------------ */

static PyObject *
TokenBucket_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rate", "burst", NULL};
    PyObject *rate_obj, *burst_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:Limiter", kwlist,
                                     &rate_obj, &burst_obj)) {
        return NULL;
    }
    double rate;
    int64_t burst = 1;
    if (parse_rate(rate_obj, &rate) < 0 ||
        (burst_obj != NULL && parse_burst(burst_obj, &burst) < 0)) {
        return NULL;
    }
    token_bucket *self = (token_bucket *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (gc_limiter_init(&self->lim, rate, burst) < 0) {
        /* tp_alloc zeroed the object; dealloc must not destroy the mutex
         * that was never made, so free it by hand. */
        gc_py_free((PyObject *)self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void
TokenBucket_dealloc(PyObject *self)
{
    gc_limiter_destroy(LIM(self));
    gc_py_free(self);
}

PyDoc_STRVAR(
    bucket_allow__doc__,
    "allow($self, /, n=1, *, now=None)\n"
    "--\n"
    "\n"
    "Take n tokens if the bucket holds them now; return whether it did.\n"
    "\n"
    "Never waits: use it to drop or skip the events over the limit.  now\n"
    "is a time.monotonic() value (default: the clock now).\n"
    "\n"
    "    if not limiter.allow():\n"
    "        return 'busy, try later'");

static PyObject *
bucket_allow(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    int64_t n = 1, now;
    if (nargs == 0 && kwnames == NULL) {
        /* The common call, allow(): no argument to look at. */
        now = gc_now_ns();
    }
    else {
        PyObject *n_obj, *now_obj;
        if (parse_args("allow", "n", 0, args, nargs, kwnames, &n_obj,
                       &now_obj) < 0 ||
            parse_n(n_obj, &n) < 0 || parse_now(now_obj, &now) < 0) {
            return NULL;
        }
    }
    return PyBool_FromLong(gc_limiter_allow(LIM(self), now, n));
}

PyDoc_STRVAR(bucket_tokens__doc__,
             "tokens($self, /, *, now=None)\n"
             "--\n"
             "\n"
             "The tokens in the bucket at time now (default: the clock now),\n"
             "negative while reservations have taken more than it held.\n"
             "\n"
             "    assert gochan.Limiter(10, burst=3).tokens() == 3.0");

static PyObject *
bucket_tokens(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames)
{
    PyObject *unused, *now_obj;
    int64_t now;
    if (parse_args("tokens", NULL, 0, args, nargs, kwnames, &unused,
                   &now_obj) < 0 ||
        parse_now(now_obj, &now) < 0) {
        return NULL;
    }
    return PyFloat_FromDouble(gc_limiter_tokens(LIM(self), now));
}

PyDoc_STRVAR(
    bucket_set_rate__doc__,
    "set_rate($self, /, rate, *, now=None)\n"
    "--\n"
    "\n"
    "Refill at `rate` tokens per second from time now on (the tokens\n"
    "gained until now count at the old rate).  Reservations made before\n"
    "keep the times they were given.\n"
    "\n"
    "    limiter.set_rate(100)   # busy hours are over");

static PyObject *
bucket_set_rate(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    PyObject *rate_obj, *now_obj;
    double rate;
    int64_t now;
    if (parse_args("set_rate", "rate", 1, args, nargs, kwnames, &rate_obj,
                   &now_obj) < 0 ||
        parse_rate(rate_obj, &rate) < 0 || parse_now(now_obj, &now) < 0) {
        return NULL;
    }
    gc_limiter_set_rate(LIM(self), now, rate);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(bucket_set_burst__doc__,
             "set_burst($self, /, burst, *, now=None)\n"
             "--\n"
             "\n"
             "Make the bucket hold at most `burst` tokens from time now on.\n"
             "\n"
             "    limiter.set_burst(10)");

static PyObject *
bucket_set_burst(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *kwnames)
{
    PyObject *burst_obj, *now_obj;
    int64_t burst, now;
    if (parse_args("set_burst", "burst", 1, args, nargs, kwnames, &burst_obj,
                   &now_obj) < 0 ||
        parse_burst(burst_obj, &burst) < 0 || parse_now(now_obj, &now) < 0) {
        return NULL;
    }
    gc_limiter_set_burst(LIM(self), now, burst);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(
    bucket_reserve_ns__doc__,
    "_reserve($self, n, now_ns, max_wait_ns, /)\n"
    "--\n"
    "\n"
    "Internal: reserve n tokens at now_ns, granted only if they come\n"
    "within max_wait_ns; returns (ok, tokens, time_to_act_ns, rate).");

static PyObject *
bucket_reserve_ns(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t n, now, max_wait;
    if (check_nargs("_reserve", nargs, 3) < 0 || parse_n(args[0], &n) < 0 ||
        parse_ns(args[1], &now) < 0 || parse_ns(args[2], &max_wait) < 0) {
        return NULL;
    }
    gc_reservation r = gc_limiter_reserve(LIM(self), now, n, max_wait);
    return Py_BuildValue("(OLLd)", r.ok ? Py_True : Py_False,
                         (long long)r.tokens, (long long)r.time_to_act,
                         r.rate);
}

PyDoc_STRVAR(bucket_cancel_ns__doc__,
             "_cancel($self, tokens, time_to_act_ns, rate, now_ns, /)\n"
             "--\n"
             "\n"
             "Internal: give back what a reservation from _reserve holds.");

static PyObject *
bucket_cancel_ns(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    gc_reservation r = {1, 0, 0, 0.0};
    int64_t now;
    if (check_nargs("_cancel", nargs, 4) < 0 ||
        parse_ns(args[0], &r.tokens) < 0 ||
        parse_ns(args[1], &r.time_to_act) < 0 || parse_ns(args[3], &now) < 0) {
        return NULL;
    }
    r.rate = PyFloat_AsDouble(args[2]);
    if (r.rate == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    gc_limiter_cancel(LIM(self), &r, now);
    Py_RETURN_NONE;
}

static PyObject *
bucket_get_rate(PyObject *self, void *closure)
{
    return PyFloat_FromDouble(gc_limiter_rate(LIM(self)));
}

static PyObject *
bucket_get_burst(PyObject *self, void *closure)
{
    return PyLong_FromLongLong(gc_limiter_burst(LIM(self)));
}

static PyMethodDef TokenBucket_methods[] = {
    {"allow", FUNC(bucket_allow), FASTCALL_KW, bucket_allow__doc__},
    {"tokens", FUNC(bucket_tokens), FASTCALL_KW, bucket_tokens__doc__},
    {"set_rate", FUNC(bucket_set_rate), FASTCALL_KW, bucket_set_rate__doc__},
    {"set_burst", FUNC(bucket_set_burst), FASTCALL_KW,
     bucket_set_burst__doc__},
    {"_reserve", FUNC(bucket_reserve_ns), METH_FASTCALL,
     bucket_reserve_ns__doc__},
    {"_cancel", FUNC(bucket_cancel_ns), METH_FASTCALL,
     bucket_cancel_ns__doc__},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(
    bucket_rate__doc__,
    "Tokens added per second (float('inf'): every event is allowed).\n"
    "\n"
    "    assert gochan.Limiter(2.5).rate == 2.5");

PyDoc_STRVAR(
    bucket_burst__doc__,
    "The most tokens the bucket holds, and so the largest n allowed.\n"
    "\n"
    "    assert gochan.Limiter(10, burst=4).burst == 4");

static PyGetSetDef TokenBucket_getset[] = {
    {"rate", bucket_get_rate, NULL, bucket_rate__doc__, NULL},
    {"burst", bucket_get_burst, NULL, bucket_burst__doc__, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(TokenBucket__doc__,
             "_TokenBucket(rate, burst=1)\n"
             "--\n"
             "\n"
             "The token bucket under gochan.Limiter: use gochan.Limiter.");

static PyType_Slot TokenBucket_slots[] = {
    {Py_tp_doc, (void *)TokenBucket__doc__},
    {Py_tp_new, TokenBucket_new},
    {Py_tp_dealloc, TokenBucket_dealloc},
    {Py_tp_methods, TokenBucket_methods},
    {Py_tp_getset, TokenBucket_getset},
    {0, NULL},
};

static PyType_Spec TokenBucket_spec = {
    .name = "gochan._core._TokenBucket",
    .basicsize = sizeof(token_bucket),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = TokenBucket_slots,
};

int
gc_py_limiter_init(PyObject *m, gc_py_state *st)
{
    return gc_py_add_type(m, &TokenBucket_spec, NULL);
}
