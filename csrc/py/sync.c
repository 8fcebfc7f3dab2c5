/* sync.c - gochan.Mutex, RWMutex, Semaphore and WaitGroup: thin types over
 * the core's primitives (csrc/core/gc_sync.h), and the module init of the
 * sync and goroutine part.
 *
 * Every method first tries the core's non-blocking fast path with the GIL
 * held: when it can proceed it never lets go of the GIL and never reads
 * the clock.  Only a call that must wait goes through gc_py_sync_wait,
 * which lets go of the GIL while the core waits, runs signal handlers in
 * the main thread and honours timeout= and ctx=.
 *
 * Invariants:
 *   - `self` of a method is borrowed for the whole call (see chan.c), so a
 *     primitive cannot be freed under a thread blocked on it;
 *   - the types are final: Py_TYPE(self) is the type that defined the
 *     method, through which methods find the module state;
 *   - these objects hold no Python references (a guard holds only its
 *     RWMutex), so they take no part in the cyclic GC.
 */
#include "sync.h"

/* --- shared by every primitive ------------------------------------------- */

gc_status
gc_py_sync_wait(gc_py_sync_call call, void *prim, int64_t n, gc_py_wait *w)
{
    if (gc_py_wait_cancelled(w)) {
        return GC_CANCELLED;
    }
    int64_t deadline = gc_py_deadline(w);
    const gc_unlock *unlock = gc_py_gil();
    for (;;) {
        gc_status status = call(prim, n, deadline, w->cancel, unlock);
        if (status != GC_INTR || PyErr_Occurred() ||
            PyErr_CheckSignals() < 0) {
            return status;
        }
    }
}

/* The result of a wait on a condition: True, False on timeout, or the
 * exception (ctx.err(), or what a signal handler raised). */
static PyObject *
condition_result(PyObject *self, gc_status status, gc_py_wait *w)
{
    switch (status) {
    case GC_OK:
        Py_RETURN_TRUE;
    case GC_TIMEOUT:
        Py_RETURN_FALSE;
    case GC_CANCELLED:
        return gc_py_ctx_raise(gc_py_state_of(Py_TYPE(self)), w->ctx);
    case GC_INTR:
        assert(PyErr_Occurred());
        return NULL;
    default:
        PyErr_Format(PyExc_SystemError, "gochan: unexpected status %d",
                     (int)status);
        return NULL;
    }
}

/* A wait that could not proceed at once: timeout=0 was the one try. */
static PyObject *
wait_slow(PyObject *self, gc_py_sync_call call, void *prim, int64_t n,
          gc_py_wait *w)
{
    if (w->timeout_ns == 0) {
        Py_RETURN_FALSE;
    }
    return condition_result(self, gc_py_sync_wait(call, prim, n, w), w);
}

PyDoc_STRVAR(sync_reduce__doc__,
             "__reduce__($self, /)\n"
             "--\n"
             "\n"
             "Sync primitives cannot be pickled: raises TypeError.");

static PyObject *
sync_reduce(PyObject *self, PyObject *unused)
{
    return gc_py_cannot_pickle(self, "it belongs to one process");
}

/* A count argument (a semaphore's n, a WaitGroup's delta): an int. */
static int
parse_count(PyObject *obj, const char *what, int64_t *out)
{
    if (!PyLong_Check(obj)) {
        gc_py_bad_type(obj, "%s must be an int", what);
        return -1;
    }
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow != 0) {
        PyErr_Format(PyExc_ValueError, "%s is out of range: %R", what, obj);
        return -1;
    }
    *out = (int64_t)value;
    return 0;
}

/* The optional first argument `n` (default 1) of a method that also takes
 * timeout= and ctx= (w not NULL) or nothing else (w NULL). */
static int
parse_n_and_wait(PyObject *self, const char *fname, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames, int64_t *n,
                 gc_py_wait *w)
{
    PyObject *arg = NULL;
    int named = 0;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i),
                                             "n") == 0) {
            named = 1;
        }
    }
    *n = 1;
    if (gc_py_parse_method(self, fname, nargs > 0 || named ? "n" : NULL, args,
                           nargs, kwnames, &arg, w) < 0) {
        return -1;
    }
    return arg == NULL ? 0 : parse_count(arg, "n", n);
}

/* __enter__ when the fast path could not take the primitive: wait as
 * long as it takes (no timeout, no context), then return `entered`; or
 * what condition_result says of a wait that ended otherwise (a signal
 * handler raised). */
static PyObject *
enter_slow(PyObject *self, gc_py_sync_call call, void *prim, int64_t n,
           PyObject *entered)
{
    gc_py_wait w;
    gc_py_wait_forever(&w);
    gc_status status = gc_py_sync_wait(call, prim, n, &w);
    if (status != GC_OK) {
        return condition_result(self, status, &w);
    }
    return Py_NewRef(entered);
}

