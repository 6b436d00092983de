"""What a forked child must build again: the one place babyfast notices a fork.

fork() copies a process's memory but only the thread that called it, so a forked DataLoader worker
inherits thread pools and C++ readers whose threads do not exist there. An object holding such things
registers itself with `rebuild_after_fork`; right after a fork, in the child, its `_after_fork()` method
drops them, and the object builds fresh ones the next time it needs them. The parent is untouched, and
processes started with "spawn" receive pickled copies, which hold none of it to begin with.

Objects are held weakly: registering never keeps one alive.
"""
from __future__ import annotations

import os
import threading
import weakref
from typing import Any

__all__ = ["rebuild_after_fork"]

# id -> weak reference; keyed by id so that objects need not be hashable
_held: dict[int, weakref.ref] = {}
_lock = threading.Lock()


def rebuild_after_fork(obj: Any) -> None:
    """Call `obj._after_fork()` in every child forked from now on (while `obj` lives)."""
    key = id(obj)

    def forget(_ref: weakref.ref, key: int = key) -> None:
        with _lock:
            if _held.get(key) is _ref:
                del _held[key]

    with _lock:
        _held[key] = weakref.ref(obj, forget)


def _in_child() -> None:
    # the child has one thread, this one; the lock may have been held by another thread of the parent
    global _lock
    _lock = threading.Lock()
    for ref in list(_held.values()):
        obj = ref()
        if obj is not None:
            obj._after_fork()


os.register_at_fork(after_in_child=_in_child)
