/* module.c - the gochan._core module: its state, the exception hierarchy,
 * and the parsing of the arguments every blocking call shares (timeout=,
 * ctx=).
 *
 * The module uses multi-phase initialisation: each interpreter that
 * imports it runs module_exec() on a fresh module object whose state
 * (gc_py_state) holds the types and exception classes.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>

#include "binding.h"

/* --- the GIL, released around the core's waits --------------------------- */

static void *
gil_release(void)
{
    return PyEval_SaveThread();
}

static void
gil_acquire(void *tstate)
{
    PyEval_RestoreThread((PyThreadState *)tstate);
}

/* A thread woken by a peer spins this long for the peer to let go of the
 * GIL before asking for it (see "let-go epoch" in gc_chan.c).  Without a
 * GIL there is nothing to wait for. */
#ifdef Py_GIL_DISABLED
#define GIL_HANDOFF_SPIN_NS 0
#else
#define GIL_HANDOFF_SPIN_NS 50000
#endif

/* The main thread, where Python runs signal handlers, waits keeping its
 * place in the queues while it runs them (gc_unlock.interrupted), and
 * looks for them every SIGNAL_POLL_NS too: a signal that arrives just
 * before the thread goes to sleep does not wake it. */
#define SIGNAL_POLL_NS 50000000

static int
signals_raised(void)
{
    return PyErr_CheckSignals() < 0;
}

static const gc_unlock gil_main = {gil_release, gil_acquire,
                                   GIL_HANDOFF_SPIN_NS, signals_raised,
                                   SIGNAL_POLL_NS};
static const gc_unlock gil_other = {gil_release, gil_acquire,
                                    GIL_HANDOFF_SPIN_NS, NULL, 0};

/* The main thread's identity, found through threading.main_thread() the
 * first time it is needed and again in a child process after fork() (the
 * thread that forked is the child's main thread).  Plain ints written
 * with the GIL held. */
static unsigned long main_ident;
static int main_known;
static int atfork_registered;

static void
forget_main_thread(void)
{
    main_known = 0;
}

static int
is_main_thread(void)
{
    if (!main_known) {
        if (!atfork_registered) {
            atfork_registered =
                pthread_atfork(NULL, NULL, forget_main_thread) == 0;
        }
        PyObject *threading = PyImport_ImportModule("threading");
        PyObject *main =
            threading ? PyObject_CallMethod(threading, "main_thread", NULL)
                      : NULL;
        PyObject *ident = main ? PyObject_GetAttrString(main, "ident") : NULL;
        unsigned long value = ident ? PyLong_AsUnsignedLong(ident) : 0;
        Py_XDECREF(ident);
        Py_XDECREF(main);
        Py_XDECREF(threading);
        if (PyErr_Occurred()) {
            /* Not knowing, wait as any thread does. */
            PyErr_Clear();
            return 0;
        }
        main_ident = value;
        main_known = 1;
    }
    return PyThread_get_thread_ident() == main_ident;
}

const gc_unlock *
gc_py_gil(void)
{
    return is_main_thread() ? &gil_main : &gil_other;
}

/* --- what was wrong with an argument ------------------------------------ */

static void
bad_type_va(PyObject *obj, const char *fmt, va_list va)
{
    PyObject *message = PyUnicode_FromFormatV(fmt, va);
    if (message != NULL) {
        PyErr_Format(PyExc_TypeError, "%U, got %.200s", message,
                     Py_TYPE(obj)->tp_name);
        Py_DECREF(message);
    }
}

void
gc_py_bad_type(PyObject *obj, const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    bad_type_va(obj, fmt, va);
    va_end(va);
}

void
gc_py_bad_value(PyObject *obj, const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    PyObject *message = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (message != NULL) {
        PyErr_Format(PyExc_ValueError, "%U, got %R", message, obj);
        Py_DECREF(message);
    }
}

