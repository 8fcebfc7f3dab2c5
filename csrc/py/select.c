/* select.c - gochan.select and its cases, Recv and Send. */
#include "binding.h"

int
gc_py_select_init(PyObject *m, gc_py_state *st)
{
    return 0;
}
