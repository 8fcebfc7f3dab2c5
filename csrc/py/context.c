/* context.c - gochan contexts (cancellation tokens): the Context type, the
 * cancel functions and after_func registrations, and the hooks that let
 * every blocking call take ctx=.
 *
 * A Context is a chain of Python objects, each holding its parent, over a
 * tree of core tokens (gc_ctx) that does the cancelling.  Which token a
 * Context uses, as in Go:
 *   - background(), todo(), without_cancel(): none (tok NULL): never
 *     cancelled, so a blocking call given one pays nothing (*cancel NULL);
 *   - with_cancel(), with_cancel_cause(), with_deadline(), with_timeout():
 *     a new token, child of the parent's (owns_tok);
 *   - with_value(): the parent's token, shared.
 * Values and the deadline's float are kept on the Python side; the core
 * only knows ns deadlines.
 *
 * Causes: the core records, for a cancelled token, the token whose
 * cancellation reached it (cause_src).  The cause object given to
 * cancel(cause) is kept on the Context that owns that token; cause()
 * walks up its own chain of parents (which always includes the owner of
 * cause_src: a token's ancestors belong to the Context's ancestors) to
 * find it.  A deadline is its own cause (there is no with_timeout_cause).
 *
 * Invariants:
 *   - tok, done_ch, parent, kind, owns_tok, key, deadline are fixed at
 *     creation; parent is never cleared before deallocation (tp_clear
 *     leaves it), so a chain can always be walked;
 *   - `cause` is set at most once (compare-and-swap from NULL, Py_None for
 *     "no cause"), before the token is cancelled, by the cancel function
 *     of the owner; read only once the token is cancelled;
 *   - `done` and `err` are created on first use and then never change
 *     (under a critical section on free-threaded builds);
 *   - an after_func registration holds a reference to itself from
 *     registration until its task has run or stop() unregistered it, and
 *     a reference to the token for as long as it lives.
 */
#include <math.h>
#include <stdatomic.h>

#include "binding.h"
#include "gc_ctx.h"
#include "gc_dispatch.h"

#ifdef Py_BEGIN_CRITICAL_SECTION
#define CTX_LOCK(obj) Py_BEGIN_CRITICAL_SECTION(obj)
#define CTX_UNLOCK()  Py_END_CRITICAL_SECTION()
#else
#define CTX_LOCK(obj) {
#define CTX_UNLOCK()  }
#endif

/* How a Context was made: its link in the repr chain. */
enum ctx_kind {
    KIND_BACKGROUND,
    KIND_TODO,
    KIND_CANCEL,
    KIND_CANCEL_CAUSE,
    KIND_DEADLINE,
    KIND_TIMEOUT,
    KIND_VALUE,
    KIND_WITHOUT_CANCEL,
};

typedef struct ctx_object {
    PyObject ob_base;
    gc_ctx *tok;               /* counted reference; NULL: never done */
    gc_chan *done_ch;          /* tok's done channel, or NULL */
    struct ctx_object *parent; /* strong reference; NULL for a root */
    int kind;                  /* enum ctx_kind */
    int owns_tok;              /* tok was made for this Context */
    double deadline;           /* seconds (monotonic); NAN: none */
    PyObject *key;             /* with_value only */
    PyObject *value;           /* with_value only */
    PyObject *done;            /* the RecvChan, made on first use */
    PyObject *err;             /* the error instance, made on first use */
    _Atomic(PyObject *) cause; /* owners: given to cancel(); see above */
    PyObject *weakreflist;
} ctx_object;

/* The head of the two callable types, CancelFunc and AfterFuncStop: a
 * call goes straight to `vectorcall` (__vectorcalloffset__). */
typedef struct callable_object {
    PyObject ob_base;
    vectorcallfunc vectorcall;
} callable_object;

typedef struct cancel_object {
    callable_object head; /* vectorcall: cancel_vectorcall */
    ctx_object *ctx;      /* strong reference; owns_tok is set */
} cancel_object;

typedef struct afunc_object {
    callable_object head; /* vectorcall: afunc_stop */
    gc_ctx_notify node;   /* registration on tok */
    gc_task task;         /* queued to the dispatcher once done */
    gc_ctx *tok;          /* counted reference; NULL: never done */
    PyObject *fn;         /* until it is handed over or stopped */
    int stopped;          /* tok NULL only: stop() ran */
} afunc_object;

#define CTX(o) ((ctx_object *)(o))

static PyObject *cancel_vectorcall(PyObject *op, PyObject *const *args,
                                   size_t nargsf, PyObject *kwnames);
static PyObject *afunc_stop(PyObject *op, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames);

static const char *const err_messages[] = {
    [GC_CTX_CANCELLED] = "context canceled",
    [GC_CTX_DEADLINE_EXCEEDED] = "context deadline exceeded",
};

static PyObject *
err_class(gc_py_state *st, int state)
{
    return state == GC_CTX_DEADLINE_EXCEEDED ? st->DeadlineExceeded
                                             : st->Cancelled;
}

/* --- the hooks of blocking calls ----------------------------------------- */

int
gc_py_ctx_parse(gc_py_state *st, PyObject *obj, gc_chan **cancel)
{
    if (Py_TYPE(obj) != st->Context_Type) {
        gc_py_bad_type(obj, "ctx must be a gochan Context or None");
        return -1;
    }
    *cancel = CTX(obj)->done_ch;
    return 0;
}

