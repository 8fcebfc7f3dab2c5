/* goroutine.c - gochan.go, gochan.Goroutine, and the pool of threads that
 * run goroutines.
 *
 * go() hands the new Goroutine to an idle worker thread when there is one:
 * idle workers wait on a gc_idle (csrc/core/gc_sync.h), which gives work
 * to the worker that went idle last.  When none waits, go() asks the
 * Python layer (st->go_start, gochan/_goroutines.py) to start a new daemon
 * thread with it.  A worker runs its goroutine, then the pending ones (see
 * below), then waits for the next; after idle_ns without work it ends.  So
 * threads are started on demand, kept while busy and retired once idle
 * (last in, first out: a trickle of work keeps one thread warm and lets
 * the others retire), and go() costs a hand-off, not a thread start.
 * Workers are daemon threads: the process exits when its main thread ends,
 * whatever goroutines are still blocked.
 *
 * Bursts.  A loop that calls go() while holding the GIL finds no idle
 * worker each time: the workers it handed goroutines to, and the threads
 * it started, cannot run before it lets the GIL go.  Starting a thread per
 * go() then would start thousands.  So the pool counts the threads that
 * are "waking": given a goroutine (a new thread, or an idle worker it was
 * handed to) and not yet begun it.  Past WAKING_MAX of them, go() queues
 * the goroutine in `pending` (FIFO) rather than start a thread.  A waking
 * thread, before it runs its goroutine, starts one more thread for the
 * oldest pending goroutine (a chain), and a worker that finishes a
 * goroutine takes the oldest pending one before going idle.  So short
 * goroutines drain the queue on a few threads, while goroutines that
 * block still each get a thread of their own, one chain link at a time: a
 * pending goroutine never waits for a running one to finish.  A thread
 * that cannot be started for a pending goroutine (RuntimeError "can't
 * start new thread", interpreter shutting down, MemoryError) finishes
 * that goroutine with the exception: join() raises it and, if nobody
 * joins, it is reported like any other (pool_chain).
 *
 * Invariants:
 *   - pending non-empty => waking >= 1 (whenever the GIL is held): only a
 *     go() that sees waking == WAKING_MAX queues, and a waking thread
 *     that finds goroutines pending keeps its place until it hands it to
 *     a thread it started for one (or pending is empty).  So every pending
 *     goroutine reaches a thread even if every running goroutine blocks
 *     for ever;
 *   - pending and waking belong to the go_pool of one fork generation
 *     (idle_pool): a child gets an empty one, and the goroutines that were
 *     pending are finished like those of lost threads (after_fork_in_child);
 *   - a pending goroutine is in st->go_running like a running one (it
 *     exists from go() until it finishes), with ident 0;
 *   - a goroutine is in st->go_running from go() until it finishes: that
 *     set is what num_goroutines() counts and what gochan.testing lists;
 *   - `finished` (a core WaitGroup at 1) drops to 0 once, after the result
 *     or the exception is stored, with the GIL held; join() reads them only
 *     after seeing 0;
 *   - fn, args and kwargs are dropped as soon as fn returns: a finished
 *     goroutine keeps only its result (or exception);
 *   - an exception is reported once (tp_finalize), unless join() raised it
 *     first: `retrieved` is set by whichever comes first;
 *   - done_view is made at most once and closed by whichever of done()
 *     and the finishing worker comes second: both hold the GIL and call no
 *     Python code between their check and their store (this relies on
 *     the GIL, which the module declares it uses);
 *   - after fork(), nothing touches a wait queue that threads of the
 *     parent waited on: their entries live on stacks that the child's new
 *     threads may reuse.  A child makes its own go_idle (idle_pool), and
 *     the goroutines lost with their threads are finished without walking
 *     their queues (after_fork_in_child).
 */
#include "sync.h"

/* How long a worker waits for a new goroutine before its thread ends. */
#define GO_IDLE_NS_DEFAULT ((int64_t)5000000000)

/* relaxed: a setting; a worker that reads an old value only retires at
 * the old pace once. */
static _Atomic int64_t idle_ns = GO_IDLE_NS_DEFAULT;

typedef struct {
    PyObject ob_base;
    PyObject *fn;        /* what to run; NULL once it returned */
    PyObject *args;      /* its positional arguments (a tuple) */
    PyObject *kwargs;    /* its keyword arguments (a dict), or NULL */
    PyObject *result;    /* fn's return value, once finished */
    PyObject *exc;       /* the exception fn raised, once finished */
    PyObject *name;      /* fn's name, kept when it raised (reports) */
    PyObject *wg;        /* WaitGroup to lower when finished, or NULL */
    PyObject *done_view; /* RecvChan closed when finished (from done()) */
    PyObject *weakreflist;
    unsigned long ident; /* thread running it now; 0 if none */
    int retrieved;       /* exc raised by join() or reported already */
    int ready;           /* `finished` was initialised */
    gc_wg finished;      /* 1 until finished, then 0 */
} py_goroutine;

