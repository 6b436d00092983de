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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from ._runtime import device_name, triton_version

__all__ = ["cache_path", "auto", "choose", "time_call", "cached_choice", "clear_memory_cache", "measurements_made"]

log = logging.getLogger(__name__)

_FILE_NAME = "backends.json"
_lock = threading.Lock()
_memory: dict[str, dict] = {}
_loaded_from: Path | None = None
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


def _read(path: Path) -> dict[str, dict]:
    try:
        with open(path, encoding="utf-8") as f:
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


def _write(path: Path, entries: dict[str, dict]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_read(path), **entries}  # keep what other processes wrote since we read
        # its own temp-then-replace, not babyfast._atomic: kernels import only torch and triton (DESIGN.md)
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


def cached_choice(op: str, signature: str, device: torch.device) -> str | None:
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


def choose(op: str, signature: str, device: torch.device, names: Sequence[str],
           make_runner: Callable[[str], Callable[[], object]], fallback: str | None = None) -> str:
    """Pick the fastest of the backends `names` for this key; `make_runner(name)` builds a call that runs
    one of them once, and is only called when measuring (never on a cache hit).

    A cached winner is returned when it is still a candidate. Candidates that raise are skipped (logged).
    While measuring is impossible (inside `torch.compile` tracing or CUDA graph capture) `fallback` (else the
    first name) is returned, uncached. With a single candidate nothing is timed.
    """
    global _measurements
    names = list(names)
    if not names:
        raise ValueError(f"{op}: no backend can run this call (signature {signature}, device {device})")
    if len(names) == 1:
        return names[0]
    hit = cached_choice(op, signature, device)
    if hit in names:
        return hit
    if torch.compiler.is_compiling() or (device.type == "cuda" and torch.cuda.is_current_stream_capturing()):
        return fallback if fallback in names else names[0]

    timings: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            # built here, one at a time: a candidate's input copies live only while it is timed
            timings[name] = time_call(make_runner(name), device)
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


def _runner(name: str, run: Callable[[str, Sequence[torch.Tensor | None]], torch.Tensor],
            inputs: Sequence[torch.Tensor | None], grad: bool,
            grad_output: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], object]:
    if not grad:
        def forward():
            with torch.no_grad():
                return run(name, inputs)
        return forward
    # forward + backward on detached copies, so the caller's graph is untouched
    copies = [x.detach().clone().requires_grad_(x.requires_grad) if x is not None else None for x in inputs]
    wanted = [x for x in copies if x is not None and x.requires_grad]
    dout: list[torch.Tensor] = []

    def forward_backward():
        out = run(name, copies)
        if not dout:  # made in the (untimed) warm-up call
            dout.append(grad_output(out))
        torch.autograd.grad(out, wanted, dout[0])
    return forward_backward


_F = TypeVar("_F", bound=Callable[..., Any])


def _compiler_disable(fn: _F) -> _F:
    """`torch.compiler.disable(fn)`, keeping `fn`'s signature for the type checker."""
    return torch.compiler.disable(fn)  # pyright: ignore[reportReturnType]


# run eagerly even inside a torch.compile'd model: the choice reads a file and times real kernels
@_compiler_disable
def auto(op: str, description: str, device: torch.device, names: Sequence[str],
         run: Callable[[str, Sequence[torch.Tensor | None]], torch.Tensor],
         inputs: Sequence[torch.Tensor | None],
         grad_output: Callable[[torch.Tensor], torch.Tensor] = torch.ones_like) -> str:
    """What `backend="auto"` runs for this call: the cached or measured fastest of `names`.

    run(name, inputs) runs backend `name` with `inputs` (the call's differentiable tensors, or None for an
    absent one) standing in for the caller's and returns the output. When autograd would record the call
    (grad enabled, some input requiring grad), candidates are timed forward + backward on copies of
    `inputs`, against `grad_output(out)`, and the key says `grad=1`; else forward only, `grad=0`. The
    signature is `description` plus that flag. Candidates are built only when measuring.
    """
    grad = torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in inputs)
    return choose(op, f"{description} grad={int(grad)}", device, names,
                  lambda name: _runner(name, run, inputs, grad, grad_output))
