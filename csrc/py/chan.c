/* chan.c - gochan.Chan, and the methods it shares with its views.
 *
 * Every operation first tries the core's non-blocking try_* with the GIL
 * held: when it can complete now, it allocates nothing, makes no syscall
 * and never releases the GIL.  Only when it would block does it call the
 * core's blocking gc_chan_send/gc_chan_recv, which release the GIL (through
 * gc_py_gil) only while they wait.
 *
 * Invariants:
 *   - payloads are PyObject pointers, each one a reference owned by the
 *     channel while it is buffered or handed between two threads: a send
 *     gives the core a new reference and takes it back when the send
 *     fails; a receive returns the reference it got;
 *   - the binding calls try_* only with the GIL held, and the core's
 *     blocking calls move payloads through the buffer only through try_*
 *     with the GIL held too (gc_chan.h), so tp_traverse may walk the buffer
 *     under the GIL;
 *   - `self` of a method is borrowed: the caller holds a reference for the
 *     whole call (a bound method holds its self; a method call keeps its
 *     receiver on the caller's stack), so a channel cannot be freed under
 *     a thread blocked in one of its methods, and no extra reference is
 *     taken;
 *   - Chan and its views are final (not subclassable): Py_TYPE(self) is
 *     always the type that defined the method, so methods find the module
 *     state through it.  They are plain METH_FASTCALL/METH_O/METH_NOARGS
 *     methods rather than METH_METHOD ones because CPython's specializing
 *     interpreter (3.11+) specializes calls to the former only: measured
 *     here, `ch.send(1); ch.recv()` costs about 10 ns less on 3.13.
 */
#include "binding.h"

/* What an operation was, for the messages of its exceptions. */
enum chan_op { OP_SEND, OP_RECV, OP_CLOSE };

static const char *const closed_messages[] = {
    [OP_SEND] = "send on closed channel",
    [OP_RECV] = "receive from closed channel",
    [OP_CLOSE] = "close of closed channel",
};

/* Raise the exception for a failed operation's status; returns NULL. */
static PyObject *
chan_fail(PyObject *self, gc_status status, enum chan_op op,
          const gc_py_wait *w)
{
    gc_py_state *st = gc_py_state_of(Py_TYPE(self));
    switch (status) {
    case GC_CANCELLED:
        return gc_py_ctx_raise(st, w->ctx);
    case GC_WOULDBLOCK:
        /* No message: the cheapest raise, for loops that poll. */
        PyErr_SetNone(st->WouldBlock);
        break;
    case GC_CLOSED:
        PyErr_SetString(st->ChannelClosed, closed_messages[op]);
        break;
    case GC_TIMEOUT:
        PyErr_SetString(PyExc_TimeoutError, op == OP_SEND
                                                ? "send timed out"
                                                : "receive timed out");
        break;
    case GC_NOMEM:
        PyErr_NoMemory();
        break;
    case GC_INTR:
        /* A signal handler raised; its exception is set. */
        assert(PyErr_Occurred());
        break;
    default:
        PyErr_Format(PyExc_SystemError, "gochan: unexpected status %d",
                     (int)status);
        break;
    }
    return NULL;
}

/* --- moving one value ---------------------------------------------------- */

/* Block in the core until the operation is done, the wait's deadline
 * passes or its context is cancelled, running signal handlers whenever a
 * signal interrupts the wait.  GC_INTR means a handler raised. */
static gc_status
chan_wait(gc_chan *ch, int dir, void **item, gc_py_wait *w)
{
    int64_t deadline = gc_py_deadline(w);
    const gc_unlock *unlock = gc_py_gil();
    for (;;) {
        gc_status status =
            gc_chan_op(ch, dir, item, deadline, w->cancel, unlock);
        if (status != GC_INTR || PyErr_Occurred() ||
            PyErr_CheckSignals() < 0) {
            return status;
        }
    }
}

/* Send `item`, a reference the caller owns, waiting as `w` allows.  On
 * GC_OK the reference has moved into the channel; on any other status it
 * is still the caller's.  A context already done wins over everything. */
