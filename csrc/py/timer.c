/* timer.c - gochan timers: after, sleep, Timer, Ticker, after_func, and the
 * dispatcher thread that runs timer callbacks with the GIL.
 *
 * after(), Timer and Ticker are the core's channel timers (gc_chantimer):
 * the timer thread sends on their channel without the GIL.  The channel is
 * wrapped as a gochan.Chan that owns the chantimer's creator reference
 * (gc_py_chan_adopt): when the last Python reference to the channel goes,
 * the timer is stopped and the chantimer released.  Users see a RecvChan
 * view of it.
 *
 * after_func() timers cannot call Python from the timer thread.  Their
 * fire only records what to do and pushes a task (gc_dispatch.h); the
 * dispatcher, a daemon Python thread, runs it with the GIL and starts the
 * callable in a goroutine (gochan._runtime.spawn).
 *
 * Invariants:
 *   - a Timer or Ticker object holds its channel view `c` for its whole
 *     life, so the chantimer that its methods use stays valid;
 *   - an after_func Timer that is pending holds one strong reference to
 *     itself per heap entry (taken with the GIL when it enters the heap,
 *     dropped by the task run or by a stop() that took it out), so it
 *     cannot be freed while the timer thread may call its fire;
 *   - the state the timer thread touches (struct afunc) is malloc'd, not
 *     Python memory, and is freed only with its Timer;
 *   - a Ticker's `stopch` is an unbuffered channel nobody receives from
 *     except __next__ waiting for a tick: stop() hands it one value per
 *     waiting iterator, under the GIL, so that their loops end.
 */
#include <math.h>
#include <unistd.h>

#include "binding.h"
#include "gc_timer.h"

/* --- durations ----------------------------------------------------------- */

/* Convert a duration in seconds (int or float) to nanoseconds, rounding
 * up.  inf means GC_FOREVER; so does any duration too long for the clock.
 * Negative and NaN are ValueError, anything else not a number TypeError.
 * `fname` and `argname` name the argument in messages. */
static int
parse_seconds(PyObject *obj, const char *fname, const char *argname,
              int64_t *ns)
{
    double seconds;
    if (gc_py_seconds(obj, &seconds,
                      "%s() argument '%s' must be a number of seconds (int "
                      "or float)",
                      fname, argname) < 0) {
        return -1;
    }
    if (isnan(seconds)) {
        PyErr_Format(PyExc_ValueError,
                     "%s() argument '%s' must be a number of seconds, "
                     "got NaN",
                     fname, argname);
        return -1;
    }
    if (seconds < 0) {
        gc_py_bad_value(obj, "%s() argument '%s' must be >= 0 seconds", fname,
                        argname);
        return -1;
    }
    double rounded = ceil(seconds * 1e9);
    *ns = rounded >= (double)GC_FOREVER ? GC_FOREVER : (int64_t)rounded;
    return 0;
}

/* A ticker's interval: a positive, finite number of seconds. */
static int
parse_interval(PyObject *obj, const char *fname, int64_t *ns)
{
    if (parse_seconds(obj, fname, "interval", ns) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
            return -1;
        }
        /* Negative or NaN: say what an interval must be, not what a
         * delay may be (zero is no interval either). */
        PyErr_Clear();
        *ns = 0;
    }
    if (*ns == 0 || *ns == GC_FOREVER) {
        gc_py_bad_value(obj,
                        "%s() argument 'interval' must be a positive, "
                        "finite number of seconds",
                        fname);
        return -1;
    }
    return 0;
}

/* Parse the single argument `argname` of fname(), by position or name. */
static int
parse_one(const char *fname, const char *argname, PyObject *const *args,
          Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw != 1 || nargs > 1) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes exactly one argument (%zd given)", fname,
                     nargs + nkw);
        return -1;
    }
    if (nkw == 1 && PyUnicode_CompareWithASCIIString(
                        PyTuple_GET_ITEM(kwnames, 0), argname) != 0) {
        PyErr_Format(PyExc_TypeError,
                     "%s() got an unexpected keyword argument '%U'", fname,
                     PyTuple_GET_ITEM(kwnames, 0));
        return -1;
    }
    *out = args[0];
    return 0;
}

/* --- channel timers as Python channels ----------------------------------- */

/* gc_py_chan_adopt's release: the channel object is gone. */
static void
chantimer_release(void *arg)
{
    gc_chantimer *ct = arg;
    gc_chantimer_stop(ct);
    gc_chantimer_decref(ct);
}