PyObject *
gc_py_ctx_raise(gc_py_state *st, PyObject *obj)
{
    ctx_object *self = CTX(obj);
    int state = self->tok ? gc_ctx_err(self->tok) : GC_CTX_ACTIVE;
    if (state == GC_CTX_ACTIVE) {
        /* Not reached by the callers (they raise once done); say so
         * rather than raise a wrong error. */
        PyErr_SetString(PyExc_SystemError,
                        "gochan: raising the error of an active context");
        return NULL;
    }
    /* A fresh instance each time: a shared one would pile up the
     * tracebacks of every raise. */
    PyErr_SetString(err_class(st, state), err_messages[state]);
    return NULL;
}

/* --- making contexts ----------------------------------------------------- */

static ctx_object *
ctx_alloc(gc_py_state *st, ctx_object *parent, int kind)
{
    PyTypeObject *tp = st->Context_Type;
    ctx_object *self = (ctx_object *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->kind = kind;
    self->deadline = NAN;
    self->parent = parent;
    Py_XINCREF(parent);
    return self;
}

/* The parent argument: a Context (borrowed), or NULL with TypeError. */
static ctx_object *
parse_parent(gc_py_state *st, const char *fname, PyObject *obj)
{
    if (Py_TYPE(obj) != st->Context_Type) {
        gc_py_bad_type(obj,
                       "%s() parent must be a gochan Context (such as "
                       "gochan.background())",
                       fname);
        return NULL;
    }
    return CTX(obj);
}

/* A new Context with its own token, child of parent's, with `deadline`
 * (ns; GC_FOREVER for none; deadline_s its float seconds). */
static ctx_object *
ctx_derive(gc_py_state *st, ctx_object *parent, int kind, int64_t deadline,
           double deadline_s)
{
    gc_ctx *tok = gc_ctx_new(parent->tok, deadline);
    if (tok == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    ctx_object *self = ctx_alloc(st, parent, kind);
    if (self == NULL) {
        gc_ctx_decref(tok);
        return NULL;
    }
    self->tok = tok;
    self->done_ch = gc_ctx_done(tok);
    self->owns_tok = 1;
    /* The earlier deadline of the two, as the token's: the parent's float
     * when that one is what the token inherited. */
    int64_t parent_ns =
        parent->tok ? gc_ctx_deadline(parent->tok) : GC_FOREVER;
    if (deadline == GC_FOREVER || parent_ns <= deadline) {
        self->deadline = parent->deadline;
    }
    else {
        self->deadline = deadline_s;
    }
    return self;
}

/* A (ctx, cancel) tuple for a new token-owning Context. */
static PyObject *
ctx_pair(gc_py_state *st, ctx_object *parent, int kind, int64_t deadline,
         double deadline_s)
{
    ctx_object *ctx = ctx_derive(st, parent, kind, deadline, deadline_s);
    if (ctx == NULL) {
        return NULL;
    }
    PyTypeObject *tp = st->CancelFunc_Type;
    cancel_object *cancel = (cancel_object *)tp->tp_alloc(tp, 0);
    if (cancel == NULL) {
        Py_DECREF(ctx);
        return NULL;
    }
    cancel->head.vectorcall = cancel_vectorcall;
    cancel->ctx = ctx; /* the reference from ctx_derive */
    PyObject *pair = PyTuple_Pack(2, (PyObject *)ctx, (PyObject *)cancel);
    Py_DECREF(cancel);
    return pair;
}

/* Seconds (int or float) for fname's argument `what`; NaN is refused. */
static int
parse_seconds(const char *fname, const char *what, PyObject *obj, double *out)
{
    double s;
    if (gc_py_seconds(obj, &s, "%s() %s must be a number of seconds", fname,
                      what) < 0) {
        return -1;
    }
    if (isnan(s)) {
        PyErr_Format(PyExc_ValueError, "%s() %s must not be NaN", fname, what);
        return -1;
    }
    *out = s;
    return 0;
}

/* Seconds on the monotonic clock to an absolute ns deadline, rounded up
 * and saturated: inf is GC_FOREVER, anything before the epoch is 0 (long
 * past). */
static int64_t
deadline_ns(double seconds)
{
    double ns = ceil(seconds * 1e9);
    if (ns >= (double)GC_FOREVER) {
        return GC_FOREVER;
    }
    return ns <= 0 ? 0 : (int64_t)ns;
}

PyDoc_STRVAR(
    background__doc__,
    "background($module, /)\n"
    "--\n"
    "\n"
    "The root context: never cancelled, no deadline, no values.  Start\n"
    "every tree of contexts from it (the same object on every call).\n"
    "\n"
    "    ctx, cancel = gochan.with_cancel(gochan.background())");

static PyObject *
ctx_background(PyObject *module, PyObject *unused)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(module);
    return Py_NewRef(st->ctx_background);
}

PyDoc_STRVAR(
    todo__doc__,
    "todo($module, /)\n"
    "--\n"
    "\n"
    "Like background(), for code that has no context yet but should get\n"
    "one: a marker for later, as in Go.\n"
    "\n"
    "    ch.recv(ctx=gochan.todo())");

static PyObject *
ctx_todo(PyObject *module, PyObject *unused)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(module);
    return Py_NewRef(st->ctx_todo);
}

PyDoc_STRVAR(with_cancel__doc__,
             "_with_cancel($module, parent, /)\n"
             "--\n"
             "\n"
             "(ctx, cancel) for gochan.with_cancel (internal).");

static PyObject *
ctx_with_cancel(PyObject *module, PyObject *arg)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(module);
    ctx_object *parent = parse_parent(st, "with_cancel", arg);
    return parent ? ctx_pair(st, parent, KIND_CANCEL, GC_FOREVER, NAN) : NULL;
}

PyDoc_STRVAR(with_cancel_cause__doc__,
             "_with_cancel_cause($module, parent, /)\n"
             "--\n"
             "\n"
             "(ctx, cancel) for gochan.with_cancel_cause (internal).");