/* Constructors that take no arguments. */
static int
no_arguments(const char *name, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 ||
        (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
        return -1;
    }
    return 0;
}

/* --- Mutex --------------------------------------------------------------- */

typedef struct {
    PyObject ob_base;
    gc_mu mu;
    PyObject *weakreflist;
} py_mutex;

#define MU(self) (&((py_mutex *)(self))->mu)

static gc_status
mu_lock_call(void *prim, int64_t n, int64_t deadline, gc_chan *cancel,
             const gc_unlock *u)
{
    return gc_mu_lock(prim, deadline, cancel, u);
}

PyDoc_STRVAR(mutex_lock__doc__,
             "lock($self, /, *, timeout=None, ctx=None)\n"
             "--\n"
             "\n"
             "Lock the mutex, waiting while another holder has it.\n"
             "\n"
             "Returns True once locked, False if timeout (seconds) expired\n"
             "first; raises ctx.err() if ctx is cancelled first.\n"
             "\n"
             "    if m.lock(timeout=1.0):\n"
             "        try:\n"
             "            balance += 1\n"
             "        finally:\n"
             "            m.unlock()");

static PyObject *
mutex_lock(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    gc_py_wait w;
    if (gc_py_sync_begin(self, "lock", args, nargs, kwnames, &w) < 0) {
        return NULL;
    }
    if (gc_mu_try_lock(MU(self))) {
        Py_RETURN_TRUE;
    }
    return wait_slow(self, mu_lock_call, MU(self), 0, &w);
}

PyDoc_STRVAR(
    mutex_unlock__doc__,
    "unlock($self, /)\n"
    "--\n"
    "\n"
    "Unlock the mutex.  Any thread may unlock it (as in Go); unlocking\n"
    "a mutex that is not locked raises RuntimeError.\n"
    "\n"
    "    m.lock()\n"
    "    m.unlock()");

static PyObject *
mutex_unlock(PyObject *self, PyObject *unused)
{
    if (gc_mu_unlock(MU(self)) != GC_SYNC_OK) {
        PyErr_SetString(PyExc_RuntimeError, "unlock of unlocked Mutex");
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(mutex_try_lock__doc__,
             "try_lock($self, /)\n"
             "--\n"
             "\n"
             "Lock the mutex if it is free now; return whether it did.\n"
             "\n"
             "    if m.try_lock():\n"
             "        try:\n"
             "            flush()\n"
             "        finally:\n"
             "            m.unlock()");

static PyObject *
mutex_try_lock(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(gc_mu_try_lock(MU(self)));
}

PyDoc_STRVAR(mutex_locked__doc__,
             "locked($self, /)\n"
             "--\n"
             "\n"
             "Whether the mutex is locked now (by any thread).\n"
             "\n"
             "    m = gochan.Mutex()\n"
             "    assert not m.locked()");

static PyObject *
mutex_locked(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(gc_mu_locked(MU(self)));
}

PyDoc_STRVAR(mutex_enter__doc__,
             "__enter__($self, /)\n"
             "--\n"
             "\n"
             "Lock the mutex (waiting as long as needed) and return it.");

static PyObject *
mutex_enter(PyObject *self, PyObject *unused)
{
    if (gc_mu_try_lock(MU(self))) {
        return Py_NewRef(self);
    }
    return enter_slow(self, mu_lock_call, MU(self), 0, self);
}

PyDoc_STRVAR(mutex_exit__doc__, "__exit__($self, /, *exc_info)\n"
                                "--\n"
                                "\n"
                                "Unlock the mutex.");

static PyObject *
mutex_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return gc_py_exit_result(mutex_unlock(self, NULL));
}

static PyObject *
Mutex_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<%s %s>", Py_TYPE(self)->tp_name,
                                gc_mu_locked(MU(self)) ? "locked"
                                                       : "unlocked");
}

