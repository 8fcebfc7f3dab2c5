/* sync.c - gochan's sync primitives and goroutine support. */
#include "binding.h"

int
gc_py_sync_init(PyObject *m, gc_py_state *st)
{
    return 0;
}
