"""Where and how the Triton kernels run: CUDA or the Triton interpreter, and which block config a launch uses.

Interpreter or compiler: Triton decides when `@triton.jit` decorates a kernel, i.e. when a kernel module
(`_attention_triton`, `_patchify_triton`) is imported, from `TRITON_INTERPRET` at that moment; changing the
variable later changes nothing. So we do not read the environment: each kernel module reports the kind of
kernel object Triton gave it (`record_kernel_mode`) when it is imported, and `interpreting()` returns that
answer (importing a kernel module first if none is loaded yet).

Launch policy, shared by every kernel (`KernelSpec` + `launch`): a config pinned by `forced_configs` (tests
run every config this way), else the interpreter's fixed small blocks, else (`BABYFAST_AUTOTUNE=0`) the
kernel's default config, else the autotuner. Pinned and default configs pass the same shared-memory
estimate that prunes the autotune list, so none of them reaches the compiler only to fail with
`OutOfResources` at launch: a default that does not fit is replaced by the next config that does, a pinned
one raises `ConfigDoesNotFit`, naming it. Inside `captured_launches` (process-wide) nothing runs: each launch
is recorded with its arguments, for `compile_check` to compile for a GPU that is not here.

Importing this module does not import triton (the torch backends work without it).
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import torch

__all__ = ["interpreting", "record_kernel_mode", "triton_available", "triton_version", "device_name",
           "check_triton_device", "fix_interpreter_scalars", "poisoned_outputs", "new_output", "autotune_enabled",
           "SUPPORTED_HEAD_DIMS", "dot_precision", "KernelSpec", "launch", "forced_configs", "ConfigDoesNotFit",
           "shared_memory_limit", "config_fits", "prune_to_fit", "run_plain", "captured_launches", "Launch"]

# head dims of the Triton flash attention (the ViT ones, plus 32 for small models and tests)
SUPPORTED_HEAD_DIMS = (32, 64, 80, 96, 128)


def dot_precision(dtype: torch.dtype) -> str:
    """`tl.dot` input precision: fp32 inputs are the reference-grade path (no tf32 rounding); fp16/bf16 inputs
    are exact on the tensor cores whatever the setting."""
    return "ieee" if dtype == torch.float32 else "tf32"


# ----------------------------------------------------------------------------------------------------
# interpreter or compiler

_interpret: bool | None = None


def record_kernel_mode(kernel: object) -> bool:
    """Called by each kernel module right after its `@triton.jit` definitions, with one of its kernels.

    Returns (and remembers) whether Triton made it an interpreted function. Two kernel modules imported
    under different `TRITON_INTERPRET` settings cannot work together, so that raises.
    """
    global _interpret
    from triton.runtime.interpreter import InterpretedFunction

    mode = isinstance(kernel, InterpretedFunction)
    if _interpret is None:
        _interpret = mode
    elif _interpret != mode:
        raise RuntimeError(
            f"babyfast.kernels: {getattr(kernel, '__name__', kernel)} was built for the "
            f"{'interpreter' if mode else 'compiler'} but the kernels loaded before it for the "
            f"{'interpreter' if _interpret else 'compiler'}: TRITON_INTERPRET changed between imports; set it "
            "once, before the first use of the Triton backends")
    return mode


def interpreting() -> bool:
    """True when this process's Triton kernels run through the CPU interpreter (they were decorated while
    `TRITON_INTERPRET=1`); False when they are compiled, or when triton is not installed.

    Decided once, from the kernel objects themselves; if no kernel module is loaded yet, this loads one.
    """
    if _interpret is None:
        if not triton_available():
            return False
        from . import _attention_triton  # noqa: F401  (its @triton.jit fixes the answer)
    return bool(_interpret)


def autotune_enabled() -> bool:
    """False when `BABYFAST_AUTOTUNE=0`: the Triton kernels then use one default config, no tuning runs."""
    return os.environ.get("BABYFAST_AUTOTUNE", "1").lower() not in ("0", "false", "off", "no")


@functools.cache
def triton_available() -> bool:
    """True when `import triton` works (the model still runs without it, through the torch backends)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
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


def check_triton_device(device: torch.device, what: str) -> None:
    """Raise a clear error when the Triton kernels cannot run on `device`."""
    if not triton_available():
        raise RuntimeError(f"{what}: backend 'triton' needs the triton package, which is not installed; "
                           "use a torch backend ('sdpa' / 'math' for attention, 'torch' for patchify)")
    if interpreting() or device.type == "cuda":
        return
    raise RuntimeError(
        f"{what}: backend 'triton' needs CUDA tensors, got tensors on {device}; on the CPU either set "
        "TRITON_INTERPRET=1 before the first use of the Triton backends (slow, for tests) or use a torch "
        "backend ('sdpa' / 'math' for attention, 'torch' for patchify), which backend='auto' picks on the CPU")


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


# ----------------------------------------------------------------------------------------------------
# outputs


_poison = False


