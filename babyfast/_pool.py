"""Jobs on worker processes with one progress bar: what ingest, corpus rendering and probe writing share.

`run_jobs(fn, jobs, workers, on_done, bar)` calls `fn(job, report)` for every job; `report(n)` adds n to
the bar from wherever `fn` runs. With `workers` <= 1 the jobs run one after another in this process.
Otherwise they run on a pool of `workers` processes that are

- started with "spawn", which is safe beside torch's and CUDA's threads (a script calling this needs the
  usual `if __name__ == "__main__":` guard);
- ended with this process, even by kill -9 (`babyfast._parent_death`), so that no worker goes on writing
  into a store or a folder that a later run believes only it writes;
- reporting progress onto one queue, owned by a manager process: a worker that dies in the middle of a
  put (a crash in FFmpeg, the OOM killer) cannot leave the queue locked for the others. This process
  moves what arrives onto the bar between results.

`on_done(job, future)` runs in this process as each job finishes (jobs finishing together in the order
they were given): `future.result()` is the job's result or raises its exception; after a worker died,
every job not finished holds `BrokenProcessPool` (`is_broken`), since the pool cannot go on. When
`on_done` raises, or on Ctrl-C, the jobs not started are cancelled and those running are waited for
(nothing is still writing when this returns), and the exception goes on.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.managers import SyncManager
from typing import Any, Protocol

from babyfast._parent_death import die_with_parent

__all__ = ["Bar", "is_broken", "run_jobs"]

_POLL_S = 0.2  # how often the bar is brought up to date while no job finishes


class Bar(Protocol):
    """What `run_jobs` needs of a progress bar (a tqdm has it)."""

    def update(self, n: int) -> Any: ...


def run_jobs(fn: Callable[[Any, Callable[[int], None]], Any], jobs: Sequence[Any], workers: int,
             on_done: Callable[[Any, Future], None], bar: Bar | None = None,
             in_process: bool | None = None) -> None:
    """Run `fn(job, report)` for every job, on `workers` processes (see the module docstring).

    `in_process`: run the jobs here, one after another (default: when `workers` <= 1). False runs even
    one worker in a process of its own, so that a job that kills its process does not kill this one.
    """
    if in_process if in_process is not None else workers <= 1:
        report = bar.update if bar is not None else _ignore
        for job in jobs:
            f: Future = Future()
            try:
                f.set_result(fn(job, report))
            except Exception as e:  # noqa: BLE001  (handed to on_done, as a worker's would be)
                f.set_exception(e)
            on_done(job, f)
        return
    ctx = mp.get_context("spawn")
    with _progress_queue(ctx) as q, ProcessPoolExecutor(
            max(1, workers), mp_context=ctx, initializer=_start_worker, initargs=(os.getpid(), q)) as pool:
        order = {pool.submit(_call, fn, job): i for i, job in enumerate(jobs)}
        pending = set(order)
        try:
            while pending:
                done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                _drain(q, bar)
                for f in sorted(done, key=order.__getitem__):
                    on_done(jobs[order[f]], f)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        _drain(q, bar)


def is_broken(f: Future) -> bool:
    """The job did not finish because a worker process died (the pool broke under it)."""
    return isinstance(f.exception(), BrokenProcessPool)


def _ignore(n: int) -> None:
    pass


@contextmanager
def _progress_queue(ctx: Any) -> Iterator[Any]:
    manager = SyncManager(ctx=ctx)
    manager.start(die_with_parent, (os.getpid(),))
    with manager:
        yield manager.Queue()


def _drain(q: Any, bar: Bar | None) -> None:
    while True:
        try:
            n = q.get_nowait()
        except queue.Empty:
            return
        if bar is not None:
            bar.update(n)


# ---- in the worker processes

_queue: Any = None


def _start_worker(parent: int, q: Any) -> None:
    global _queue
    die_with_parent(parent)
    _queue = q


def _call(fn: Callable[[Any, Callable[[int], None]], Any], job: Any) -> Any:
    return fn(job, _queue.put if _queue is not None else _ignore)
