"""What every run reports: throughput (clips/s, tokens/s), MFU, loader stall, peak memory; JSONL and
TensorBoard logs in the run folder.

MFU = (training FLOPs per clip x clips per second) / peak FLOP/s of the device in the run's dtype. FLOPs
per clip come from the model's shape (`babyfast.train.flops`); peaks from `PEAK_TFLOPS`, each naming its
source. A CPU has no datasheet figure here: its "peak" is a measured fp32 GEMM on this machine, and the
log says so.
"""
from __future__ import annotations

import json
import logging
import math
import os
import resource
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["PEAK_TFLOPS", "device_peak", "peak_memory_bytes", "RunLogger", "read_metrics"]

log = logging.getLogger(__name__)

# Dense (no structured sparsity) peak tensor TFLOP/s by device name fragment, most specific first, from
# NVIDIA's datasheets: H100 and H200 Tensor Core GPU datasheets (SXM and PCIe / NVL columns), A100
# datasheet, L40S and L4 datasheets, the Ada (RTX 4090) and Ampere (RTX 3090, A10) architecture
# whitepapers, and the V100 datasheet. Datasheets quote the sparse figure for tensor cores; these are
# half of it. "fp32" is the plain CUDA-core rate; "tf32" applies when fp32 matmuls may use TF32.
PEAK_TFLOPS: list[tuple[str, dict[str, float], str]] = [
    ("H200 NVL", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0}, "NVIDIA H200 datasheet (NVL, dense)"),
    ("H200", {"bf16": 989.5, "fp16": 989.5, "tf32": 494.5, "fp32": 67.0}, "NVIDIA H200 datasheet (SXM, dense)"),
    ("H100 NVL", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60.0}, "NVIDIA H100 datasheet (NVL, dense)"),
    ("H100 PCIe", {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.0}, "NVIDIA H100 datasheet (PCIe, dense)"),
    ("H100", {"bf16": 989.5, "fp16": 989.5, "tf32": 494.5, "fp32": 67.0}, "NVIDIA H100 datasheet (SXM, dense)"),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}, "NVIDIA A100 datasheet (dense)"),
    ("L40S", {"bf16": 362.1, "fp16": 362.1, "tf32": 183.0, "fp32": 91.6}, "NVIDIA L40S datasheet (dense)"),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}, "NVIDIA L4 datasheet (dense)"),
    ("RTX 4090", {"bf16": 165.2, "fp16": 165.2, "tf32": 82.6, "fp32": 82.6},
     "NVIDIA Ada architecture whitepaper (RTX 4090, FP32 accumulate, dense)"),
    ("RTX 3090", {"bf16": 71.0, "fp16": 71.0, "tf32": 35.6, "fp32": 35.6},
     "NVIDIA Ampere GA102 whitepaper (RTX 3090, FP32 accumulate, dense)"),
    ("A10", {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2}, "NVIDIA A10 datasheet (dense)"),
    ("V100", {"fp16": 125.0, "fp32": 15.7}, "NVIDIA V100 datasheet (SXM2)"),
]

_cpu_gemm: float | None = None


def _measured_cpu_gemm(n: int = 2048) -> float:
    """FLOP/s of an n² fp32 matmul on this CPU with torch's threads (best of 3), measured once: large enough
    that the model's own matmuls do not beat it."""
    global _cpu_gemm
    if _cpu_gemm is None:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        best = math.inf
        for _ in range(3):
            t = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t)
        _cpu_gemm = 2 * n**3 / best
    return _cpu_gemm


def device_peak(device: torch.device, dtype: torch.dtype) -> tuple[float | None, str]:
    """(peak FLOP/s or None, where the figure comes from) for matmuls in `dtype` on `device`."""
    if device.type == "cpu":
        return _measured_cpu_gemm(), "measured fp32 GEMM (2048²) on this CPU, not a datasheet peak"
    name = torch.cuda.get_device_name(device)
    key = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype)
    if key is None:
        key = "fp32" if torch.get_float32_matmul_precision() == "highest" else "tf32"
    for fragment, peaks, source in PEAK_TFLOPS:
        if fragment in name:
            if key not in peaks:
                return None, f"{source} gives no {key} figure"
            return peaks[key] * 1e12, f"{source}: {peaks[key]} TFLOP/s {key}"
    return None, f"no peak known for {name!r} (add it to babyfast.train.metrics.PEAK_TFLOPS)"


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory so far: allocated CUDA memory, or this process's peak RSS on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class RunLogger:
    """Appends one JSON line per record to RUN/metrics.jsonl and mirrors the numbers to TensorBoard
    (RUN/tb). Only the main rank writes; the others get a logger that does nothing."""

    def __init__(self, run: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = run / "metrics.jsonl"
        self._tb = None
        if enabled:
            run.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run / "tb"))
            except ImportError as e:  # the JSONL log still has everything
                log.warning("TensorBoard logs are off: %s", e)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps(record, default=_plain) + "\n")
        self._file.flush()
        if self._tb is not None and "step" in record:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                        and value is not None and math.isfinite(value):
                    self._tb.add_scalar(key, value, record["step"])
            self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            if self._tb is not None:
                self._tb.close()


def _plain(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.item() if x.numel() == 1 else x.tolist()
    if isinstance(x, os.PathLike):
        return str(x)
    return str(x)


def read_metrics(run: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The step records of a run, one per step: where a resumed run logged a step again (after a kill),
    the later record wins. A torn last line (a kill while writing) is skipped."""
    path = Path(run) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {run} a babyfast run folder?")
    by_step: dict[int, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "step" in rec:
                by_step[int(rec["step"])] = rec
    return [by_step[s] for s in sorted(by_step)]
