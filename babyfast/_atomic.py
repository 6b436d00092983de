"""Atomic file writes for everything babyfast leaves on disk (stores, corpora, probes, checkpoints, reports).

A file is written to a temporary name in its own folder and moved over the final name with
`os.replace` once it is complete, so a reader (or a crash, or Ctrl-C) never sees a half-written file:
the final name holds the old content or the new, nothing in between. Temporary names start with a dot
and end with `.tmp` (`.<name>.<pid>.<token>.tmp`); `temp_target` recognises them, so that a later run
can tell a crashed run's leftovers from files that are not ours.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "commit", "temp_path", "temp_target", "write_bytes", "write_text"]

_SUFFIX = ".tmp"


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside `path` (not created)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{_SUFFIX}")


def temp_target(name: str) -> str | None:
    """The final file name a temporary name of `temp_path` stands for, or None if `name` is not one."""
    if not (name.startswith(".") and name.endswith(_SUFFIX)):
        return None
    parts = name[1:-len(_SUFFIX)].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 8:
        return None
    try:
        int(parts[2], 16)
    except ValueError:
        return None
    return parts[0] or None


def commit(tmp: str | os.PathLike, path: str | os.PathLike, fsync: bool = True) -> Path:
    """Move the complete temporary file `tmp` (a name from `temp_path`) over `path`; returns the path.

    For writers that want a file name rather than a file object (an encoder, a library's `save`): they
    write to `temp_path(path)`, then call this. `fsync`: flush `tmp` to the disk before the rename.
    """
    if fsync:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, path)
    return Path(path)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", fsync: bool = True, **kwargs) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on a clean exit it replaces `path`.

    `mode` is "w" (text; `kwargs` go to `open`, e.g. `newline=""`) or "wb". On an exception the
    temporary file is removed and `path` is left as it was. `fsync`: flush the data to the disk before
    the rename, so that after a power cut `path` holds the old or the new content, never an empty file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode {mode!r}; allowed: 'w', 'wb'")
    path = Path(path)
    while True:
        tmp = temp_path(path)
        try:
            # 0o666 minus the umask, as open() would give the final file
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with open(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        commit(tmp, path, fsync=False)  # synced above, through the open file
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_open(path, "wb", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, fsync: bool = True) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_open(path, "w", fsync=fsync, encoding="utf-8") as f:
        f.write(text)
    return Path(path)
