/* sync.h - what sync.c and goroutine.c share: the sync objects' layouts,
 * the loop every blocking sync call runs, and starting a goroutine. */
#ifndef GC_PY_SYNC_H
#define GC_PY_SYNC_H

#include "binding.h"
#include "gc_sync.h"

/* gochan.WaitGroup (sync.c); WaitGroup.go hands it to a goroutine, which
 * calls done() when it ends. */
typedef struct gc_py_waitgroup {
    PyObject ob_base;
    gc_wg wg;
    PyObject *weakreflist;
} gc_py_waitgroup;

/* A blocking core call of the sync primitives, in one shape: prim is the
 * core object, n a weight (semaphores; 0 otherwise). */
typedef gc_status (*gc_py_sync_call)(void *prim, int64_t n, int64_t deadline,
                                     gc_chan *cancel, const gc_unlock *u);

/* Run `call` as the wait `w` allows, letting go of the GIL while it waits
 * and running signal handlers when a signal interrupts it (GC_INTR then
 * means a handler raised).  A context already done gives GC_CANCELLED
 * without calling. */
gc_status gc_py_sync_wait(gc_py_sync_call call, void *prim, int64_t n,
                          gc_py_wait *w);

/* A context already done raises before anything is tried: -1 with
 * ctx.err() set, else 0. */
static inline int
gc_py_sync_raise_if_cancelled(PyObject *self, gc_py_wait *w)
{
    if (gc_py_wait_cancelled(w)) {
        gc_py_ctx_raise(gc_py_state_of(Py_TYPE(self)), w->ctx);
        return -1;
    }
    return 0;
}

/* The start of a blocking method that takes only timeout= and ctx=: parse
 * them into w, then raise at once if the context is already done.  0, or
 * -1 with an exception set. */
static inline int
gc_py_sync_begin(PyObject *self, const char *fname, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames, gc_py_wait *w)
{
    if (gc_py_parse_method(self, fname, NULL, args, nargs, kwnames, NULL, w) <
        0) {
        return -1;
    }
    return gc_py_sync_raise_if_cancelled(self, w);
}

/* go(fn, *args, **kwargs) from a vectorcall's arguments (args[0] is fn):
 * run it in a goroutine and return its new Goroutine.  `fname` names the
 * caller in error messages.  wg, if not NULL, is a WaitGroup whose counter
 * the caller has raised by one: the goroutine lowers it when it ends.
 * NULL with an exception if it could not start (wg is then left alone). */
PyObject *gc_py_go(gc_py_state *st, const char *fname, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames, PyObject *wg);

/* The goroutine part of the module (goroutine.c): the Goroutine type and
 * the module functions go, num_goroutines and the private ones the
 * Python layer uses. */
int gc_py_goroutine_init(PyObject *m, gc_py_state *st);

#endif /* GC_PY_SYNC_H */
