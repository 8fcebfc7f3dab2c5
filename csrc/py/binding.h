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

/* Per-module state of gochan._core. */
typedef struct gc_py_state {
    PyTypeObject *Chan_Type;      /* gochan.Chan */
    PyTypeObject *SendChan_Type;  /* gochan.SendChan, a send-only view */
    PyTypeObject *RecvChan_Type;  /* gochan.RecvChan, a receive-only view */
    PyTypeObject *ChanStats_Type; /* gochan.ChanStats, a struct sequence */
    PyObject *GochanError;        /* base of every gochan exception */
    PyObject *ChannelClosed;      /* operation on a closed channel */
    PyObject *WouldBlock;         /* a *_nowait call that cannot proceed */
    PyObject *ContextError;       /* base of the two context errors */
    PyObject *Cancelled;          /* the context was cancelled */
    PyObject *DeadlineExceeded;   /* the context's deadline passed */
    PyObject *str_timeout;        /* interned "timeout", for keyword parsing */
    PyObject *str_ctx;            /* interned "ctx", for keyword parsing */
} gc_py_state;

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

/* gochan.Chan. */
typedef gc_py_chanbase gc_py_chan;

/* gochan.SendChan and gochan.RecvChan: a view holding its channel. */
typedef struct gc_py_chanview {
    gc_py_chanbase base; /* base.ch is owner->ch */
    PyObject *owner;     /* strong reference to the gochan.Chan */
} gc_py_chanview;

/* How a blocking call may wait: its timeout= and ctx= arguments. */
typedef struct gc_py_wait {
    int64_t timeout_ns; /* relative timeout; GC_FOREVER: no limit */
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

#endif /* GC_PY_BINDING_H */
