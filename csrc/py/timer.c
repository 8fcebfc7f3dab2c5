/* timer.c - gochan timers: after, sleep, Timer, Ticker, after_func. */
#include "binding.h"

int
gc_py_timer_init(PyObject *m, gc_py_state *st)
{
    return 0;
}