static gc_status
chan_put(gc_chan *ch, PyObject *item, gc_py_wait *w)
{
    if (gc_py_wait_cancelled(w)) {
        return GC_CANCELLED;
    }
    gc_status status = gc_chan_try_send(ch, item);
    if (status == GC_WOULDBLOCK) {
        /* timeout=0: the try above was the one attempt. */
        void *payload = item;
        status = w->timeout_ns == 0 ? GC_TIMEOUT
                                    : chan_wait(ch, GC_SEND, &payload, w);
    }
    return status;
}

/* Receive into *item (a new reference on GC_OK), waiting as `w` allows. */
static gc_status
chan_take(gc_chan *ch, PyObject **item, gc_py_wait *w)
{
    if (gc_py_wait_cancelled(w)) {
        return GC_CANCELLED;
    }
    void *got = NULL;
    gc_status status = gc_chan_try_recv(ch, &got);
    if (status == GC_WOULDBLOCK) {
        status =
            w->timeout_ns == 0 ? GC_TIMEOUT : chan_wait(ch, GC_RECV, &got, w);
    }
    if (status == GC_OK) {
        *item = gc_py_item_out(got);
        if (*item == NULL) {
            status = GC_NOMEM;
        }
    }
    return status;
}

/* Convert in place the immediate values among n received payloads (a
 * timer's timestamps); -1 with MemoryError if one could not be (it is
 * then left as None). */
static int
items_out(PyObject **items, Py_ssize_t n)
{
    int rc = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (gc_item_is_time(items[i])) {
            items[i] = gc_py_item_out(items[i]);
            if (items[i] == NULL) {
                items[i] = Py_NewRef(Py_None);
                rc = -1;
            }
        }
    }
    return rc;
}

#define CH(self) (((gc_py_chanbase *)(self))->ch)

/* --- methods shared with the views --------------------------------------- */

const char chan_send__doc__[] = PyDoc_STR(
    "send($self, /, value, *, timeout=None, ctx=None)\n"
    "--\n"
    "\n"
    "Send value, waiting until a receiver takes it (unbuffered channel) or a\n"
    "slot is free.\n"
    "\n"
    "Raises ChannelClosed if the channel is closed (also when close() wakes\n"
    "the waiting sender: the value is not delivered), TimeoutError when\n"
    "timeout (seconds) expires first.\n"
    "\n"
    "    ch = gochan.Chan(1)\n"
    "    ch.send('job', timeout=1.0)");

PyObject *
chan_send(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    PyObject *value;
    gc_py_wait w;
    if (gc_py_parse_method(self, "send", "value", args, nargs, kwnames, &value,
                           &w) < 0) {
        return NULL;
    }
    Py_INCREF(value);
    gc_status status = chan_put(CH(self), value, &w);
    if (status != GC_OK) {
        Py_DECREF(value);
        return chan_fail(self, status, OP_SEND, &w);
    }
    Py_RETURN_NONE;
}

const char chan_recv__doc__[] =
    PyDoc_STR("recv($self, /, *, timeout=None, ctx=None)\n"
              "--\n"
              "\n"
              "Receive the next value, waiting until one is sent.\n"
              "\n"
              "Raises ChannelClosed once the channel is closed and drained,\n"
              "TimeoutError when timeout (seconds) expires first.\n"
              "\n"
              "    ch = gochan.Chan(1)\n"
              "    ch.send(42)\n"
              "    assert ch.recv() == 42");

PyObject *
chan_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    gc_py_wait w;
    if (gc_py_parse_method(self, "recv", NULL, args, nargs, kwnames, NULL,
                           &w) < 0) {
        return NULL;
    }
    PyObject *item;
    gc_status status = chan_take(CH(self), &item, &w);
    if (status != GC_OK) {
        return chan_fail(self, status, OP_RECV, &w);
    }
    return item;
}