static PyObject *
ctx_with_cancel_cause(PyObject *module, PyObject *arg)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(module);
    ctx_object *parent = parse_parent(st, "with_cancel_cause", arg);
    return parent ? ctx_pair(st, parent, KIND_CANCEL_CAUSE, GC_FOREVER, NAN)
                  : NULL;
}

PyDoc_STRVAR(with_deadline__doc__,
             "_with_deadline($module, parent, deadline, /)\n"
             "--\n"
             "\n"
             "(ctx, cancel) for gochan.with_deadline (internal).");

/* The arguments (parent, <what>) of _with_deadline and _with_timeout:
 * the parent (borrowed) and the seconds, or NULL with an exception. */
static ctx_object *
parse_parent_and_seconds(gc_py_state *st, const char *fname, const char *what,
                         PyObject *const *args, Py_ssize_t nargs,
                         double *seconds)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes 2 arguments (parent, %s), %zd given", fname,
                     what, nargs);
        return NULL;
    }
    ctx_object *parent = parse_parent(st, fname, args[0]);
    if (parent == NULL || parse_seconds(fname, what, args[1], seconds) < 0) {
        return NULL;
    }
    return parent;
}

static PyObject *
ctx_with_deadline(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(module);
    double seconds;
    ctx_object *parent = parse_parent_and_seconds(
        st, "with_deadline", "deadline", args, nargs, &seconds);
    if (parent == NULL) {
        return NULL;
    }
    int64_t ns = deadline_ns(seconds);
    return ctx_pair(st, parent, KIND_DEADLINE, ns,
                    ns == GC_FOREVER ? NAN : seconds);
}

PyDoc_STRVAR(with_timeout__doc__,
             "_with_timeout($module, parent, seconds, /)\n"
             "--\n"
             "\n"
             "(ctx, cancel) for gochan.with_timeout (internal).");

static PyObject *
ctx_with_timeout(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(module);
    double seconds;
    ctx_object *parent = parse_parent_and_seconds(
        st, "with_timeout", "seconds", args, nargs, &seconds);
    if (parent == NULL) {
        return NULL;
    }
    /* Rounded up; a negative timeout is a deadline already past. */
    double ns = ceil(seconds * 1e9);
    int64_t deadline = ns >= (double)GC_FOREVER
                           ? GC_FOREVER
                           : gc_deadline_after(ns <= 0 ? 0 : (int64_t)ns);
    return ctx_pair(st, parent, KIND_TIMEOUT, deadline,
                    deadline == GC_FOREVER ? NAN : (double)deadline / 1e9);
}

PyDoc_STRVAR(
    with_value__doc__,
    "with_value($module, /, parent, key, value)\n"
    "--\n"
    "\n"
    "A child of parent that carries value under key.  ctx.value(key) finds\n"
    "the nearest one up the chain (keys are compared with ==); cancellation\n"
    "and deadline are the parent's.  key must not be None.\n"
    "\n"
    "    ctx = gochan.with_value(gochan.background(), 'request_id', 42)\n"
    "    assert ctx.value('request_id') == 42");

static PyObject *
ctx_with_value(PyObject *module, PyObject *args, PyObject *kwargs)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(module);
    static char *kwlist[] = {"parent", "key", "value", NULL};
    PyObject *parent_obj, *key, *value;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:with_value", kwlist,
                                     &parent_obj, &key, &value)) {
        return NULL;
    }
    ctx_object *parent = parse_parent(st, "with_value", parent_obj);
    if (parent == NULL) {
        return NULL;
    }
    if (key == Py_None) {
        PyErr_SetString(PyExc_TypeError, "with_value() key must not be None");
        return NULL;
    }
    ctx_object *self = ctx_alloc(st, parent, KIND_VALUE);
    if (self == NULL) {
        return NULL;
    }
    if (parent->tok != NULL) {
        gc_ctx_incref(parent->tok);
    }
    self->tok = parent->tok;
    self->done_ch = parent->done_ch;
    self->deadline = parent->deadline;
    self->key = Py_NewRef(key);
    self->value = Py_NewRef(value);
    return (PyObject *)self;
}

PyDoc_STRVAR(
    without_cancel__doc__,
    "without_cancel($module, /, parent)\n"
    "--\n"
    "\n"
    "A child of parent that is never cancelled and has no deadline, but\n"
    "sees parent's values: for work that must outlive the request that\n"
    "started it.\n"
    "\n"
    "    ctx, cancel = gochan.with_cancel(gochan.with_value(\n"
    "        gochan.background(), 'user', 'ann'))\n"
    "    detached = gochan.without_cancel(ctx)\n"
    "    cancel()\n"
    "    assert detached.err() is None and detached.value('user') == 'ann'");

static PyObject *
ctx_without_cancel(PyObject *module, PyObject *args, PyObject *kwargs)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(module);
    static char *kwlist[] = {"parent", NULL};
    PyObject *parent_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:without_cancel", kwlist,
                                     &parent_obj)) {
        return NULL;
    }
    ctx_object *parent = parse_parent(st, "without_cancel", parent_obj);
    if (parent == NULL) {
        return NULL;
    }
    return (PyObject *)ctx_alloc(st, parent, KIND_WITHOUT_CANCEL);
}

/* --- Context methods ----------------------------------------------------- */

/* The state of the Context's token (ACTIVE without one). */
static inline int
ctx_state(ctx_object *self)
{
    return self->tok ? gc_ctx_err(self->tok) : GC_CTX_ACTIVE;
}

static void
release_tok(void *tok)
{
    gc_ctx_decref((gc_ctx *)tok);
}