/* A RecvChan view of ct's channel; the view owns the caller's reference to
 * ct (released even on failure). */
static PyObject *
chantimer_view(gc_py_state *st, gc_chantimer *ct)
{
    PyObject *chan =
        gc_py_chan_adopt(st, gc_chantimer_chan(ct), chantimer_release, ct);
    if (chan == NULL) {
        return NULL;
    }
    PyObject *view = gc_py_view_new(st->RecvChan_Type, chan);
    Py_DECREF(chan);
    return view;
}

/* A new one-shot chantimer firing `ns` from now (never for GC_FOREVER). */
static gc_chantimer *
chantimer_after(int64_t ns)
{
    gc_chantimer *ct = ns == GC_FOREVER
                           ? gc_chantimer_new_stopped(0)
                           : gc_chantimer_new(gc_deadline_after(ns), 0);
    if (ct == NULL) {
        PyErr_NoMemory();
    }
    return ct;
}

/* The module state, from a function of this module. */
static gc_py_state *
module_state(PyObject *module)
{
    return (gc_py_state *)PyModule_GetState(module);
}

PyDoc_STRVAR(
    after__doc__,
    "after($module, seconds, /)\n"
    "--\n"
    "\n"
    "A channel that receives time.monotonic() once, `seconds` from now.\n"
    "\n"
    "Go's time.After.  The timer is stopped when the channel is dropped,\n"
    "so an unused after() costs nothing once gone.  A delay of 0 makes the\n"
    "value ready at once.\n"
    "\n"
    "    deadline = gochan.after(0.5)\n"
    "    fired_at = deadline.recv()   # about 0.5 s later");

static PyObject *
timers_after(PyObject *module, PyObject *seconds)
{
    int64_t ns;
    if (parse_seconds(seconds, "after", "seconds", &ns) < 0) {
        return NULL;
    }
    gc_chantimer *ct = chantimer_after(ns);
    if (ct == NULL) {
        return NULL;
    }
    return chantimer_view(module_state(module), ct);
}

/* --- sleep ------------------------------------------------------------- */

PyDoc_STRVAR(
    sleep__doc__,
    "sleep($module, /, seconds, *, ctx=None)\n"
    "--\n"
    "\n"
    "Sleep for `seconds`, letting other threads run.\n"
    "\n"
    "With a context, wake early and raise ctx.err() (Cancelled or\n"
    "DeadlineExceeded) as soon as it is done.  Ctrl-C interrupts it in the\n"
    "main thread.  sleep(0) returns at once.\n"
    "\n"
    "    gochan.sleep(0.01)\n"
    "    gochan.sleep(60, ctx=ctx)   # ends early when ctx is cancelled");

static PyObject *
timers_sleep(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    gc_py_state *st = module_state(module);
    PyObject *seconds = nargs >= 1 ? args[0] : NULL;
    PyObject *ctx = Py_None;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError,
                     "sleep() takes 1 positional argument (%zd given)", nargs);
        return NULL;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(key, "ctx") == 0) {
            ctx = args[nargs + i];
        }
        else if (seconds == NULL &&
                 PyUnicode_CompareWithASCIIString(key, "seconds") == 0) {
            seconds = args[nargs + i];
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "sleep() got an unexpected keyword argument '%U'",
                         key);
            return NULL;
        }
    }
    if (seconds == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "sleep() missing required argument 'seconds'");
        return NULL;
    }
    int64_t ns;
    if (parse_seconds(seconds, "sleep", "seconds", &ns) < 0) {
        return NULL;
    }
    gc_py_wait w;
    if (gc_py_parse_wait(st, Py_None, ctx, &w) < 0) {
        return NULL;
    }
    w.timeout_ns = ns;
    if (gc_py_wait_cancelled(&w)) {
        return gc_py_ctx_raise(st, ctx);
    }
    if (ns == 0) {
        Py_RETURN_NONE;
    }
    int64_t deadline = gc_py_deadline(&w);
    const gc_unlock *gil = gc_py_gil();
    for (;;) {
        gc_status status = gc_sleep_until(deadline, w.cancel, gil);
        if (status == GC_OK) {
            Py_RETURN_NONE;
        }
        if (status == GC_CANCELLED) {
            return gc_py_ctx_raise(st, ctx);
        }
        /* GC_INTR: a handler may have raised (KeyboardInterrupt). */
        if (PyErr_Occurred() || PyErr_CheckSignals() < 0) {
            return NULL;
        }
    }
}

/* --- after_func's timer state ---------------------------------------------
 */

