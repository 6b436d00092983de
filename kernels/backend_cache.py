"""Measured backend choice: time each candidate once per (op, shape, dtype, device), remember the winner.

The winners live in one JSON file under `~/.cache/babyfast/` (`BABYFAST_CACHE_DIR` overrides the folder),
keyed by the op's signature plus torch / triton versions and the device name, so an upgrade or another
GPU measures again. Writes go to a temporary file that replaces the old one (`os.replace`), so a reader
never sees half a file and concurrent writers lose at most each other's newest entry.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional

import torch

from ._runtime import device_name, triton_version

__all__ = ["cache_path", "choose", "time_call", "cached_choice", "clear_memory_cache", "measurements_made"]

log = logging.getLogger(__name__)

_FILE_NAME = "backends.json"
_lock = threading.Lock()
_memory: Dict[str, dict] = {}
_loaded_from: Optional[Path] = None
_measurements = 0


def cache_path() -> Path:
    """The JSON file that holds the measured choices."""
    folder = os.environ.get("BABYFAST_CACHE_DIR")
    base = Path(folder).expanduser() if folder else Path.home() / ".cache" / "babyfast"
    return base / _FILE_NAME


def measurements_made() -> int:
    """How many candidate sets this process has timed (a cached choice does not count)."""
    return _measurements


def clear_memory_cache() -> None:
    """Forget the in-process copy, so the next lookup reads the file again."""
    global _loaded_from
    with _lock:
        _memory.clear()
        _loaded_from = None


def _read(path: Path) -> Dict[str, dict]:
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("backend cache %s is unreadable (%s); measuring again", path, e)
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("choices"), dict):
        log.warning("backend cache %s has no 'choices' table; measuring again", path)
        return {}
    return data["choices"]


def _write(path: Path, entries: Dict[str, dict]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_read(path), **entries}  # keep what other processes wrote since we read
        fd, tmp = tempfile.mkstemp(prefix=".backends-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": 1, "choices": merged}, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        # a read-only home must not stop training: the choice still holds for this process
        log.warning("could not write backend cache %s: %s", path, e)


def _full_key(op: str, signature: str, device: torch.device) -> str:
    return f"{op}|{signature}|{device_name(device)}|torch {torch.__version__}|triton {triton_version()}"


def cached_choice(op: str, signature: str, device: torch.device) -> Optional[str]:
    """The backend measured earlier for this key, or None."""
    global _loaded_from
    path = cache_path()
    with _lock:
        if _loaded_from != path:
            _memory.clear()
            _memory.update(_read(path))
            _loaded_from = path
        entry = _memory.get(_full_key(op, signature, device))
    return entry.get("backend") if entry else None


def time_call(fn: Callable[[], object], device: torch.device, iters: int = 5) -> float:
    """Median wall time of `fn()` in milliseconds, after one warm-up call (compiles, autotunes)."""
    fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def choose(op: str, signature: str, device: torch.device, candidates: Mapping[str, Callable[[], object]],
           fallback: str) -> str:
    """Pick the fastest of `candidates` (name → a call that runs it once) for this key.

    A cached winner is returned when it is still a candidate. Candidates that raise are skipped (logged).
    While measuring is impossible (inside `torch.compile` tracing or CUDA graph capture) `fallback` is
    returned, uncached. With a single candidate nothing is timed.
    """
    global _measurements
    names = list(candidates)
    if not names:
        raise ValueError(f"{op}: no backend can run this call (signature {signature}, device {device})")
    if len(names) == 1:
        return names[0]
    hit = cached_choice(op, signature, device)
    if hit in candidates:
        return hit
    if torch.compiler.is_compiling() or (device.type == "cuda" and torch.cuda.is_current_stream_capturing()):
        return fallback if fallback in candidates else names[0]

    timings: Dict[str, float] = {}
    errors: Dict[str, str] = {}
    for name in names:
        try:
            timings[name] = time_call(candidates[name], device)
        except Exception as e:  # an unsupported shape/dtype for that backend: skip it, say why
            errors[name] = f"{type(e).__name__}: {e}"
            log.info("%s: backend %s skipped for %s: %s", op, name, signature, errors[name])
    _measurements += 1
    if not timings:
        raise RuntimeError(f"{op}: every backend failed for {signature} on {device}: {errors}")
    best = min(timings, key=timings.__getitem__)
    log.info("%s: chose %s for %s (ms: %s)", op, best, signature,
             ", ".join(f"{k} {v:.3f}" for k, v in timings.items()))
    entry = {"backend": best, "ms": timings, "skipped": errors, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    key = _full_key(op, signature, device)
    with _lock:
        _memory[key] = entry
        _write(cache_path(), {key: entry})
    return best