/* How many threads may be waking at once.  More than one so that a burst
 * of goroutines that block gets its threads started by a few chains in
 * parallel rather than one link after another (each link costs a thread
 * start plus a GIL hand-over); few, so that a burst of short ones starts
 * few threads: each waking thread adds at most one, and the running ones
 * drain the queue meanwhile. */
#define WAKING_MAX 4

/* Where idle workers wait, and the threads and goroutines in between: one
 * per fork generation, in a capsule; pending and waking are guarded by
 * the GIL. */
typedef struct {
    gc_idle idle;
    Py_ssize_t waking;  /* threads given a goroutine not begun yet */
    PyObject **pending; /* ring of goroutines waiting for a thread */
    Py_ssize_t head;    /* index of the oldest */
    Py_ssize_t len;     /* how many */
    Py_ssize_t cap;     /* size of the ring */
} go_pool;

#define GOROUTINE(o) ((py_goroutine *)(o))
#define CH(o)        (((gc_py_chanbase *)(o))->ch)
#define IDLE_CAPSULE "gochan._core.idle"
#define POOL(o)      ((go_pool *)PyCapsule_GetPointer((o), IDLE_CAPSULE))
#define IDLE(o)      (&POOL(o)->idle)

static int
is_finished(py_goroutine *g)
{
    /* acquire: pairs with the seq_cst add of goroutine_finish, so result
     * and exc are visible. */
    return atomic_load_explicit(&g->finished.count, memory_order_acquire) == 0;
}

/* fn's __qualname__, else its repr: a new reference, never NULL unless
 * out of memory. */
static PyObject *
fn_name(PyObject *fn)
{
    PyObject *name = PyObject_GetAttrString(fn, "__qualname__");
    if (name != NULL && PyUnicode_Check(name)) {
        return name;
    }
    Py_XDECREF(name);
    PyErr_Clear();
    name = PyObject_Repr(fn);
    if (name == NULL) {
        PyErr_Clear();
        name = PyUnicode_FromString(Py_TYPE(fn)->tp_name);
    }
    return name;
}

/* The exception being raised, taken out of the thread state (normalized,
 * with its traceback attached): a new reference. */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

static void
restore_exception(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL) {
        return;
    }
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc,
                  PyException_GetTraceback(exc));
#endif
}

/* --- running one goroutine ----------------------------------------------- */

static void
idle_free(PyObject *capsule)
{
    go_pool *p = POOL(capsule);
    /* Only a child after fork() or a module torn down drops a pool that
     * has pending goroutines: they were finished (after_fork_in_child) or
     * are never run; drop our references. */
    for (Py_ssize_t i = 0; i < p->len; i++) {
        Py_DECREF(p->pending[(p->head + i) % p->cap]);
    }
    PyMem_Free(p->pending);
    gc_idle_destroy(&p->idle);
    PyMem_RawFree(p);
}

/* Queue g (a reference taken over) at the end of pending: -1 if out of
 * memory (g is then still the caller's). */
static int
pool_push(go_pool *p, PyObject *g)
{
    if (p->len == p->cap) {
        Py_ssize_t cap = p->cap != 0 ? 2 * p->cap : 64;
        PyObject **ring = PyMem_New(PyObject *, cap);
        if (ring == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < p->len; i++) {
            ring[i] = p->pending[(p->head + i) % p->cap];
        }
        PyMem_Free(p->pending);
        p->pending = ring;
        p->head = 0;
        p->cap = cap;
    }
    p->pending[(p->head + p->len) % p->cap] = g;
    p->len++;
    return 0;
}

/* The oldest pending goroutine (a reference handed over), or NULL. */
static PyObject *
pool_pop(go_pool *p)
{
    if (p->len == 0) {
        return NULL;
    }
    PyObject *g = p->pending[p->head];
    p->head = (p->head + 1) % p->cap;
    p->len--;
    return g;
}

/* Where idle workers wait: a capsule holding a gc_idle (borrowed), made
 * anew in a child process after fork(): the old one's queue holds entries
 * of threads that the child does not have. */