/* What the timer thread may touch of an after_func Timer.  Fields below
 * `lock` are under it. */
typedef struct afunc {
    gc_timer tm;     /* first: the fire finds the afunc from it */
    gc_task task;    /* pushed to the dispatcher by a fire */
    gc_mutex lock;   /* protects what follows */
    int armed;       /* a call is scheduled (in the heap or in flight) */
    int queued;      /* task pushed and not yet run */
    unsigned runs;   /* calls to start when the task runs */
    unsigned drops;  /* self-references to drop when the task runs */
    PyObject *owner; /* the Timer (its address; see the invariants) */
} afunc;

typedef struct timer_object {
    PyObject_HEAD gc_chantimer *ct; /* channel timer; NULL for after_func */
    PyObject *c;                    /* RecvChan view, or None for after_func */
    afunc *af;                      /* after_func state, or NULL */
    PyObject *fn;          /* after_func's callable (NULL once cleared) */
    PyObject *args;        /* and its arguments, a tuple */
    PyObject *weakreflist; /* weak references to this object */
} timer_object;

/* Timer thread, no GIL. */
static void
afunc_fire(gc_timer *t, uint64_t seq, int64_t now)
{
    (void)now;
    afunc *af = (afunc *)t;
    gc_mutex_lock(&af->lock);
    if (af->armed && seq == af->tm.seq) {
        af->armed = 0;
        af->runs++;
    }
    af->drops++; /* this fire's self-reference, stale or not */
    int push = !af->queued;
    af->queued = 1;
    gc_mutex_unlock(&af->lock);
    /* The reference just recorded keeps af alive until the task runs; af
     * is not touched after the push, as the task may run and free it. */
    if (push) {
        gc_dispatch_push(&af->task);
    }
}

/* Call gochan._runtime.spawn(fn, args); report, never raise. */
static void
spawn_call(PyObject *fn, PyObject *args)
{
    PyObject *runtime = PyImport_ImportModule("gochan._runtime");
    PyObject *spawn =
        runtime ? PyObject_GetAttrString(runtime, "spawn") : NULL;
    PyObject *res =
        spawn ? PyObject_CallFunctionObjArgs(spawn, fn, args, NULL) : NULL;
    if (res == NULL) {
        PyErr_WriteUnraisable(fn);
    }
    Py_XDECREF(res);
    Py_XDECREF(spawn);
    Py_XDECREF(runtime);
}

/* Dispatcher thread, GIL held. */
static void
afunc_run(gc_task *task)
{
    afunc *af = (afunc *)((char *)task - offsetof(afunc, task));
    gc_mutex_lock(&af->lock);
    unsigned runs = af->runs;
    unsigned drops = af->drops;
    af->runs = 0;
    af->drops = 0;
    af->queued = 0;
    gc_mutex_unlock(&af->lock);
    timer_object *self = (timer_object *)af->owner;
    for (unsigned i = 0; i < runs && self->fn != NULL; i++) {
        /* Held across the call: spawn may run code that clears them. */
        PyObject *fn = Py_NewRef(self->fn);
        PyObject *args = Py_NewRef(self->args);
        spawn_call(fn, args);
        Py_DECREF(fn);
        Py_DECREF(args);
    }
    /* Last: the final reference may free self and af with it. */
    for (unsigned i = 0; i < drops; i++) {
        Py_DECREF((PyObject *)self);
    }
}

/* Take af out of the heap.  Whether it was pending; GIL held. */
static int
afunc_stop(timer_object *self)
{
    afunc *af = self->af;
    gc_mutex_lock(&af->lock);
    int pending = af->armed;
    int dropped = af->armed && gc_timer_stop(&af->tm);
    af->armed = 0;
    gc_mutex_unlock(&af->lock);
    if (dropped) {
        Py_DECREF((PyObject *)self); /* never the last: the caller's */
    }
    return pending;
}

/* (Re)arm af for `ns` from now.  Whether it was pending, or -1 with an
 * exception; GIL held. */