class poisoned_outputs:
    """Context manager for tests: kernel outputs start as NaN instead of uninitialized memory.

    An element the kernel forgot to write then shows up as NaN instead of as a plausible stale value.
    """

    def __enter__(self) -> poisoned_outputs:
        global _poison
        self._previous = _poison
        _poison = True
        return self

    def __exit__(self, *exc) -> None:
        global _poison
        _poison = self._previous


def new_output(like: torch.Tensor | None = None, shape=None, dtype: torch.dtype | None = None,
               device=None) -> torch.Tensor:
    """`torch.empty_like(like)` (keeping its strides) or `torch.empty(shape)`; NaN-filled under poisoning."""
    if like is not None:
        out = torch.empty_like(like)
    else:
        out = torch.empty(shape, dtype=dtype, device=device)  # pyright: ignore[reportCallIssue, reportArgumentType]
    if _poison and out.is_floating_point():
        out.fill_(float("nan"))
    return out


# ----------------------------------------------------------------------------------------------------
# shared memory


@functools.cache
def _shared_memory_of(index: int) -> int | None:
    try:
        from triton.runtime import driver

        return int(driver.active.utils.get_device_properties(index)["max_shared_mem"])  # pyright: ignore[reportAttributeAccessIssue]
    except Exception:  # another backend or an old driver API: ask torch
        value = getattr(torch.cuda.get_device_properties(index), "shared_memory_per_block_optin", None)
        return int(value) if value else None


def shared_memory_limit(device: torch.device) -> int | None:
    """Bytes of shared memory one program may use on `device` (opt-in maximum), None when unlimited (the
    interpreter, the CPU) or unknown."""
    if interpreting() or device.type != "cuda":
        return None
    return _shared_memory_of(device.index if device.index is not None else torch.cuda.current_device())


# estimate(config, consts, itemsize) -> bytes of shared memory a config needs (the pipelined tiles)
SharedMemoryEstimate = Callable[["object", dict, int], int]
# what the compiler adds to the tiles: barriers, reduction scratch
_SHARED_MEMORY_MARGIN = 1024


def config_fits(estimate: SharedMemoryEstimate, config, consts: dict, itemsize: int, device: torch.device) -> bool:
    """Whether `config` fits the device's shared memory by `estimate` (plus a small margin)."""
    limit = shared_memory_limit(device)
    return limit is None or estimate(config, consts, itemsize) + _SHARED_MEMORY_MARGIN <= limit


def prune_to_fit(estimate: SharedMemoryEstimate, tensor_arg: str,
                 then: Callable[..., list] | None = None, last_resort: Sequence = ()) -> Callable[..., list]:
    """An autotune `early_config_prune`: drop configs that do not fit in shared memory (element size and
    device taken from the argument `tensor_arg`), then apply `then` (same signature) to the rest.

    `last_resort`: small configs (also in the autotune list) kept only when none of the others fits, so
    that GPUs with little shared memory still run, without tuning them everywhere else."""

    def prune(configs, named_args, **kwargs):
        t = named_args[tensor_arg]
        fit = [c for c in configs if config_fits(estimate, c, kwargs, t.element_size(), t.device)]
        kept = [c for c in fit if c not in last_resort] or fit
        if not kept:
            raise RuntimeError(f"no block config fits in the shared memory of {device_name(t.device)} "
                               f"({shared_memory_limit(t.device)} bytes) for {kwargs}")
        return then(kept, named_args, **kwargs) if then is not None else kept

    return prune


# ----------------------------------------------------------------------------------------------------
# launch policy


class ConfigDoesNotFit(RuntimeError):
    """A config pinned with `forced_configs` needs more shared memory than the device has."""


class KernelSpec:
    """One Triton kernel as the launcher sees it.

    name: key for `forced_configs`. raw: the `@triton.jit` kernel; tuned: its `triton.autotune` wrapper.
    configs: the autotune list; default: the config used with `BABYFAST_AUTOTUNE=0`. interpret: the block
    kwargs used on the interpreter. shared_memory: `estimate(config, consts, itemsize)` in bytes.
    adapt: `adapt(config, consts)` swaps a config for one this call can use (e.g. a layout it needs).
    """

    def __init__(self, name: str, raw, tuned, configs: Sequence, default, interpret: dict,
                 shared_memory: SharedMemoryEstimate, adapt: Callable | None = None) -> None:
        self.name = name
        self.raw = raw
        self.tuned = tuned
        self.configs = list(configs)
        self.default = default
        self.interpret = dict(interpret)
        self.shared_memory = shared_memory
        self.adapt = adapt or (lambda config, consts: config)
        _SPECS[name] = self

    def describe(self, config, consts: dict, itemsize: int, device: torch.device) -> str:
        return (f"{self.name} config [{config}] (about {self.shared_memory(config, consts, itemsize)} bytes of "
                f"shared memory, {device_name(device)} has {shared_memory_limit(device)})")