int
gc_py_seconds(PyObject *obj, double *out, const char *fmt, ...)
{
    double seconds = PyFloat_AsDouble(obj);
    if (seconds == -1.0 && PyErr_Occurred()) {
        if (PyLong_Check(obj) && PyErr_ExceptionMatches(PyExc_OverflowError)) {
            /* An int too large for a double is as good as an infinity. */
            PyErr_Clear();
            PyObject *zero = PyLong_FromLong(0);
            if (zero == NULL) {
                return -1;
            }
            int negative = PyObject_RichCompareBool(obj, zero, Py_LT);
            Py_DECREF(zero);
            if (negative < 0) {
                return -1;
            }
            seconds = negative ? -INFINITY : INFINITY;
        }
        else {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                va_list va;
                va_start(va, fmt);
                bad_type_va(obj, fmt, va);
                va_end(va);
            }
            return -1;
        }
    }
    *out = seconds;
    return 0;
}

/* --- timeout= and ctx= --------------------------------------------------- */

/* Convert timeout= (seconds) to nanoseconds, rounding up: None and inf
 * mean GC_FOREVER, and so does any timeout too long for the clock. */
static int
parse_timeout(PyObject *obj, int64_t *ns)
{
    if (obj == Py_None) {
        *ns = GC_FOREVER;
        return 0;
    }
    if (PyLong_Check(obj)) {
        int overflow;
        long long seconds = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (seconds == -1 && PyErr_Occurred()) {
            return -1;
        }
        /* On overflow `seconds` is -1: test the sign of the overflow first,
         * or every int beyond 2**63 would count as negative. */
        if (overflow < 0 || (overflow == 0 && seconds < 0)) {
            goto negative;
        }
        if (overflow > 0 || seconds > INT64_MAX / 1000000000) {
            *ns = GC_FOREVER;
            return 0;
        }
        *ns = (int64_t)seconds * 1000000000;
        return 0;
    }
    double seconds;
    if (gc_py_seconds(obj, &seconds, "timeout must be a number or None") < 0) {
        return -1;
    }
    if (isnan(seconds) || seconds < 0) {
        goto negative;
    }
    double rounded = ceil(seconds * 1e9);
    *ns = rounded >= (double)INT64_MAX ? GC_FOREVER : (int64_t)rounded;
    return 0;

negative:
    gc_py_bad_value(obj, "timeout must be a non-negative number");
    return -1;
}

/* ctx=: None, or a gochan context (context.c). */
static int
parse_ctx(gc_py_state *st, PyObject *obj, gc_py_wait *out)
{
    out->ctx = NULL;
    out->cancel = NULL;
    if (obj == Py_None) {
        return 0;
    }
    if (gc_py_ctx_parse(st, obj, &out->cancel) < 0) {
        return -1;
    }
    out->ctx = obj;
    return 0;
}

/* Is the keyword `key` (a str from kwnames) the name `interned`/`ascii`?
 * Keyword names are usually interned, so the pointer test decides. */
static inline int
keyword_is(PyObject *key, PyObject *interned, const char *ascii)
{
    return key == interned ||
           PyUnicode_CompareWithASCIIString(key, ascii) == 0;
}

int
gc_py_parse_args(gc_py_state *st, const char *fname, const char *argname,
                 PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                 PyObject **arg, gc_py_wait *out)
{
    Py_ssize_t max_positional = argname != NULL;
    if (nargs > max_positional) {
        if (max_positional == 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s() takes no positional arguments (%zd given)",
                         fname, nargs);
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "%s() takes at most 1 positional argument "
                         "(%zd given)",
                         fname, nargs);
        }
        return -1;
    }
    PyObject *positional = nargs == 1 ? args[0] : NULL;
    PyObject *timeout = Py_None;
    PyObject *ctx = Py_None;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *value = args[nargs + i];
        if (out != NULL && keyword_is(key, st->str_timeout, "timeout")) {
            timeout = value;
        }
        else if (out != NULL && keyword_is(key, st->str_ctx, "ctx")) {
            ctx = value;
        }
        else if (argname != NULL &&
                 PyUnicode_CompareWithASCIIString(key, argname) == 0) {
            if (positional != NULL) {
                PyErr_Format(PyExc_TypeError,
                             "argument for %s() given by name ('%s') "
                             "and position (1)",
                             fname, argname);
                return -1;
            }
            positional = value;
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument '%U'", fname,
                         key);
            return -1;
        }
    }
    if (argname != NULL && positional == NULL) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing required argument '%s' (pos 1)", fname,
                     argname);
        return -1;
    }
    if (arg != NULL) {
        *arg = positional;
    }
    if (out == NULL) {
        return 0;
    }
    return gc_py_parse_wait(st, timeout, ctx, out);
}

