/* select.c - gochan.select and its cases, gochan.Recv and gochan.Send.
 *
 * A case object holds its channel (a Chan, a view, or None) and, for Send,
 * the value; select() turns its cases into the core's gc_case array and
 * calls gc_select(), which polls them in a random order and waits on all
 * of them at once when none is ready (csrc/core/gc_select.c).
 *
 * Invariants:
 *   - every Send value gets a new reference before the core sees it: a
 *     value sent may be received, and dropped, by another thread before
 *     select() returns, so it must not lean on the Send object's own
 *     reference; afterwards the values that were not sent give theirs
 *     back;
 *   - once a value has moved, select returns it: a spare result made
 *     before anything moves stands in when allocating fails ("spare
 *     result" below);
 *   - the case objects are immutable: the channel pointer copied at
 *     construction stays valid as long as the case holds its channel.
 */
#include "binding.h"

#include "gc_select.h"

/* A Recv or a Send: the channel object (or None) and its core channel
 * (NULL for None); `value` is NULL for a Recv. */
typedef struct gc_py_case {
    PyObject_HEAD PyObject *chan;
    gc_chan *ch;
    PyObject *value;
} gc_py_case;

/* --- the case types ------------------------------------------------------ */

/* Check that `chan` can take part in a case of direction `dir` and store
 * it in `self`.  Chan does both directions, RecvChan and SendChan one. */
static int
case_set_chan(gc_py_state *st, gc_py_case *self, PyObject *chan, int dir,
              const char *name)
{
    PyTypeObject *tp = Py_TYPE(chan);
    PyTypeObject *view =
        dir == GC_RECV ? st->RecvChan_Type : st->SendChan_Type;
    if (chan == Py_None) {
        self->ch = NULL;
    }
    else if (tp == st->Chan_Type || tp == view) {
        self->ch = ((gc_py_chanbase *)chan)->ch;
    }
    else if (tp == st->SendChan_Type || tp == st->RecvChan_Type) {
        PyErr_Format(PyExc_TypeError,
                     "%s() needs a channel that can %s: a Chan, a %s or "
                     "None, got a %s",
                     name, dir == GC_RECV ? "receive" : "send", view->tp_name,
                     tp->tp_name);
        return -1;
    }
    else {
        gc_py_bad_type(chan, "%s() needs a channel (a Chan, a %s or None)",
                       name, view->tp_name);
        return -1;
    }
    self->chan = Py_NewRef(chan);
    return 0;
}

/* Recv(ch) and Send(ch, value), called through vectorcall: building cases
 * in a loop is common, and the generic tp_new path costs twice as much. */
