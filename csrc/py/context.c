/* context.c - gochan contexts (cancellation tokens): the Context type and
 * the hooks that let every blocking call take ctx=. */
#include "binding.h"

int
gc_py_ctx_parse(gc_py_state *st, PyObject *obj, gc_chan **cancel)
{
    PyErr_Format(PyExc_TypeError,
                 "ctx must be a gochan Context or None, got %.200s",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

PyObject *
gc_py_ctx_raise(gc_py_state *st, PyObject *obj)
{
    PyErr_SetString(st->Cancelled, "context canceled");
    return NULL;
}

int
gc_py_context_init(PyObject *m, gc_py_state *st)
{
    return 0;
}