static int
afunc_reset(gc_py_state *st, timer_object *self, int64_t ns)
{
    if (ns != GC_FOREVER && gc_py_dispatcher_ensure(st) < 0) {
        return -1;
    }
    afunc *af = self->af;
    gc_status status = GC_OK;
    gc_mutex_lock(&af->lock);
    int pending = af->armed;
    int dropped = af->armed && gc_timer_stop(&af->tm);
    af->armed = 0;
    if (ns != GC_FOREVER) {
        int was;
        status = gc_timer_start(&af->tm, gc_deadline_after(ns), &was);
        if (status == GC_OK) {
            if (!was) {
                /* Taken before the lock goes: the fire may run then. */
                Py_INCREF((PyObject *)self);
            }
            af->armed = 1;
        }
    }
    gc_mutex_unlock(&af->lock);
    if (dropped) {
        Py_DECREF((PyObject *)self);
    }
    if (status != GC_OK) {
        PyErr_NoMemory();
        return -1;
    }
    return pending;
}

/* --- the dispatcher thread --------------------------------------------- */

/* The process the dispatcher thread runs in (0: none yet).  Written with
 * the GIL held.  After fork() the child has no such thread: a pid that is
 * not ours means "start it". */
static pid_t dispatcher_pid;

PyDoc_STRVAR(dispatch_loop__doc__,
             "_dispatch_loop($module, /)\n"
             "--\n"
             "\n"
             "The body of gochan's dispatcher thread (internal): runs timer\n"
             "callbacks with the GIL, for ever.");

static PyObject *
timers_dispatch_loop(PyObject *module, PyObject *unused)
{
    for (;;) {
        gc_task *task = NULL;
        gc_status status = gc_dispatch_pop(&task, GC_FOREVER, gc_py_gil());
        if (status == GC_OK) {
            task->run(task);
            if (PyErr_Occurred()) {
                PyErr_WriteUnraisable(module);
            }
        }
        else if (PyErr_Occurred()) {
            PyErr_WriteUnraisable(module);
        }
    }
    Py_UNREACHABLE();
}

int
gc_py_dispatcher_ensure(gc_py_state *st)
{
    (void)st;
    pid_t pid = getpid();
    if (dispatcher_pid == pid) {
        return 0;
    }
    PyObject *core = PyImport_ImportModule("gochan._core");
    PyObject *loop =
        core ? PyObject_GetAttrString(core, "_dispatch_loop") : NULL;
    PyObject *threading = loop ? PyImport_ImportModule("threading") : NULL;
    PyObject *thread_type =
        threading ? PyObject_GetAttrString(threading, "Thread") : NULL;
    PyObject *kwargs =
        thread_type ? Py_BuildValue("{s:O,s:s,s:O}", "target", loop, "name",
                                    "gochan-timers", "daemon", Py_True)
                    : NULL;
    PyObject *empty = kwargs ? PyTuple_New(0) : NULL;
    PyObject *thread =
        empty ? PyObject_Call(thread_type, empty, kwargs) : NULL;
    PyObject *started =
        thread ? PyObject_CallMethod(thread, "start", NULL) : NULL;
    if (started != NULL) {
        dispatcher_pid = pid;
    }
    Py_XDECREF(started);
    Py_XDECREF(thread);
    Py_XDECREF(empty);
    Py_XDECREF(kwargs);
    Py_XDECREF(thread_type);
    Py_XDECREF(threading);
    Py_XDECREF(loop);
    Py_XDECREF(core);
    return started != NULL ? 0 : -1;
}

PyDoc_STRVAR(after_fork__doc__,
             "_timers_after_fork($module, /)\n"
             "--\n"
             "\n"
             "In a child after os.fork() (internal): restart the timer\n"
             "thread, and the dispatcher if the parent had one.");

static PyObject *
timers_after_fork(PyObject *module, PyObject *unused)
{
    gc_timer_after_fork();
    if (dispatcher_pid != 0 && dispatcher_pid != getpid() &&
        gc_py_dispatcher_ensure(module_state(module)) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(timer_stats__doc__,
             "_timer_stats($module, /)\n"
             "--\n"
             "\n"
             "(timers in the runtime's heap, dispatcher tasks queued), for\n"
             "tests (internal).");

static PyObject *
timers_stats(PyObject *module, PyObject *unused)
{
    return Py_BuildValue("(nn)", (Py_ssize_t)gc_timer_pending_count(),
                         (Py_ssize_t)gc_dispatch_pending());
}

/* --- Timer --------------------------------------------------------------- */

static timer_object *
timer_alloc(PyTypeObject *type)
{
    timer_object *self = (timer_object *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->c = Py_NewRef(Py_None);
    }
    return self;
}

static PyObject *
Timer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"seconds", NULL};
    PyObject *seconds;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Timer", kwlist,
                                     &seconds)) {
        return NULL;
    }
    int64_t ns;
    if (parse_seconds(seconds, "Timer", "seconds", &ns) < 0) {
        return NULL;
    }
    gc_py_state *st = gc_py_state_of(type);
    timer_object *self = timer_alloc(type);
    if (self == NULL) {
        return NULL;
    }
    self->ct = chantimer_after(ns);
    if (self->ct == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    gc_chantimer *ct = self->ct;
    PyObject *view = chantimer_view(st, ct);
    if (view == NULL) {
        self->ct = NULL; /* released by chantimer_view */
        Py_DECREF(self);
        return NULL;
    }
    Py_SETREF(self->c, view);
    return (PyObject *)self;
}