int
gc_py_parse_wait(gc_py_state *st, PyObject *timeout, PyObject *ctx,
                 gc_py_wait *out)
{
    if (parse_ctx(st, ctx, out) < 0 ||
        parse_timeout(timeout, &out->timeout_ns) < 0) {
        return -1;
    }
    out->deadline = GC_FOREVER;
    out->have_deadline = 0;
    return 0;
}

/* --- exceptions ---------------------------------------------------------- */

PyDoc_STRVAR(
    GochanError__doc__,
    "Base class of every exception that gochan raises.\n"
    "\n"
    "    try:\n"
    "        ch.recv_nowait()\n"
    "    except gochan.GochanError as exc:  # WouldBlock or ChannelClosed\n"
    "        print(type(exc).__name__)");

PyDoc_STRVAR(
    ChannelClosed__doc__,
    "Send on a closed channel, close of a closed channel, or receive from a\n"
    "closed and drained channel.\n"
    "\n"
    "    ch = gochan.Chan(1)\n"
    "    ch.close()\n"
    "    try:\n"
    "        ch.send(1)\n"
    "    except gochan.ChannelClosed:\n"
    "        pass");

PyDoc_STRVAR(WouldBlock__doc__,
             "A *_nowait call could not proceed without waiting.\n"
             "\n"
             "    ch = gochan.Chan(1)\n"
             "    try:\n"
             "        ch.recv_nowait()\n"
             "    except gochan.WouldBlock:\n"
             "        print('empty')");

PyDoc_STRVAR(
    ContextError__doc__,
    "Base class of Cancelled and DeadlineExceeded, the errors of a context.\n"
    "\n"
    "    try:\n"
    "        ch.recv(ctx=ctx)\n"
    "    except gochan.ContextError:\n"
    "        ...  # ctx was cancelled or its deadline passed");

PyDoc_STRVAR(Cancelled__doc__, "The context was cancelled.\n"
                               "\n"
                               "    try:\n"
                               "        ch.recv(ctx=ctx)\n"
                               "    except gochan.Cancelled:\n"
                               "        ...  # someone called cancel()");

PyDoc_STRVAR(DeadlineExceeded__doc__,
             "The context's deadline passed; also a builtin TimeoutError.\n"
             "\n"
             "    try:\n"
             "        ch.recv(ctx=ctx)\n"
             "    except TimeoutError:  # catches DeadlineExceeded too\n"
             "        ...");

/* Create the exception class `name` ("gochan.X", which sets its
 * __module__) and add it to the module as X. */
static PyObject *
add_exception(PyObject *m, const char *name, const char *doc, PyObject *bases)
{
    PyObject *exc = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
    if (exc == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, strrchr(name, '.') + 1, exc) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    return exc;
}

static int
add_exceptions(PyObject *m, gc_py_state *st)
{
    st->GochanError = add_exception(m, "gochan.GochanError",
                                    GochanError__doc__, PyExc_Exception);
    if (st->GochanError == NULL) {
        return -1;
    }
    st->ChannelClosed = add_exception(m, "gochan.ChannelClosed",
                                      ChannelClosed__doc__, st->GochanError);
    if (st->ChannelClosed == NULL) {
        return -1;
    }
    st->WouldBlock = add_exception(m, "gochan.WouldBlock", WouldBlock__doc__,
                                   st->GochanError);
    if (st->WouldBlock == NULL) {
        return -1;
    }
    st->ContextError = add_exception(m, "gochan.ContextError",
                                     ContextError__doc__, st->GochanError);
    if (st->ContextError == NULL) {
        return -1;
    }
    st->Cancelled = add_exception(m, "gochan.Cancelled", Cancelled__doc__,
                                  st->ContextError);
    if (st->Cancelled == NULL) {
        return -1;
    }
    PyObject *bases = PyTuple_Pack(2, st->ContextError, PyExc_TimeoutError);
    if (bases == NULL) {
        return -1;
    }
    st->DeadlineExceeded = add_exception(m, "gochan.DeadlineExceeded",
                                         DeadlineExceeded__doc__, bases);
    Py_DECREF(bases);
    return st->DeadlineExceeded == NULL ? -1 : 0;
}

