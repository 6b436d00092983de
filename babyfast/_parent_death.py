"""Worker processes that end with the process that started them.

A worker of a killed run (kill -9, the OOM killer) must not go on writing: an ingest's worker would
publish videos into a store that the next run, now holding the store's lock, believes only it writes;
a corpus worker would write into a folder the next run is claiming. `babyfast._pool` starts every
worker with this. On Linux the kernel sends the worker
SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG); elsewhere a thread of the worker watches its
parent's pid and ends the worker when it changes.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def _prctl_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols, libc's among them
        return libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int, interval: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def die_with_parent(parent: int, interval: float = 0.5) -> None:
    """Make this process end when `parent` (its parent's pid, taken by the parent) ends.

    Call it first thing in a worker (a ProcessPoolExecutor or Manager initializer). A parent that died
    before the call is caught by comparing pids: the worker then ends at once.
    """
    if not _prctl_pdeathsig(signal.SIGKILL):
        log.debug("no parent-death signal here: a thread watches pid %d", parent)
        threading.Thread(target=_watch, args=(parent, interval), name="babyfast-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent was already gone when the signal was asked for
        os._exit(1)