static PyObject *
idle_pool(gc_py_state *st)
{
    unsigned long generation = gc_fork_generation();
    if (st->go_idle != NULL &&
        PyLong_AsUnsignedLong(st->go_idle_gen) == generation) {
        return st->go_idle;
    }
    go_pool *p = PyMem_RawCalloc(1, sizeof(go_pool));
    if (p == NULL || gc_idle_init(&p->idle) != 0) {
        PyMem_RawFree(p);
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(p, IDLE_CAPSULE, idle_free);
    if (capsule == NULL) {
        gc_idle_destroy(&p->idle);
        PyMem_RawFree(p);
        return NULL;
    }
    PyObject *gen = PyLong_FromUnsignedLong(generation);
    if (gen == NULL) {
        Py_DECREF(capsule);
        return NULL;
    }
    Py_XSETREF(st->go_idle, capsule);
    Py_XSETREF(st->go_idle_gen, gen);
    return capsule;
}

static void
goroutine_finish(gc_py_state *st, py_goroutine *g)
{
    g->ident = 0;
    if (PySet_Discard(st->go_running, (PyObject *)g) < 0) {
        PyErr_WriteUnraisable((PyObject *)g);
    }
    (void)gc_wg_add(&g->finished, -1); /* wakes the joiners */
    if (g->done_view != NULL) {
        (void)gc_chan_close(CH(g->done_view));
    }
    if (g->wg != NULL) {
        PyObject *wg = g->wg;
        g->wg = NULL;
        if (gc_wg_add(&((gc_py_waitgroup *)wg)->wg, -1) != GC_SYNC_OK) {
            /* Someone called done() once too often. */
            PyErr_SetString(PyExc_ValueError,
                            "negative WaitGroup counter: done() was called "
                            "for a goroutine that WaitGroup.go() counted");
            PyErr_WriteUnraisable(wg);
        }
        Py_DECREF(wg);
    }
}

static void
goroutine_run(gc_py_state *st, py_goroutine *g)
{
    g->ident = PyThread_get_thread_ident();
    PyObject *fn = g->fn, *args = g->args, *kwargs = g->kwargs;
    PyObject *result = PyObject_Call(fn, args, kwargs);
    if (result == NULL) {
        g->exc = take_exception();
        g->name = fn_name(fn);
    }
    else {
        g->result = result;
    }
    g->fn = g->args = g->kwargs = NULL;
    Py_DECREF(fn);
    Py_DECREF(args);
    Py_XDECREF(kwargs);
    goroutine_finish(st, g);
}

/* Whether the interpreter has begun to exit: CPython 3.12 and newer then
 * refuse new threads (threading._SHUTTING_DOWN is set before the atexit
 * handlers run; sys.is_finalizing() only after).  Keeps any exception
 * being raised. */
static int
shutting_down(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    if (Py_IsFinalizing()) {
        return 1;
    }
#else
    if (_Py_IsFinalizing()) {
        return 1;
    }
#endif
    PyObject *exc = take_exception();
    int down = 0;
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *threading = name != NULL ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    if (threading != NULL) {
        PyObject *flag = PyObject_GetAttrString(threading, "_SHUTTING_DOWN");
        down = flag != NULL && PyObject_IsTrue(flag) == 1;
        Py_XDECREF(flag);
        Py_DECREF(threading);
    }
    PyErr_Clear(); /* a missing flag means an older CPython: not exiting */
    restore_exception(exc);
    return down;
}

/* Finish g, which never ran, with the exception being raised (its thread
 * could not be started): as if fn had raised it, so join() raises it and,
 * if nobody joins, it is reported once. */
static void
goroutine_fail(gc_py_state *st, py_goroutine *g)
{
    PyObject *exc = take_exception();
    if (shutting_down()) {
        /* As in Go once main returns, a goroutine that could not start
         * then never runs: join() still raises why, but nothing is
         * reported on the way out. */
        g->retrieved = 1;
    }
    PyObject *fn = g->fn, *args = g->args, *kwargs = g->kwargs;
    g->fn = g->args = g->kwargs = NULL;
    g->exc = exc;
    g->name = fn_name(fn);
    Py_DECREF(fn);
    Py_DECREF(args);
    Py_XDECREF(kwargs);
    goroutine_finish(st, g);
}

/* Start a worker thread for the goroutine in box (a one-item list): 0 if
 * it started, -1 with an exception if not.  The caller counts the new
 * thread as waking (and uncounts it on failure).  Whoever empties the box
 * owns its goroutine: on failure it is taken back out of the box, so that
 * a thread that did start after all (an exception raised while
 * Thread.start() waited for it) finds it empty and just ends. */
static int
launch(gc_py_state *st, PyObject *box)
{
    PyObject *r = PyObject_CallOneArg(st->go_start, box);
    if (r != NULL) {
        Py_DECREF(r);
        return 0;
    }
    if (PyList_GET_SIZE(box) == 0) {
        /* The thread started and took its goroutine; only Thread.start()'s
         * wait for it was interrupted (Ctrl-C in the main thread).  The
         * goroutine runs, so go() succeeded: raise the interrupt again
         * at the next check rather than losing it. */
        if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
            PyErr_Clear();
            PyErr_SetInterrupt();
        }
        else {
            PyErr_WriteUnraisable(st->go_start);
        }
        return 0;
    }
    PyObject *exc = take_exception();
    if (PyList_SetSlice(box, 0, 1, NULL) < 0) {
        PyErr_Clear(); /* cannot fail when shrinking a list */
    }
    restore_exception(exc);
    return -1;
}

/* Run by a thread that has just been given a goroutine, so is still
 * counted as waking, before it begins it: if goroutines are pending, start
 * a thread for the oldest (handing it our place among the waking threads,
 * so waking never drops to 0 while one is pending); one whose thread cannot be
 * started is finished with the error, and the next one is tried. */