static PyObject *
Mutex_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (no_arguments("Mutex", args, kwds) < 0) {
        return NULL;
    }
    py_mutex *self = (py_mutex *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (gc_mu_init(&self->mu) != 0) {
        gc_py_free((PyObject *)self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void
Mutex_dealloc(PyObject *self)
{
    gc_py_clear_weakrefs(self, ((py_mutex *)self)->weakreflist);
    gc_mu_destroy(MU(self));
    gc_py_free(self);
}

static PyMethodDef Mutex_methods[] = {
    {"lock", FUNC(mutex_lock), FASTCALL_KW, mutex_lock__doc__},
    {"unlock", mutex_unlock, METH_NOARGS, mutex_unlock__doc__},
    {"try_lock", mutex_try_lock, METH_NOARGS, mutex_try_lock__doc__},
    {"locked", mutex_locked, METH_NOARGS, mutex_locked__doc__},
    {"__enter__", mutex_enter, METH_NOARGS, mutex_enter__doc__},
    {"__exit__", FUNC(mutex_exit), METH_FASTCALL, mutex_exit__doc__},
    {"__reduce__", sync_reduce, METH_NOARGS, sync_reduce__doc__},
    {NULL, NULL, 0, NULL},
};

GC_PY_WEAKLIST_MEMBERS(Mutex_members, py_mutex);

PyDoc_STRVAR(
    Mutex__doc__,
    "Mutex()\n"
    "--\n"
    "\n"
    "Go's sync.Mutex: a mutual exclusion lock.\n"
    "\n"
    "It is not reentrant and has no owner: any thread may unlock it.  A\n"
    "blocked lock() lets go of the GIL, takes timeout= and ctx=, and can be\n"
    "interrupted with Ctrl-C.  Under contention a waiter that has waited "
    "more\n"
    "than a millisecond gets the mutex handed over, first come first served.\n"
    "\n"
    "    m = gochan.Mutex()\n"
    "    with m:\n"
    "        counter += 1");

static PyType_Slot Mutex_slots[] = {
    {Py_tp_doc, (void *)Mutex__doc__},
    {Py_tp_new, Mutex_new},
    {Py_tp_dealloc, Mutex_dealloc},
    {Py_tp_repr, Mutex_repr},
    {Py_tp_methods, Mutex_methods},
    {Py_tp_members, Mutex_members},
    {0, NULL},
};

static PyType_Spec Mutex_spec = {
    .name = "gochan.Mutex",
    .basicsize = sizeof(py_mutex),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Mutex_slots,
};

/* --- RWMutex ------------------------------------------------------------- */

typedef struct {
    PyObject ob_base;
    gc_rw rw;
    PyObject *weakreflist;
} py_rwmutex;

#define RW(self) (&((py_rwmutex *)(self))->rw)

static gc_status
rw_lock_call(void *prim, int64_t n, int64_t deadline, gc_chan *cancel,
             const gc_unlock *u)
{
    return gc_rw_lock(prim, deadline, cancel, u);
}

static gc_status
rw_rlock_call(void *prim, int64_t n, int64_t deadline, gc_chan *cancel,
              const gc_unlock *u)
{
    return gc_rw_rlock(prim, deadline, cancel, u);
}

static PyObject *
rw_misuse(gc_sync_err err, const char *what)
{
    if (err == GC_SYNC_WRONG_MODE) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s of RWMutex that is %s-locked: use %s", what,
                     what[0] == 'r' ? "write" : "read",
                     what[0] == 'r' ? "unlock()" : "runlock()");
    }
    else {
        PyErr_Format(PyExc_RuntimeError, "%s of unlocked RWMutex", what);
    }
    return NULL;
}

PyDoc_STRVAR(rwmutex_lock__doc__,
             "lock($self, /, *, timeout=None, ctx=None)\n"
             "--\n"
             "\n"
             "Lock for writing: wait until no reader and no writer holds it.\n"
             "From the moment a writer waits, new readers wait too.\n"
             "\n"
             "Returns True once locked, False if timeout (seconds) expired\n"
             "first; raises ctx.err() if ctx is cancelled first.\n"
             "\n"
             "    rw.lock()\n"
             "    try:\n"
             "        table[key] = value\n"
             "    finally:\n"
             "        rw.unlock()");

static PyObject *
rwmutex_lock(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    gc_py_wait w;
    if (gc_py_sync_begin(self, "lock", args, nargs, kwnames, &w) < 0) {
        return NULL;
    }
    if (gc_rw_try_lock(RW(self))) {
        Py_RETURN_TRUE;
    }
    return wait_slow(self, rw_lock_call, RW(self), 0, &w);
}

PyDoc_STRVAR(rwmutex_unlock__doc__,
             "unlock($self, /)\n"
             "--\n"
             "\n"
             "Unlock for writing.  Raises RuntimeError if the RWMutex is not\n"
             "write-locked (read locks are released with runlock()).\n"
             "\n"
             "    rw.lock()\n"
             "    rw.unlock()");

static PyObject *
rwmutex_unlock(PyObject *self, PyObject *unused)
{
    gc_sync_err err = gc_rw_unlock(RW(self));
    if (err != GC_SYNC_OK) {
        return rw_misuse(err, "unlock");
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(
    rwmutex_try_lock__doc__,
    "try_lock($self, /)\n"
    "--\n"
    "\n"
    "Lock for writing if nobody holds the RWMutex now; return whether\n"
    "it did.\n"
    "\n"
    "    if rw.try_lock():\n"
    "        rw.unlock()");

static PyObject *
rwmutex_try_lock(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(gc_rw_try_lock(RW(self)));
}

PyDoc_STRVAR(
    rwmutex_rlock__doc__,
    "rlock($self, /, *, timeout=None, ctx=None)\n"
    "--\n"
    "\n"
    "Lock for reading: wait while a writer holds it or waits for it.\n"
    "Any number of readers may hold it at once.  Do not rlock twice\n"
    "in one thread: a writer waiting in between would deadlock it.\n"
    "\n"
    "Returns True once locked, False if timeout (seconds) expired\n"
    "first; raises ctx.err() if ctx is cancelled first.\n"
    "\n"
    "    if rw.rlock(timeout=0.5):\n"
    "        try:\n"
    "            value = table.get(key)\n"
    "        finally:\n"
    "            rw.runlock()");

static PyObject *
rwmutex_rlock(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames)
{
    gc_py_wait w;
    if (gc_py_sync_begin(self, "rlock", args, nargs, kwnames, &w) < 0) {
        return NULL;
    }
    if (gc_rw_try_rlock(RW(self))) {
        Py_RETURN_TRUE;
    }
    return wait_slow(self, rw_rlock_call, RW(self), 0, &w);
}

PyDoc_STRVAR(
    rwmutex_runlock__doc__,
    "runlock($self, /)\n"
    "--\n"
    "\n"
    "Release one read lock.  Raises RuntimeError if the RWMutex is not\n"
    "read-locked (a write lock is released with unlock()).\n"
    "\n"
    "    rw.rlock()\n"
    "    rw.runlock()");

static PyObject *
rwmutex_runlock(PyObject *self, PyObject *unused)
{
    gc_sync_err err = gc_rw_runlock(RW(self));
    if (err != GC_SYNC_OK) {
        return rw_misuse(err, "runlock");
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(
    rwmutex_try_rlock__doc__,
    "try_rlock($self, /)\n"
    "--\n"
    "\n"
    "Lock for reading if that can be done now (no writer holds or waits\n"
    "for it); return whether it did.\n"
    "\n"
    "    if rw.try_rlock():\n"
    "        rw.runlock()");

static PyObject *
rwmutex_try_rlock(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(gc_rw_try_rlock(RW(self)));
}

/* rw.read() and rw.write(): a context manager holding the RWMutex. */
typedef struct {
    PyObject ob_base;
    PyObject *rw; /* the RWMutex */
    int write;    /* 1: write lock, 0: read lock */
} py_rwguard;

static PyObject *
guard_new(PyObject *rw, int write)
{
    gc_py_state *st = gc_py_state_of(Py_TYPE(rw));
    PyTypeObject *tp = st->RWMutexGuard_Type;
    py_rwguard *g = (py_rwguard *)tp->tp_alloc(tp, 0);
    if (g == NULL) {
        return NULL;
    }
    g->rw = Py_NewRef(rw);
    g->write = write;
    return (PyObject *)g;
}

PyDoc_STRVAR(rwmutex_read__doc__,
             "read($self, /)\n"
             "--\n"
             "\n"
             "A context manager that holds a read lock for its block.\n"
             "\n"
             "    with rw.read():\n"
             "        value = table.get(key)");

static PyObject *
rwmutex_read(PyObject *self, PyObject *unused)
{
    return guard_new(self, 0);
}

PyDoc_STRVAR(rwmutex_write__doc__,
             "write($self, /)\n"
             "--\n"
             "\n"
             "A context manager that holds the write lock for its block.\n"
             "\n"
             "    with rw.write():\n"
             "        table[key] = value");

static PyObject *
rwmutex_write(PyObject *self, PyObject *unused)
{
    return guard_new(self, 1);
}

static PyObject *
RWMutex_repr(PyObject *self)
{
    /* relaxed: a snapshot for display. */
    uint64_t s = atomic_load_explicit(&RW(self)->state, memory_order_relaxed);
    if (s & GC_RW_WRITER) {
        return PyUnicode_FromFormat("<%s write-locked>",
                                    Py_TYPE(self)->tp_name);
    }
    if (GC_RW_READERS(s) > 0) {
        return PyUnicode_FromFormat("<%s read-locked readers=%llu>",
                                    Py_TYPE(self)->tp_name,
                                    (unsigned long long)GC_RW_READERS(s));
    }
    return PyUnicode_FromFormat("<%s unlocked>", Py_TYPE(self)->tp_name);
}

static PyObject *
RWMutex_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (no_arguments("RWMutex", args, kwds) < 0) {
        return NULL;
    }
    py_rwmutex *self = (py_rwmutex *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (gc_rw_init(&self->rw) != 0) {
        gc_py_free((PyObject *)self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void
RWMutex_dealloc(PyObject *self)
{
    gc_py_clear_weakrefs(self, ((py_rwmutex *)self)->weakreflist);
    gc_rw_destroy(RW(self));
    gc_py_free(self);
}

static PyMethodDef RWMutex_methods[] = {
    {"lock", FUNC(rwmutex_lock), FASTCALL_KW, rwmutex_lock__doc__},
    {"unlock", rwmutex_unlock, METH_NOARGS, rwmutex_unlock__doc__},
    {"try_lock", rwmutex_try_lock, METH_NOARGS, rwmutex_try_lock__doc__},
    {"rlock", FUNC(rwmutex_rlock), FASTCALL_KW, rwmutex_rlock__doc__},
    {"runlock", rwmutex_runlock, METH_NOARGS, rwmutex_runlock__doc__},
    {"try_rlock", rwmutex_try_rlock, METH_NOARGS, rwmutex_try_rlock__doc__},
    {"read", rwmutex_read, METH_NOARGS, rwmutex_read__doc__},
    {"write", rwmutex_write, METH_NOARGS, rwmutex_write__doc__},
    {"__reduce__", sync_reduce, METH_NOARGS, sync_reduce__doc__},
    {NULL, NULL, 0, NULL},
};

GC_PY_WEAKLIST_MEMBERS(RWMutex_members, py_rwmutex);

PyDoc_STRVAR(
    RWMutex__doc__,
    "RWMutex()\n"
    "--\n"
    "\n"
    "Go's sync.RWMutex: many readers or one writer.\n"
    "\n"
    "A writer waiting for the lock keeps new readers out, so writers are not\n"
    "starved; when a writer unlocks, the readers that were waiting get in\n"
    "before the next writer.  Blocking calls take timeout= and ctx=.\n"
    "\n"
    "    rw = gochan.RWMutex()\n"
    "    with rw.read():\n"
    "        value = table.get(key)\n"
    "    with rw.write():\n"
    "        table[key] = value");

static PyType_Slot RWMutex_slots[] = {
    {Py_tp_doc, (void *)RWMutex__doc__},
    {Py_tp_new, RWMutex_new},
    {Py_tp_dealloc, RWMutex_dealloc},
    {Py_tp_repr, RWMutex_repr},
    {Py_tp_methods, RWMutex_methods},
    {Py_tp_members, RWMutex_members},
    {0, NULL},
};

static PyType_Spec RWMutex_spec = {
    .name = "gochan.RWMutex",
    .basicsize = sizeof(py_rwmutex),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = RWMutex_slots,
};

/* --- RWMutexGuard -------------------------------------------------------- */

PyDoc_STRVAR(guard_enter__doc__,
             "__enter__($self, /)\n"
             "--\n"
             "\n"
             "Take the lock (waiting as long as needed); returns None.");

static PyObject *
guard_enter(PyObject *self, PyObject *unused)
{
    py_rwguard *g = (py_rwguard *)self;
    gc_rw *rw = RW(g->rw);
    if (g->write ? gc_rw_try_lock(rw) : gc_rw_try_rlock(rw)) {
        Py_RETURN_NONE;
    }
    return enter_slow(g->rw, g->write ? rw_lock_call : rw_rlock_call, rw, 0,
                      Py_None);
}

PyDoc_STRVAR(guard_exit__doc__, "__exit__($self, /, *exc_info)\n"
                                "--\n"
                                "\n"
                                "Release the lock.");

static PyObject *
guard_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    py_rwguard *g = (py_rwguard *)self;
    return gc_py_exit_result(g->write ? rwmutex_unlock(g->rw, NULL)
                                      : rwmutex_runlock(g->rw, NULL));
}

static PyObject *
RWMutexGuard_repr(PyObject *self)
{
    py_rwguard *g = (py_rwguard *)self;
    return PyUnicode_FromFormat("<%s %s of %R>", Py_TYPE(self)->tp_name,
                                g->write ? "write" : "read", g->rw);
}

/* A guard holds only its RWMutex, which holds no Python object: no
 * reference cycle can go through it, so it stays out of the cyclic GC. */
static void
RWMutexGuard_dealloc(PyObject *self)
{
    Py_CLEAR(((py_rwguard *)self)->rw);
    gc_py_free(self);
}

static PyMethodDef RWMutexGuard_methods[] = {
    {"__enter__", guard_enter, METH_NOARGS, guard_enter__doc__},
    {"__exit__", FUNC(guard_exit), METH_FASTCALL, guard_exit__doc__},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(RWMutexGuard__doc__,
             "What RWMutex.read() and RWMutex.write() return: a context\n"
             "manager holding the lock for its block.\n"
             "\n"
             "    with rw.write():\n"
             "        table.clear()");

static PyType_Slot RWMutexGuard_slots[] = {
    {Py_tp_doc, (void *)RWMutexGuard__doc__},
    {Py_tp_dealloc, RWMutexGuard_dealloc},
    {Py_tp_repr, RWMutexGuard_repr},
    {Py_tp_methods, RWMutexGuard_methods},
    {0, NULL},
};

static PyType_Spec RWMutexGuard_spec = {
    .name = "gochan.RWMutexGuard",
    .basicsize = sizeof(py_rwguard),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = RWMutexGuard_slots,
};

/* --- Semaphore ----------------------------------------------------------- */

typedef struct {
    PyObject ob_base;
    gc_sem sem;
    PyObject *weakreflist;
} py_semaphore;

#define SEM(self) (&((py_semaphore *)(self))->sem)

static gc_status
sem_acquire_call(void *prim, int64_t n, int64_t deadline, gc_chan *cancel,
                 const gc_unlock *u)
{
    return gc_sem_acquire(prim, n, deadline, cancel, u);
}

/* n of acquire/try_acquire: 0 <= n <= size (a larger request could never
 * be served: Go's x/sync blocks for ever, here it is an error at once). */
static int
check_acquire(PyObject *self, int64_t n)
{
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "n must be >= 0, got %lld",
                     (long long)n);
        return -1;
    }
    if (n > SEM(self)->size) {
        PyErr_Format(PyExc_ValueError,
                     "cannot acquire %lld from a Semaphore of size %lld",
                     (long long)n, (long long)SEM(self)->size);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(
    semaphore_acquire__doc__,
    "acquire($self, /, n=1, *, timeout=None, ctx=None)\n"
    "--\n"
    "\n"
    "Take n tokens, waiting until they are free and every earlier waiter has\n"
    "been served (first come, first served).\n"
    "\n"
    "Returns True once taken, False if timeout (seconds) expired first;\n"
    "raises ctx.err() if ctx is cancelled first, and ValueError at once if\n"
    "n is more than the semaphore's size.\n"
    "\n"
    "    if sem.acquire(2, timeout=5.0):\n"
    "        try:\n"
    "            run_big_job()\n"
    "        finally:\n"
    "            sem.release(2)");

static PyObject *
semaphore_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    int64_t n;
    gc_py_wait w;
    if (parse_n_and_wait(self, "acquire", args, nargs, kwnames, &n, &w) < 0 ||
        check_acquire(self, n) < 0 ||
        gc_py_sync_raise_if_cancelled(self, &w) < 0) {
        return NULL;
    }
    if (gc_sem_try_acquire(SEM(self), n)) {
        Py_RETURN_TRUE;
    }
    return wait_slow(self, sem_acquire_call, SEM(self), n, &w);
}

PyDoc_STRVAR(semaphore_try_acquire__doc__,
             "try_acquire($self, /, n=1)\n"
             "--\n"
             "\n"
             "Take n tokens if they are free and nobody is waiting; return\n"
             "whether it did.\n"
             "\n"
             "    if not sem.try_acquire():\n"
             "        raise Busy()");

static PyObject *
semaphore_try_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    int64_t n;
    if (parse_n_and_wait(self, "try_acquire", args, nargs, kwnames, &n, NULL) <
            0 ||
        check_acquire(self, n) < 0) {
        return NULL;
    }
    return PyBool_FromLong(gc_sem_try_acquire(SEM(self), n));
}

PyDoc_STRVAR(semaphore_release__doc__,
             "release($self, /, n=1)\n"
             "--\n"
             "\n"
             "Give back n tokens.  Raises ValueError if that would free more\n"
             "than are held.\n"
             "\n"
             "    sem.acquire(3)\n"
             "    sem.release(3)");

static PyObject *
semaphore_release(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    int64_t n;
    if (parse_n_and_wait(self, "release", args, nargs, kwnames, &n, NULL) <
        0) {
        return NULL;
    }
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "n must be >= 0, got %lld",
                     (long long)n);
        return NULL;
    }
    if (gc_sem_release(SEM(self), n) != GC_SYNC_OK) {
        PyErr_Format(
            PyExc_ValueError,
            "release of %lld tokens, more than are held (%lld of "
            "%lld)",
            (long long)n,
            (long long)(SEM(self)->size - gc_sem_available(SEM(self))),
            (long long)SEM(self)->size);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(semaphore_enter__doc__,
             "__enter__($self, /)\n"
             "--\n"
             "\n"
             "Take one token (waiting as long as needed) and return the\n"
             "semaphore.");

static PyObject *
semaphore_enter(PyObject *self, PyObject *unused)
{
    if (check_acquire(self, 1) < 0) {
        return NULL;
    }
    if (gc_sem_try_acquire(SEM(self), 1)) {
        return Py_NewRef(self);
    }
    return enter_slow(self, sem_acquire_call, SEM(self), 1, self);
}

PyDoc_STRVAR(semaphore_exit__doc__, "__exit__($self, /, *exc_info)\n"
                                    "--\n"
                                    "\n"
                                    "Give back the token.");

static PyObject *
semaphore_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return gc_py_exit_result(semaphore_release(self, NULL, 0, NULL));
}

static PyObject *
Semaphore_repr(PyObject *self)
{
    return PyUnicode_FromFormat(
        "<%s size=%lld available=%lld>", Py_TYPE(self)->tp_name,
        (long long)SEM(self)->size, (long long)gc_sem_available(SEM(self)));
}

static PyObject *
Semaphore_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", NULL};
    PyObject *arg;
    int64_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Semaphore", kwlist,
                                     &arg) ||
        parse_count(arg, "n", &n) < 0) {
        return NULL;
    }
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "Semaphore size must be >= 1, got %lld",
                     (long long)n);
        return NULL;
    }
    py_semaphore *self = (py_semaphore *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (gc_sem_init(&self->sem, n) != 0) {
        gc_py_free((PyObject *)self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void
Semaphore_dealloc(PyObject *self)
{
    gc_py_clear_weakrefs(self, ((py_semaphore *)self)->weakreflist);
    gc_sem_destroy(SEM(self));
    gc_py_free(self);
}

static PyMethodDef Semaphore_methods[] = {
    {"acquire", FUNC(semaphore_acquire), FASTCALL_KW,
     semaphore_acquire__doc__},
    {"try_acquire", FUNC(semaphore_try_acquire), FASTCALL_KW,
     semaphore_try_acquire__doc__},
    {"release", FUNC(semaphore_release), FASTCALL_KW,
     semaphore_release__doc__},
    {"__enter__", semaphore_enter, METH_NOARGS, semaphore_enter__doc__},
    {"__exit__", FUNC(semaphore_exit), METH_FASTCALL, semaphore_exit__doc__},
    {"__reduce__", sync_reduce, METH_NOARGS, sync_reduce__doc__},
    {NULL, NULL, 0, NULL},
};

GC_PY_WEAKLIST_MEMBERS(Semaphore_members, py_semaphore);

PyDoc_STRVAR(
    Semaphore__doc__,
    "Semaphore(n)\n"
    "--\n"
    "\n"
    "A weighted semaphore of n tokens (Go's golang.org/x/sync/semaphore).\n"
    "\n"
    "acquire(k) takes k tokens and release(k) gives them back.  Waiters are\n"
    "served strictly first come, first served: a large request at the head\n"
    "of the queue is not overtaken by smaller ones behind it.\n"
    "\n"
    "    sem = gochan.Semaphore(4)     # at most 4 downloads at once\n"
    "    with sem:\n"
    "        download(url)");

static PyType_Slot Semaphore_slots[] = {
    {Py_tp_doc, (void *)Semaphore__doc__},
    {Py_tp_new, Semaphore_new},
    {Py_tp_dealloc, Semaphore_dealloc},
    {Py_tp_repr, Semaphore_repr},
    {Py_tp_methods, Semaphore_methods},
    {Py_tp_members, Semaphore_members},
    {0, NULL},
};

static PyType_Spec Semaphore_spec = {
    .name = "gochan.Semaphore",
    .basicsize = sizeof(py_semaphore),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Semaphore_slots,
};

/* --- WaitGroup ----------------------------------------------------------- */

#define WG(self) (&((gc_py_waitgroup *)(self))->wg)

static gc_status
wg_wait_call(void *prim, int64_t n, int64_t deadline, gc_chan *cancel,
             const gc_unlock *u)
{
    return gc_wg_wait(prim, deadline, cancel, u);
}

static PyObject *
wg_add(PyObject *self, int64_t delta)
{
    gc_sync_err err = gc_wg_add(WG(self), delta);
    if (err == GC_SYNC_NEGATIVE) {
        PyErr_SetString(PyExc_ValueError,
                        "negative WaitGroup counter: done() or add(-n) "
                        "took away more than add() had counted");
        return NULL;
    }
    if (err != GC_SYNC_OK) {
        PyErr_SetString(PyExc_OverflowError, "WaitGroup counter overflow");
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(
    waitgroup_add__doc__,
    "add($self, /, n=1)\n"
    "--\n"
    "\n"
    "Add n (which may be negative) to the counter.  Raises ValueError,\n"
    "leaving the counter as it was, if it would go below zero.  Call\n"
    "it before starting what it counts, not inside it.\n"
    "\n"
    "    wg.add(len(urls))\n"
    "    for url in urls:\n"
    "        gochan.go(fetch, url, wg)");

static PyObject *
waitgroup_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames)
{
    int64_t n;
    if (parse_n_and_wait(self, "add", args, nargs, kwnames, &n, NULL) < 0) {
        return NULL;
    }
    return wg_add(self, n);
}

PyDoc_STRVAR(waitgroup_done__doc__, "done($self, /)\n"
                                    "--\n"
                                    "\n"
                                    "Take one from the counter: add(-1).\n"
                                    "\n"
                                    "    def fetch(url, wg):\n"
                                    "        try:\n"
                                    "            download(url)\n"
                                    "        finally:\n"
                                    "            wg.done()");

static PyObject *
waitgroup_done(PyObject *self, PyObject *unused)
{
    return wg_add(self, -1);
}

PyDoc_STRVAR(waitgroup_wait__doc__,
             "wait($self, /, *, timeout=None, ctx=None)\n"
             "--\n"
             "\n"
             "Wait until the counter is zero.\n"
             "\n"
             "Returns True then, False if timeout (seconds) expired first;\n"
             "raises ctx.err() if ctx is cancelled first.\n"
             "\n"
             "    if not wg.wait(timeout=30):\n"
             "        print('still running')");

static PyObject *
waitgroup_wait(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    gc_py_wait w;
    if (gc_py_sync_begin(self, "wait", args, nargs, kwnames, &w) < 0) {
        return NULL;
    }
    /* acquire: what the goroutines did before done() is visible here. */
    if (atomic_load_explicit(&WG(self)->count, memory_order_acquire) == 0) {
        Py_RETURN_TRUE;
    }
    return wait_slow(self, wg_wait_call, WG(self), 0, &w);
}

PyDoc_STRVAR(
    waitgroup_go__doc__,
    "go($self, fn, /, *args, **kwargs)\n"
    "--\n"
    "\n"
    "Run fn(*args, **kwargs) in a new goroutine counted by this WaitGroup:\n"
    "add(1) now, done() when fn returns or raises.  Returns the Goroutine\n"
    "(an exception nobody joins is reported, as for gochan.go).\n"
    "\n"
    "    wg = gochan.WaitGroup()\n"
    "    for url in urls:\n"
    "        wg.go(download, url)\n"
    "    wg.wait()");

static PyObject *
waitgroup_go(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    if (gc_wg_add(WG(self), 1) != GC_SYNC_OK) {
        PyErr_SetString(PyExc_OverflowError, "WaitGroup counter overflow");
        return NULL;
    }
    PyObject *g = gc_py_go(gc_py_state_of(Py_TYPE(self)), "WaitGroup.go", args,
                           nargs, kwnames, self);
    if (g == NULL) {
        (void)gc_wg_add(WG(self), -1);
    }
    return g;
}

static PyObject *
WaitGroup_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<%s count=%lld>", Py_TYPE(self)->tp_name,
                                (long long)gc_wg_count(WG(self)));
}

static PyObject *
WaitGroup_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (no_arguments("WaitGroup", args, kwds) < 0) {
        return NULL;
    }
    gc_py_waitgroup *self = (gc_py_waitgroup *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    if (gc_wg_init(&self->wg, 0) != 0) {
        gc_py_free((PyObject *)self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void
WaitGroup_dealloc(PyObject *self)
{
    gc_py_clear_weakrefs(self, ((gc_py_waitgroup *)self)->weakreflist);
    gc_wg_destroy(WG(self));
    gc_py_free(self);
}

static PyMethodDef WaitGroup_methods[] = {
    {"add", FUNC(waitgroup_add), FASTCALL_KW, waitgroup_add__doc__},
    {"done", waitgroup_done, METH_NOARGS, waitgroup_done__doc__},
    {"wait", FUNC(waitgroup_wait), FASTCALL_KW, waitgroup_wait__doc__},
    {"go", FUNC(waitgroup_go), FASTCALL_KW, waitgroup_go__doc__},
    {"__reduce__", sync_reduce, METH_NOARGS, sync_reduce__doc__},
    {NULL, NULL, 0, NULL},
};

GC_PY_WEAKLIST_MEMBERS(WaitGroup_members, gc_py_waitgroup);

PyDoc_STRVAR(
    WaitGroup__doc__,
    "WaitGroup()\n"
    "--\n"
    "\n"
    "Go's sync.WaitGroup: wait for a collection of goroutines to finish.\n"
    "\n"
    "add(n) raises the counter before starting work, done() lowers it when\n"
    "a piece of work ends, wait() blocks until it is zero; go(fn, ...) does\n"
    "all three for one goroutine.\n"
    "\n"
    "    wg = gochan.WaitGroup()\n"
    "    for url in urls:\n"
    "        wg.go(download, url)\n"
    "    wg.wait()");

static PyType_Slot WaitGroup_slots[] = {
    {Py_tp_doc, (void *)WaitGroup__doc__},
    {Py_tp_new, WaitGroup_new},
    {Py_tp_dealloc, WaitGroup_dealloc},
    {Py_tp_repr, WaitGroup_repr},
    {Py_tp_methods, WaitGroup_methods},
    {Py_tp_members, WaitGroup_members},
    {0, NULL},
};

static PyType_Spec WaitGroup_spec = {
    .name = "gochan.WaitGroup",
    .basicsize = sizeof(gc_py_waitgroup),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = WaitGroup_slots,
};

/* --- module init --------------------------------------------------------- */

int
gc_py_sync_init(PyObject *m, gc_py_state *st)
{
    if (gc_py_add_type(m, &Mutex_spec, &st->Mutex_Type) < 0 ||
        gc_py_add_type(m, &RWMutex_spec, &st->RWMutex_Type) < 0 ||
        gc_py_add_type(m, &RWMutexGuard_spec, &st->RWMutexGuard_Type) < 0 ||
        gc_py_add_type(m, &Semaphore_spec, &st->Semaphore_Type) < 0 ||
        gc_py_add_type(m, &WaitGroup_spec, &st->WaitGroup_Type) < 0) {
        return -1;
    }
    return gc_py_goroutine_init(m, st);
}
