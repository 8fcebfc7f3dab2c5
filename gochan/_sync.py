"""The Python-shaped part of gochan's sync: Once, once_func, once_value and Map.

They are built on the C primitives (`gochan.Mutex` does all the waiting, with the GIL released),
and follow Go's `sync.Once`, `sync.OnceFunc`, `sync.OnceValue` and `sync.Map`::

    import gochan

    config = gochan.once_value(lambda: {"debug": False})
    assert config() is config()          # computed once, by whichever thread came first
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Generic, TypeVar

from gochan._core import Mutex

__all__ = ["Map", "Once", "once_func", "once_value"]

_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")

_MISSING: Any = object()


class Once:
    """Go's `sync.Once`: `do(fn, *args)` runs `fn` the first time only.

    Later calls, from any thread, wait until that first call has finished and then return without
    calling anything. If `fn` raises, the exception goes to the caller of that first `do`, and
    `fn` still counts as done (as in Go, where a panic counts as returning).

        once = gochan.Once()
        for _ in range(3):
            once.do(print, "initialised")   # prints once
    """

    __slots__ = ("_done", "_mu", "_owner")

    def __init__(self) -> None:
        self._done = False
        self._mu = Mutex()
        self._owner = 0  # thread running fn now, to catch a recursive do()

    def do(self, fn: Callable[..., object], *args: object,
           timeout: float | None = None, ctx: Any = None) -> bool:
        """Run `fn(*args)` if no call of `do` has run one yet; wait for it otherwise.

        Returns True once `fn` has run (here or in another thread). A caller that has to wait for
        another thread's `fn` gives up after `timeout` seconds (returning False) or when `ctx` is
        cancelled (raising `ctx.err()`). A `do` called from inside `fn` itself raises
        RuntimeError instead of waiting for itself for ever.

            once.do(connect, "db.example.com")
        """
        if not callable(fn):  # before anything: a bad call must not use the Once up
            raise TypeError(f"Once.do() needs a callable, got {type(fn).__name__}")
        if self._done:
            return True
        if self._owner == threading.get_ident():
            raise RuntimeError("Once.do() called from inside its own function")
        if not self._mu.lock(timeout=timeout, ctx=ctx):
            return False
        try:
            if not self._done:
                self._owner = threading.get_ident()
                try:
                    fn(*args)
                finally:
                    self._owner = 0
                    self._done = True
        finally:
            self._mu.unlock()
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'done' if self._done else 'not done'}>"


class _OnceValue(Generic[_T]):
    """A function that calls `fn` once and then answers from memory (see `once_value`)."""

    __slots__ = ("_fn", "_name", "_mu", "_done", "_value", "_exc", "_owner", "_keep_value")

    def __init__(self, fn: Callable[[], _T], keep_value: bool) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self._fn: Callable[[], _T] | None = fn
        self._name = getattr(fn, "__qualname__", None) or repr(fn)
        self._mu = Mutex()
        self._done = False
        self._value: Any = None
        self._exc: BaseException | None = None
        self._owner = 0
        self._keep_value = keep_value

    def __call__(self) -> _T:
        if not self._done:
            self._run()
        if self._exc is not None:
            raise self._exc
        return self._value

    def _run(self) -> None:
        if self._owner == threading.get_ident():
            raise RuntimeError(f"{self._name}() called from inside itself")
        with self._mu:
            if self._done:
                return
            fn, self._fn = self._fn, None  # dropped whatever happens
            self._owner = threading.get_ident()
            try:
                value = fn()  # type: ignore[misc]
                if self._keep_value:
                    self._value = value
            except BaseException as exc:  # re-raised on every call, as Go re-panics
                self._exc = exc
            finally:
                self._owner = 0
                self._done = True

    def __repr__(self) -> str:
        state = "done" if self._done else "not called yet"
        return f"<once {self._name} {state}>"


def once_func(fn: Callable[[], object]) -> Callable[[], None]:
    """Go's `sync.OnceFunc`: a function that calls `fn()` the first time only.

    Every call returns None once `fn` has run; concurrent first calls wait for the one that runs
    it. If `fn` raised, every call raises that same exception. The reference to `fn` is dropped
    after the first call.

        init = gochan.once_func(setup_logging)
        init()
        init()   # setup_logging ran once
    """
    return _OnceValue(fn, keep_value=False)  # type: ignore[return-value]  # it returns None


def once_value(fn: Callable[[], _T]) -> Callable[[], _T]:
    """Go's `sync.OnceValue`: a function that calls `fn()` the first time and returns its value
    on every call.

    Concurrent first calls wait for the one that runs `fn`. If `fn` raised, every call raises that
    same exception. The reference to `fn` is dropped after the first call.

        settings = gochan.once_value(load_settings)
        assert settings() is settings()
    """
    return _OnceValue(fn, keep_value=True)


class Map(Generic[_K, _V]):
    """Go's `sync.Map`: a dict that several threads can update with atomic compound operations.

    Keys are compared with ``==`` (as dict keys are); `load`, `store` and `delete` are single
    dict operations, and the read-modify-write ones (`load_or_store`, `swap`,
    `compare_and_swap`, `load_and_delete`) hold an internal lock, so each is atomic. A key whose
    ``__eq__`` or ``__hash__`` uses the same Map would deadlock: don't.

        m = gochan.Map()
        actual, loaded = m.load_or_store("k", 1)   # (1, False): stored
        actual, loaded = m.load_or_store("k", 2)   # (1, True): already there
    """

    __slots__ = ("_data", "_mu")

    def __init__(self) -> None:
        self._data: dict[_K, _V] = {}
        self._mu = Mutex()

    def load(self, key: _K) -> tuple[_V | None, bool]:
        """The value for `key` and True, or (None, False) if there is none.

            value, ok = m.load("k")
        """
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return None, False
        return value, True

    def store(self, key: _K, value: _V) -> None:
        """Set the value for `key`.

            m.store("k", 1)
        """
        with self._mu:
            self._data[key] = value

    def load_or_store(self, key: _K, value: _V) -> tuple[_V, bool]:
        """The existing value for `key` and True; or, if there is none, store `value` and return
        it with False.

            conn, loaded = pool.load_or_store(host, new_conn)
        """
        with self._mu:
            actual = self._data.get(key, _MISSING)
            if actual is not _MISSING:
                return actual, True
            self._data[key] = value
            return value, False

    def load_and_delete(self, key: _K) -> tuple[_V | None, bool]:
        """Remove `key`, returning its value and True, or (None, False) if it was absent.

            value, ok = m.load_and_delete("k")
        """
        with self._mu:
            value = self._data.pop(key, _MISSING)
        if value is _MISSING:
            return None, False
        return value, True

    def delete(self, key: _K) -> None:
        """Remove `key` if present.

            m.delete("k")
        """
        with self._mu:
            self._data.pop(key, None)

    def swap(self, key: _K, value: _V) -> tuple[_V | None, bool]:
        """Store `value` for `key`; return the previous value and whether there was one.

            previous, loaded = m.swap("k", 2)
        """
        with self._mu:
            previous = self._data.get(key, _MISSING)
            self._data[key] = value
        if previous is _MISSING:
            return None, False
        return previous, True

    def compare_and_swap(self, key: _K, old: _V, new: _V) -> bool:
        """Store `new` for `key` if its value now equals `old` (``==``); return whether it did.

            m.store("hits", 1)
            assert m.compare_and_swap("hits", 1, 2)
        """
        with self._mu:
            current = self._data.get(key, _MISSING)
            if current is _MISSING or not (current == old):
                return False
            self._data[key] = new
            return True

    def range(self, fn: Callable[[_K, _V], object]) -> None:
        """Call `fn(key, value)` for each entry, stopping early when it returns False (any other
        value, None included, goes on). The entries are those present when `range` began; `fn`
        may change the Map.

            m.range(lambda k, v: print(k, v))
        """
        if not callable(fn):  # even when the Map is empty
            raise TypeError(f"Map.range() needs a callable, got {type(fn).__name__}")
        with self._mu:
            items = list(self._data.items())
        for key, value in items:
            if fn(key, value) is False:
                return

    def len(self) -> int:
        """The number of entries.

            assert gochan.Map().len() == 0
        """
        return len(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} len={len(self._data)}>"