const char chan_recv_ok__doc__[] = PyDoc_STR(
    "recv_ok($self, /, *, timeout=None, ctx=None)\n"
    "--\n"
    "\n"
    "Receive like recv(), as Go's `v, ok := <-ch`: (value, True), or\n"
    "(None, False) once the channel is closed and drained.\n"
    "\n"
    "    value, ok = ch.recv_ok()\n"
    "    if not ok:\n"
    "        return  # closed");

PyObject *
chan_recv_ok(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    gc_py_wait w;
    if (gc_py_parse_method(self, "recv_ok", NULL, args, nargs, kwnames, NULL,
                           &w) < 0) {
        return NULL;
    }
    /* The result is made first: running out of memory loses no value. */
    PyObject *result = PyTuple_New(2);
    if (result == NULL) {
        return NULL;
    }
    PyObject *item;
    gc_status status = chan_take(CH(self), &item, &w);
    if (status == GC_OK) {
        PyTuple_SET_ITEM(result, 0, item);
        PyTuple_SET_ITEM(result, 1, Py_NewRef(Py_True));
        return result;
    }
    if (status == GC_CLOSED) {
        PyTuple_SET_ITEM(result, 0, Py_NewRef(Py_None));
        PyTuple_SET_ITEM(result, 1, Py_NewRef(Py_False));
        return result;
    }
    Py_DECREF(result);
    return chan_fail(self, status, OP_RECV, &w);
}

const char chan_send_nowait__doc__[] = PyDoc_STR(
    "send_nowait($self, /, value)\n"
    "--\n"
    "\n"
    "Send value only if that can be done without waiting; otherwise raise\n"
    "WouldBlock (ChannelClosed if the channel is closed).\n"
    "\n"
    "    try:\n"
    "        ch.send_nowait(event)\n"
    "    except gochan.WouldBlock:\n"
    "        dropped += 1");

PyObject *
chan_send_nowait(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *kwnames)
{
    PyObject *value;
    if (gc_py_parse_method(self, "send_nowait", "value", args, nargs, kwnames,
                           &value, NULL) < 0) {
        return NULL;
    }
    Py_INCREF(value);
    gc_status status = gc_chan_try_send(CH(self), value);
    if (status != GC_OK) {
        Py_DECREF(value);
        return chan_fail(self, status, OP_SEND, NULL);
    }
    Py_RETURN_NONE;
}

const char chan_recv_nowait__doc__[] = PyDoc_STR(
    "recv_nowait($self, /)\n"
    "--\n"
    "\n"
    "Receive a value only if one is ready now; otherwise raise WouldBlock\n"
    "(ChannelClosed once the channel is closed and drained).\n"
    "\n"
    "    try:\n"
    "        value = ch.recv_nowait()\n"
    "    except gochan.WouldBlock:\n"
    "        value = None");

PyObject *
chan_recv_nowait(PyObject *self, PyObject *unused)
{
    void *item;
    gc_status status = gc_chan_try_recv(CH(self), &item);
    if (status != GC_OK) {
        return chan_fail(self, status, OP_RECV, NULL);
    }
    return gc_py_item_out(item);
}

const char chan_send_many__doc__[] = PyDoc_STR(
    "send_many($self, /, iterable, *, timeout=None, ctx=None)\n"
    "--\n"
    "\n"
    "Send every item of iterable in order, waiting as needed; return how\n"
    "many were sent.\n"
    "\n"
    "timeout (seconds) bounds the whole call.  If an exception interrupts\n"
    "it (TimeoutError, ChannelClosed, KeyboardInterrupt, an error of the\n"
    "iterable), the items already sent stay sent and the exception is\n"
    "raised.\n"
    "\n"
    "    ch = gochan.Chan(8)\n"
    "    assert ch.send_many(range(3)) == 3");

/* How many items of a list send_many hands to the core at once. */
#define SEND_BATCH 256

/* send_many over a list or tuple: batches go to the core in one call each.
 * The sequence is re-read after every wait, since another thread may
 * change a list while this one waits without the GIL. */
