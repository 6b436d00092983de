"""The loader's resume point, shared with its DataLoader workers, and the checked form of its state dict.

Resume point: (epoch, consumed, samples). `consumed` is the epoch position where the ranks' shares begin
(0, unless the run resumed on another number of ranks), `samples` the clips this rank has delivered since
(a multiple of the batch size). An iteration of the loader, in the process or in any number of DataLoader
workers, starts from the resume point; whoever makes the epoch's last batch moves the point to the next
epoch. So every new iteration of a DataLoader (workers or not, persistent or not, a Lightning Trainer) is
the next epoch without a `set_epoch` call, and an abandoned iteration (a peek at the first batch) leaves
the point where it was. The point lives in shared memory, inherited by forked workers and handed to
spawned ones.

The state dict (`ClipLoader.state_dict`) is plain ints, strings and lists, so it round-trips through JSON:

    format, epoch, consumed, samples, world_size, rank, settings
    + worker, num_workers, worker_batches     (a DataLoader worker's own state, for StatefulDataLoader)
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.context
from typing import Any

__all__ = ["SharedResume", "check_state", "STATE_FORMAT"]

STATE_FORMAT = 2
_COMMON = ("format", "epoch", "consumed", "samples", "world_size", "rank", "settings")
_WORKER = ("worker", "num_workers", "worker_batches")


class SharedResume:
    """(epoch, consumed, samples) and a flag "DataLoader workers iterated", in shared memory.

    A raw array without a lock: a semaphore made for forked children cannot be reopened by a spawned one,
    and none is needed, since one party writes at a time (the main process between iterations, or the one
    worker that makes an epoch's last batch).
    """

    def __init__(self, values: tuple[int, int, int] = (0, 0, 0), workers: int = 0) -> None:
        self._array = multiprocessing.RawArray("q", [*values, workers])

    def __getstate__(self) -> dict[str, Any]:
        # handed to a DataLoader worker being spawned: the shared array itself; pickled any other way (a
        # copy of the loader), a snapshot that becomes the copy's own
        if multiprocessing.context.get_spawning_popen() is not None:
            return {"array": self._array}
        return {"values": self.get(), "workers": self.workers_iterated}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "array" in state:
            self._array = state["array"]
        else:
            self._array = multiprocessing.RawArray("q", [*state["values"], state["workers"]])

    def get(self) -> tuple[int, int, int]:
        return int(self._array[0]), int(self._array[1]), int(self._array[2])

    def set(self, values: tuple[int, int, int]) -> None:
        self._array[0], self._array[1], self._array[2] = values
        self._array[3] = 0

    def advance(self, start: tuple[int, int, int], epoch: int) -> None:
        """The epoch that began at `start` is made: the next one starts at its beginning (unless the point
        was moved meanwhile, by `load_state_dict` or `set_epoch`)."""
        if self.get() == start:
            self._array[0], self._array[1], self._array[2] = epoch + 1, 0, 0

    def mark_workers(self, iterated: bool) -> None:
        self._array[3] = int(iterated)

    @property
    def workers_iterated(self) -> bool:
        return bool(self._array[3])


def _int(state: dict[str, Any], key: str, low: int = 0, high: int | None = None) -> int:
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"loader state: {key!r} must be an int, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"loader state: {key} = {value} is out of range; it must be {allowed}")
    return value


def check_state(state: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Keys, types and settings of a state dict, or a ValueError naming what is wrong. Ranges that depend
    on the epoch's size are checked by the loader."""
    if not isinstance(state, dict):
        raise ValueError(f"loader state must be a dict (from ClipLoader.state_dict()), got {type(state).__name__}")
    missing = [k for k in _COMMON if k not in state]
    if missing:
        raise ValueError(f"loader state lacks {missing} (it has {sorted(state)}); pass what state_dict(), "
                         f"state_from_batch() or a StatefulDataLoader returned")
    unknown = sorted(set(state) - set(_COMMON) - set(_WORKER))
    if unknown:
        raise ValueError(f"loader state has unknown keys {unknown}")
    if state["format"] != STATE_FORMAT:
        raise ValueError(f"loader state has format {state['format']!r}; this loader reads format {STATE_FORMAT}")
    for key in ("epoch", "consumed", "samples", "rank"):
        _int(state, key)
    _int(state, "world_size", 1)
    _int(state, "rank", 0, state["world_size"] - 1)
    has_worker = [k in state for k in _WORKER]
    if any(has_worker) and not all(has_worker):
        raise ValueError(f"loader state has some of {list(_WORKER)} but not all")
    if all(has_worker):
        _int(state, "num_workers", 1)
        _int(state, "worker", 0, state["num_workers"] - 1)
        _int(state, "worker_batches")
    saved = state["settings"]
    if not isinstance(saved, dict):
        raise ValueError(f"loader state: 'settings' must be a dict, got {type(saved).__name__}")
    diff = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
    extra = sorted(set(saved) - set(settings))
    if diff or extra:
        shown = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"loader state was saved with other settings: {shown}"
                         + (f"; unknown settings {extra}" if extra else ""))
    return state
