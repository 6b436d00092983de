"""Compile every Triton kernel config for a GPU architecture that is not here, and check what it needs.

The interpreter runs the kernels' arithmetic on the CPU, but it does not compile them: a kernel can pass
every interpreter test and still fail to compile for a GPU, or need more shared memory than the estimate
that decides which configs may launch (`_runtime.config_fits`). Triton's compiler and `ptxas` run without
a GPU, so this module compiles, for one architecture (e.g. 90 = H100):

- representative calls (`PROFILES`): the real host code builds the launch arguments from CPU tensors
  (`_runtime.captured_launches`), so the specialization (dtypes, 16-byte alignment, strides equal to 1)
  is that of a real call;
- every block config of each kernel that the estimate lets launch on that architecture (or, `quick`, only
  the one it launches with `BABYFAST_AUTOTUNE=0`).

For each compiled kernel it reports the shared memory the compiler allocated next to the estimate, the
registers and local memory (spills) `cuobjdump` reads from the cubin, and which tensor-core
instructions the PTX uses (`wgmma` on Hopper, `mma` before it). A problem is a failed compile, or an
allocation above the estimate plus its margin, since that config could then be launched where it does
not fit.

Needs compiled kernels: run it without `TRITON_INTERPRET`, e.g.
`python -m babyfast.kernels.compile_check --arch 90 --json report.json`.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

import torch

from . import _runtime

__all__ = ["ARCH_SHARED_MEMORY", "PROFILES", "compile_launch", "resources", "check", "problems", "main"]

# opt-in shared memory per block (bytes) by compute capability, from the CUDA programming guide
ARCH_SHARED_MEMORY = {80: 166912, 86: 101376, 87: 166912, 89: 101376, 90: 232448, 100: 232448, 120: 101376}


def _target(arch: int):
    from triton.backends.compiler import GPUTarget

    return GPUTarget("cuda", arch, 32)


def compile_launch(launch: _runtime.Launch, config, arch: int):
    """Compile a captured launch with `config` (a `triton.Config`, or None for the kernel's fixed one) for
    `arch`; returns Triton's `CompiledKernel` (nothing is loaded, so no GPU is needed).

    Binds the arguments with Triton's own launcher code, so the signature and the specialization
    attributes are those a real launch of these arguments would compile with (Triton 3.x internals)."""
    import triton
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature

    kernel = launch.kernel
    kwargs = dict(launch.consts)
    if config is not None:
        kwargs.update(config.kwargs, num_warps=config.num_warps, num_stages=config.num_stages)
    target = _target(arch)
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*launch.args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound, specialization, options)
    return triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=target, options=options.__dict__)


def _cuobjdump() -> str:
    import triton

    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")


def resources(compiled) -> dict[str, object]:
    """Shared memory (Triton's allocation), registers and local memory per thread (`cuobjdump` of the cubin),
    and the tensor-core instruction family in the PTX."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        dump = subprocess.run([_cuobjdump(), "--dump-resource-usage", f.name], capture_output=True, text=True,
                              check=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", dump)
    if found is None:
        raise RuntimeError(f"cannot read the resource usage from cuobjdump's output:\n{dump}")
    ptx = compiled.asm["ptx"]
    tensor_cores = "wgmma" if "wgmma.mma_async" in ptx else "mma" if re.search(r"\bmma\.sync", ptx) else "none"
    return {"shared": int(compiled.metadata.shared), "registers": int(found.group(1)),
            "stack": int(found.group(2)), "local": int(found.group(3)), "tensor_cores": tensor_cores}


# ----------------------------------------------------------------------------------------------------
# representative calls


class Profile(NamedTuple):
    name: str
    call: Callable[[], None]  # makes CPU tensors and calls the host code, whose launches are captured


def _attention_call(dtype: torch.dtype, b: int, h: int, n: int, d: int, causal: bool, padded: bool,
                    bnhd: bool) -> Callable[[], None]:
    def call() -> None:
        from ._attention_triton import _backward, _forward

        def make():
            if bnhd:  # heads inside tokens, as a fused QKV projection leaves them: read in place
                return torch.zeros(b, n, h, d, dtype=dtype).transpose(1, 2)
            return torch.zeros(b, h, n, d, dtype=dtype)

        q, k, v = make(), make(), make()
        kpm = torch.ones(b, n, dtype=torch.uint8) if padded else None
        o, lse = _forward(q, k, v, kpm, causal, d ** -0.5)
        o, lse = make(), torch.zeros(b * h, n, dtype=torch.float32)  # the captured forward wrote nothing
        _backward(make(), q, k, v, o, lse, kpm, causal, d ** -0.5)

    return call


def _patchify_call(dtype: torch.dtype, tubelet, frames: int, size: int, dim: int, visible: bool,
                   cropped: bool) -> Callable[[], None]:
    def call() -> None:
        from ._patchify_triton import patch_embed, patchify_tokens

        t, p, _ = tubelet
        full = torch.zeros(2, frames, size + (8 if cropped else 0), size + (8 if cropped else 0), 3,
                           dtype=torch.uint8)
        video = full[:, :, 4:4 + size, 4:4 + size] if cropped else full  # a crop: rows not dense
        n = (frames // t) * (size // p) ** 2
        vis = torch.arange(0, n, 10, dtype=torch.int32).repeat(2, 1) if visible else None
        scale, shift = torch.ones(3), torch.zeros(3)
        patchify_tokens(video, tubelet, scale, shift, vis, dtype)
        weight = torch.zeros(dim, 3 * t * p * p)
        pos = torch.zeros(1, n, dim, dtype=dtype)
        patch_embed(video, weight, torch.zeros(dim), pos, vis, scale, shift, tubelet, dtype)

    return call


PROFILES: list[Profile] = [
    Profile("attention bf16 D64 N197 H6 bnhd", _attention_call(torch.bfloat16, 8, 6, 197, 64, False, False, True)),
    Profile("attention bf16 D128 N1568 causal padded", _attention_call(torch.bfloat16, 2, 4, 1568, 128, True, True,
                                                                       False)),
    Profile("attention fp16 D80 N157 padded", _attention_call(torch.float16, 4, 8, 157, 80, False, True, False)),
    Profile("attention fp16 D96 N784 causal", _attention_call(torch.float16, 2, 8, 784, 96, True, False, False)),
    Profile("attention fp32 D32 N50", _attention_call(torch.float32, 2, 2, 50, 32, False, False, False)),
    Profile("attention fp32 D128 N3136", _attention_call(torch.float32, 1, 2, 3136, 128, False, False, False)),
    Profile("patchify bf16 2x16x16 224 D384 masked", _patchify_call(torch.bfloat16, (2, 16, 16), 16, 224, 384,
                                                                    True, False)),
    Profile("patchify fp16 1x14x14 224 D768", _patchify_call(torch.float16, (1, 14, 14), 4, 224, 768, False,
                                                             False)),
    Profile("patchify fp32 2x16x16 crop D192", _patchify_call(torch.float32, (2, 16, 16), 8, 128, 192, False,
                                                              True)),
]


# ----------------------------------------------------------------------------------------------------
# the check


class _Job(NamedTuple):
    profile: str
    launch: _runtime.Launch
    config: object  # triton.Config or None


_JOBS: list[_Job] = []  # read by forked workers by index (kernels and tensors need not be pickled)


def _fits(spec, config, launch: _runtime.Launch, limit: int | None) -> bool:
    return limit is None or spec.shared_memory(config, launch.consts, launch.itemsize) + \
        _runtime._SHARED_MEMORY_MARGIN <= limit


def _jobs(arch: int, quick: bool, profiles: Sequence[Profile]) -> tuple:
    """(jobs to compile, rows of configs left out because the estimate says they do not fit on `arch`).

    quick: per launch only the config that `BABYFAST_AUTOTUNE=0` would run there (the default, else the
    first config of the list that fits)."""
    limit = ARCH_SHARED_MEMORY.get(arch)
    jobs, rows, seen = [], [], set()
    for profile in profiles:
        with _runtime.captured_launches() as launches:
            profile.call()
        for launch in launches:
            spec = launch.spec
            if spec is None:
                jobs.append(_Job(profile.name, launch, None))
                continue
            configs = [spec.adapt(c, launch.consts)
                       for c in [spec.default] + [c for c in spec.configs if c is not spec.default]]
            fitting = [c for c in configs if _fits(spec, c, launch, limit)]
            if not fitting:
                rows.append({**_describe(profile.name, launch, None, arch), "config": "any",
                             "status": "nothing fits"})
                continue
            if quick:
                configs = fitting[:1]
            for config in configs:
                key = (profile.name, launch.name, str(config))
                if key in seen:  # `adapt` maps several configs to one fallback
                    continue
                seen.add(key)
                if config in fitting:
                    jobs.append(_Job(profile.name, launch, config))
                else:
                    rows.append({**_describe(profile.name, launch, config, arch), "status": "pruned"})
    return jobs, rows


def _describe(profile: str, launch: _runtime.Launch, config, arch: int) -> dict[str, object]:
    spec = launch.spec
    row: dict[str, object] = {"arch": arch, "profile": profile, "kernel": launch.name,
                              "config": "fixed" if config is None else str(config),
                              "limit": ARCH_SHARED_MEMORY.get(arch)}
    if spec is not None and config is not None:
        row["estimate"] = spec.shared_memory(config, launch.consts, launch.itemsize)
    return row


def _compile_job(index: int, arch: int) -> dict[str, object]:
    job = _JOBS[index]
    row = _describe(job.profile, job.launch, job.config, arch)
    start = time.perf_counter()
    try:
        row.update(resources(compile_launch(job.launch, job.config, arch)), status="compiled")
    except Exception as e:  # reported per config: one failure must not hide the others
        row.update(status="failed", error=f"{type(e).__name__}: {str(e).strip()[-2000:]}")
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def check(arch: int, quick: bool = False, profiles: Sequence[Profile] | None = None,
          workers: int | None = None, progress: bool = True) -> list[dict[str, object]]:
    """Compile the kernels of `profiles` (default `PROFILES`) for `arch`; one row per (profile, kernel,
    config), compiled in `workers` processes (default: one per core)."""
    global _JOBS
    if _runtime.interpreting():
        raise RuntimeError("compile_check needs compiled Triton kernels, but TRITON_INTERPRET was set when they "
                           "were imported; run it in a process without TRITON_INTERPRET")
    jobs, rows = _jobs(arch, quick, PROFILES if profiles is None else profiles)
    _JOBS = jobs
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    done = 0
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for row in pool.map(_compile_job, range(len(jobs)), [arch] * len(jobs)):
                rows.append(row)
                done += 1
                if progress and (done == len(jobs) or sys.stderr.isatty()):
                    print(f"\rcompile_check sm_{arch}: {done}/{len(jobs)} compiled", end="", file=sys.stderr,
                          flush=True)
    finally:
        _JOBS = []
        if progress:
            print(file=sys.stderr)
    return rows


def problems(rows: Sequence[dict[str, object]]) -> list[str]:
    """What is wrong in a report: failed compiles, and allocations the shared-memory estimate misses."""
    found = []
    for r in rows:
        what = f"sm_{r['arch']} {r['profile']}: {r['kernel']} [{r['config']}]"
        if r["status"] == "failed":
            found.append(f"{what} does not compile: {r['error']}")
        elif r["status"] == "nothing fits":
            found.append(f"{what}: no config fits in {r['limit']} bytes of shared memory")
        elif r["status"] == "compiled" and "estimate" in r:
            if r["shared"] > r["estimate"] + _runtime._SHARED_MEMORY_MARGIN:  # pyright: ignore[reportOperatorIssue]
                found.append(f"{what} allocates {r['shared']} bytes of shared memory, above its estimate "
                             f"{r['estimate']} + {_runtime._SHARED_MEMORY_MARGIN}: it may launch where it does "
                             "not fit")
    return found


def _table(rows: Sequence[dict[str, object]]) -> str:
    head = f"{'profile':42} {'kernel':18} {'config':62} {'shared':>7} {'estim.':>7} {'regs':>4} {'spill':>5} tc"
    lines = [head]
    for r in rows:
        if r["status"] == "compiled":
            lines.append(f"{r['profile']:42} {r['kernel']:18} {r['config']:62} {r['shared']:>7} "
                         f"{r.get('estimate', '-'):>7} {r['registers']:>4} {r['local']:>5} {r['tensor_cores']}")
        else:
            lines.append(f"{r['profile']:42} {r['kernel']:18} {r['config']:62} {r['status']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m babyfast.kernels.compile_check",
        description="Compile every Triton kernel config for a GPU architecture (no GPU needed) and check "
                    "shared memory against the launch estimate; exit 1 on any problem.")
    parser.add_argument("--arch", type=int, nargs="+", default=[90],
                        help="compute capabilities, e.g. 90 (H100), 80 (A100), 89 (L4, RTX 4090); default 90")
    parser.add_argument("--quick", action="store_true",
                        help="only the config each kernel runs with BABYFAST_AUTOTUNE=0 (its default if it fits)")
    parser.add_argument("--profile", action="append", default=None, metavar="TEXT",
                        help="only profiles whose name contains TEXT (repeatable)")
    parser.add_argument("--workers", type=int, default=None, help="compiling processes (default: one per core)")
    parser.add_argument("--json", default=None, metavar="PATH", help="write every row to PATH (atomically)")
    args = parser.parse_args(argv)
    profiles = [p for p in PROFILES if args.profile is None or any(t in p.name for t in args.profile)]
    if not profiles:
        parser.error(f"no profile matches {args.profile}; profiles: {[p.name for p in PROFILES]}")
    rows = []
    for arch in args.arch:
        rows += check(arch, quick=args.quick, profiles=profiles, workers=args.workers)
    print(_table(rows))
    found = problems(rows)
    if args.json:
        import triton

        # its own temp-then-replace, not babyfast._atomic: kernels import only torch and triton (DESIGN.md)
        tmp = f"{args.json}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"triton": triton.__version__, "torch": torch.__version__, "rows": rows, "problems": found},
                      f, indent=1)
        os.replace(tmp, args.json)
    for line in found:
        print(f"PROBLEM: {line}", file=sys.stderr)
    compiled = sum(r["status"] == "compiled" for r in rows)
    print(f"{compiled} compiled, {sum(r['status'] == 'pruned' for r in rows)} left out by the estimate, "
          f"{len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