static void
pool_chain(gc_py_state *st, PyObject *pool)
{
    go_pool *p = POOL(pool);
    Py_INCREF(pool); /* across the GIL releases of launch() */
    int counted = 1;
    while (p->len > 0) {
        /* Before the pop: PyList_New may run the collector, and so any
         * Python code, which must find the pending goroutine queued. */
        PyObject *box = PyList_New(1);
        PyObject *g = pool_pop(p);
        if (g == NULL) {
            Py_XDECREF(box); /* drained meanwhile */
            PyErr_Clear();
            break;
        }
        if (box != NULL) {
            PyList_SET_ITEM(box, 0, Py_NewRef(g));
            int r = launch(st, box);
            Py_DECREF(box);
            if (r == 0) {
                counted = 0; /* our place went to the new thread */
                Py_DECREF(g);
                break;
            }
        }
        goroutine_fail(st, GOROUTINE(g));
        Py_DECREF(g); /* may report the failure at once */
    }
    if (counted) {
        p->waking--;
    }
    Py_DECREF(pool);
}

PyDoc_STRVAR(
    worker__doc__,
    "_worker($module, box, /)\n"
    "--\n"
    "\n"
    "The body of a worker thread: run the goroutine in box (a list\n"
    "holding one, emptied at once: the thread object keeps its\n"
    "arguments for as long as it runs), then the pending ones and the\n"
    "ones go() hands over, until none comes for a while.  An empty box\n"
    "means that go() gave up on this thread: it ends at once.");

static PyObject *
go_worker(PyObject *module, PyObject *box)
{
    gc_py_state *st = PyModule_GetState(module);
    if (!PyList_CheckExact(box) || PyList_GET_SIZE(box) > 1 ||
        (PyList_GET_SIZE(box) == 1 &&
         !PyObject_TypeCheck(PyList_GET_ITEM(box, 0), st->Goroutine_Type))) {
        PyErr_SetString(PyExc_TypeError,
                        "_worker() takes a list holding one Goroutine");
        return NULL;
    }
    if (PyList_GET_SIZE(box) == 0) {
        Py_RETURN_NONE; /* see launch() */
    }
    PyObject *g = Py_NewRef(PyList_GET_ITEM(box, 0));
    if (PyList_SetSlice(box, 0, 1, NULL) < 0) {
        Py_DECREF(g);
        return NULL;
    }
    /* Held across waits: a module torn down meanwhile must not free its
     * state. */
    Py_INCREF(module);
    PyObject *pool = idle_pool(st);
    if (pool != NULL) {
        pool_chain(st, pool);
    }
    else {
        PyErr_Clear(); /* out of memory: run g all the same */
    }
    const gc_unlock *unlock = gc_py_gil();
    PyObject *ret = Py_None;
    for (;;) {
        goroutine_run(st, GOROUTINE(g));
        Py_DECREF(g); /* may report an exception nobody will retrieve */
        PyObject *idle = Py_XNewRef(idle_pool(st));
        if (idle == NULL) {
            ret = NULL;
            break;
        }
        /* The oldest pending goroutine first: short goroutines drain the
         * queue of a burst on the threads already running. */
        g = pool_pop(POOL(idle));
        if (g != NULL) {
            Py_DECREF(idle);
            continue;
        }
        int64_t deadline = gc_deadline_after(
            atomic_load_explicit(&idle_ns, memory_order_relaxed));
        void *item;
        gc_status status;
        do {
            status = gc_idle_wait(IDLE(idle), &item, deadline, unlock);
        } while (status == GC_INTR && PyErr_CheckSignals() == 0);
        if (status != GC_OK) {
            Py_DECREF(idle);
            if (status == GC_INTR) {
                ret = NULL; /* a signal handler raised (main thread only) */
            }
            break;
        }
        g = item; /* the reference go() sent */
        st = PyModule_GetState(module);
        pool_chain(st, idle);
        Py_DECREF(idle);
    }
    Py_DECREF(module);
    return Py_XNewRef(ret);
}

/* Make sure the Python layer has given us its hooks. */
static int
load_hooks(gc_py_state *st)
{
    if (st->go_start != NULL) {
        return 0;
    }
    PyObject *mod = PyImport_ImportModule("gochan._goroutines");
    Py_XDECREF(mod);
    if (mod == NULL) {
        return -1;
    }
    if (st->go_start == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "gochan._goroutines did not install its hooks");
        return -1;
    }
    return 0;
}

/* Start g on a worker: an idle one, else a new thread if fewer than
 * WAKING_MAX are waking, else queue it (pending). */
static int
dispatch(gc_py_state *st, py_goroutine *g)
{
    PyObject *idle = idle_pool(st);
    if (idle == NULL) {
        return -1;
    }
    Py_INCREF(g); /* the worker's reference */
    go_pool *p = POOL(idle);
    if (gc_idle_hand(IDLE(idle), g)) {
        p->waking++; /* until the worker has the GIL again (pool_chain) */
        return 0;
    }
    if (p->waking >= WAKING_MAX) {
        if (pool_push(p, (PyObject *)g) < 0) {
            Py_DECREF(g);
            return -1;
        }
        return 0;
    }
    PyObject *box = PyList_New(1);
    if (box == NULL) {
        Py_DECREF(g);
        return -1;
    }
    PyList_SET_ITEM(box, 0, (PyObject *)g);
    Py_INCREF(idle); /* across the GIL release of launch() */
    p->waking++;
    int r = launch(st, box);
    if (r < 0) {
        p->waking--;
    }
    Py_DECREF(idle);
    Py_DECREF(box);
    return r;
}

