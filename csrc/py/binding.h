/* binding.h - declarations shared by the files of the CPython binding.
 *
 * The binding parses arguments, calls the core and turns its statuses into
 * exceptions; the algorithms live in csrc/core.  Everything Python-side is
 * per module: the types are heap types created from specs and kept, with
 * the exception classes, in the module state (no global holds a Python
 * object), so that every interpreter that imports gochan._core gets its
 * own.
 */
#ifndef GC_PY_BINDING_H
#define GC_PY_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_PYSSIZET T_PYSSIZET
#define Py_READONLY   READONLY
#endif

#include "gc_chan.h"

/* Per-module state of gochan._core: every object the module keeps, one
 * X(type, name) per object, grouped by the file that creates it.
 * module.c declares, traverses and clears them all from this list; each
 * file's gc_py_*_init() (below) fills its own. */
#define GC_PY_STATE_OBJECTS(X)                                         \
    /* module.c */                                                     \
    X(PyObject, GochanError)      /* base of every gochan exception */ \
    X(PyObject, ChannelClosed)    /* operation on a closed channel */  \
    X(PyObject, WouldBlock)       /* a *_nowait call cannot proceed */ \
    X(PyObject, ContextError)     /* base of the two context errors */ \
    X(PyObject, Cancelled)        /* the context was cancelled */      \
    X(PyObject, DeadlineExceeded) /* the context's deadline passed */  \
    X(PyObject, str_timeout)      /* interned "timeout" */             \
    X(PyObject, str_ctx)          /* interned "ctx" */                 \
    /* chan.c, views.c */                                              \
    X(PyTypeObject, Chan_Type)      /* gochan.Chan */                  \
    X(PyTypeObject, SendChan_Type)  /* gochan.SendChan */              \
    X(PyTypeObject, RecvChan_Type)  /* gochan.RecvChan */              \
    X(PyTypeObject, ChanStats_Type) /* gochan.ChanStats */             \
    /* select.c */                                                     \
    GC_PY_SELECT_OBJECTS(X)                                            \
    /* context.c */                                                    \
    GC_PY_CONTEXT_OBJECTS(X)                                           \
    /* timer.c */                                                      \
    GC_PY_TIMER_OBJECTS(X)                                             \
    /* sync.c, goroutine.c */                                          \
    GC_PY_SYNC_OBJECTS(X)

/* Each file's own list; keep one X(...) per line. */
#define GC_PY_SELECT_OBJECTS(X)                                    \
    X(PyTypeObject, Recv_Type)     /* gochan.Recv */               \
    X(PyTypeObject, Send_Type)     /* gochan.Send */               \
    X(PyTypeObject, Selected_Type) /* gochan.Selected */           \
    X(PyObject, str_default)       /* interned "default" */        \
    X(PyObject, str_biased)        /* interned "biased" */         \
    X(PyObject, nothing_selected)  /* Selected(-1, None, False) */ \
    X(PyObject, spare_selected)    /* see select.c, "spare result" */
#define GC_PY_CONTEXT_OBJECTS(X)                                        \
    X(PyTypeObject, Context_Type)    /* gochan.Context */               \
    X(PyTypeObject, CancelFunc_Type) /* gochan.CancelFunc */            \
    X(PyTypeObject, AfterFunc_Type)  /* stop() of Context.after_func */ \
    X(PyObject, ctx_background)      /* background() */                 \
    X(PyObject, ctx_todo)            /* todo() */
#define GC_PY_TIMER_OBJECTS(X)                      \
    X(PyTypeObject, Timer_Type)  /* gochan.Timer */ \
    X(PyTypeObject, Ticker_Type) /* gochan.Ticker */
#define GC_PY_SYNC_OBJECTS(X)                                              \
    X(PyTypeObject, Mutex_Type)        /* gochan.Mutex */                  \
    X(PyTypeObject, RWMutex_Type)      /* gochan.RWMutex */                \
    X(PyTypeObject, RWMutexGuard_Type) /* rw.read() and rw.write() */      \
    X(PyTypeObject, Semaphore_Type)    /* gochan.Semaphore */              \
    X(PyTypeObject, WaitGroup_Type)    /* gochan.WaitGroup */              \
    X(PyTypeObject, Goroutine_Type)    /* gochan.Goroutine */              \
    X(PyObject, go_running)  /* set of the goroutines not finished */      \
    X(PyObject, go_idle)     /* capsule: gc_idle where workers wait */     \
    X(PyObject, go_idle_gen) /* fork generation go_idle was made in */     \
    X(PyObject, go_start)    /* starts a worker thread (_goroutines.py) */ \
    X(PyObject, go_report)   /* reports a lost exception (same) */

