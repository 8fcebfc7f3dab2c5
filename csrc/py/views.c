/* views.c - gochan.SendChan and gochan.RecvChan, the direction-restricted
 * views that Chan.send_only() and Chan.recv_only() return.
 *
 * A view holds a strong reference to its Chan and copies the core channel
 * pointer into the prefix it shares with Chan (gc_py_chanbase), so that the
 * methods of chan.c serve both.  Each view type lists only the members that
 * API.md gives it.  Views have no tp_clear: the only reference they hold is
 * their channel, and Chan's tp_clear breaks any cycle through a buffer, so
 * a view's channel pointer stays valid for the view's whole life.
 */
#include "binding.h"

PyObject *
gc_py_view_new(PyTypeObject *tp, PyObject *chan)
{
    gc_py_chanview *view = (gc_py_chanview *)tp->tp_alloc(tp, 0);
    if (view == NULL) {
        return NULL;
    }
    view->owner = Py_NewRef(chan);
    view->base.ch = ((gc_py_chanbase *)chan)->ch;
    return (PyObject *)view;
}

static int
ChanView_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(((gc_py_chanview *)self)->owner);
    return 0;
}

static void
ChanView_dealloc(PyObject *self)
{
    gc_py_chanview *view = (gc_py_chanview *)self;
    PyObject_GC_UnTrack(self);
    gc_py_clear_weakrefs(self, view->base.weakreflist);
    Py_CLEAR(view->owner);
    gc_py_free(self);
}

static PyGetSetDef ChanView_getset[] = {
    {"closed", chan_get_closed, NULL, chan_closed__doc__, NULL},
    {"cap", chan_get_cap, NULL, chan_cap__doc__, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

GC_PY_WEAKLIST_MEMBERS(ChanView_members, gc_py_chanbase);

#define VIEW_FLAGS                                                        \
    (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | \
     Py_TPFLAGS_DISALLOW_INSTANTIATION)

/* --- SendChan ------------------------------------------------------------ */

static PyMethodDef SendChan_methods[] = {
    {"send", FUNC(chan_send), FASTCALL_KW, chan_send__doc__},
    {"send_nowait", FUNC(chan_send_nowait), FASTCALL_KW,
     chan_send_nowait__doc__},
    {"send_many", FUNC(chan_send_many), FASTCALL_KW, chan_send_many__doc__},
    {"close", chan_close, METH_NOARGS, chan_close__doc__},
    {"__reduce__", chan_reduce, METH_NOARGS, chan_reduce__doc__},
    {"__reduce_ex__", chan_reduce, METH_O, chan_reduce_ex__doc__},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS,
     chan_class_getitem__doc__},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(
    SendChan__doc__,
    "The send side of a Chan, from Chan.send_only(): send, send_nowait,\n"
    "send_many, close, closed, cap and len(), nothing else.\n"
    "\n"
    "    def produce(out: gochan.SendChan[int]) -> None:\n"
    "        out.send_many(range(10))\n"
    "        out.close()\n"
    "\n"
    "    ch = gochan.Chan(10)\n"
    "    produce(ch.send_only())");

static PyType_Slot SendChan_slots[] = {
    {Py_tp_doc, (void *)SendChan__doc__},
    {Py_tp_dealloc, ChanView_dealloc},
    {Py_tp_traverse, ChanView_traverse},
    {Py_tp_repr, Chan_repr},
    {Py_tp_methods, SendChan_methods},
    {Py_tp_getset, ChanView_getset},
    {Py_tp_members, ChanView_members},
    {Py_sq_length, Chan_len},
    {Py_nb_bool, Chan_bool},
    {0, NULL},
};

PyType_Spec gc_py_sendchan_spec = {
    .name = "gochan.SendChan",
    .basicsize = sizeof(gc_py_chanview),
    .flags = VIEW_FLAGS,
    .slots = SendChan_slots,
};

/* --- RecvChan ------------------------------------------------------------ */

static PyMethodDef RecvChan_methods[] = {
    {"recv", FUNC(chan_recv), FASTCALL_KW, chan_recv__doc__},
    {"recv_ok", FUNC(chan_recv_ok), FASTCALL_KW, chan_recv_ok__doc__},
    {"recv_nowait", chan_recv_nowait, METH_NOARGS, chan_recv_nowait__doc__},
    {"recv_many", FUNC(chan_recv_many), FASTCALL_KW, chan_recv_many__doc__},
    {"__reduce__", chan_reduce, METH_NOARGS, chan_reduce__doc__},
    {"__reduce_ex__", chan_reduce, METH_O, chan_reduce_ex__doc__},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS,
     chan_class_getitem__doc__},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(
    RecvChan__doc__,
    "The receive side of a Chan, from Chan.recv_only(): recv, recv_ok,\n"
    "recv_nowait, recv_many, iteration, closed, cap and len(), nothing else.\n"
    "\n"
    "    def consume(src: gochan.RecvChan[int]) -> int:\n"
    "        return sum(src)           # until src is closed and drained\n"
    "\n"
    "    ch = gochan.Chan(10)\n"
    "    ch.send_many(range(10))\n"
    "    ch.close()\n"
    "    assert consume(ch.recv_only()) == 45");

static PyType_Slot RecvChan_slots[] = {
    {Py_tp_doc, (void *)RecvChan__doc__},
    {Py_tp_dealloc, ChanView_dealloc},
    {Py_tp_traverse, ChanView_traverse},
    {Py_tp_repr, Chan_repr},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, Chan_iternext},
    {Py_tp_methods, RecvChan_methods},
    {Py_tp_getset, ChanView_getset},
    {Py_tp_members, ChanView_members},
    {Py_sq_length, Chan_len},
    {Py_nb_bool, Chan_bool},
    {0, NULL},
};

PyType_Spec gc_py_recvchan_spec = {
    .name = "gochan.RecvChan",
    .basicsize = sizeof(gc_py_chanview),
    .flags = VIEW_FLAGS,
    .slots = RecvChan_slots,
};
