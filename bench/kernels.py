"""Kernel benchmarks on a CUDA GPU: patchify (GB/s, speed-ups) and attention (TFLOP/s) per backend.

patchify  (VideoMAE clips [B, 16, 224, 224, 3] uint8, tubelet 2x16x16, bf16 out)
    ceiling   device-to-device copy of 1 GiB, GB/s = (bytes read + bytes written) / time
    unfused   Triton tokens [B, N, 1536]: GB/s = (video bytes read + token bytes written) / time;
              target >= 80 % of the copy (eager and torch.compile timed beside it)
    fused     uint8 -> embeddings (D = 384, 768) with bias and position embedding, all tubelets and the
              VideoMAE 10 % visible; target: Triton >= 1.5x eager (normalize + unfold + linear) and
              >= 1.2x torch.compile of the same
attention (bf16, D = 64, heads 6 and 12, N in {157, 197, 784, 1568, 3136}, B = round(16384 / N))
    FLOPs forward 4·B·N²·H·D, backward 2.5x that, so forward+backward 3.5x; TFLOP/s per backend;
    target: Triton >= SDPA's flash backend and >= 0.85x the best backend present

Times are medians of `triton.testing.do_bench` (CUDA events, L2 flushed before every run), inputs are
random (never zeros). Writes kernels_patchify.json and kernels_attention.json (device, driver, versions,
command, date, FLOP formula, every measurement, and a README table for bench/report.py) into --out.

    python -m bench.kernels --out bench/results
    python -m bench.kernels --out /tmp/k --quick          # one size each, for a smoke run
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench._common import write_result

ROOT = Path(__file__).resolve().parents[1]

ATTN_SHAPES = (157, 197, 784, 1568, 3136)
ATTN_HEADS = (6, 12)
ATTN_TOKENS = 16384
ATTN_BACKENDS = ("triton", "sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "xformers")
FLOP_FORMULA = {
    "attention_forward": "4 * B * N^2 * H * D",
    "attention_backward": "2.5 * forward",
    "attention_forward_backward": "3.5 * 4 * B * N^2 * H * D",
    "patch_embed": "2 * B * N_tokens * (3 * t * p * p) * D",
}


def _import_kernels():
    """babyfast.kernels from the install, or straight from this checkout when the package is not built."""
    try:
        import babyfast.kernels as k
    except ImportError:
        import babyfast

        # setup.py maps kernels/ to babyfast.kernels; mirror that for an uninstalled checkout
        babyfast.__path__.append(str(ROOT))
        import babyfast.kernels as k
    return k


def _driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def _machine() -> dict:
    import triton

    try:
        import xformers  # pyright: ignore[reportMissingImports]  # optional, absent here

        xf = xformers.__version__
    except ImportError:
        xf = None
    props = torch.cuda.get_device_properties(0)
    return {"device": torch.cuda.get_device_name(0), "driver": _driver(), "cuda": torch.version.cuda,
            "sm_count": props.multi_processor_count, "memory_gib": round(props.total_memory / 2**30, 1),
            "torch": torch.__version__, "triton": triton.__version__, "xformers": xf,
            "python": platform.python_version()}


def _bench(fn: Callable[[], object]) -> float:
    """Median milliseconds of fn over ~100 ms of repeats, after warm-up (compile / autotune)."""
    from triton.testing import do_bench

    fn()
    torch.cuda.synchronize()
    # return_mode="median" returns one float; the stub types the list-returning modes too
    return float(do_bench(fn, warmup=25, rep=100, return_mode="median"))  # pyright: ignore[reportArgumentType]


def _best_config(module: str, tuner: str) -> str | None:
    """The config the autotuner picked on its last run (what the timing above used)."""
    import importlib

    best = getattr(getattr(importlib.import_module(f"babyfast.kernels.{module}"), tuner), "best_config", None)
    return str(best) if best is not None else None


class CudaContextLost(RuntimeError):
    """A failure left the CUDA context unusable (e.g. an illegal memory access): nothing more can be timed."""


def _try(fn: Callable[[], float]) -> dict[str, Any]:
    try:
        return {"ms": fn()}
    except Exception as e:  # a backend missing or refusing the shape: record why, go on
        error = f"{type(e).__name__}: {str(e)[:300]}"
        try:
            torch.cuda.synchronize()  # a refused launch leaves the device usable; a faulted kernel does not
        except Exception as sticky:
            raise CudaContextLost(f"{error}; then synchronize failed: {type(sticky).__name__}: "
                                  f"{str(sticky)[:300]}") from e
        return {"ms": None, "error": error}


def _time(fn: Callable[..., object], *args, **kwargs) -> dict[str, Any]:
    """_try(_bench(fn(*args, **kwargs))), with the arguments bound now (no closure over loop variables); the
    references go once the timing returns, so a `del` after it frees the tensors."""
    return _try(lambda: _bench(functools.partial(fn, *args, **kwargs)))


def _patchify_fwd_bwd(K, video, kernel, weight, bias, pos_embed, visible, backend) -> None:
    out = K.patchify(video, kernel, weight=weight, bias=bias, pos_embed=pos_embed, visible=visible,
                     dtype=torch.bfloat16, backend=backend)
    torch.autograd.grad(out, (weight, bias, pos_embed), torch.ones_like(out))


def _attention_fwd(K, q, k, v, backend):
    with torch.no_grad():
        return K.attention(q, k, v, backend=backend)


def _attention_fwd_bwd(K, q, k, v, dout, backend) -> None:
    out = K.attention(q, k, v, backend=backend)
    torch.autograd.grad(out, (q, k, v), dout)


# ----------------------------------------------------------------------------------------------------
# patchify


def bench_copy() -> dict:
    n = 1 << 30
    src = torch.randint(0, 256, (n,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = _bench(lambda: dst.copy_(src))
    return {"bytes": 2 * n, "ms": ms, "gb_s": 2 * n / ms / 1e6}


def bench_patchify(K, batches: list[int], quick: bool, copy_gb_s: float, rows: list[dict]) -> list[dict]:
    """Appends to `rows` as it goes (a row before its measurements), so a crash keeps what was measured."""
    t, p = 2, 16
    for b in batches:
        video = torch.randint(0, 256, (b, 16, 224, 224, 3), dtype=torch.uint8, device="cuda")
        n_all = 8 * 14 * 14
        feat = 3 * t * p * p
        for masked in (False, True):
            visible = None
            n_tok = n_all
            if masked:
                n_tok = n_all // 10
                visible = torch.stack([torch.randperm(n_all, device="cuda")[:n_tok] for _ in range(b)])
            read = video.numel() * (n_tok / n_all)
            out_bytes = b * n_tok * feat * 2
            # unfused tokens
            row = {"kind": "tokens", "batch": b, "visible": n_tok, "tokens": b * n_tok, "bytes": read + out_bytes}
            rows.append(row)
            for backend in ("triton", "torch", "compile"):
                r = _time(K.patchify, video, (t, p, p), visible=visible, dtype=torch.bfloat16, backend=backend)
                if r["ms"]:
                    r["gb_s"] = (read + out_bytes) / r["ms"] / 1e6
                    r["of_copy"] = r["gb_s"] / copy_gb_s
                row[backend] = r
            row["triton"]["config"] = _best_config("_patchify_triton", "_patchify_tuned")
            # fused embeddings
            for d in ((384,) if quick else (384, 768)):
                w = torch.randn(d, 3, t, p, p, device="cuda", dtype=torch.bfloat16) * 0.02
                bias = torch.randn(d, device="cuda", dtype=torch.bfloat16)
                pos = torch.randn(n_all, d, device="cuda", dtype=torch.bfloat16)
                flops = 2 * b * n_tok * feat * d
                row = {"kind": "embed", "batch": b, "visible": n_tok, "D": d, "flops": flops}
                rows.append(row)
                for backend in ("triton", "torch", "compile"):
                    r = _time(K.patchify, video, (t, p, p), weight=w, bias=bias, pos_embed=pos, visible=visible,
                              backend=backend)
                    if r["ms"]:
                        r["tflop_s"] = flops / r["ms"] / 1e9
                    row[backend] = r
                row["triton"]["config"] = _best_config("_patchify_triton", "_embed_tuned")
                tri = row["triton"]["ms"]
                for other in ("torch", "compile"):
                    if tri and row[other]["ms"]:
                        row[f"speedup_vs_{other}"] = row[other]["ms"] / tri
            if b != batches[0]:
                del visible
                continue
            # fused forward + backward (training), for the record, at the first batch size only
            d = 384
            w = (torch.randn(d, 3, t, p, p, device="cuda") * 0.02).requires_grad_(True)
            bias = torch.zeros(d, device="cuda", requires_grad=True)
            pos = torch.randn(n_all, d, device="cuda", requires_grad=True)
            row = {"kind": "embed_fwd_bwd", "batch": b, "visible": n_tok, "D": d}
            rows.append(row)
            for backend in ("triton", "torch", "compile"):
                row[backend] = _time(_patchify_fwd_bwd, K, video, (t, p, p), w, bias, pos, visible, backend)
            del visible
        del video
        torch.cuda.empty_cache()
    return rows


# ----------------------------------------------------------------------------------------------------
# attention


def bench_attention(K, quick: bool, rows: list[dict]) -> list[dict]:
    """Appends to `rows` as it goes (a row before its measurements), so a crash keeps what was measured."""
    shapes = (197, 1568) if quick else ATTN_SHAPES
    for n in shapes:
        for h in ((6,) if quick else ATTN_HEADS):
            b = max(1, round(ATTN_TOKENS / n))
            d = 64
            fwd_flops = 4 * b * n * n * h * d
            q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            dout = torch.randn_like(q)
            qg, kg, vg = (x.clone().requires_grad_(True) for x in (q, k, v))
            row = {"B": b, "H": h, "N": n, "D": d, "dtype": "bfloat16", "fwd_flops": fwd_flops}
            rows.append(row)
            for backend in ATTN_BACKENDS:
                r = _time(_attention_fwd, K, q, k, v, backend)
                rb = _time(_attention_fwd_bwd, K, qg, kg, vg, dout, backend)
                entry = {"fwd_ms": r["ms"], "fwd_bwd_ms": rb["ms"]}
                if r["ms"]:
                    entry["fwd_tflop_s"] = fwd_flops / r["ms"] / 1e9
                if rb["ms"]:
                    entry["fwd_bwd_tflop_s"] = 3.5 * fwd_flops / rb["ms"] / 1e9
                if "error" in r or "error" in rb:
                    entry["error"] = r.get("error") or rb.get("error")
                row[backend] = entry
            row["triton"]["configs"] = {name: _best_config("_attention_triton", f"_{name}_tuned")
                                        for name in ("fwd", "dkdv", "dq")}
            for metric in ("fwd_tflop_s", "fwd_bwd_tflop_s"):
                present = {name: row[name][metric] for name in ATTN_BACKENDS if row[name].get(metric)}
                ours = present.get("triton")
                others = {kk: vv for kk, vv in present.items() if kk != "triton"}
                if ours and others:
                    best = max(others, key=others.__getitem__)
                    row[f"{metric}_best_other"] = best
                    row[f"{metric}_vs_best"] = ours / others[best]
                    if "sdpa-flash" in others:
                        row[f"{metric}_vs_flash"] = ours / others["sdpa-flash"]
            del q, k, v, qg, kg, vg, dout
            torch.cuda.empty_cache()
    return rows


# ----------------------------------------------------------------------------------------------------
# report


def _fmt(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _targets_patchify(rows: list[dict]) -> dict[str, bool]:
    tok = [r for r in rows if r["kind"] == "tokens" and r["triton"].get("of_copy")]
    emb = [r for r in rows if r["kind"] == "embed"]
    return {
        "unfused_at_least_80pct_of_copy": bool(tok) and all(r["triton"]["of_copy"] >= 0.8 for r in tok),
        "fused_1.5x_eager": bool(emb) and all(r.get("speedup_vs_torch", 0) >= 1.5 for r in emb),
        "fused_1.2x_compile": bool(emb) and all(r.get("speedup_vs_compile", 0) >= 1.2 for r in emb),
    }


def _targets_attention(rows: list[dict]) -> dict[str, bool]:
    out = {}
    for metric in ("fwd_tflop_s", "fwd_bwd_tflop_s"):
        out[f"{metric}_>=_sdpa_flash"] = all(r.get(f"{metric}_vs_flash", 0) >= 1.0 for r in rows)
        out[f"{metric}_>=_0.85x_best"] = all(r.get(f"{metric}_vs_best", 0) >= 0.85 for r in rows)
    return out


def _abort(out_dir: Path, name: str, common: dict, rows: list[dict], error: Exception) -> int:
    """Keep what was measured before the CUDA context broke, in a file the README tables do not read (no
    "table"), and stop: the process cannot use the GPU any more."""
    path = write_result(f"{name}.partial", {**common, "complete": False, "error": str(error), "rows": rows}, out_dir)
    print(f"CUDA context lost ({error}); {len(rows)} rows so far -> {path}", file=sys.stderr)
    return 3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for kernels_patchify.json and kernels_attention.json")
    ap.add_argument("--quick", action="store_true", help="one size each (smoke run)")
    ap.add_argument("--only", choices=("patchify", "attention"), help="run one half")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--batches", default="8,16", help="patchify batch sizes (clips of 16x224x224), comma-separated")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench/kernels.py: no CUDA device here (torch.cuda.is_available() is False); these benchmarks "
              "time GPU kernels and must run on a CUDA machine", file=sys.stderr)
        return 2
    os.environ.pop("TRITON_INTERPRET", None)
    # every (batch, mask, D) case is its own static-shape graph for the "compile" backend: without room
    # for them all, dynamo would silently fall back to eager and the comparison would be wrong
    import torch._dynamo as dynamo

    for knob in ("cache_size_limit", "recompile_limit"):
        if hasattr(dynamo.config, knob):
            setattr(dynamo.config, knob, 256)
    K = _import_kernels()
    out_dir = Path(args.out)
    # write_result adds the command, the date and the CPU side of the machine stamp
    common = {"machine": _machine(), "flop_formula": FLOP_FORMULA,
              "timing": "triton.testing.do_bench median, warmup 25 ms, rep 100 ms, L2 flushed per run"}
    missed = []

    if args.only in (None, "patchify"):
        copy = bench_copy()
        batches = [8] if args.quick else [int(x) for x in args.batches.split(",")]
        rows: list[dict] = []
        try:
            bench_patchify(K, batches, args.quick, copy["gb_s"], rows)
        except CudaContextLost as e:
            return _abort(out_dir, "kernels_patchify", {**common, "copy": copy}, rows, e)
        targets = _targets_patchify(rows)
        table_rows = []
        for r in rows:
            if r["kind"] == "tokens":
                table_rows.append([f"tokens B={r['batch']} vis={r['visible']}", _fmt(r["triton"].get("gb_s"), 0),
                                   _fmt(r["torch"].get("gb_s"), 0), _fmt(r["compile"].get("gb_s"), 0),
                                   _fmt(100 * r["triton"]["of_copy"], 0) + " % of copy"
                                   if r["triton"].get("of_copy") else "-"])
            elif r["kind"] == "embed":
                table_rows.append([f"embed D={r['D']} B={r['batch']} vis={r['visible']}",
                                   _fmt(r["triton"]["ms"], 3), _fmt(r["torch"]["ms"], 3), _fmt(r["compile"]["ms"], 3),
                                   f"{_fmt(r.get('speedup_vs_torch'), 2)}x eager, "
                                   f"{_fmt(r.get('speedup_vs_compile'), 2)}x compile"])
        payload = {**common, "copy": copy, "rows": rows, "targets": targets, "table": {
            "title": "patchify: Triton vs eager vs torch.compile (bf16, tubelet 2x16x16, 16x224x224 clips)",
            "columns": ["case", "triton (GB/s | ms)", "eager (GB/s | ms)", "compile (GB/s | ms)", "vs target"],
            "rows": table_rows,
            "notes": [f"device-to-device copy: {copy['gb_s']:.0f} GB/s (read + write). "
                      f"Targets: {', '.join(f'{k} {v}' for k, v in targets.items())}"]}}
        path = write_result("kernels_patchify", payload, out_dir)
        print(f"copy {copy['gb_s']:.0f} GB/s")
        for row in table_rows:
            print("  ".join(str(c) for c in row))
        print(f"patchify targets: {targets} -> {path}")
        missed += [k for k, v in targets.items() if not v]

    if args.only in (None, "attention"):
        rows = []
        try:
            bench_attention(K, args.quick, rows)
        except CudaContextLost as e:
            return _abort(out_dir, "kernels_attention", common, rows, e)
        targets = _targets_attention(rows)
        table_rows = []
        for r in rows:
            cells = [f"N={r['N']} H={r['H']} B={r['B']}"]
            for name in ATTN_BACKENDS:
                e = r[name]
                cells.append(f"{_fmt(e.get('fwd_tflop_s'), 0)} / {_fmt(e.get('fwd_bwd_tflop_s'), 0)}")
            cells.append(f"{_fmt(r.get('fwd_tflop_s_vs_best'), 2)} / {_fmt(r.get('fwd_bwd_tflop_s_vs_best'), 2)}")
            table_rows.append(cells)
        payload = {**common, "rows": rows, "targets": targets, "table": {
            "title": "attention TFLOP/s forward / forward+backward (bf16, D=64, ~16k tokens per batch)",
            "columns": ["shape", *ATTN_BACKENDS, "triton / best other"],
            "rows": table_rows,
            "notes": [f"FLOPs: forward {FLOP_FORMULA['attention_forward']}, backward 2.5x forward. "
                      f"Targets: {', '.join(f'{k} {v}' for k, v in targets.items())}"]}}
        path = write_result("kernels_attention", payload, out_dir)
        print("shape  " + "  ".join(ATTN_BACKENDS) + "  (fwd / fwd+bwd TFLOP/s)")
        for row in table_rows:
            print("  ".join(row))
        print(f"attention targets: {targets} -> {path}")
        missed += [k for k, v in targets.items() if not v]

    if missed:
        print(f"targets missed: {missed}")
        return 1 if args.strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