_SPECS: dict[str, KernelSpec] = {}
_forced: dict[str, object] = {}
# (kernel, config, consts) whose compilation ran out of resources although the estimate said it fits
_too_big: set = set()


class forced_configs:
    """Context manager pinning the block config of some kernels by name (attention: "fwd", "dkdv", "dq";
    patchify: "copy", "embed"), e.g. `forced_configs(fwd=config)`; tests run every config this way, since
    autotuning may pick any of them on some GPU."""

    def __init__(self, **configs) -> None:
        self._configs = configs

    def __enter__(self) -> forced_configs:
        unknown = set(self._configs) - set(_SPECS)
        if unknown:
            raise ValueError(f"forced_configs: unknown kernel(s) {sorted(unknown)}; known: {sorted(_SPECS)}")
        self._saved = dict(_forced)
        _forced.update(self._configs)
        return self

    def __exit__(self, *exc) -> None:
        _forced.clear()
        _forced.update(self._saved)


class Launch:
    """A launch recorded by `captured_launches` instead of being run: the kernel (`spec`, or a plain
    `@triton.jit` function), its arguments and constexprs; the block config is the checker's to choose."""

    def __init__(self, kernel, args: tuple, consts: dict, spec: KernelSpec | None = None,
                 itemsize: int = 0) -> None:
        self.kernel, self.args, self.consts, self.spec, self.itemsize = kernel, args, consts, spec, itemsize

    @property
    def name(self) -> str:
        return self.spec.name if self.spec is not None else self.kernel.__name__


_captured: list[Launch] | None = None


class captured_launches:
    """Context manager: Triton launches made inside are recorded (`Launch`), not run.

    With compiled kernels (no `TRITON_INTERPRET`) and no GPU, this lets the host code build the exact
    arguments of every launch, which `compile_check` then compiles for a GPU architecture that is not here.
    """

    def __enter__(self) -> list[Launch]:
        global _captured
        if interpreting():
            raise RuntimeError("captured_launches needs compiled Triton kernels; TRITON_INTERPRET was set when "
                               "they were imported")
        self._saved, _captured = _captured, []
        return _captured

    def __exit__(self, *exc) -> None:
        global _captured
        _captured = self._saved


def run_plain(kernel, grid, args: tuple, consts: dict) -> None:
    """Launch a kernel that has no `KernelSpec` (one fixed config), unless launches are being captured."""
    if _captured is not None:
        _captured.append(Launch(kernel, args, consts))
        return
    kernel[grid](*args, **consts)


def _run(spec: KernelSpec, config, grid_fn, args: tuple, consts: dict) -> None:
    spec.raw[grid_fn(config.kwargs)](*args, **consts, **config.kwargs, num_warps=config.num_warps,
                                     num_stages=config.num_stages)


def launch(spec: KernelSpec, grid_fn, args: tuple, consts: dict, itemsize: int, device: torch.device) -> None:
    """Run `spec`'s kernel with a pinned, the interpreter's, the default or the autotuned config.

    grid_fn(meta) -> grid, from the config's block sizes. itemsize: element size of the tensors the
    shared-memory estimate counts.
    """
    import triton

    if _captured is not None:
        _captured.append(Launch(spec.raw, args, consts, spec, itemsize))
        return
    if interpreting():
        fix_interpreter_scalars()
    if spec.name in _forced:
        config = spec.adapt(_forced[spec.name], consts)
        if not config_fits(spec.shared_memory, config, consts, itemsize, device):
            raise ConfigDoesNotFit(f"{spec.describe(config, consts, itemsize, device)} does not fit")
        _run(spec, config, grid_fn, args, consts)
    elif interpreting():
        _run(spec, spec.adapt(triton.Config(spec.interpret, num_warps=4, num_stages=1), consts), grid_fn, args,
             consts)
    elif not autotune_enabled():
        _launch_default(spec, grid_fn, args, consts, itemsize, device)
    else:
        spec.tuned[grid_fn](*args, **consts)


def _launch_default(spec: KernelSpec, grid_fn, args: tuple, consts: dict, itemsize: int,
                    device: torch.device) -> None:
    """The default config, or the first config of the list after it that fits this call."""
    from triton.runtime.errors import OutOfResources

    tried = []
    for config in [spec.default] + [c for c in spec.configs if c is not spec.default]:
        config = spec.adapt(config, consts)
        key = (spec.name, str(config), tuple(sorted(consts.items())), itemsize, device)
        if key in _too_big or not config_fits(spec.shared_memory, config, consts, itemsize, device):
            continue
        try:
            _run(spec, config, grid_fn, args, consts)
            return
        except OutOfResources as e:  # raised while loading the binary, before anything ran
            _too_big.add(key)
            tried.append(f"[{config}]: {e}")
    raise RuntimeError(f"{spec.name}: no block config fits on {device_name(device)} for {consts} "
                       f"(element size {itemsize}); tried {tried or 'none (all over the estimate)'}")
