"""Where the Triton kernels can run: CUDA, the Triton interpreter (CPU tests), or nowhere.

The interpreter is chosen by Triton when `@triton.jit` runs, i.e. when a kernel module is imported, so
the answer is read once from the environment and the kernel modules are imported lazily after it.
"""
from __future__ import annotations

import functools
import os

import torch

__all__ = ["interpreting", "triton_available", "triton_version", "device_name", "check_triton_device",
           "fix_interpreter_scalars", "poisoned_outputs", "new_output", "autotune_enabled"]


def interpreting() -> bool:
    """True when Triton kernels run through the CPU interpreter (`TRITON_INTERPRET=1`)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def autotune_enabled() -> bool:
    """False when `BABYFAST_AUTOTUNE=0`: the Triton kernels then use one default config, no tuning runs."""
    return os.environ.get("BABYFAST_AUTOTUNE", "1").lower() not in ("0", "false", "off", "no")


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """True when `import triton` works (the model still runs without it, through the torch backends)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def triton_version() -> str:
    """Installed triton version, or "none"."""
    if not triton_available():
        return "none"
    import triton

    return triton.__version__


def device_name(device: torch.device) -> str:
    """A stable name of the device for cache keys ("cpu" or the CUDA device's marketing name)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def triton_runs_on(device: torch.device) -> bool:
    """Whether a Triton kernel can run on tensors of `device` in this process."""
    if not triton_available():
        return False
    if interpreting():
        return True
    return device.type == "cuda"


def check_triton_device(device: torch.device, what: str) -> None:
    """Raise a clear error when the Triton kernels cannot run on `device`."""
    if not triton_available():
        raise RuntimeError(f"{what}: backend 'triton' needs the triton package, which is not installed; "
                           "use a torch backend ('sdpa' / 'math' for attention, 'torch' for patchify)")
    if interpreting() or device.type == "cuda":
        return
    raise RuntimeError(
        f"{what}: backend 'triton' needs CUDA tensors, got tensors on {device}; on the CPU either set "
        "TRITON_INTERPRET=1 before importing babyfast.kernels (slow, for tests) or use a torch backend "
        "('sdpa' / 'math' for attention, 'torch' for patchify), which backend='auto' picks on the CPU")


_interpreter_fixed = False


def fix_interpreter_scalars() -> None:
    """Let the Triton interpreter run loops with run-time bounds under numpy >= 2.4.

    The interpreter (triton <= 3.6) holds scalars as 1-element arrays and turns them into Python ints with
    `int(array)`, which numpy 2.4 rejects ("only 0-dimensional arrays can be converted"), so every
    `for i in range(0, n, BLOCK)` with a run-time `n` fails (triton-lang/triton#9171, fixed upstream
    after 3.6). We re-define that one conversion on top of the interpreter's own patching; it is a no-op
    on a fixed triton and is only ever applied while interpreting.
    """
    global _interpreter_fixed
    if _interpreter_fixed or not interpreting():
        return
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor

    def patch_lang_tensor(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interpreter._patch_lang_tensor = patch_lang_tensor
    _interpreter_fixed = True


_poison = False


class poisoned_outputs:
    """Context manager for tests: kernel outputs start as NaN instead of uninitialized memory.

    An element the kernel forgot to write then shows up as NaN instead of as a plausible stale value.
    """

    def __enter__(self) -> "poisoned_outputs":
        global _poison
        self._previous = _poison
        _poison = True
        return self

    def __exit__(self, *exc) -> None:
        global _poison
        _poison = self._previous


def new_output(like: torch.Tensor = None, shape=None, dtype: torch.dtype = None, device=None) -> torch.Tensor:
    """`torch.empty_like(like)` (keeping its strides) or `torch.empty(shape)`; NaN-filled under poisoning."""
    if like is not None:
        out = torch.empty_like(like)
    else:
        out = torch.empty(shape, dtype=dtype, device=device)
    if _poison and out.is_floating_point():
        out.fill_(float("nan"))
    return out