static PyObject *
chan_send_sequence(PyObject *self, PyObject *seq, gc_py_wait *w)
{
    if (gc_py_wait_cancelled(w)) {
        return chan_fail(self, GC_CANCELLED, OP_SEND, w);
    }
    Py_ssize_t sent = 0;
    while (sent < PySequence_Fast_GET_SIZE(seq)) {
        PyObject **items = PySequence_Fast_ITEMS(seq) + sent;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq) - sent;
        if (n > SEND_BATCH) {
            n = SEND_BATCH;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_INCREF(items[i]);
        }
        size_t done;
        gc_status status =
            gc_chan_try_send_many(CH(self), (void *const *)items, n, &done);
        /* The sequence still holds the unsent items: no finalizer runs. */
        for (Py_ssize_t i = (Py_ssize_t)done; i < n; i++) {
            Py_DECREF(items[i]);
        }
        sent += (Py_ssize_t)done;
        if (status == GC_WOULDBLOCK) {
            PyObject *item = items[done];
            Py_INCREF(item);
            status = chan_put(CH(self), item, w);
            if (status == GC_OK) {
                sent++;
            }
            else {
                Py_DECREF(item);
            }
        }
        if (status != GC_OK) {
            return chan_fail(self, status, OP_SEND, w);
        }
    }
    return PyLong_FromSsize_t(sent);
}

PyObject *
chan_send_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    PyObject *iterable;
    gc_py_wait w;
    if (gc_py_parse_method(self, "send_many", "iterable", args, nargs, kwnames,
                           &iterable, &w) < 0) {
        return NULL;
    }
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL) {
        return NULL;
    }
    /* One deadline for the whole call, counted from its start. */
    gc_py_deadline(&w);
    if (PyList_CheckExact(iterable) || PyTuple_CheckExact(iterable)) {
        Py_DECREF(it);
        return chan_send_sequence(self, iterable, &w);
    }
    Py_ssize_t sent = 0;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        gc_status status = chan_put(CH(self), item, &w);
        if (status != GC_OK) {
            Py_DECREF(item);
            Py_DECREF(it);
            return chan_fail(self, status, OP_SEND, &w);
        }
        sent++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromSsize_t(sent);
}

/* Room recv_many makes for values (see chan_recv_many). */
#define RECV_MANY_ROOM     128
#define RECV_MANY_MAX_ROOM 65536

/* max_items of recv_many: an int >= 1; values too large for a Py_ssize_t
 * mean "all that are ready". */
static int
parse_max_items(PyObject *obj, Py_ssize_t *max_items)
{
    if (!PyLong_Check(obj)) {
        gc_py_bad_type(obj, "max_items must be an int");
        return -1;
    }
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && n < 1)) {
        gc_py_bad_value(obj, "max_items must be >= 1");
        return -1;
    }
    *max_items =
        overflow > 0 || n > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)n;
    return 0;
}

const char chan_recv_many__doc__[] = PyDoc_STR(
    "recv_many($self, /, max_items, *, timeout=None, ctx=None)\n"
    "--\n"
    "\n"
    "Wait for one value, then take up to max_items - 1 more that are ready\n"
    "now; return them as a list, in order.\n"
    "\n"
    "Raises ChannelClosed once the channel is closed and drained,\n"
    "TimeoutError when timeout (seconds) expires before the first value.\n"
    "\n"
    "    ch = gochan.Chan(8)\n"
    "    ch.send_many([1, 2, 3])\n"
    "    assert ch.recv_many(2) == [1, 2]");