#define GC_PY_STATE_FIELD(type, name) type *name;
typedef struct gc_py_state {
    GC_PY_STATE_OBJECTS(GC_PY_STATE_FIELD)
} gc_py_state;
#undef GC_PY_STATE_FIELD

/* Module initialisation of each file: create its types and functions,
 * add them to module m and keep them in st.  0, or -1 with an exception
 * set. */
int gc_py_select_init(PyObject *m, gc_py_state *st);
int gc_py_context_init(PyObject *m, gc_py_state *st);
int gc_py_timer_init(PyObject *m, gc_py_state *st);

/* Timers (timer.c).  Start the dispatcher thread if it is not running in
 * this process: the daemon thread that runs, with the GIL, the gc_task
 * callbacks that the timer thread or a cancel() pushed (gc_dispatch.h).
 * Call it, with the GIL, before registering anything that will push.  0,
 * or -1 with an exception set. */
int gc_py_dispatcher_ensure(gc_py_state *st);
int gc_py_sync_init(PyObject *m, gc_py_state *st);
int gc_py_limiter_init(PyObject *m, gc_py_state *st);

/* The state of the module that defined `tp` (a type of this module). */
static inline gc_py_state *
gc_py_state_of(PyTypeObject *tp)
{
    return (gc_py_state *)PyType_GetModuleState(tp);
}

/* The first fields of a Chan, a SendChan and a RecvChan.  Sharing this
 * prefix lets the three types share their method implementations: each
 * method finds the core channel at the same place whatever the type. */
typedef struct gc_py_chanbase {
    PyObject ob_base;      /* PyObject_HEAD, spelled out for clang-format */
    gc_chan *ch;           /* the core channel (never NULL once built) */
    PyObject *weakreflist; /* weak references to this object */
} gc_py_chanbase;

/* gochan.Chan.  A channel made by Chan() is freed with its object; one
 * that a timer or a context owns (gc_py_chan_adopt) is given back to its
 * owner through release(release_arg) instead. */
typedef struct gc_py_chan {
    gc_py_chanbase base;
    void (*release)(void *arg); /* NULL: the object owns base.ch */
    void *release_arg;
} gc_py_chan;

/* A new gochan.Chan for the core channel `ch`, which its owner keeps alive
 * until release(arg) is called (by the Chan's deallocation).  Values it
 * buffers must not be Python objects (the owner frees it, perhaps without
 * the GIL): only immediate values (gc_item_from_time).  On failure,
 * release(arg) has been called and NULL is returned with an exception. */
PyObject *gc_py_chan_adopt(gc_py_state *st, gc_chan *ch,
                           void (*release)(void *arg), void *arg);

/* A received payload as a new reference: the object itself, or a float of
 * time.monotonic() for an immediate timestamp that a timer sent.  NULL
 * with MemoryError only for a timestamp that could not be converted. */
static inline PyObject *
gc_py_item_out(void *item)
{
    if (gc_item_is_time(item)) {
        return PyFloat_FromDouble((double)gc_item_time(item) / 1e9);
    }
    return (PyObject *)item;
}

/* gochan.SendChan and gochan.RecvChan: a view holding its channel. */
typedef struct gc_py_chanview {
    gc_py_chanbase base; /* base.ch is owner->ch */
    PyObject *owner;     /* strong reference to the gochan.Chan */
} gc_py_chanview;

/* How a blocking call may wait: its timeout= and ctx= arguments. */
typedef struct gc_py_wait {
    int64_t timeout_ns; /* relative timeout; GC_FOREVER: no limit */
    PyObject *ctx;      /* the ctx= argument (borrowed), or NULL */
    gc_chan *cancel;    /* its done channel; NULL if it can never be done */
    int64_t deadline;   /* absolute deadline, once gc_py_deadline ran */
    int have_deadline;  /* deadline computed yet */
} gc_py_wait;