PyDoc_STRVAR(
    after_func__doc__,
    "after_func($module, seconds, fn, /, *args)\n"
    "--\n"
    "\n"
    "Call fn(*args) in its own goroutine `seconds` from now; return a Timer\n"
    "whose stop() cancels the call (True if it did) and whose reset()\n"
    "schedules it again.  Its `c` is None (Go's time.AfterFunc).\n"
    "\n"
    "    t = gochan.after_func(5.0, print, 'too slow')\n"
    "    ...\n"
    "    t.stop()   # finished in time: no message");

static PyObject *
timers_after_func(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError,
                     "after_func() takes at least 2 arguments (seconds, fn), "
                     "%zd given",
                     nargs);
        return NULL;
    }
    int64_t ns;
    if (parse_seconds(args[0], "after_func", "seconds", &ns) < 0) {
        return NULL;
    }
    if (!PyCallable_Check(args[1])) {
        gc_py_bad_type(args[1], "after_func() argument 'fn' must be callable");
        return NULL;
    }
    gc_py_state *st = module_state(module);
    timer_object *self = timer_alloc(st->Timer_Type);
    if (self == NULL) {
        return NULL;
    }
    self->fn = Py_NewRef(args[1]);
    self->args = PyTuple_New(nargs - 2);
    self->af = PyMem_RawCalloc(1, sizeof(afunc));
    if (self->args == NULL || self->af == NULL) {
        if (self->af == NULL) {
            PyErr_NoMemory();
        }
        Py_DECREF(self);
        return NULL;
    }
    for (Py_ssize_t i = 2; i < nargs; i++) {
        PyTuple_SET_ITEM(self->args, i - 2, Py_NewRef(args[i]));
    }
    afunc *af = self->af;
    gc_timer_init(&af->tm, afunc_fire);
    af->task.run = afunc_run;
    gc_mutex_init(&af->lock);
    af->owner = (PyObject *)self;
    if (afunc_reset(st, self, ns) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

PyDoc_STRVAR(
    timer_stop__doc__,
    "stop($self, /)\n"
    "--\n"
    "\n"
    "Stop the timer.  True if that prevented it from firing: it was\n"
    "pending, or had fired with its value not yet received (the value is\n"
    "then discarded, as in Go 1.23).  After stop() nothing is received from\n"
    "`c` until a reset().\n"
    "\n"
    "    t = gochan.Timer(10)\n"
    "    assert t.stop() is True\n"
    "    assert t.stop() is False");

static PyObject *
timer_stop(PyObject *op, PyObject *unused)
{
    timer_object *self = (timer_object *)op;
    int pending = self->af   ? afunc_stop(self)
                  : self->ct ? gc_chantimer_stop(self->ct)
                             : 0;
    return PyBool_FromLong(pending);
}

PyDoc_STRVAR(
    timer_reset__doc__,
    "reset($self, /, seconds)\n"
    "--\n"
    "\n"
    "Make the timer fire `seconds` from now, whatever its state; return\n"
    "whether it was pending (as stop() does).  A value left unreceived from\n"
    "before is discarded: the next value received is the new one.\n"
    "\n"
    "    t = gochan.Timer(1.0)\n"
    "    t.reset(0.01)\n"
    "    t.c.recv()   # about 0.01 s later");

static PyObject *
timer_reset(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    timer_object *self = (timer_object *)op;
    PyObject *seconds;
    int64_t ns;
    if (parse_one("reset", "seconds", args, nargs, kwnames, &seconds) < 0 ||
        parse_seconds(seconds, "reset", "seconds", &ns) < 0) {
        return NULL;
    }
    int pending = 0;
    if (self->af) {
        pending = afunc_reset(gc_py_state_of(Py_TYPE(op)), self, ns);
        if (pending < 0) {
            return NULL;
        }
    }
    else if (self->ct) {
        if (ns == GC_FOREVER) {
            pending = gc_chantimer_stop(self->ct);
        }
        else if (gc_chantimer_reset(self->ct, gc_deadline_after(ns), 0,
                                    &pending) != GC_OK) {
            return PyErr_NoMemory();
        }
    }
    return PyBool_FromLong(pending);
}

static PyObject *
Timer_repr(PyObject *op)
{
    timer_object *self = (timer_object *)op;
    int64_t when = GC_FOREVER;
    if (self->af) {
        gc_mutex_lock(&self->af->lock);
        when = self->af->armed ? self->af->tm.when : GC_FOREVER;
        gc_mutex_unlock(&self->af->lock);
    }
    else if (self->ct) {
        when = gc_chantimer_when(self->ct);
    }
    if (when == GC_FOREVER) {
        return PyUnicode_FromFormat("<gochan.Timer%s stopped>",
                                    self->af ? " (after_func)" : "");
    }
    /* Whole microseconds: %f is not a PyUnicode_FromFormat conversion. */
    long long us = (long long)((when - gc_now_ns()) / 1000);
    return PyUnicode_FromFormat("<gochan.Timer%s fires in %lld us>",
                                self->af ? " (after_func)" : "", us);
}

static int
Timer_traverse(PyObject *op, visitproc visit, void *arg)
{
    timer_object *self = (timer_object *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->c);
    Py_VISIT(self->fn);
    Py_VISIT(self->args);
    return 0;
}

/* Break cycles through the callable (a closure that refers to its own
 * Timer).  A pending after_func timer is never garbage: it holds a
 * reference to itself until it runs or is stopped. */
static int
Timer_clear(PyObject *op)
{
    timer_object *self = (timer_object *)op;
    Py_CLEAR(self->fn);
    Py_CLEAR(self->args);
    return 0;
}

static void
Timer_dealloc(PyObject *op)
{
    timer_object *self = (timer_object *)op;
    PyObject_GC_UnTrack(op);
    gc_py_clear_weakrefs(op, self->weakreflist);
    Timer_clear(op);
    Py_CLEAR(self->c); /* stops and releases the channel timer */
    if (self->af != NULL) {
        /* Not pending, so no fire can come (see the invariants). */
        gc_mutex_destroy(&self->af->lock);
        PyMem_RawFree(self->af);
        self->af = NULL;
    }
    gc_py_free(op);
}

static PyObject *
timer_get_c(PyObject *op, void *closure)
{
    return Py_NewRef(((timer_object *)op)->c);
}

PyDoc_STRVAR(timer_c__doc__,
             "The channel the timer sends time.monotonic() on when it fires\n"
             "(a RecvChan); None for an after_func timer.\n"
             "\n"
             "    t = gochan.Timer(0.01)\n"
             "    t.c.recv()");

static PyMethodDef Timer_methods[] = {
    {"stop", timer_stop, METH_NOARGS, timer_stop__doc__},
    {"reset", FUNC(timer_reset), FASTCALL_KW, timer_reset__doc__},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Timer_getset[] = {
    {"c", timer_get_c, NULL, timer_c__doc__, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

GC_PY_WEAKLIST_MEMBERS(Timer_members, timer_object);

PyDoc_STRVAR(
    Timer__doc__,
    "Timer(seconds)\n"
    "--\n"
    "\n"
    "A one-shot timer: its channel `c` receives time.monotonic() once,\n"
    "`seconds` from now, unless stop() comes first.  Go's time.Timer, with\n"
    "Go 1.23's guarantee that no stale value is received after stop() or\n"
    "reset().\n"
    "\n"
    "    t = gochan.Timer(0.05)\n"
    "    if not work_done_in_time():\n"
    "        t.c.recv()\n"
    "    t.stop()");

static PyType_Slot Timer_slots[] = {
    {Py_tp_doc, (void *)Timer__doc__}, {Py_tp_new, Timer_new},
    {Py_tp_dealloc, Timer_dealloc},    {Py_tp_traverse, Timer_traverse},
    {Py_tp_clear, Timer_clear},        {Py_tp_repr, Timer_repr},
    {Py_tp_methods, Timer_methods},    {Py_tp_getset, Timer_getset},
    {Py_tp_members, Timer_members},    {0, NULL},
};

static PyType_Spec timer_spec = {
    .name = "gochan.Timer",
    .basicsize = sizeof(timer_object),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Timer_slots,
};

/* --- Ticker ---------------------------------------------------------- */

typedef struct ticker_object {
    PyObject_HEAD gc_chantimer *ct; /* the channel timer (periodic) */
    PyObject *c;                    /* RecvChan view of its channel */
    gc_chan *stopch;       /* wakes iterators on stop() (see the top) */
    int stopped;           /* stop() called and no reset() since (GIL) */
    PyObject *weakreflist; /* weak references to this object */
} ticker_object;

static PyObject *
Ticker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"interval", NULL};
    PyObject *interval;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Ticker", kwlist,
                                     &interval)) {
        return NULL;
    }
    int64_t ns;
    if (parse_interval(interval, "Ticker", &ns) < 0) {
        return NULL;
    }
    ticker_object *self = (ticker_object *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->stopch = gc_chan_new(0);
    gc_chantimer *ct = gc_chantimer_new(gc_deadline_after(ns), ns);
    if (self->stopch == NULL || ct == NULL) {
        if (ct != NULL) {
            chantimer_release(ct);
        }
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->c = chantimer_view(gc_py_state_of(type), ct);
    if (self->c == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->ct = ct;
    return (PyObject *)self;
}

PyDoc_STRVAR(ticker_stop__doc__,
             "stop($self, /)\n"
             "--\n"
             "\n"
             "Stop the ticks; a tick not yet received is discarded, and a\n"
             "`for t in ticker` loop ends.  reset() starts it again.\n"
             "\n"
             "    tk = gochan.Ticker(0.1)\n"
             "    tk.stop()");

static PyObject *
ticker_stop(PyObject *op, PyObject *unused)
{
    ticker_object *self = (ticker_object *)op;
    self->stopped = 1;
    gc_chantimer_stop(self->ct);
    /* Every iterator waiting in __next__ takes one value (the GIL keeps
     * new ones from registering meanwhile: they see `stopped`). */
    while (gc_chan_try_send(self->stopch, gc_item_from_time(0)) == GC_OK) {
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ticker_reset__doc__,
             "reset($self, /, interval)\n"
             "--\n"
             "\n"
             "Tick every `interval` seconds from now on (also after stop());\n"
             "a tick not yet received is discarded.\n"
             "\n"
             "    tk = gochan.Ticker(1.0)\n"
             "    tk.reset(0.25)");

static PyObject *
ticker_reset(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    ticker_object *self = (ticker_object *)op;
    PyObject *interval;
    int64_t ns;
    if (parse_one("reset", "interval", args, nargs, kwnames, &interval) < 0 ||
        parse_interval(interval, "reset", &ns) < 0) {
        return NULL;
    }
    if (gc_chantimer_reset(self->ct, gc_deadline_after(ns), ns, NULL) !=
        GC_OK) {
        return PyErr_NoMemory();
    }
    self->stopped = 0;
    Py_RETURN_NONE;
}

static PyObject *
ticker_enter(PyObject *op, PyObject *unused)
{
    return Py_NewRef(op);
}

static PyObject *
ticker_exit(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    return gc_py_exit_result(ticker_stop(op, NULL));
}

/* The next tick; StopIteration once stopped (also while waiting). */
static PyObject *
Ticker_iternext(PyObject *op)
{
    ticker_object *self = (ticker_object *)op;
    gc_chan *ch = gc_chantimer_chan(self->ct);
    const gc_unlock *gil = NULL;
    for (;;) {
        if (self->stopped) {
            return NULL; /* StopIteration */
        }
        void *item;
        if (gc_chan_try_recv(ch, &item) == GC_OK) {
            return gc_py_item_out(item);
        }
        if (gil == NULL) {
            gil = gc_py_gil();
        }
        gc_case cases[2] = {
            {.ch = ch, .dir = GC_RECV},
            {.ch = self->stopch, .dir = GC_RECV},
        };
        size_t index = 0;
        gc_status status = gc_wait(cases, 2, GC_FOREVER, &index, gil);
        if (status == GC_OK) {
            if (index == 0) {
                return gc_py_item_out(cases[0].item);
            }
            return NULL; /* stop() woke us */
        }
        if (status == GC_INTR &&
            (PyErr_Occurred() || PyErr_CheckSignals() < 0)) {
            return NULL;
        }
        /* GC_RETRY (a tick may be there) or a signal handled: again. */
    }
}

static int
Ticker_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(((ticker_object *)op)->c);
    return 0;
}

static void
Ticker_dealloc(PyObject *op)
{
    ticker_object *self = (ticker_object *)op;
    PyObject_GC_UnTrack(op);
    gc_py_clear_weakrefs(op, self->weakreflist);
    /* Stops the ticks once nobody holds the channel either. */
    Py_CLEAR(self->c);
    if (self->stopch != NULL) {
        gc_chan_free(self->stopch, NULL, NULL); /* no waiter: self is gone */
    }
    gc_py_free(op);
}

static PyObject *
Ticker_repr(PyObject *op)
{
    ticker_object *self = (ticker_object *)op;
    return PyUnicode_FromFormat("<gochan.Ticker %s>",
                                self->stopped ? "stopped" : "ticking");
}

static PyObject *
ticker_get_c(PyObject *op, void *closure)
{
    return Py_NewRef(((ticker_object *)op)->c);
}

PyDoc_STRVAR(ticker_c__doc__,
             "The channel of the ticks (a RecvChan of time.monotonic()\n"
             "floats).  It holds at most one tick: a slow receiver gets the\n"
             "oldest tick it missed, and the others are dropped.\n"
             "\n"
             "    tk = gochan.Ticker(0.01)\n"
             "    tk.c.recv()");

PyDoc_STRVAR(ticker_enter__doc__,
             "__enter__($self, /)\n"
             "--\n"
             "\n"
             "Return the ticker; `with` stops it at the end.\n"
             "\n"
             "    with gochan.Ticker(0.1) as tk:\n"
             "        tk.c.recv()");

PyDoc_STRVAR(ticker_exit__doc__,
             "__exit__($self, exc_type, exc_value, traceback, /)\n"
             "--\n"
             "\n"
             "Stop the ticker; exceptions propagate.\n"
             "\n"
             "    with gochan.Ticker(0.1) as tk:\n"
             "        ...  # tk.stop() runs here");

static PyMethodDef Ticker_methods[] = {
    {"stop", ticker_stop, METH_NOARGS, ticker_stop__doc__},
    {"reset", FUNC(ticker_reset), FASTCALL_KW, ticker_reset__doc__},
    {"__enter__", ticker_enter, METH_NOARGS, ticker_enter__doc__},
    {"__exit__", FUNC(ticker_exit), METH_FASTCALL, ticker_exit__doc__},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Ticker_getset[] = {
    {"c", ticker_get_c, NULL, ticker_c__doc__, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

GC_PY_WEAKLIST_MEMBERS(Ticker_members, ticker_object);

PyDoc_STRVAR(
    Ticker__doc__,
    "Ticker(interval)\n"
    "--\n"
    "\n"
    "A channel `c` that receives time.monotonic() every `interval` seconds\n"
    "until stop().  A slow receiver is not sent a backlog: it gets the first\n"
    "tick it missed, and the rest are dropped.  Go's time.Ticker; iterating\n"
    "over a Ticker yields its ticks until it is stopped.\n"
    "\n"
    "    with gochan.Ticker(0.01) as tk:\n"
    "        for n, t in enumerate(tk):\n"
    "            if n == 3:\n"
    "                break");

static PyType_Slot Ticker_slots[] = {
    {Py_tp_doc, (void *)Ticker__doc__},
    {Py_tp_new, Ticker_new},
    {Py_tp_dealloc, Ticker_dealloc},
    {Py_tp_traverse, Ticker_traverse},
    {Py_tp_repr, Ticker_repr},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, Ticker_iternext},
    {Py_tp_methods, Ticker_methods},
    {Py_tp_getset, Ticker_getset},
    {Py_tp_members, Ticker_members},
    {0, NULL},
};

static PyType_Spec ticker_spec = {
    .name = "gochan.Ticker",
    .basicsize = sizeof(ticker_object),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Ticker_slots,
};

/* --- module functions ---------------------------------------------------- */

static PyMethodDef timer_functions[] = {
    {"after", timers_after, METH_O, after__doc__},
    {"sleep", FUNC(timers_sleep), FASTCALL_KW, sleep__doc__},
    {"after_func", FUNC(timers_after_func), METH_FASTCALL, after_func__doc__},
    {"_dispatch_loop", timers_dispatch_loop, METH_NOARGS,
     dispatch_loop__doc__},
    {"_timers_after_fork", timers_after_fork, METH_NOARGS, after_fork__doc__},
    {"_timer_stats", timers_stats, METH_NOARGS, timer_stats__doc__},
    {NULL, NULL, 0, NULL},
};

int
gc_py_timer_init(PyObject *m, gc_py_state *st)
{
    if (gc_py_add_type(m, &timer_spec, &st->Timer_Type) < 0 ||
        gc_py_add_type(m, &ticker_spec, &st->Ticker_Type) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(m, timer_functions);
}