PyObject *
chan_recv_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    PyObject *max_arg;
    Py_ssize_t max_items;
    gc_py_wait w;
    if (gc_py_parse_method(self, "recv_many", "max_items", args, nargs,
                           kwnames, &max_arg, &w) < 0 ||
        parse_max_items(max_arg, &max_items) < 0) {
        return NULL;
    }
    gc_chan *ch = CH(self);
    /* The list is made before anything is received, so that running out
     * of memory loses nothing.  It has room for what is buffered now, but
     * at least RECV_MANY_ROOM (values may arrive while we wait), at most
     * RECV_MANY_MAX_ROOM and max_items; what does not fit stays in the
     * channel for the next call. */
    size_t room = gc_chan_len(ch);
    room = room < RECV_MANY_ROOM ? RECV_MANY_ROOM : room;
    room = room > RECV_MANY_MAX_ROOM ? RECV_MANY_MAX_ROOM : room;
    Py_ssize_t size = room < (size_t)max_items ? (Py_ssize_t)room : max_items;
    PyObject *list = PyList_New(size);
    if (list == NULL) {
        return NULL;
    }
    PyObject **slots = PySequence_Fast_ITEMS(list);
    gc_status status = chan_take(ch, &slots[0], &w);
    if (status != GC_OK) {
        Py_DECREF(list);
        return chan_fail(self, status, OP_RECV, &w);
    }
    Py_ssize_t n = 1;
    size_t got;
    if (size > 1 && gc_chan_try_recv_many(ch, (void **)(slots + 1),
                                          (size_t)(size - 1), &got) == GC_OK) {
        n += (Py_ssize_t)got;
    }
    /* Shrinking the size cannot fail; the unused slots are NULL. */
    Py_SET_SIZE(list, n);
    if (items_out(slots, n) < 0) {
        Py_DECREF(list);
        return NULL;
    }
    return list;
}

const char chan_close__doc__[] = PyDoc_STR(
    "close($self, /)\n"
    "--\n"
    "\n"
    "Close the channel: no more sends.  Waiting senders wake with\n"
    "ChannelClosed, waiting receivers once the buffer is drained; buffered\n"
    "values stay receivable.  Closing twice raises ChannelClosed.\n"
    "\n"
    "    ch = gochan.Chan(2)\n"
    "    ch.send(1)\n"
    "    ch.close()\n"
    "    assert list(ch) == [1]");

PyObject *
chan_close(PyObject *self, PyObject *unused)
{
    gc_status status = gc_chan_close(CH(self));
    if (status != GC_OK) {
        return chan_fail(self, status, OP_CLOSE, NULL);
    }
    Py_RETURN_NONE;
}

const char chan_reduce__doc__[] =
    PyDoc_STR("__reduce__($self, /)\n"
              "--\n"
              "\n"
              "Channels cannot be pickled: raises TypeError.");

const char chan_reduce_ex__doc__[] =
    PyDoc_STR("__reduce_ex__($self, protocol, /)\n"
              "--\n"
              "\n"
              "Channels cannot be pickled: raises TypeError.");

PyObject *
chan_reduce(PyObject *self, PyObject *unused)
{
    return gc_py_cannot_pickle(self, "channels live in one process");
}

const char chan_class_getitem__doc__[] =
    PyDoc_STR("__class_getitem__($cls, item, /)\n"
              "--\n"
              "\n"
              "The generic alias for type hints: Chan[int].");

PyObject *
Chan_iternext(PyObject *self)
{
    gc_py_wait forever;
    gc_py_wait_forever(&forever);
    PyObject *item;
    gc_status status = chan_take(CH(self), &item, &forever);
    if (status == GC_OK) {
        return item;
    }
    if (status == GC_CLOSED) {
        return NULL; /* StopIteration */
    }
    return chan_fail(self, status, OP_RECV, &forever);
}

PyObject *
Chan_repr(PyObject *self)
{
    gc_chan *ch = CH(self);
    return PyUnicode_FromFormat(
        "<%s cap=%zu len=%zu %s>", Py_TYPE(self)->tp_name, gc_chan_cap(ch),
        gc_chan_len(ch), gc_chan_closed(ch) ? "closed" : "open");
}

Py_ssize_t
Chan_len(PyObject *self)
{
    return (Py_ssize_t)gc_chan_len(CH(self));
}

/* A channel is always true, even when empty: `ch or default` must not
 * replace an empty channel. */
int
Chan_bool(PyObject *self)
{
    return 1;
}

const char chan_closed__doc__[] =
    PyDoc_STR("True once the channel is closed.\n"
              "\n"
              "    ch.close()\n"
              "    assert ch.closed");

