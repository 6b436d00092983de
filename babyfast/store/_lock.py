"""One writer per store: the lock an ingest holds for its whole run.

The lock is an exclusive `flock` on `STORE/.lock`. The kernel drops it when its holder ends, however it
ends (kill -9, OOM, a crash), so a dead run's lock is never in the way and taking it over needs no
guess about whether a pid is still alive: a lock that can be taken is free. The file's content only says
who holds it (pid, host, since when, command) so that a second ingest can say whom it waits for; a holder
that ended cleanly empties it, so content found by a new holder is that of a run that did not end cleanly.
The file is never removed: two runs locking two different inodes of one name would both "hold" it.
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import logging
import math
import os
import platform
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from babyfast.store import layout as fmt

log = logging.getLogger(__name__)

__all__ = ["StoreLock", "StoreLocked"]


class StoreLocked(fmt.StoreError):
    """Another ingest holds the store's lock; `holder` is what it wrote about itself."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def describe(holder: dict[str, Any]) -> str:
    """Who holds (or held) a lock, from what it wrote in the lock file."""
    if not holder:
        return "an ingest that has not said who it is yet"
    if holder.get("unreadable"):
        return "an ingest whose lock file cannot be read"
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, since {holder.get('since', '?')} "
            f"({holder.get('command', '?')})")


class StoreLock:
    """Exclusive write access to a store for the length of a `with` block.

    wait: None refuses at once when another ingest holds the lock (StoreLocked); a number of seconds
    waits that long for it (math.inf: as long as it takes).

    >>> with StoreLock("store.zarr", wait=None):  # doctest: +SKIP
    ...     ...  # the only writer of store.zarr
    """

    def __init__(self, store: str | os.PathLike[str], wait: float | None = None, poll: float = 0.5) -> None:
        if wait is not None and not (wait >= 0):
            raise ValueError(f"wait must be None or a number of seconds >= 0, got {wait!r}")
        self.store = Path(store)
        self.path = self.store / fmt.LOCK_FILE
        self.wait = wait
        self.poll = poll
        self._fd: int | None = None
        self.previous: dict[str, Any] = {}  # what a run that did not end cleanly left in the file

    def _read_holder(self, fd: int) -> dict[str, Any]:
        try:
            data = os.pread(fd, 65536, 0)
            holder = json.loads(data) if data.strip() else {}
        except (OSError, ValueError):
            return {"unreadable": True}
        return holder if isinstance(holder, dict) else {"unreadable": True}

    def acquire(self) -> StoreLock:
        with fmt.writing(self.path, "take the store's lock"):
            self.store.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            self._lock(fd)
            self.previous = self._read_holder(fd)
            me = {"pid": os.getpid(), "host": platform.node(),
                  "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "command": " ".join([os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]])[:500]}
            with fmt.writing(self.path, "write the store's lock"):
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(me).encode() + b"\n", 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if self.previous:
            log.warning("%s: took over the lock of %s, which ended without releasing it; its partial writes "
                        "are cleaned up", self.store, describe(self.previous))
        return self

    def _lock(self, fd: int) -> None:
        deadline = None if self.wait is None else time.monotonic() + self.wait
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise fmt.StoreWriteError(self.path, "lock the store", f"{e.strerror} (the file system may "
                                                                            f"not support file locks)") from e
            holder = self._read_holder(fd)
            if deadline is None or time.monotonic() >= deadline:
                waited = "" if not self.wait else f" (waited {self.wait:g} s)"
                raise StoreLocked(f"{self.store}: another ingest is writing this store{waited}: {describe(holder)}. "
                                  f"Run again when it has finished, or pass --wait to wait for it", holder)
            if not said:
                log.warning("%s: waiting for %s to finish writing the store", self.store, describe(holder))
                said = True
            time.sleep(self.poll if math.isinf(deadline) else max(0.0, min(self.poll, deadline - time.monotonic())))

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # a clean end: the next holder finds nothing to report
        except OSError:
            log.warning("%s: could not empty the lock file", self.path)
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