PyObject *
gc_py_go(gc_py_state *st, const char *fname, PyObject *const *args,
         Py_ssize_t nargs, PyObject *kwnames, PyObject *wg)
{
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument 'fn'",
                     fname);
        return NULL;
    }
    PyObject *fn = args[0];
    if (!PyCallable_Check(fn)) {
        gc_py_bad_type(fn, "%s() needs a callable to run", fname);
        return NULL;
    }
    if (load_hooks(st) < 0) {
        return NULL;
    }
    PyTypeObject *tp = st->Goroutine_Type;
    py_goroutine *g = (py_goroutine *)tp->tp_alloc(tp, 0);
    if (g == NULL) {
        return NULL;
    }
    if (gc_wg_init(&g->finished, 1) != 0) {
        Py_DECREF(g);
        return PyErr_NoMemory();
    }
    g->ready = 1;
    g->fn = Py_NewRef(fn);
    g->args = PyTuple_New(nargs - 1);
    if (g->args == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 1; i < nargs; i++) {
        PyTuple_SET_ITEM(g->args, i - 1, Py_NewRef(args[i]));
    }
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nkw > 0) {
        g->kwargs = PyDict_New();
        if (g->kwargs == NULL) {
            goto fail;
        }
        for (Py_ssize_t i = 0; i < nkw; i++) {
            if (PyDict_SetItem(g->kwargs, PyTuple_GET_ITEM(kwnames, i),
                               args[nargs + i]) < 0) {
                goto fail;
            }
        }
    }
    if (PySet_Add(st->go_running, (PyObject *)g) < 0) {
        goto fail;
    }
    g->wg = Py_XNewRef(wg);
    if (dispatch(st, g) < 0) {
        PyObject *exc = take_exception();
        (void)PySet_Discard(st->go_running, (PyObject *)g);
        PyErr_Clear();
        restore_exception(exc);
        Py_CLEAR(g->wg); /* the caller lowers it */
        goto fail;
    }
    return (PyObject *)g;

fail:
    Py_DECREF(g);
    return NULL;
}

/* --- Goroutine ----------------------------------------------------------- */

static gc_status
finished_wait_call(void *prim, int64_t n, int64_t deadline, gc_chan *cancel,
                   const gc_unlock *u)
{
    return gc_wg_wait(prim, deadline, cancel, u);
}

PyDoc_STRVAR(
    goroutine_join__doc__,
    "join($self, /, *, timeout=None, ctx=None)\n"
    "--\n"
    "\n"
    "Wait until the goroutine's function has returned and return its value;\n"
    "if it raised, raise that exception (every time join() is called).\n"
    "\n"
    "Raises TimeoutError if timeout (seconds) expires first and ctx.err() if\n"
    "ctx is cancelled first; the goroutine itself runs on.\n"
    "\n"
    "    g = gochan.go(sum, [1, 2, 3])\n"
    "    assert g.join(timeout=5) == 6");

static PyObject *
goroutine_join(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    py_goroutine *g = GOROUTINE(self);
    gc_py_wait w;
    if (gc_py_sync_begin(self, "join", args, nargs, kwnames, &w) < 0) {
        return NULL;
    }
    if (!is_finished(g)) {
        if (g->ident == PyThread_get_thread_ident()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "a goroutine cannot join itself: it would wait "
                            "for ever");
            return NULL;
        }
        gc_status status =
            w.timeout_ns == 0
                ? GC_TIMEOUT
                : gc_py_sync_wait(finished_wait_call, &g->finished, 0, &w);
        switch (status) {
        case GC_OK:
            break;
        case GC_TIMEOUT:
            PyErr_SetString(PyExc_TimeoutError, "join timed out");
            return NULL;
        case GC_CANCELLED:
            return gc_py_ctx_raise(gc_py_state_of(Py_TYPE(self)), w.ctx);
        default:
            assert(PyErr_Occurred());
            return NULL;
        }
    }
    if (g->exc != NULL) {
        g->retrieved = 1;
        PyErr_SetObject((PyObject *)Py_TYPE(g->exc), g->exc);
        return NULL;
    }
    return Py_NewRef(g->result ? g->result : Py_None);
}

PyDoc_STRVAR(
    goroutine_done__doc__,
    "done($self, /)\n"
    "--\n"
    "\n"
    "A RecvChan that is closed once the goroutine's function has\n"
    "returned or raised (the same object on every call), for select.\n"
    "\n"
    "    g = gochan.go(work)\n"
    "    gochan.select(gochan.Recv(g.done()), gochan.Recv(quit))");