/* Parse the arguments of a method: one argument named `argname` (none if
 * NULL), by position or by keyword, then, for a blocking call (`out` not
 * NULL), the keyword-only `timeout` and `ctx`; all from a vectorcall's
 * args, nargs and kwnames.  The argument goes to *arg (borrowed).  `fname`
 * names the method in error messages.  0 on success; -1 with an exception
 * set. */
int gc_py_parse_args(gc_py_state *st, const char *fname, const char *argname,
                     PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames, PyObject **arg, gc_py_wait *out);

/* Fill `out` from a call's timeout= and ctx= values (None for either when
 * not given).  0, or -1 with TypeError or ValueError set. */
int gc_py_parse_wait(gc_py_state *st, PyObject *timeout, PyObject *ctx,
                     gc_py_wait *out);

/* The absolute deadline of a wait, computed from the clock on first use:
 * a call that proceeds at once never reads the clock. */
static inline int64_t
gc_py_deadline(gc_py_wait *w)
{
    if (!w->have_deadline) {
        w->deadline = w->timeout_ns == GC_FOREVER
                          ? GC_FOREVER
                          : gc_deadline_after(w->timeout_ns);
        w->have_deadline = 1;
    }
    return w->deadline;
}

/* Releases the GIL around the core's waits. */
/* How the core lets go of the GIL while the calling thread waits (and
 * how it runs signal handlers meanwhile, in the main thread). */
const gc_unlock *gc_py_gil(void);

/* Contexts (context.c).  If obj is a gochan context, store the channel
 * that is closed when it is done into *cancel (NULL for a context that can
 * never be cancelled, such as background()) and return 0; otherwise -1
 * with TypeError.  None is handled by the caller. */
int gc_py_ctx_parse(gc_py_state *st, PyObject *obj, gc_chan **cancel);
/* Raise ctx.err() for the done context obj (a fresh exception of its
 * class: Cancelled or DeadlineExceeded) and return NULL. */
PyObject *gc_py_ctx_raise(gc_py_state *st, PyObject *obj);
/* Has the wait's context been cancelled?  One atomic load. */
static inline int
gc_py_wait_cancelled(const gc_py_wait *w)
{
    return w->cancel != NULL && gc_chan_closed(w->cancel);
}

/* Type specs and their methods (chan.c, views.c). */
extern PyType_Spec gc_py_chan_spec;
extern PyType_Spec gc_py_sendchan_spec;
extern PyType_Spec gc_py_recvchan_spec;
extern PyStructSequence_Desc gc_py_chanstats_desc;

/* Methods shared by Chan and its views (chan.c).  Each takes a
 * gc_py_chanbase as self and finds the module state through Py_TYPE(self)
 * (the types are final, so that is the type that defined the method). */
PyObject *chan_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames);
PyObject *chan_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames);
PyObject *chan_recv_ok(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames);
PyObject *chan_send_nowait(PyObject *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames);
PyObject *chan_recv_nowait(PyObject *self, PyObject *unused);
PyObject *chan_send_many(PyObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames);
PyObject *chan_recv_many(PyObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames);
PyObject *chan_close(PyObject *self, PyObject *unused);
PyObject *chan_reduce(PyObject *self, PyObject *unused);
PyObject *Chan_iternext(PyObject *self);
PyObject *Chan_repr(PyObject *self);
Py_ssize_t Chan_len(PyObject *self);
int Chan_bool(PyObject *self);
PyObject *chan_get_closed(PyObject *self, void *closure);
PyObject *chan_get_cap(PyObject *self, void *closure);

/* Docstrings of the shared methods and properties (chan.c). */
extern const char chan_send__doc__[];
extern const char chan_recv__doc__[];
extern const char chan_recv_ok__doc__[];
extern const char chan_send_nowait__doc__[];
extern const char chan_recv_nowait__doc__[];
extern const char chan_send_many__doc__[];
extern const char chan_recv_many__doc__[];
extern const char chan_close__doc__[];
extern const char chan_reduce__doc__[];
extern const char chan_reduce_ex__doc__[];
extern const char chan_class_getitem__doc__[];
extern const char chan_closed__doc__[];
extern const char chan_cap__doc__[];

/* A new SendChan or RecvChan view of the channel `chan` (views.c). */
PyObject *gc_py_view_new(PyTypeObject *tp, PyObject *chan);

/* --- what every file of the binding makes its types with (module.c) ----- */

/* Method table entries: a vectorcall method with keywords, and the cast
 * that any implementation other than a PyCFunction needs. */