PyObject *
chan_get_closed(PyObject *self, void *closure)
{
    return PyBool_FromLong(gc_chan_closed(CH(self)));
}

const char chan_cap__doc__[] = PyDoc_STR(
    "The capacity: how many values the channel buffers (0: unbuffered).\n"
    "\n"
    "    assert gochan.Chan(4).cap == 4");

PyObject *
chan_get_cap(PyObject *self, void *closure)
{
    return PyLong_FromSize_t(gc_chan_cap(CH(self)));
}

/* --- methods of Chan only ------------------------------------------------ */

PyDoc_STRVAR(chan_statistics__doc__,
             "statistics($self, /)\n"
             "--\n"
             "\n"
             "A snapshot of the channel's state, as a ChanStats.\n"
             "\n"
             "    st = ch.statistics()\n"
             "    print(st.size, st.waiting_receivers)");

static PyObject *
chan_statistics(PyObject *self, PyObject *unused)
{
    gc_chan_stats stats;
    gc_chan_stats_get(CH(self), &stats);
    PyObject *result =
        PyStructSequence_New(gc_py_state_of(Py_TYPE(self))->ChanStats_Type);
    if (result == NULL) {
        return NULL;
    }
    PyObject *fields[] = {
        PyLong_FromSize_t(stats.capacity),
        PyLong_FromSize_t(stats.size),
        PyLong_FromSize_t(stats.waiting_senders),
        PyLong_FromSize_t(stats.waiting_receivers),
        PyBool_FromLong(stats.closed),
    };
    int failed = 0;
    for (Py_ssize_t i = 0; i < (Py_ssize_t)Py_ARRAY_LENGTH(fields); i++) {
        failed |= fields[i] == NULL;
        PyStructSequence_SetItem(result, i, fields[i]);
    }
    if (failed) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

PyDoc_STRVAR(
    chan_send_only__doc__,
    "send_only($self, /)\n"
    "--\n"
    "\n"
    "A SendChan view of this channel: only send*, close, closed, cap, len.\n"
    "\n"
    "    def producer(out: gochan.SendChan[int]) -> None:\n"
    "        out.send(1)\n"
    "\n"
    "    producer(ch.send_only())");

static PyObject *
chan_send_only(PyObject *self, PyObject *unused)
{
    return gc_py_view_new(gc_py_state_of(Py_TYPE(self))->SendChan_Type, self);
}

PyDoc_STRVAR(
    chan_recv_only__doc__,
    "recv_only($self, /)\n"
    "--\n"
    "\n"
    "A RecvChan view of this channel: only recv*, iteration, closed, cap,\n"
    "len.\n"
    "\n"
    "    def consumer(src: gochan.RecvChan[int]) -> None:\n"
    "        for value in src:\n"
    "            print(value)\n"
    "\n"
    "    consumer(ch.recv_only())");

static PyObject *
chan_recv_only(PyObject *self, PyObject *unused)
{
    return gc_py_view_new(gc_py_state_of(Py_TYPE(self))->RecvChan_Type, self);
}

PyDoc_STRVAR(chan_enter__doc__,
             "__enter__($self, /)\n"
             "--\n"
             "\n"
             "Return the channel; __exit__ closes it if it is still open.");

static PyObject *
chan_enter(PyObject *self, PyObject *unused)
{
    return Py_NewRef(self);
}

PyDoc_STRVAR(
    chan_exit__doc__,
    "__exit__($self, /, *exc_info)\n"
    "--\n"
    "\n"
    "Close the channel if it is still open; never raises ChannelClosed.");

static PyObject *
chan_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    /* GC_CLOSED only says that it was closed already: that is fine. */
    (void)gc_chan_close(CH(self));
    Py_RETURN_FALSE;
}

/* --- the type ------------------------------------------------------------ */

static int
visit_item(void *item, void *arg)
{
    struct {
        visitproc visit;
        void *arg;
    } *gc = arg;
    return gc_item_is_time(item) ? 0 : gc->visit((PyObject *)item, gc->arg);
}