static PyObject *
goroutine_done(PyObject *self, PyObject *unused)
{
    py_goroutine *g = GOROUTINE(self);
    if (g->done_view == NULL) {
        gc_py_state *st = gc_py_state_of(Py_TYPE(self));
        PyObject *chan = PyObject_CallNoArgs((PyObject *)st->Chan_Type);
        if (chan == NULL) {
            return NULL;
        }
        PyObject *view = gc_py_view_new(st->RecvChan_Type, chan);
        Py_DECREF(chan);
        if (view == NULL) {
            return NULL;
        }
        if (g->done_view == NULL) {
            g->done_view = view;
        }
        else {
            Py_DECREF(view); /* another thread made one meanwhile */
        }
    }
    if (is_finished(g)) {
        (void)gc_chan_close(CH(g->done_view));
    }
    return Py_NewRef(g->done_view);
}

PyDoc_STRVAR(goroutine_ident__doc__,
             "The identifier of the thread running the goroutine now (as\n"
             "threading.get_ident() gives it), or 0: for gochan.testing.");

static PyObject *
goroutine_get_ident(PyObject *self, void *closure)
{
    return PyLong_FromUnsignedLong(GOROUTINE(self)->ident);
}

PyDoc_STRVAR(goroutine_name__doc__,
             "The name of the goroutine's function while it runs (and after\n"
             "it raised), else None: for gochan.testing.");

static PyObject *
goroutine_get_name(PyObject *self, void *closure)
{
    py_goroutine *g = GOROUTINE(self);
    if (g->name != NULL) {
        return Py_NewRef(g->name);
    }
    if (g->fn != NULL) {
        PyObject *fn = Py_NewRef(g->fn);
        PyObject *name = fn_name(fn);
        Py_DECREF(fn);
        return name;
    }
    Py_RETURN_NONE;
}

static PyObject *
Goroutine_repr(PyObject *self)
{
    py_goroutine *g = GOROUTINE(self);
    if (is_finished(g)) {
        if (g->exc != NULL) {
            return PyUnicode_FromFormat(
                "<%s %U raised %R>", Py_TYPE(self)->tp_name, g->name, g->exc);
        }
        return PyUnicode_FromFormat("<%s finished>", Py_TYPE(self)->tp_name);
    }
    PyObject *name = goroutine_get_name(self, NULL);
    if (name == NULL) {
        return NULL;
    }
    PyObject *repr =
        PyUnicode_FromFormat("<%s %S %s>", Py_TYPE(self)->tp_name, name,
                             g->ident != 0 ? "running" : "starting");
    Py_DECREF(name);
    return repr;
}

/* An exception nobody retrieved with join(): reported once, when the last
 * reference to the goroutine goes (at once if nobody holds one when it
 * finishes), through the hook of gochan/_goroutines.py, which calls
 * threading.excepthook; without the hook (interpreter shutdown), as an
 * unraisable exception. */
static void
Goroutine_finalize(PyObject *self)
{
    py_goroutine *g = GOROUTINE(self);
    if (g->exc == NULL || g->retrieved) {
        return;
    }
    g->retrieved = 1;
    PyObject *saved = take_exception();
    gc_py_state *st = gc_py_state_of(Py_TYPE(self));
    PyObject *hook = st != NULL ? Py_XNewRef(st->go_report) : NULL;
    int reported = 0;
    if (hook != NULL) {
        PyObject *r = PyObject_CallFunctionObjArgs(
            hook, g->name != NULL ? g->name : Py_None, g->exc, NULL);
        if (r != NULL) {
            reported = 1;
            Py_DECREF(r);
        }
        else {
            PyErr_WriteUnraisable(hook);
        }
        Py_DECREF(hook);
    }
    if (!reported) {
        PyErr_SetObject((PyObject *)Py_TYPE(g->exc), g->exc);
        PyErr_WriteUnraisable(self);
    }
    restore_exception(saved);
}

static int
Goroutine_traverse(PyObject *self, visitproc visit, void *arg)
{
    py_goroutine *g = GOROUTINE(self);
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(g->fn);
    Py_VISIT(g->args);
    Py_VISIT(g->kwargs);
    Py_VISIT(g->result);
    Py_VISIT(g->exc);
    Py_VISIT(g->name);
    Py_VISIT(g->wg);
    Py_VISIT(g->done_view);
    return 0;
}

/* Only ever called on a goroutine nobody can reach, so never on one that
 * runs: its worker holds a reference the collector cannot see. */
static int
Goroutine_clear(PyObject *self)
{
    py_goroutine *g = GOROUTINE(self);
    Py_CLEAR(g->fn);
    Py_CLEAR(g->args);
    Py_CLEAR(g->kwargs);
    Py_CLEAR(g->result);
    Py_CLEAR(g->exc);
    Py_CLEAR(g->name);
    Py_CLEAR(g->wg);
    Py_CLEAR(g->done_view);
    return 0;
}