static PyObject *
case_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf,
                PyObject *kwnames)
{
    PyTypeObject *tp = (PyTypeObject *)type;
    gc_py_state *st = gc_py_state_of(tp);
    int send = tp == st->Send_Type;
    const char *name = send ? "Send" : "Recv";
    Py_ssize_t want = send ? 2 : 1;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        /* Keywords are allowed by name, as the signature says. */
        static const char *const names[] = {"ch", "value"};
        PyObject *all[2] = {NULL, NULL};
        if (nargs > want) {
            goto count;
        }
        for (Py_ssize_t i = 0; i < nargs; i++) {
            all[i] = args[i];
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, i);
            Py_ssize_t k = 0;
            while (k < want &&
                   PyUnicode_CompareWithASCIIString(key, names[k]) != 0) {
                k++;
            }
            if (k == want || all[k] != NULL) {
                PyErr_Format(PyExc_TypeError,
                             k == want
                                 ? "%s() got an unexpected keyword "
                                   "argument '%U'"
                                 : "%s() got multiple values for argument "
                                   "'%U'",
                             name, key);
                return NULL;
            }
            all[k] = args[nargs + i];
        }
        for (Py_ssize_t k = 0; k < want; k++) {
            if (all[k] == NULL) {
                PyErr_Format(PyExc_TypeError,
                             "%s() missing required argument '%s'", name,
                             names[k]);
                return NULL;
            }
        }
        return case_vectorcall(type, all, (size_t)want, NULL);
    }
    if (nargs != want) {
        goto count;
    }
    gc_py_case *self = (gc_py_case *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    if (case_set_chan(st, self, args[0], send ? GC_SEND : GC_RECV, name) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->value = send ? Py_NewRef(args[1]) : NULL;
    return (PyObject *)self;

count:
    PyErr_Format(PyExc_TypeError, "%s() takes %zd argument%s (%zd given)",
                 name, want, want == 1 ? "" : "s", nargs);
    return NULL;
}

static PyObject *
case_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    /* Reached only by calls that bypass vectorcall (e.g. tp_call). */
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    PyObject *kwnames = NULL;
    PyObject *stack[4];
    Py_ssize_t nkw = kwds ? PyDict_GET_SIZE(kwds) : 0;
    if (nargs + nkw > 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 2 arguments",
                     tp->tp_name);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        stack[i] = PyTuple_GET_ITEM(args, i);
    }
    if (nkw > 0) {
        kwnames = PyTuple_New(nkw);
        if (kwnames == NULL) {
            return NULL;
        }
        Py_ssize_t pos = 0, i = 0;
        PyObject *key, *value;
        while (PyDict_Next(kwds, &pos, &key, &value)) {
            PyTuple_SET_ITEM(kwnames, i, Py_NewRef(key));
            stack[nargs + i] = value;
            i++;
        }
    }
    PyObject *result =
        case_vectorcall((PyObject *)tp, stack, (size_t)nargs, kwnames);
    Py_XDECREF(kwnames);
    return result;
}