PyDoc_STRVAR(ctx_done__doc__,
             "done($self, /)\n"
             "--\n"
             "\n"
             "A RecvChan closed when the context is cancelled (the same one\n"
             "on every call; never closed for background()).  Use it as a\n"
             "case of select().\n"
             "\n"
             "    gochan.select(gochan.Recv(jobs), gochan.Recv(ctx.done()))");

static PyObject *
ctx_done(PyObject *op, PyObject *unused)
{
    ctx_object *self = CTX(op);
    gc_py_state *st = gc_py_state_of(Py_TYPE(op));
    PyObject *result = NULL;
    CTX_LOCK(op);
    if (self->done == NULL) {
        PyObject *chan;
        if (self->tok != NULL) {
            gc_ctx_incref(self->tok);
            chan = gc_py_chan_adopt(st, self->done_ch, release_tok, self->tok);
        }
        else {
            chan = PyObject_CallNoArgs((PyObject *)st->Chan_Type);
        }
        if (chan != NULL) {
            self->done = gc_py_view_new(st->RecvChan_Type, chan);
            Py_DECREF(chan);
        }
    }
    result = Py_XNewRef(self->done);
    CTX_UNLOCK();
    return result;
}

/* err() for the state just read, as a new reference (None while
 * active).  Callers read the state once: read again, it might have moved
 * on since. */
static PyObject *
ctx_err_get(ctx_object *self, int state)
{
    if (state == GC_CTX_ACTIVE) {
        Py_RETURN_NONE;
    }
    gc_py_state *st = gc_py_state_of(Py_TYPE(self));
    PyObject *result = NULL;
    CTX_LOCK((PyObject *)self);
    if (self->err == NULL) {
        self->err = PyObject_CallFunction(err_class(st, state), "s",
                                          err_messages[state]);
    }
    result = Py_XNewRef(self->err);
    CTX_UNLOCK();
    return result;
}

PyDoc_STRVAR(
    ctx_err__doc__,
    "err($self, /)\n"
    "--\n"
    "\n"
    "None while the context is active; once it is done, a Cancelled or a\n"
    "DeadlineExceeded instance (the same one on every call).\n"
    "\n"
    "    if ctx.err() is not None:\n"
    "        return  # cancelled: stop working");

static PyObject *
ctx_err(PyObject *op, PyObject *unused)
{
    return ctx_err_get(CTX(op), ctx_state(CTX(op)));
}

PyDoc_STRVAR(
    ctx_cause__doc__,
    "cause($self, /)\n"
    "--\n"
    "\n"
    "Why the context was cancelled: the exception given to the cancel\n"
    "function of with_cancel_cause() (its own, or that of the ancestor\n"
    "whose cancellation reached it), else err(); None while active.\n"
    "\n"
    "    ctx, cancel = gochan.with_cancel_cause(gochan.background())\n"
    "    cancel(ConnectionError('peer went away'))\n"
    "    assert isinstance(ctx.cause(), ConnectionError)");

static PyObject *
ctx_cause(PyObject *op, PyObject *unused)
{
    ctx_object *self = CTX(op);
    int state = ctx_state(self);
    if (state == GC_CTX_CANCELLED) {
        gc_ctx *src = gc_ctx_cause_src(self->tok);
        for (ctx_object *c = self; c != NULL; c = c->parent) {
            if (c->tok == src && c->owns_tok) {
                /* acquire: pairs with the CAS of cancel(cause). */
                PyObject *cause =
                    atomic_load_explicit(&c->cause, memory_order_acquire);
                if (cause != NULL && cause != Py_None) {
                    return Py_NewRef(cause);
                }
                break;
            }
        }
    }
    return ctx_err_get(self, state);
}

PyDoc_STRVAR(
    ctx_deadline__doc__,
    "deadline($self, /)\n"
    "--\n"
    "\n"
    "The earliest deadline of this context and its ancestors, in seconds\n"
    "on the time.monotonic() clock, or None if there is none.\n"
    "\n"
    "    ctx, cancel = gochan.with_timeout(gochan.background(), 5.0)\n"
    "    left = ctx.deadline() - time.monotonic()   # about 5.0");

static PyObject *
ctx_deadline(PyObject *op, PyObject *unused)
{
    double d = CTX(op)->deadline;
    if (isnan(d)) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(d);
}

PyDoc_STRVAR(
    ctx_value__doc__,
    "value($self, key, /)\n"
    "--\n"
    "\n"
    "The value that the nearest with_value() up the chain gave key\n"
    "(compared with ==), or None.\n"
    "\n"
    "    ctx = gochan.with_value(gochan.background(), 'user', 'ann')\n"
    "    assert ctx.value('user') == 'ann'\n"
    "    assert ctx.value('missing') is None");