static int
Chan_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    gc_chan *ch = CH(self);
    if (ch == NULL) {
        return 0;
    }
    struct {
        visitproc visit;
        void *arg;
    } gc = {visit, arg};
    return gc_chan_traverse(ch, visit_item, &gc);
}

/* Break reference cycles through the buffer: drop the buffered values.
 * The channel itself stays usable (and empty). */
static int
Chan_clear(PyObject *self)
{
    gc_chan *ch = CH(self);
    void *item;
    while (ch != NULL && gc_chan_try_recv(ch, &item) == GC_OK) {
        if (!gc_item_is_time(item)) {
            Py_DECREF((PyObject *)item);
        }
    }
    return 0;
}

static void
decref_item(void *item, void *arg)
{
    if (!gc_item_is_time(item)) {
        Py_DECREF((PyObject *)item);
    }
}

static void
Chan_dealloc(PyObject *self)
{
    gc_py_chan *chan = (gc_py_chan *)self;
    PyObject_GC_UnTrack(self);
    /* A chain of channels, each buffering the next, is freed without
     * recursing once per link. */
    Py_TRASHCAN_BEGIN(self, Chan_dealloc);
    gc_py_clear_weakrefs(self, chan->base.weakreflist);
    gc_chan *ch = chan->base.ch;
    chan->base.ch = NULL;
    if (chan->release != NULL) {
        chan->release(chan->release_arg);
    }
    else if (ch != NULL) {
        gc_chan_free(ch, decref_item, NULL);
    }
    gc_py_free(self);
    Py_TRASHCAN_END;
}

/* capacity: an int (or an object with __index__) from 0 to
 * GC_CHAN_MAX_CAP. */
static int
parse_capacity(PyObject *obj, size_t *cap)
{
    if (!PyIndex_Check(obj)) {
        gc_py_bad_type(obj, "capacity must be an int");
        return -1;
    }
    PyObject *n = PyNumber_Index(obj);
    if (n == NULL) {
        return -1;
    }
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(n, &overflow);
    Py_DECREF(n);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && value < 0)) {
        gc_py_bad_value(obj, "capacity must be >= 0");
        return -1;
    }
    if (overflow > 0 || (unsigned long long)value > GC_CHAN_MAX_CAP) {
        gc_py_bad_value(obj, "capacity must be <= %zu",
                        (size_t)GC_CHAN_MAX_CAP);
        return -1;
    }
    *cap = (size_t)value;
    return 0;
}

static PyObject *
Chan_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"capacity", NULL};
    PyObject *capacity = NULL;
    size_t cap = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Chan", kwlist,
                                     &capacity)) {
        return NULL;
    }
    if (capacity != NULL && parse_capacity(capacity, &cap) < 0) {
        return NULL;
    }
    gc_chan *ch = gc_chan_new(cap);
    if (ch == NULL) {
        return PyErr_NoMemory();
    }
    gc_py_chan *self = (gc_py_chan *)type->tp_alloc(type, 0);
    if (self == NULL) {
        gc_chan_free(ch, NULL, NULL);
        return NULL;
    }
    self->base.ch = ch;
    return (PyObject *)self;
}

PyObject *
gc_py_chan_adopt(gc_py_state *st, gc_chan *ch, void (*release)(void *arg),
                 void *arg)
{
    PyTypeObject *type = st->Chan_Type;
    gc_py_chan *self = (gc_py_chan *)type->tp_alloc(type, 0);
    if (self == NULL) {
        release(arg);
        return NULL;
    }
    self->base.ch = ch;
    self->release = release;
    self->release_arg = arg;
    return (PyObject *)self;
}