#define FASTCALL_KW (METH_FASTCALL | METH_KEYWORDS)
#define FUNC(f)     ((PyCFunction)(void (*)(void))(f))

/* Create the heap type of `spec` for module m, add it to m under its name
 * (what follows the last dot of spec->name), and keep it in *slot, a
 * reference that the module state owns; with slot NULL, m is all that
 * holds it.  0, or -1 with an exception set. */
int gc_py_add_type(PyObject *m, PyType_Spec *spec, PyTypeObject **slot);
/* The same for a type that m does not export: created and kept only. */
int gc_py_new_type(PyObject *m, PyType_Spec *spec, PyTypeObject **slot);
/* The same as gc_py_add_type for a struct sequence (ChanStats, Selected). */
int gc_py_add_structseq(PyObject *m, PyStructSequence_Desc *desc,
                        PyTypeObject **slot);

/* The end of a tp_dealloc, and of a tp_new whose object could not be
 * made ready: free op and drop the reference to its heap type that op
 * held. */
static inline void
gc_py_free(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

/* In a tp_dealloc: clear the weak references to op, whose weakreflist
 * field holds `list`. */
static inline void
gc_py_clear_weakrefs(PyObject *op, PyObject *list)
{
    if (list != NULL) {
        PyObject_ClearWeakRefs(op);
    }
}

/* The members of a type whose only member is __weaklistoffset__, the
 * offset of its struct's field `weakreflist` (how a heap type made from
 * a spec says where its weak references go). */
#define GC_PY_WEAKLIST_MEMBERS(name, type)                                 \
    static PyMemberDef name[] = {                                          \
        {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(type, weakreflist), \
         Py_READONLY, NULL},                                               \
        {NULL, 0, 0, 0, NULL},                                             \
    }

/* __exit__ of a context manager, given what the call that let go of the
 * resource returned: False (an exception from the block goes on), or
 * NULL if that call raised. */
static inline PyObject *
gc_py_exit_result(PyObject *released)
{
    if (released == NULL) {
        return NULL;
    }
    Py_DECREF(released);
    Py_RETURN_FALSE;
}

/* --- one way to parse arguments and to say what was wrong (module.c) -- */

/* Fill `w` for a call without timeout= and ctx=: wait for ever. */
static inline void
gc_py_wait_forever(gc_py_wait *w)
{
    w->timeout_ns = GC_FOREVER;
    w->ctx = NULL;
    w->cancel = NULL;
    w->deadline = GC_FOREVER;
    w->have_deadline = 1;
}

/* gc_py_parse_args for a method of one of the module's final types (the
 * type of `self` finds the module state), with `w` NULL for a method that
 * takes no timeout= and ctx=.  The common call, with the argument (if
 * any) by position and no keyword, is decided here without the module
 * state. */
static inline int
gc_py_parse_method(PyObject *self, const char *fname, const char *argname,
                   PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                   PyObject **arg, gc_py_wait *w)
{
    if (kwnames == NULL && nargs == (argname != NULL)) {
        if (argname != NULL) {
            *arg = args[0];
        }
        if (w != NULL) {
            gc_py_wait_forever(w);
        }
        return 0;
    }
    return gc_py_parse_args(gc_py_state_of(Py_TYPE(self)), fname, argname,
                            args, nargs, kwnames, arg, w);
}

/* Raise "<message>, got <what obj is>", the message made from fmt and
 * what follows as by PyUnicode_FromFormat: gc_py_bad_type raises
 * TypeError and names obj's type, gc_py_bad_value raises ValueError and
 * shows repr(obj). */
void gc_py_bad_type(PyObject *obj, const char *fmt, ...);
void gc_py_bad_value(PyObject *obj, const char *fmt, ...);

/* float(obj) for a number of seconds into *out, an int too large for a
 * double being an infinity of its sign (not OverflowError).  0, or -1
 * with float()'s exception set, except that an object that is not a
 * number raises gc_py_bad_type(obj, fmt, ...) instead of its TypeError. */
int gc_py_seconds(PyObject *obj, double *out, const char *fmt, ...);

/* __reduce__ of an object that lives in one process: raise TypeError
 * "cannot pickle 'T' object: <why>" (no colon and reason if why is NULL)
 * and return NULL. */
PyObject *gc_py_cannot_pickle(PyObject *self, const char *why);

#endif /* GC_PY_BINDING_H */