static int
case_traverse(PyObject *self, visitproc visit, void *arg)
{
    gc_py_case *c = (gc_py_case *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(c->chan);
    Py_VISIT(c->value);
    return 0;
}

static int
case_clear(PyObject *self)
{
    /* Only the value can be part of a cycle that matters; the channel
     * stays so that `ch` stays valid for as long as the case lives. */
    Py_CLEAR(((gc_py_case *)self)->value);
    return 0;
}

static void
case_dealloc(PyObject *self)
{
    gc_py_case *c = (gc_py_case *)self;
    PyObject_GC_UnTrack(self);
    Py_CLEAR(c->value);
    Py_CLEAR(c->chan);
    gc_py_free(self);
}

static PyObject *
case_repr(PyObject *self)
{
    gc_py_case *c = (gc_py_case *)self;
    if (c->value == NULL) {
        return PyUnicode_FromFormat("gochan.Recv(%R)", c->chan);
    }
    return PyUnicode_FromFormat("gochan.Send(%R, %R)", c->chan,
                                c->value ? c->value : Py_None);
}

static PyObject *
case_get_ch(PyObject *self, void *closure)
{
    return Py_NewRef(((gc_py_case *)self)->chan);
}

static PyObject *
case_get_value(PyObject *self, void *closure)
{
    PyObject *value = ((gc_py_case *)self)->value;
    return Py_NewRef(value ? value : Py_None);
}

static PyObject *
case_reduce(PyObject *self, PyObject *unused)
{
    return gc_py_cannot_pickle(self, NULL);
}

static PyMethodDef case_methods[] = {
    {"__reduce__", case_reduce, METH_NOARGS,
     PyDoc_STR("Cases hold channels, which cannot be pickled.")},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef recv_getset[] = {
    {"ch", case_get_ch, NULL,
     PyDoc_STR("The channel to receive from (None: never ready)."), NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef send_getset[] = {
    {"ch", case_get_ch, NULL,
     PyDoc_STR("The channel to send on (None: never ready)."), NULL},
    {"value", case_get_value, NULL, PyDoc_STR("The value to send."), NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Recv__doc__,
             "Recv(ch)\n"
             "--\n"
             "\n"
             "A select case that receives from ch (a Chan, a RecvChan or\n"
             "None; a None channel is never ready, which switches the case\n"
             "off).  When it is chosen, select returns (index, value, ok) as\n"
             "ch.recv_ok() would: ok is False once ch is closed and drained.\n"
             "\n"
             "    index, value, ok = gochan.select(gochan.Recv(jobs),\n"
             "                                     gochan.Recv(quit))");

PyDoc_STRVAR(Send__doc__,
             "Send(ch, value)\n"
             "--\n"
             "\n"
             "A select case that sends value on ch (a Chan, a SendChan or\n"
             "None; a None channel is never ready).  When it is chosen,\n"
             "select returns (index, None, True); if ch is closed, select\n"
             "raises ChannelClosed.\n"
             "\n"
             "    gochan.select(gochan.Send(out, item), gochan.Recv(quit))");

static PyType_Slot recv_slots[] = {
    {Py_tp_doc, (void *)Recv__doc__},
    {Py_tp_new, case_new},
    {Py_tp_dealloc, case_dealloc},
    {Py_tp_traverse, case_traverse},
    {Py_tp_clear, case_clear},
    {Py_tp_repr, case_repr},
    {Py_tp_methods, case_methods},
    {Py_tp_getset, recv_getset},
    {0, NULL},
};

static PyType_Slot send_slots[] = {
    {Py_tp_doc, (void *)Send__doc__},
    {Py_tp_new, case_new},
    {Py_tp_dealloc, case_dealloc},
    {Py_tp_traverse, case_traverse},
    {Py_tp_clear, case_clear},
    {Py_tp_repr, case_repr},
    {Py_tp_methods, case_methods},
    {Py_tp_getset, send_getset},
    {0, NULL},
};

static PyType_Spec recv_spec = {
    .name = "gochan.Recv",
    .basicsize = sizeof(gc_py_case),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = recv_slots,
};

static PyType_Spec send_spec = {
    .name = "gochan.Send",
    .basicsize = sizeof(gc_py_case),
    .flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = send_slots,
};

/* --- Selected ------------------------------------------------------------ */

static PyStructSequence_Field selected_fields[] = {
    {"index", "position of the chosen case among the arguments, or -1"},
    {"value", "the value received (None for a Send or a closed channel)"},
    {"ok", "False for a receive from a closed channel or no case chosen"},
    {NULL, NULL},
};

PyDoc_STRVAR(Selected__doc__,
             "Selected(index, value, ok): what select() chose.\n"
             "\n"
             "    index, value, ok = gochan.select(gochan.Recv(a),\n"
             "                                     gochan.Recv(b))\n"
             "    result = gochan.select(gochan.Recv(a), default=True)\n"
             "    if result.index == -1:\n"
             "        ...  # nothing was ready");

static PyStructSequence_Desc selected_desc = {
    .name = "gochan.Selected",
    .doc = Selected__doc__,
    .fields = selected_fields,
    .n_in_sequence = 3,
};

/* --- select() ------------------------------------------------------------ */

/* The keyword arguments of select() other than timeout and ctx. */
typedef struct select_args {
    int nowait; /* default=True */
    int biased;
    gc_py_wait wait;
} select_args;

static int
parse_flag(PyObject *value, int *out)
{
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        return -1;
    }
    *out = truth;
    return 0;
}

/* Which keyword argument of select() `key` names: 0 timeout, 1 ctx,
 * 2 default, 3 biased, -1 none.  Keyword names are nearly always the
 * interned strings, so pointer tests decide before any comparison. */
static int
select_keyword(gc_py_state *st, PyObject *key)
{
    static const char *const names[] = {"timeout", "ctx", "default", "biased"};
    PyObject *const interned[] = {st->str_timeout, st->str_ctx,
                                  st->str_default, st->str_biased};
    for (int i = 0; i < 4; i++) {
        if (key == interned[i]) {
            return i;
        }
    }
    for (int i = 0; i < 4; i++) {
        if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static int
parse_select_kwargs(gc_py_state *st, PyObject *const *kwvalues,
                    PyObject *kwnames, select_args *out)
{
    PyObject *timeout = Py_None;
    PyObject *ctx = Py_None;
    out->nowait = 0;
    out->biased = 0;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *value = kwvalues[i];
        switch (select_keyword(st, key)) {
        case 0:
            timeout = value;
            break;
        case 1:
            ctx = value;
            break;
        case 2:
            if (parse_flag(value, &out->nowait) < 0) {
                return -1;
            }
            break;
        case 3:
            if (parse_flag(value, &out->biased) < 0) {
                return -1;
            }
            break;
        default:
            PyErr_Format(PyExc_TypeError,
                         "select() got an unexpected keyword argument '%U'",
                         key);
            return -1;
        }
    }
    if (timeout == Py_None && ctx == Py_None) {
        gc_py_wait_forever(&out->wait);
        return 0;
    }
    return gc_py_parse_wait(st, timeout, ctx, &out->wait);
}

/* Fill the core's cases from select()'s arguments, giving each Send value
 * a new reference (see the invariants). */
static int
build_cases(gc_py_state *st, PyObject *const *args, Py_ssize_t n,
            gc_case *cases)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *arg = args[i];
        PyTypeObject *tp = Py_TYPE(arg);
        if (tp != st->Recv_Type && tp != st->Send_Type) {
            for (Py_ssize_t j = 0; j < i; j++) {
                if (cases[j].dir == GC_SEND) {
                    Py_DECREF((PyObject *)cases[j].item);
                }
            }
            PyErr_Format(PyExc_TypeError,
                         "select() cases must be gochan.Recv or gochan.Send, "
                         "got %.200s (argument %zd): wrap a channel as "
                         "gochan.Recv(ch) or gochan.Send(ch, value)",
                         tp->tp_name, i + 1);
            return -1;
        }
        gc_py_case *c = (gc_py_case *)arg;
        cases[i].ch = c->ch;
        cases[i].src = NULL;
        if (tp == st->Send_Type) {
            cases[i].dir = GC_SEND;
            cases[i].item = Py_NewRef(c->value);
        }
        else {
            cases[i].dir = GC_RECV;
            cases[i].item = NULL;
        }
    }
    return 0;
}

/* Run the core's select until it answers something other than "a signal
 * came and its handler did not raise". */
static gc_status
run_select(gc_case *cases, size_t n, const select_args *a, size_t *index)
{
    int flags = (a->biased ? GC_SELECT_BIASED : 0) |
                (a->nowait ? GC_SELECT_NOWAIT : 0);
    gc_py_wait w = a->wait;
    /* timeout=0 tries each case once: a deadline in the past says so
     * without reading the clock. */
    int64_t deadline = w.timeout_ns == 0 ? 0 : gc_py_deadline(&w);
    /* A select that cannot wait never lets go of the GIL. */
    const gc_unlock *unlock = a->nowait ? NULL : gc_py_gil();
    for (;;) {
        gc_status status =
            gc_select(cases, n, flags, deadline, w.cancel, unlock, index);
        if (status != GC_INTR || PyErr_Occurred() ||
            PyErr_CheckSignals() < 0) {
            return status;
        }
    }
}

PyDoc_STRVAR(
    select__doc__,
    "select($module, /, *cases, default=False, timeout=None, ctx=None,\n"
    "       biased=False)\n"
    "--\n"
    "\n"
    "Wait until one of the cases (gochan.Recv or gochan.Send) can proceed,\n"
    "complete that one only, and return Selected(index, value, ok): index\n"
    "is the case's position among the arguments; for a Recv, value and ok\n"
    "are as recv_ok() gives them (ok is False once the channel is closed and\n"
    "drained); for a Send, (None, True).\n"
    "\n"
    "Of several cases ready at once, one is chosen uniformly at random, or\n"
    "the first in argument order with biased=True.  A case on None is\n"
    "never ready.  default=True returns (-1, None, False) at once if no\n"
    "case is ready.  timeout (seconds) raises TimeoutError when it expires;\n"
    "ctx raises ctx.err() when cancelled.  A Send on a closed channel\n"
    "raises ChannelClosed.  With no cases, select waits for the timeout,\n"
    "the context or Ctrl-C.\n"
    "\n"
    "    index, value, ok = gochan.select(\n"
    "        gochan.Recv(results),\n"
    "        gochan.Send(jobs, next_job),\n"
    "        timeout=1.0,\n"
    "    )\n"
    "    if index == 0 and ok:\n"
    "        print('got', value)");

/* Spare result.  A Selected must exist once a value has moved: there is
 * no giving a received value back to its channel.  Allocating it before
 * every call would cost a third of a non-blocking select, so the module
 * keeps a spare that each call takes for itself before anything moves
 * (allocating one if another call holds it: the only allocation that may
 * fail then, with nothing moved) and gives back when it did not need it.
 * The module state's slot is guarded by the GIL; a call that waits has
 * its own spare in hand meanwhile. */
/* Selected's fields, all visible; select_init checks the type agrees. */
#define SELECTED_FIELDS 3

/* A new Selected, its fields NULL and not yet tracked by the collector
 * (fill_selected does both).  PyStructSequence_New would look the field
 * counts up in the type's dict on every call (CPython 3.11), a fifth of a
 * non-blocking select; Selected's are known.  A struct sequence is laid
 * out as a tuple of its real size, and its dealloc is CPython's own. */
static PyObject *
new_selected(gc_py_state *st)
{
    PyTupleObject *r =
        PyObject_GC_NewVar(PyTupleObject, st->Selected_Type, SELECTED_FIELDS);
    if (r == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < SELECTED_FIELDS; i++) {
        r->ob_item[i] = NULL;
    }
    return (PyObject *)r;
}

/* Set the three fields of a result from new_selected (references taken
 * over) and hand it to the collector. */
static PyObject *
fill_selected(PyObject *result, PyObject *index, PyObject *value, PyObject *ok)
{
    PyStructSequence_SetItem(result, 0, index);
    PyStructSequence_SetItem(result, 1, value);
    PyStructSequence_SetItem(result, 2, ok);
    if (!PyObject_GC_IsTracked(result)) {
        PyObject_GC_Track(result);
    }
    return result;
}

static PyObject *
take_spare(gc_py_state *st)
{
    PyObject *spare = st->spare_selected;
    st->spare_selected = NULL;
    return spare ? spare : new_selected(st);
}

static void
give_back_spare(gc_py_state *st, PyObject *spare)
{
    if (spare == NULL) {
        return;
    }
    if (st->spare_selected == NULL) {
        st->spare_selected = spare;
    }
    else {
        Py_DECREF(spare);
    }
}

static PyObject *
select_impl(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames)
{
    gc_py_state *st = (gc_py_state *)PyModule_GetState(module);
    select_args a;
    if (parse_select_kwargs(st, args + nargs, kwnames, &a) < 0) {
        return NULL;
    }
    PyObject *spare = take_spare(st);
    if (spare == NULL) {
        return NULL;
    }
    gc_case stack_cases[GC_SELECT_STACK_CASES];
    gc_case *cases = stack_cases;
    if (nargs > GC_SELECT_STACK_CASES) {
        cases = PyMem_Malloc((size_t)nargs * sizeof *cases);
        if (cases == NULL) {
            give_back_spare(st, spare);
            return PyErr_NoMemory();
        }
    }
    if (build_cases(st, args, nargs, cases) < 0) {
        if (cases != stack_cases) {
            PyMem_Free(cases);
        }
        give_back_spare(st, spare);
        return NULL;
    }
    size_t index = 0;
    gc_status status = run_select(cases, (size_t)nargs, &a, &index);
    /* The Send values that did not go give back their references. */
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (cases[i].dir == GC_SEND &&
            !(status == GC_OK && (size_t)i == index)) {
            Py_DECREF((PyObject *)cases[i].item);
        }
    }
    int chosen_send = (status == GC_OK || status == GC_CLOSED) &&
                      cases[index].dir == GC_SEND;
    void *received =
        status == GC_OK && !chosen_send ? cases[index].item : NULL;
    if (cases != stack_cases) {
        PyMem_Free(cases);
    }
    if (status != GC_OK) {
        /* Nothing moved: the spare is not needed. */
        give_back_spare(st, spare);
        spare = NULL;
    }
    switch (status) {
    case GC_OK:
        break;
    case GC_CLOSED:
        if (chosen_send) {
            PyErr_SetString(st->ChannelClosed, "send on closed channel");
            return NULL;
        }
        break;
    case GC_WOULDBLOCK:
        return Py_NewRef(st->nothing_selected);
    case GC_TIMEOUT:
        PyErr_SetString(PyExc_TimeoutError, "select timed out");
        return NULL;
    case GC_CANCELLED:
        return gc_py_ctx_raise(st, a.wait.ctx);
    case GC_NOMEM:
        return PyErr_NoMemory();
    case GC_INTR:
        assert(PyErr_Occurred());
        return NULL;
    default:
        PyErr_Format(PyExc_SystemError, "gochan: unexpected status %d",
                     (int)status);
        return NULL;
    }
    /* GC_OK (something moved) or GC_CLOSED on a receive. */
    PyObject *value = Py_None;
    if (received != NULL) {
        value = gc_py_item_out(received);
        if (value == NULL) {
            /* Only a timer's timestamp can fail to convert. */
            give_back_spare(st, spare);
            return NULL;
        }
    }
    else {
        Py_INCREF(value);
    }
    PyObject *result = new_selected(st);
    if (result == NULL) {
        if (spare == NULL) {
            Py_DECREF(value);
            return NULL; /* GC_CLOSED: nothing moved */
        }
        PyErr_Clear();
        result = spare;
        spare = NULL;
    }
    give_back_spare(st, spare);
    /* Indexes up to 256 are cached ints; beyond, -1 on MemoryError. */
    PyObject *pos = PyLong_FromSsize_t((Py_ssize_t)index);
    if (pos == NULL) {
        PyErr_Clear();
        pos = PyLong_FromLong(-1);
    }
    return fill_selected(result, pos, value, PyBool_FromLong(status == GC_OK));
}

static PyMethodDef select_functions[] = {
    {"select", FUNC(select_impl), FASTCALL_KW, select__doc__},
    {NULL, NULL, 0, NULL},
};

/* --- module initialisation ----------------------------------------------- */

int
gc_py_select_init(PyObject *m, gc_py_state *st)
{
    st->str_default = PyUnicode_InternFromString("default");
    if (st->str_default == NULL) {
        return -1;
    }
    st->str_biased = PyUnicode_InternFromString("biased");
    if (st->str_biased == NULL) {
        return -1;
    }
    if (gc_py_add_type(m, &recv_spec, &st->Recv_Type) < 0 ||
        gc_py_add_type(m, &send_spec, &st->Send_Type) < 0 ||
        gc_py_add_structseq(m, &selected_desc, &st->Selected_Type) < 0) {
        return -1;
    }
    /* Calls to the case types go straight to case_vectorcall (a heap type
     * can take no vectorcall slot before 3.14). */
    st->Recv_Type->tp_vectorcall = case_vectorcall;
    st->Send_Type->tp_vectorcall = case_vectorcall;
    st->nothing_selected = PyStructSequence_New(st->Selected_Type);
    if (st->nothing_selected == NULL) {
        return -1;
    }
    if (Py_SIZE(st->nothing_selected) != SELECTED_FIELDS) {
        PyErr_SetString(PyExc_SystemError,
                        "gochan: Selected does not have 3 fields");
        return -1;
    }
    PyStructSequence_SetItem(st->nothing_selected, 0, PyLong_FromLong(-1));
    PyStructSequence_SetItem(st->nothing_selected, 1, Py_NewRef(Py_None));
    PyStructSequence_SetItem(st->nothing_selected, 2, Py_NewRef(Py_False));
    return PyModule_AddFunctions(m, select_functions);
}