static PyMethodDef Chan_methods[] = {
    {"send", FUNC(chan_send), FASTCALL_KW, chan_send__doc__},
    {"recv", FUNC(chan_recv), FASTCALL_KW, chan_recv__doc__},
    {"recv_ok", FUNC(chan_recv_ok), FASTCALL_KW, chan_recv_ok__doc__},
    {"send_nowait", FUNC(chan_send_nowait), FASTCALL_KW,
     chan_send_nowait__doc__},
    {"recv_nowait", chan_recv_nowait, METH_NOARGS, chan_recv_nowait__doc__},
    {"send_many", FUNC(chan_send_many), FASTCALL_KW, chan_send_many__doc__},
    {"recv_many", FUNC(chan_recv_many), FASTCALL_KW, chan_recv_many__doc__},
    {"close", chan_close, METH_NOARGS, chan_close__doc__},
    {"statistics", chan_statistics, METH_NOARGS, chan_statistics__doc__},
    {"send_only", chan_send_only, METH_NOARGS, chan_send_only__doc__},
    {"recv_only", chan_recv_only, METH_NOARGS, chan_recv_only__doc__},
    {"__enter__", chan_enter, METH_NOARGS, chan_enter__doc__},
    {"__exit__", FUNC(chan_exit), METH_FASTCALL, chan_exit__doc__},
    {"__reduce__", chan_reduce, METH_NOARGS, chan_reduce__doc__},
    {"__reduce_ex__", chan_reduce, METH_O, chan_reduce_ex__doc__},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS,
     chan_class_getitem__doc__},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Chan_getset[] = {
    {"closed", chan_get_closed, NULL, chan_closed__doc__, NULL},
    {"cap", chan_get_cap, NULL, chan_cap__doc__, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

GC_PY_WEAKLIST_MEMBERS(Chan_members, gc_py_chanbase);

PyDoc_STRVAR(
    Chan__doc__,
    "Chan(capacity=0)\n"
    "--\n"
    "\n"
    "A Go channel: values sent by some threads, received by others, each\n"
    "exactly once and in FIFO order per sender.\n"
    "\n"
    "capacity 0 makes an unbuffered channel (a send waits for a receiver);\n"
    "capacity n > 0 buffers up to n values.  Close it to tell receivers that\n"
    "no more values will come.\n"
    "\n"
    "    ch = gochan.Chan(10)\n"
    "    with ch:                      # closes ch at the end\n"
    "        ch.send_many(range(3))\n"
    "    assert list(ch) == [0, 1, 2]");

static PyType_Slot Chan_slots[] = {
    {Py_tp_doc, (void *)Chan__doc__}, {Py_tp_new, Chan_new},
    {Py_tp_dealloc, Chan_dealloc},    {Py_tp_traverse, Chan_traverse},
    {Py_tp_clear, Chan_clear},        {Py_tp_repr, Chan_repr},
    {Py_tp_iter, PyObject_SelfIter},  {Py_tp_iternext, Chan_iternext},
    {Py_tp_methods, Chan_methods},    {Py_tp_getset, Chan_getset},
    {Py_tp_members, Chan_members},    {Py_sq_length, Chan_len},
    {Py_nb_bool, Chan_bool},          {0, NULL},
};

PyType_Spec gc_py_chan_spec = {
    .name = "gochan.Chan",
    .basicsize = sizeof(gc_py_chan),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Chan_slots,
};

/* --- ChanStats ----------------------------------------------------------- */

static PyStructSequence_Field chanstats_fields[] = {
    {"capacity", "how many values the channel buffers (0: unbuffered)"},
    {"size", "values buffered now"},
    {"waiting_senders", "threads blocked sending (select cases included)"},
    {"waiting_receivers", "threads blocked receiving (select cases included)"},
    {"closed", "True once the channel is closed"},
    {NULL, NULL},
};

PyDoc_STRVAR(
    ChanStats__doc__,
    "A snapshot of a channel's state, returned by Chan.statistics().\n"
    "\n"
    "    st = ch.statistics()\n"
    "    if st.waiting_receivers and not st.closed:\n"
    "        ch.send(work)");

PyStructSequence_Desc gc_py_chanstats_desc = {
    .name = "gochan.ChanStats",
    .doc = ChanStats__doc__,
    .fields = chanstats_fields,
    .n_in_sequence = 5,
};