static PyObject *
ctx_value(PyObject *op, PyObject *key)
{
    for (ctx_object *c = CTX(op); c != NULL; c = c->parent) {
        if (c->kind != KIND_VALUE || c->key == NULL) {
            continue;
        }
        int eq = PyObject_RichCompareBool(c->key, key, Py_EQ);
        if (eq < 0) {
            return NULL;
        }
        if (eq) {
            return Py_NewRef(c->value);
        }
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(
    ctx_check__doc__,
    "check($self, /)\n"
    "--\n"
    "\n"
    "Raise the context's error (Cancelled or DeadlineExceeded) if it is\n"
    "done; do nothing otherwise.  For loops that do not block.\n"
    "\n"
    "    for item in work:\n"
    "        ctx.check()\n"
    "        process(item)");

static PyObject *
ctx_check(PyObject *op, PyObject *unused)
{
    if (ctx_state(CTX(op)) != GC_CTX_ACTIVE) {
        return gc_py_ctx_raise(gc_py_state_of(Py_TYPE(op)), op);
    }
    Py_RETURN_NONE;
}

static PyObject *afunc_new(gc_py_state *st, ctx_object *ctx, PyObject *fn);

PyDoc_STRVAR(
    ctx_after_func__doc__,
    "after_func($self, fn, /)\n"
    "--\n"
    "\n"
    "Run fn() in its own goroutine once the context is done (at once if it\n"
    "already is).  Returns stop(): it unregisters fn and returns True if\n"
    "that kept fn from running, False if fn was already started or\n"
    "stopped.\n"
    "\n"
    "    stop = ctx.after_func(lambda: conn.close())\n"
    "    ...\n"
    "    stop()   # finished first: the connection stays open");

static PyObject *
ctx_after_func(PyObject *op, PyObject *fn)
{
    if (!PyCallable_Check(fn)) {
        gc_py_bad_type(fn, "after_func() fn must be callable");
        return NULL;
    }
    return afunc_new(gc_py_state_of(Py_TYPE(op)), CTX(op), fn);
}

PyDoc_STRVAR(ctx_children__doc__,
             "_children($self, /)\n"
             "--\n"
             "\n"
             "Children linked to this context's token now (for tests).");

static PyObject *
ctx_children(PyObject *op, PyObject *unused)
{
    gc_ctx *tok = CTX(op)->tok;
    return PyLong_FromSize_t(tok ? gc_ctx_children(tok) : 0);
}

PyDoc_STRVAR(ctx_reduce__doc__,
             "__reduce__($self, /)\n"
             "--\n"
             "\n"
             "Contexts cannot be pickled: raises TypeError.");

PyDoc_STRVAR(ctx_reduce_ex__doc__,
             "__reduce_ex__($self, protocol, /)\n"
             "--\n"
             "\n"
             "Contexts cannot be pickled: raises TypeError.");

static PyObject *
ctx_reduce(PyObject *self, PyObject *unused)
{
    return gc_py_cannot_pickle(self, "contexts live in one process");
}

/* --- repr ---------------------------------------------------------------- */

/* Links of the chain shown on each side of the middle left out. */
#define REPR_HEAD 2
#define REPR_TAIL 8

/* The repr link of c: "background", ".with_cancel", ... */
static PyObject *
repr_link(ctx_object *c)
{
    static const char *const names[] = {
        [KIND_BACKGROUND] = "background",
        [KIND_TODO] = "todo",
        [KIND_CANCEL] = "with_cancel",
        [KIND_CANCEL_CAUSE] = "with_cancel_cause",
        [KIND_DEADLINE] = "with_deadline",
        [KIND_TIMEOUT] = "with_timeout",
        [KIND_VALUE] = "with_value",
        [KIND_WITHOUT_CANCEL] = "without_cancel",
    };
    const char *dot = c->parent ? "." : "";
    const char *name = names[c->kind];
    if (c->kind == KIND_VALUE) {
        return PyUnicode_FromFormat("%s%s(%R, %R)", dot, name,
                                    c->key ? c->key : Py_None,
                                    c->value ? c->value : Py_None);
    }
    if ((c->kind == KIND_DEADLINE || c->kind == KIND_TIMEOUT) &&
        !isnan(c->deadline)) {
        /* The time left, as Go shows it (in ms: PyUnicode_FromFormat has
         * no float format). */
        double left = c->deadline - (double)gc_now_ns() / 1e9;
        long long ms = (long long)(fabs(left) * 1000.0);
        return PyUnicode_FromFormat("%s%s(%lld.%03llds %s)", dot, name,
                                    ms / 1000, ms % 1000,
                                    left < 0 ? "ago" : "left");
    }
    return PyUnicode_FromFormat("%s%s", dot, name);
}

static PyObject *
Context_repr(PyObject *op)
{
    ctx_object *self = CTX(op);
    int rec = Py_ReprEnter(op);
    if (rec != 0) {
        return rec > 0 ? PyUnicode_FromString("<gochan.Context ...>") : NULL;
    }
    /* The links from the root down, the middle of a long chain left out:
     * parts[0] is the opening, then the links, then the state. */
    Py_ssize_t depth = 0;
    for (ctx_object *c = self; c != NULL; c = c->parent) {
        depth++;
    }
    int cut = depth > REPR_HEAD + REPR_TAIL + 1;
    Py_ssize_t shown = cut ? REPR_HEAD + 1 + REPR_TAIL : depth;
    PyObject *parts = PyList_New(shown + 2);
    if (parts == NULL) {
        Py_ReprLeave(op);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t pos = depth; /* of c, counted from the root (1-based) */
    for (ctx_object *c = self; c != NULL; c = c->parent, pos--) {
        PyObject *link;
        Py_ssize_t slot;
        if (!cut || pos > depth - REPR_TAIL) {
            slot = cut ? shown - (depth - pos) : pos;
            link = repr_link(c);
        }
        else if (pos <= REPR_HEAD) {
            slot = pos;
            link = repr_link(c);
        }
        else if (pos == REPR_HEAD + 1) {
            slot = pos;
            link = PyUnicode_FromFormat(".<%zd more>",
                                        depth - REPR_HEAD - REPR_TAIL);
        }
        else {
            continue;
        }
        if (link == NULL) {
            goto done;
        }
        PyList_SET_ITEM(parts, slot, link);
    }
    int state = ctx_state(self);
    PyObject *head = PyUnicode_FromString("<gochan.Context ");
    PyObject *tail = PyUnicode_FromString(
        state == GC_CTX_CANCELLED           ? " (cancelled)>"
        : state == GC_CTX_DEADLINE_EXCEEDED ? " (deadline exceeded)>"
                                            : ">");
    if (head == NULL || tail == NULL) {
        Py_XDECREF(head);
        Py_XDECREF(tail);
        goto done;
    }
    PyList_SET_ITEM(parts, 0, head);
    PyList_SET_ITEM(parts, shown + 1, tail);
    PyObject *empty = PyUnicode_FromString("");
    if (empty != NULL) {
        result = PyUnicode_Join(empty, parts);
        Py_DECREF(empty);
    }
done:
    Py_DECREF(parts);
    Py_ReprLeave(op);
    return result;
}

/* --- the Context type ---------------------------------------------------- */

static int
Context_traverse(PyObject *op, visitproc visit, void *arg)
{
    ctx_object *self = CTX(op);
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->parent);
    Py_VISIT(self->key);
    Py_VISIT(self->value);
    Py_VISIT(self->err);
    Py_VISIT(atomic_load_explicit(&self->cause, memory_order_relaxed));
    return 0;
}

/* Break cycles through values, errors and causes.  The parent stays: a
 * chain must stay walkable (cause(), value()) for the whole life of each
 * link, and parent links alone cannot form a cycle. */
static int
Context_clear(PyObject *op)
{
    ctx_object *self = CTX(op);
    Py_CLEAR(self->key);
    Py_CLEAR(self->value);
    Py_CLEAR(self->err);
    PyObject *cause = atomic_exchange(&self->cause, NULL);
    Py_XDECREF(cause);
    return 0;
}

static void
Context_dealloc(PyObject *op)
{
    ctx_object *self = CTX(op);
    PyObject_GC_UnTrack(op);
    /* A chain of a hundred thousand contexts, each holding the next, is
     * freed without a C recursion per link. */
    Py_TRASHCAN_BEGIN(op, Context_dealloc);
    gc_py_clear_weakrefs(op, self->weakreflist);
    Context_clear(op);
    Py_CLEAR(self->done);
    Py_CLEAR(self->parent);
    if (self->tok != NULL) {
        gc_ctx_decref(self->tok);
        self->tok = NULL;
    }
    gc_py_free(op);
    Py_TRASHCAN_END;
}

static PyMethodDef Context_methods[] = {
    {"done", ctx_done, METH_NOARGS, ctx_done__doc__},
    {"err", ctx_err, METH_NOARGS, ctx_err__doc__},
    {"cause", ctx_cause, METH_NOARGS, ctx_cause__doc__},
    {"deadline", ctx_deadline, METH_NOARGS, ctx_deadline__doc__},
    {"value", ctx_value, METH_O, ctx_value__doc__},
    {"check", ctx_check, METH_NOARGS, ctx_check__doc__},
    {"after_func", ctx_after_func, METH_O, ctx_after_func__doc__},
    {"_children", ctx_children, METH_NOARGS, ctx_children__doc__},
    {"__reduce__", ctx_reduce, METH_NOARGS, ctx_reduce__doc__},
    {"__reduce_ex__", ctx_reduce, METH_O, ctx_reduce_ex__doc__},
    {NULL, NULL, 0, NULL},
};

GC_PY_WEAKLIST_MEMBERS(Context_members, ctx_object);

PyDoc_STRVAR(
    Context__doc__,
    "A context: a cancellation signal, an optional deadline and values,\n"
    "handed down a call tree (Go's context.Context).  Made by background(),\n"
    "todo() and the with_* functions, never directly.  Every blocking call\n"
    "takes one as ctx= and raises its error as soon as it is cancelled.\n"
    "\n"
    "    with gochan.with_timeout(gochan.background(), 2.0) as ctx:\n"
    "        reply = replies.recv(ctx=ctx)   # DeadlineExceeded after 2 s");

static PyType_Slot Context_slots[] = {
    {Py_tp_doc, (void *)Context__doc__}, {Py_tp_dealloc, Context_dealloc},
    {Py_tp_traverse, Context_traverse},  {Py_tp_clear, Context_clear},
    {Py_tp_repr, Context_repr},          {Py_tp_methods, Context_methods},
    {Py_tp_members, Context_members},    {0, NULL},
};

static PyType_Spec Context_spec = {
    .name = "gochan.Context",
    .basicsize = sizeof(ctx_object),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Context_slots,
};

/* --- what the callable types share --------------------------------------- */

static PyMethodDef callable_methods[] = {
    {"__reduce__", ctx_reduce, METH_NOARGS, ctx_reduce__doc__},
    {"__reduce_ex__", ctx_reduce, METH_O, ctx_reduce_ex__doc__},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef callable_members[] = {
    {"__vectorcalloffset__", Py_T_PYSSIZET,
     offsetof(callable_object, vectorcall), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

/* --- cancel functions ---------------------------------------------------- */

/* inspect.signature() cannot read a callable object of a C type; a
 * __signature__ tells it: "()", or "(cause=None)" with_cause. */
static PyObject *
call_signature(int with_cause)
{
    PyObject *inspect = PyImport_ImportModule("inspect");
    if (inspect == NULL) {
        return NULL;
    }
    PyObject *result = NULL;
    PyObject *param_type = NULL, *kind = NULL, *kwargs = NULL;
    PyObject *params = PyList_New(0);
    if (params == NULL) {
        goto done;
    }
    if (with_cause) {
        param_type = PyObject_GetAttrString(inspect, "Parameter");
        kind = param_type ? PyObject_GetAttrString(param_type,
                                                   "POSITIONAL_OR_KEYWORD")
                          : NULL;
        kwargs = kind ? Py_BuildValue("{s:O}", "default", Py_None) : NULL;
        PyObject *args = kwargs ? Py_BuildValue("(sO)", "cause", kind) : NULL;
        PyObject *param =
            args ? PyObject_Call(param_type, args, kwargs) : NULL;
        Py_XDECREF(args);
        int rc = param ? PyList_Append(params, param) : -1;
        Py_XDECREF(param);
        if (rc < 0) {
            goto done;
        }
    }
    result = PyObject_CallMethod(inspect, "Signature", "O", params);
done:
    Py_XDECREF(kwargs);
    Py_XDECREF(kind);
    Py_XDECREF(param_type);
    Py_XDECREF(params);
    Py_DECREF(inspect);
    return result;
}

static PyObject *
CancelFunc_signature(PyObject *op, void *closure)
{
    return call_signature(((cancel_object *)op)->ctx->kind ==
                          KIND_CANCEL_CAUSE);
}

static PyObject *
cancel_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf,
                  PyObject *kwnames)
{
    ctx_object *ctx = ((cancel_object *)op)->ctx;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *cause = NULL;
    if (ctx->kind == KIND_CANCEL_CAUSE) {
        if (nargs + nkw > 1 ||
            (nkw == 1 && PyUnicode_CompareWithASCIIString(
                             PyTuple_GET_ITEM(kwnames, 0), "cause") != 0)) {
            PyErr_SetString(PyExc_TypeError,
                            "cancel() takes one optional argument, cause");
            return NULL;
        }
        cause = nargs + nkw == 1 ? args[0] : NULL;
        if (cause == Py_None) {
            cause = NULL;
        }
        if (cause != NULL && !PyExceptionInstance_Check(cause)) {
            gc_py_bad_type(cause,
                           "cancel() cause must be an exception instance or "
                           "None");
            return NULL;
        }
    }
    else if (nargs + nkw != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "cancel() takes no arguments (use with_cancel_cause "
                        "to give a cause)");
        return NULL;
    }
    if (ctx->kind == KIND_CANCEL_CAUSE &&
        gc_ctx_state(ctx->tok) == GC_CTX_ACTIVE) {
        /* First cause wins; None marks a cancel without one, so that a
         * later cause does not replace "none". */
        PyObject *stored = Py_NewRef(cause ? cause : Py_None);
        PyObject *expected = NULL;
        /* release: pairs with cause()'s acquire load. */
        if (!atomic_compare_exchange_strong_explicit(
                &ctx->cause, &expected, stored, memory_order_release,
                memory_order_relaxed)) {
            Py_DECREF(stored);
        }
    }
    /* Without the GIL: the threads woken first can run while the rest are
     * being woken.  The token lives as long as ctx, which the caller's
     * reference to this cancel function keeps. */
    Py_BEGIN_ALLOW_THREADS(void) gc_ctx_cancel(ctx->tok, GC_CTX_CANCELLED);
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

static PyObject *
CancelFunc_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<gochan.CancelFunc of %R>",
                                (PyObject *)((cancel_object *)op)->ctx);
}

static int
CancelFunc_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(((cancel_object *)op)->ctx);
    return 0;
}

static void
CancelFunc_dealloc(PyObject *op)
{
    PyObject_GC_UnTrack(op);
    Py_CLEAR(((cancel_object *)op)->ctx);
    gc_py_free(op);
}

static PyGetSetDef CancelFunc_getset[] = {
    {"__signature__", CancelFunc_signature, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(
    CancelFunc__doc__,
    "The cancel function of a with_* context: cancel() cancels the context\n"
    "and every context derived from it.  Idempotent and thread-safe; only\n"
    "the first call counts.  From with_cancel_cause it takes\n"
    "cancel(cause=None), an exception that ctx.cause() will return.\n"
    "\n"
    "    ctx, cancel = gochan.with_cancel(gochan.background())\n"
    "    cancel()\n"
    "    assert isinstance(ctx.err(), gochan.Cancelled)");

static PyType_Slot CancelFunc_slots[] = {
    {Py_tp_doc, (void *)CancelFunc__doc__},
    {Py_tp_dealloc, CancelFunc_dealloc},
    {Py_tp_traverse, CancelFunc_traverse},
    {Py_tp_repr, CancelFunc_repr},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_methods, callable_methods},
    {Py_tp_getset, CancelFunc_getset},
    {Py_tp_members, callable_members},
    {0, NULL},
};

static PyType_Spec CancelFunc_spec = {
    .name = "gochan.CancelFunc",
    .basicsize = sizeof(cancel_object),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION |
             Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = CancelFunc_slots,
};

/* --- after_func ---------------------------------------------------------- */

#define AFUNC_OF(field_ptr, field) \
    ((afunc_object *)((char *)(field_ptr)-offsetof(afunc_object, field)))

/* The context is done: hand the call to the dispatcher.  Any thread, no
 * GIL, no lock held. */
static void
afunc_notify(gc_ctx_notify *node)
{
    gc_dispatch_push(&AFUNC_OF(node, node)->task);
}

/* Dispatcher thread, GIL held: start fn in a goroutine, then drop the
 * registration's reference (perhaps the last). */
static void
afunc_run(gc_task *task)
{
    afunc_object *self = AFUNC_OF(task, task);
    PyObject *fn = self->fn;
    self->fn = NULL;
    if (fn != NULL) {
        PyObject *runtime = PyImport_ImportModule("gochan._runtime");
        PyObject *res =
            runtime ? PyObject_CallMethod(runtime, "spawn", "O()", fn) : NULL;
        if (res == NULL) {
            PyErr_WriteUnraisable(fn);
        }
        Py_XDECREF(res);
        Py_XDECREF(runtime);
        Py_DECREF(fn);
    }
    Py_DECREF((PyObject *)self);
}

static PyObject *
afunc_new(gc_py_state *st, ctx_object *ctx, PyObject *fn)
{
    if (ctx->tok != NULL && gc_py_dispatcher_ensure(st) < 0) {
        return NULL;
    }
    PyTypeObject *tp = st->AfterFunc_Type;
    afunc_object *self = (afunc_object *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->head.vectorcall = afunc_stop;
    self->fn = Py_NewRef(fn);
    gc_ctx_notify_init(&self->node, afunc_notify);
    self->task.run = afunc_run;
    if (ctx->tok == NULL) {
        return (PyObject *)self; /* never done: fn never runs */
    }
    gc_ctx_incref(ctx->tok);
    self->tok = ctx->tok;
    /* The registration's reference, dropped by afunc_run or stop(). */
    Py_INCREF(self);
    if (!gc_ctx_notify_add(self->tok, &self->node)) {
        gc_dispatch_push(&self->task); /* already done: run it now */
    }
    return (PyObject *)self;
}

static PyObject *
afunc_stop(PyObject *op, PyObject *const *args, size_t nargsf,
           PyObject *kwnames)
{
    afunc_object *self = (afunc_object *)op;
    if (PyVectorcall_NARGS(nargsf) != 0 ||
        (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "stop() takes no arguments");
        return NULL;
    }
    int stopped;
    if (self->tok == NULL) {
        CTX_LOCK(op);
        stopped = !self->stopped;
        self->stopped = 1;
        CTX_UNLOCK();
    }
    else {
        stopped = gc_ctx_notify_remove(self->tok, &self->node);
    }
    if (stopped) {
        Py_CLEAR(self->fn);
        if (self->tok != NULL) {
            Py_DECREF(op); /* the registration's; the caller holds one */
        }
    }
    return PyBool_FromLong(stopped);
}

static int
AfterFunc_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(((afunc_object *)op)->fn);
    return 0;
}

static int
AfterFunc_clear(PyObject *op)
{
    Py_CLEAR(((afunc_object *)op)->fn);
    return 0;
}

static void
AfterFunc_dealloc(PyObject *op)
{
    afunc_object *self = (afunc_object *)op;
    PyObject_GC_UnTrack(op);
    Py_CLEAR(self->fn);
    if (self->tok != NULL) {
        gc_ctx_decref(self->tok);
    }
    gc_py_free(op);
}

static PyObject *
AfterFunc_repr(PyObject *op)
{
    afunc_object *self = (afunc_object *)op;
    return PyUnicode_FromFormat("<gochan.context after_func stop of %R>",
                                self->fn ? self->fn : Py_None);
}

static PyObject *
AfterFunc_signature(PyObject *op, void *closure)
{
    return call_signature(0);
}

static PyGetSetDef AfterFunc_getset[] = {
    {"__signature__", AfterFunc_signature, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(AfterFunc__doc__,
             "stop() of Context.after_func(): unregister the function.\n"
             "True if that kept it from running, False if it had already\n"
             "started or was already stopped.\n"
             "\n"
             "    stop = ctx.after_func(cleanup)\n"
             "    if stop():\n"
             "        pass  # cleanup will never run");

static PyType_Slot AfterFunc_slots[] = {
    {Py_tp_doc, (void *)AfterFunc__doc__}, {Py_tp_dealloc, AfterFunc_dealloc},
    {Py_tp_traverse, AfterFunc_traverse},  {Py_tp_clear, AfterFunc_clear},
    {Py_tp_repr, AfterFunc_repr},          {Py_tp_call, PyVectorcall_Call},
    {Py_tp_methods, callable_methods},     {Py_tp_getset, AfterFunc_getset},
    {Py_tp_members, callable_members},     {0, NULL},
};

static PyType_Spec AfterFunc_spec = {
    .name = "gochan._core.AfterFuncStop",
    .basicsize = sizeof(afunc_object),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION |
             Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = AfterFunc_slots,
};

/* --- module initialisation ----------------------------------------------- */

static PyMethodDef context_functions[] = {
    {"background", ctx_background, METH_NOARGS, background__doc__},
    {"todo", ctx_todo, METH_NOARGS, todo__doc__},
    {"with_value", FUNC(ctx_with_value), METH_VARARGS | METH_KEYWORDS,
     with_value__doc__},
    {"without_cancel", FUNC(ctx_without_cancel), METH_VARARGS | METH_KEYWORDS,
     without_cancel__doc__},
    {"_with_cancel", ctx_with_cancel, METH_O, with_cancel__doc__},
    {"_with_cancel_cause", ctx_with_cancel_cause, METH_O,
     with_cancel_cause__doc__},
    {"_with_deadline", FUNC(ctx_with_deadline), METH_FASTCALL,
     with_deadline__doc__},
    {"_with_timeout", FUNC(ctx_with_timeout), METH_FASTCALL,
     with_timeout__doc__},
    {NULL, NULL, 0, NULL},
};

int
gc_py_context_init(PyObject *m, gc_py_state *st)
{
    if (gc_py_add_type(m, &Context_spec, &st->Context_Type) < 0 ||
        gc_py_add_type(m, &CancelFunc_spec, &st->CancelFunc_Type) < 0 ||
        gc_py_new_type(m, &AfterFunc_spec, &st->AfterFunc_Type) < 0) {
        return -1;
    }
    st->ctx_background = (PyObject *)ctx_alloc(st, NULL, KIND_BACKGROUND);
    if (st->ctx_background == NULL) {
        return -1;
    }
    st->ctx_todo = (PyObject *)ctx_alloc(st, NULL, KIND_TODO);
    if (st->ctx_todo == NULL) {
        return -1;
    }
    return PyModule_AddFunctions(m, context_functions);
}