/* --- types --------------------------------------------------------------- */

int
gc_py_new_type(PyObject *m, PyType_Spec *spec, PyTypeObject **slot)
{
    PyObject *tp = PyType_FromModuleAndSpec(m, spec, NULL);
    if (tp == NULL) {
        return -1;
    }
    *slot = (PyTypeObject *)tp;
    return 0;
}

/* Add tp to m and keep it in *slot, or let m hold it alone (slot NULL);
 * the caller's reference to tp goes either way. */
static int
export_type(PyObject *m, PyTypeObject *tp, PyTypeObject **slot)
{
    if (PyModule_AddType(m, tp) < 0) {
        Py_DECREF(tp);
        return -1;
    }
    if (slot != NULL) {
        *slot = tp;
    }
    else {
        Py_DECREF(tp);
    }
    return 0;
}

int
gc_py_add_type(PyObject *m, PyType_Spec *spec, PyTypeObject **slot)
{
    PyTypeObject *tp;
    if (gc_py_new_type(m, spec, &tp) < 0) {
        return -1;
    }
    return export_type(m, tp, slot);
}

int
gc_py_add_structseq(PyObject *m, PyStructSequence_Desc *desc,
                    PyTypeObject **slot)
{
    PyTypeObject *tp = PyStructSequence_NewType(desc);
    if (tp == NULL) {
        return -1;
    }
    return export_type(m, tp, slot);
}

PyObject *
gc_py_cannot_pickle(PyObject *self, const char *why)
{
    const char *name = Py_TYPE(self)->tp_name;
    if (why == NULL) {
        PyErr_Format(PyExc_TypeError, "cannot pickle '%.200s' object", name);
    }
    else {
        PyErr_Format(PyExc_TypeError, "cannot pickle '%.200s' object: %s",
                     name, why);
    }
    return NULL;
}

static int
module_exec(PyObject *m)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(m);

    st->str_timeout = PyUnicode_InternFromString("timeout");
    if (st->str_timeout == NULL) {
        return -1;
    }
    st->str_ctx = PyUnicode_InternFromString("ctx");
    if (st->str_ctx == NULL) {
        return -1;
    }
    if (add_exceptions(m, st) < 0) {
        return -1;
    }
    if (gc_py_add_type(m, &gc_py_chan_spec, &st->Chan_Type) < 0 ||
        gc_py_add_type(m, &gc_py_sendchan_spec, &st->SendChan_Type) < 0 ||
        gc_py_add_type(m, &gc_py_recvchan_spec, &st->RecvChan_Type) < 0 ||
        gc_py_add_structseq(m, &gc_py_chanstats_desc, &st->ChanStats_Type) <
            0) {
        return -1;
    }
    if (gc_py_select_init(m, st) < 0 || gc_py_context_init(m, st) < 0 ||
        gc_py_timer_init(m, st) < 0 || gc_py_sync_init(m, st) < 0 ||
        gc_py_limiter_init(m, st) < 0) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *m, visitproc visit, void *arg)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(m);
#define VISIT(type, name) Py_VISIT(st->name);
    GC_PY_STATE_OBJECTS(VISIT)
#undef VISIT
    return 0;
}

static int
module_clear(PyObject *m)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(m);
#define CLEAR(type, name) Py_CLEAR(st->name);
    GC_PY_STATE_OBJECTS(CLEAR)
#undef CLEAR
    return 0;
}

static void
module_free(void *m)
{
    module_clear((PyObject *)m);
}

PyDoc_STRVAR(
    module__doc__,
    "The C implementation of gochan: channels and the exceptions they raise.\n"
    "\n"
    "Import from gochan, not from here:\n"
    "\n"
    "    import gochan\n"
    "    ch = gochan.Chan(1)");

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_gil
    /* Declared NOT_USED only once a free-threaded build passes the whole
     * suite (DESIGN.md, "Free-threaded Python"). */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,   .m_name = "gochan._core",
    .m_doc = module__doc__,  .m_size = sizeof(gc_py_state),
    .m_slots = module_slots, .m_traverse = module_traverse,
    .m_clear = module_clear, .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&module_def);
}