static void
Goroutine_dealloc(PyObject *self)
{
    if (PyObject_CallFinalizerFromDealloc(self) < 0) {
        return; /* the report resurrected it */
    }
    py_goroutine *g = GOROUTINE(self);
    PyObject_GC_UnTrack(self);
    gc_py_clear_weakrefs(self, g->weakreflist);
    Goroutine_clear(self);
    if (g->ready) {
        gc_wg_destroy(&g->finished);
    }
    gc_py_free(self);
}

PyDoc_STRVAR(goroutine_reduce__doc__,
             "__reduce__($self, /)\n"
             "--\n"
             "\n"
             "Goroutines cannot be pickled: raises TypeError.");

static PyObject *
goroutine_reduce(PyObject *self, PyObject *unused)
{
    return gc_py_cannot_pickle(self, "it belongs to one process");
}

PyDoc_STRVAR(goroutine_class_getitem__doc__,
             "__class_getitem__($cls, item, /)\n"
             "--\n"
             "\n"
             "The generic alias for type hints: Goroutine[int].");

static PyMethodDef Goroutine_methods[] = {
    {"join", FUNC(goroutine_join), FASTCALL_KW, goroutine_join__doc__},
    {"done", goroutine_done, METH_NOARGS, goroutine_done__doc__},
    {"__reduce__", goroutine_reduce, METH_NOARGS, goroutine_reduce__doc__},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS,
     goroutine_class_getitem__doc__},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Goroutine_getset[] = {
    {"_ident", goroutine_get_ident, NULL, goroutine_ident__doc__, NULL},
    {"_name", goroutine_get_name, NULL, goroutine_name__doc__, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

GC_PY_WEAKLIST_MEMBERS(Goroutine_members, py_goroutine);

PyDoc_STRVAR(
    Goroutine__doc__,
    "A function running in a goroutine, as gochan.go() returns it.\n"
    "\n"
    "join() waits for its result (or re-raises its exception), done() is a\n"
    "channel closed when it ends.  An exception that join() never raises is\n"
    "reported through threading.excepthook when the Goroutine is dropped\n"
    "(at once if nobody keeps it), so it is never lost silently.\n"
    "\n"
    "    g = gochan.go(pow, 2, 10)\n"
    "    assert g.join() == 1024");

static PyType_Slot Goroutine_slots[] = {
    {Py_tp_doc, (void *)Goroutine__doc__},
    {Py_tp_dealloc, Goroutine_dealloc},
    {Py_tp_finalize, Goroutine_finalize},
    {Py_tp_traverse, Goroutine_traverse},
    {Py_tp_clear, Goroutine_clear},
    {Py_tp_repr, Goroutine_repr},
    {Py_tp_methods, Goroutine_methods},
    {Py_tp_getset, Goroutine_getset},
    {Py_tp_members, Goroutine_members},
    {0, NULL},
};

static PyType_Spec Goroutine_spec = {
    .name = "gochan.Goroutine",
    .basicsize = sizeof(py_goroutine),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Goroutine_slots,
};

/* --- module functions ---------------------------------------------------- */

PyDoc_STRVAR(
    go__doc__,
    "go(fn, /, *args, **kwargs)\n"
    "--\n"
    "\n"
    "Run fn(*args, **kwargs) in a new goroutine and return its Goroutine.\n"
    "\n"
    "Goroutines run on pooled daemon threads: a thread is started only when\n"
    "none is idle, and one idle for a few seconds ends, so go() is cheap.\n"
    "join() gives the result; an exception nobody joins is reported through\n"
    "threading.excepthook.  The process exits when its main thread ends,\n"
    "even with goroutines still blocked.\n"
    "\n"
    "    ch = gochan.Chan()\n"
    "    gochan.go(ch.send, 'hello')\n"
    "    assert ch.recv() == 'hello'");

static PyObject *
go(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
   PyObject *kwnames)
{
    return gc_py_go(PyModule_GetState(module), "go", args, nargs, kwnames,
                    NULL);
}

PyDoc_STRVAR(num_goroutines__doc__,
             "num_goroutines($module, /)\n"
             "--\n"
             "\n"
             "How many goroutines have been started and not finished yet.\n"
             "\n"
             "    print(gochan.num_goroutines(), 'goroutines running')");

static PyObject *
num_goroutines(PyObject *module, PyObject *unused)
{
    gc_py_state *st = PyModule_GetState(module);
    return PyLong_FromSsize_t(PySet_GET_SIZE(st->go_running));
}

PyDoc_STRVAR(
    running_goroutines__doc__,
    "_running_goroutines($module, /)\n"
    "--\n"
    "\n"
    "A list of the goroutines not finished yet (for gochan.testing).");

static PyObject *
running_goroutines(PyObject *module, PyObject *unused)
{
    gc_py_state *st = PyModule_GetState(module);
    return PySequence_List(st->go_running);
}

PyDoc_STRVAR(goroutine_hooks__doc__,
             "_goroutine_hooks($module, start, report, /)\n"
             "--\n"
             "\n"
             "Install the Python layer's hooks (gochan/_goroutines.py):\n"
             "start(box) starts a worker thread running _worker(box);\n"
             "report(name, exc) reports an exception nobody retrieved.");

static PyObject *
goroutine_hooks(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCallable_Check(args[0]) ||
        !PyCallable_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "_goroutine_hooks() takes two callables");
        return NULL;
    }
    gc_py_state *st = PyModule_GetState(module);
    Py_XSETREF(st->go_start, Py_NewRef(args[0]));
    Py_XSETREF(st->go_report, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

PyDoc_STRVAR(set_idle_timeout__doc__,
             "_set_idle_timeout($module, seconds, /)\n"
             "--\n"
             "\n"
             "Set how long an idle worker thread waits for work before it\n"
             "ends; return the previous setting (for tests).");

static PyObject *
set_idle_timeout(PyObject *module, PyObject *arg)
{
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!(seconds >= 0 && seconds <= 86400.0)) {
        gc_py_bad_value(arg,
                        "idle timeout must be between 0 and 86400 seconds");
        return NULL;
    }
    int64_t previous = atomic_exchange_explicit(
        &idle_ns, (int64_t)(seconds * 1e9), memory_order_relaxed);
    return PyFloat_FromDouble((double)previous / 1e9);
}

PyDoc_STRVAR(
    after_fork__doc__,
    "_after_fork_in_child($module, /)\n"
    "--\n"
    "\n"
    "In a child process after fork(): the goroutines of the threads that\n"
    "did not survive end with RuntimeError (join() raises it rather than\n"
    "hang; their done() channels stay open).");

static PyObject *
after_fork_in_child(PyObject *module, PyObject *unused)
{
    gc_py_state *st = PyModule_GetState(module);
    unsigned long me = PyThread_get_thread_ident();
    PyObject *list = PySequence_List(st->go_running);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        py_goroutine *g = GOROUTINE(PyList_GET_ITEM(list, i));
        if (g->ident == me) {
            continue; /* fork() was called by this goroutine: it goes on */
        }
        PyErr_SetString(PyExc_RuntimeError,
                        "the goroutine's thread did not survive fork()");
        Py_XSETREF(g->exc, take_exception());
        g->retrieved = 1; /* not a failure of the goroutine's own */
        g->ident = 0;
        if (PySet_Discard(st->go_running, (PyObject *)g) < 0) {
            PyErr_Clear();
        }
        /* Every entry queued now belongs to a thread that is gone (this
         * one runs Python): drop them unread, then finish. */
        gc_waitq_init(&g->finished.q);
        atomic_store(&g->finished.count, 0);
        if (g->wg != NULL) {
            gc_wg *wg = &((gc_py_waitgroup *)g->wg)->wg;
            gc_waitq_init(&wg->q);
            (void)gc_wg_add(wg, -1);
            Py_CLEAR(g->wg);
        }
    }
    Py_DECREF(list);
    /* A pool of this generation, with nothing waking or pending: the
     * parent's pending goroutines were finished above (their ident is 0),
     * and dropping the parent's pool drops its references to them. */
    if (idle_pool(st) == NULL) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(pool_state__doc__,
             "_pool_state($module, /)\n"
             "--\n"
             "\n"
             "(waking, pending, idle): threads given a goroutine they have\n"
             "not begun yet, goroutines waiting for a thread, and idle\n"
             "worker threads (for tests).");

static PyObject *
pool_state(PyObject *module, PyObject *unused)
{
    PyObject *idle = idle_pool(PyModule_GetState(module));
    if (idle == NULL) {
        return NULL;
    }
    go_pool *p = POOL(idle);
    return Py_BuildValue("nnn", p->waking, p->len,
                         (Py_ssize_t)gc_idle_count(&p->idle));
}

static PyMethodDef goroutine_functions[] = {
    {"go", FUNC(go), FASTCALL_KW, go__doc__},
    {"num_goroutines", num_goroutines, METH_NOARGS, num_goroutines__doc__},
    {"_worker", go_worker, METH_O, worker__doc__},
    {"_running_goroutines", running_goroutines, METH_NOARGS,
     running_goroutines__doc__},
    {"_goroutine_hooks", FUNC(goroutine_hooks), METH_FASTCALL,
     goroutine_hooks__doc__},
    {"_set_idle_timeout", set_idle_timeout, METH_O, set_idle_timeout__doc__},
    {"_after_fork_in_child", after_fork_in_child, METH_NOARGS,
     after_fork__doc__},
    {"_pool_state", pool_state, METH_NOARGS, pool_state__doc__},
    {NULL, NULL, 0, NULL},
};

int
gc_py_goroutine_init(PyObject *m, gc_py_state *st)
{
    if (gc_py_add_type(m, &Goroutine_spec, &st->Goroutine_Type) < 0) {
        return -1;
    }
    st->go_running = PySet_New(NULL);
    if (st->go_running == NULL) {
        return -1;
    }
    if (idle_pool(st) == NULL) {
        return -1;
    }
    return PyModule_AddFunctions(m, goroutine_functions);
}
