"""The training loop: one config in, a run folder out (config, checkpoints, logs), resumable exactly.

    result = train(load_config("configs/videomae_tiny_cpu.yaml", ["data.store=demo/store"]))

The same call resumes: if the run folder holds checkpoints, the newest is loaded (model, optimizer,
schedule position, every rank's loader state and RNG) and the run continues as if it had never stopped.
SIGTERM (a cluster's preemption) finishes the current step, saves and returns normally. A non-finite
loss stops the run naming the step (nothing is saved after it), unless `train.skip_nonfinite` allows
skipping that many such steps.

One host synchronization per optimizer step: the loss and gradient norm (and, under torchrun, the stop
flag, summed over ranks so that every rank decides alike) are read after the backward to decide whether
the update is applied. The loader's threads keep the next batch ready meanwhile.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import yaml

from babyfast._atomic import write_text

from . import distributed
from .build import build_objective, objective_sections, run_vocabulary
from .checkpoint import (
    CheckpointError,
    checkpoint_path,
    config_differences,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import Config, ConfigError, config_to_dict, validate
from .data import BatchStream, make_loader
from .flops import TRAIN_FLOPS_PER_FORWARD
from .metrics import RunLogger, device_peak, peak_memory_bytes
from .models import count_parameters
from .optim import build_optimizer, learning_rate
from .vocab import Vocabulary

__all__ = ["train", "TrainResult", "NonFiniteLoss", "ResumeError", "build_objective", "autocast_dtype"]

log = logging.getLogger(__name__)


class NonFiniteLoss(RuntimeError):
    """The loss or the gradient norm was not finite; the message names the step and the last checkpoint."""


class ResumeError(ConfigError):
    """The run folder's checkpoint does not fit this config (model, objective or world size)."""


@dataclass
class TrainResult:
    run: Path
    step: int
    stopped_by: str                       # "steps" (all done) or "sigterm"
    checkpoint: Path | None
    summary: dict[str, Any] = field(default_factory=dict)
    is_main: bool = True                  # rank 0 (the one that writes)


def autocast_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA by default, none (fp32) on the CPU."""
    p = cfg.train.precision
    if p == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if p == "fp16":
        raise ConfigError("train.precision='fp16' is not supported (it needs loss scaling); use bf16 or fp32")
    return torch.bfloat16 if p == "bf16" else None


class _StopFlag:
    """Set by SIGTERM (in the main thread only; elsewhere the handler cannot be installed)."""

    def __init__(self) -> None:
        self.set = False
        self._old: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.set = True
        log.warning("SIGTERM: saving a checkpoint after this step, then stopping")

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


@dataclass
class _Seen:
    """What the run has trained on so far (for the developmental trajectory)."""

    clips: int = 0
    hours: float = 0.0
    age_sum: float = 0.0
    age_n: int = 0

    def add(self, clips: int, hours: float, ages: torch.Tensor) -> None:
        self.clips += clips
        self.hours += hours
        known = ages[torch.isfinite(ages)]
        self.age_sum += float(known.sum())
        self.age_n += int(known.numel())

    def as_dict(self) -> dict[str, Any]:
        return {"clips": self.clips, "hours": self.hours, "age_sum": self.age_sum, "age_n": self.age_n}

    @property
    def mean_age(self) -> float:
        return self.age_sum / self.age_n if self.age_n else math.nan


class _Run:
    """Everything one training run holds, and its steps."""

    def __init__(self, cfg: Config, info: distributed.DistInfo, vocabulary: Vocabulary | None = None) -> None:
        self.cfg, self.info, self.device = cfg, info, info.device
        self.vocabulary = vocabulary
        self.path = Path(cfg.train.out)
        self.dtype = autocast_dtype(cfg, self.device)
        self.global_batch = cfg.data.batch_size * info.world_size * cfg.optim.accum_steps
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank and on resume
        self.objective = build_objective(cfg, vocabulary).to(self.device)
        self.model: nn.Module = distributed.wrap(self.objective, info, cfg.train.distributed)
        self.optimizer = build_optimizer(self.objective, cfg.optim, self.device, self.objective.no_weight_decay())
        self.params = [p for p in self.objective.parameters() if p.requires_grad]
        loader = make_loader(cfg.data, cfg.train.seed, info.rank, info.world_size, self.device)
        self.stream = BatchStream(loader, cfg.data.workers, self.device)
        self.clip_shape = (cfg.data.clip_len, cfg.data.size, cfg.data.size)
        self.span_frames = (cfg.data.clip_len - 1) * cfg.data.frame_step + 1
        self.step, self.skipped, self.seen = 0, 0, _Seen()
        self.last_checkpoint: Path | None = None
        seed = cfg.train.seed + 1000003 * info.rank
        torch.manual_seed(seed)  # per-rank streams for drop-path (replaced by the checkpoint's on resume)
        np.random.seed(seed % 2**32)
        if cfg.train.compile:
            self.model = torch.compile(self.model)  # pyright: ignore[reportAttributeAccessIssue]  # a Module

    # -------------------------------------------------------------------------------- resume / save
    def resume(self, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        saved_world = len(state["loader"])
        set_state_dict(self.objective, self.optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optimizer"], options=StateDictOptions(full_state_dict=True))
        if saved_world == self.info.world_size:
            self.stream.load_state_dict(state["loader"][self.info.rank])
            set_rng_state(state["rng"][self.info.rank])
        else:  # every rank read as many clips: the loader continues after all of them, on any number of ranks
            log.warning("%s was saved by %d rank(s), this run has %d: the remaining clips of the epoch are read once, "
                        "but drop-path draws differ from a run on the old number of ranks", state["path"],
                        saved_world, self.info.world_size)
            self.stream.load_state_dict(state["loader"][0])
            torch.manual_seed(self.cfg.train.seed + 1000003 * self.info.rank + 7919 * int(state["step"]))
        self.step, self.skipped = int(state["step"]), int(state["nonfinite_skipped"])
        self.seen = _Seen(**state["seen"])
        self.last_checkpoint = Path(state["path"])

    def save(self) -> Path:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        model_sd, optim_sd = get_state_dict(self.objective, self.optimizer,
                                            options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        loaders = distributed.gather_objects(self.stream.state_dict(), self.info)
        rngs = distributed.gather_objects(rng_state(), self.info)
        path = checkpoint_path(self.path, self.step)
        error = None
        if self.info.is_main:
            state = {"format": 1, "step": self.step, "config": config_to_dict(self.cfg), "model": model_sd,
                     "optimizer": optim_sd, "loader": loaders, "rng": rngs, "seen": self.seen.as_dict(),
                     "nonfinite_skipped": self.skipped, "objective": self.cfg.objective,
                     "vocabulary": self.vocabulary.to_json() if self.vocabulary is not None else None}
            try:
                save_checkpoint(path, state)
                prune_checkpoints(self.path, self.cfg.train.keep)
            except CheckpointError as e:
                error = str(e)
        error = distributed.broadcast_object(error, self.info)
        if error is not None:
            raise CheckpointError(error)
        self.last_checkpoint = path
        return path

    # ------------------------------------------------------------------------------------------ step
    def _accumulation(self, sync: bool) -> Any:
        if sync:
            return contextlib.nullcontext()
        if isinstance(self.model, nn.parallel.DistributedDataParallel):
            return self.model.no_sync()
        if hasattr(self.objective, "set_requires_gradient_sync"):  # FSDP2
            self.objective.set_requires_gradient_sync(False)  # pyright: ignore[reportCallIssue]
        return contextlib.nullcontext()

    def train_step(self, stop_requested: bool) -> tuple[float, float, bool, float, torch.Tensor]:
        """One optimizer step over `accum_steps` micro-batches. Returns (loss, grad norm, stop agreed by
        every rank, seconds waited for batches, ages of the clips)."""
        cfg, info = self.cfg, self.info
        accum, b = cfg.optim.accum_steps, cfg.data.batch_size
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.step, cfg.train.steps, cfg.optim, self.global_batch)
        loss_sum = torch.zeros((), device=self.device)
        waited, ages = 0.0, []
        for micro in range(accum):
            t = time.perf_counter()
            batch = self.stream.next()
            waited += time.perf_counter() - t
            last = micro == accum - 1
            if last and hasattr(self.objective, "set_requires_gradient_sync"):
                self.objective.set_requires_gradient_sync(True)  # pyright: ignore[reportCallIssue]
            inputs = {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                      for k, v in self.objective.inputs(batch, self.stream.loader).items()}
            with self._accumulation(last):
                with torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                                    enabled=self.dtype is not None):
                    out = self.model(inputs, self.step, (micro * info.world_size + info.rank) * b, self.global_batch)
                (out.to_differentiate / accum).backward()
            loss_sum += out.loss.detach().float()
            ages.append(batch.age_days)
        norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf)
        if hasattr(norm, "full_tensor"):  # FSDP2: a DTensor
            norm = norm.full_tensor()  # pyright: ignore[reportAttributeAccessIssue]
        flags = torch.stack([loss_sum / accum, norm.float().to(self.device),
                             torch.tensor(float(stop_requested), device=self.device)])
        loss, gnorm, stop = (distributed.sum_across(flags, info) / info.world_size).tolist()
        return loss, gnorm, stop > 0, waited, torch.cat(ages)

    def apply_or_skip(self, loss: float, gnorm: float) -> bool:
        """Apply the update if loss and gradient norm are finite; else skip it (allowed `skip_nonfinite`
        times) or raise NonFiniteLoss. Returns whether it was applied."""
        finite = math.isfinite(loss) and math.isfinite(gnorm)
        if finite:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if finite:
            return True
        self.skipped += 1
        where = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                 else "no checkpoint was saved before it")
        if self.skipped > self.cfg.train.skip_nonfinite:
            raise NonFiniteLoss(f"step {self.step + 1}: the loss is {loss} (gradient norm {gnorm}); the run stops "
                                f"and saves nothing more: {where}. Lower optim.lr, raise optim.warmup_steps, or "
                                f"let train.skip_nonfinite=N skip up to N such steps "
                                f"({self.cfg.train.skip_nonfinite} allowed, {self.skipped} seen)")
        log.warning("step %d: non-finite loss %s (gradient norm %s) skipped, %d of %d allowed", self.step + 1, loss,
                    gnorm, self.skipped, self.cfg.train.skip_nonfinite)
        return False


class _Meter:
    """Throughput, MFU and stall over one log interval."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.input_tokens, self.encoder_tokens = run.objective.tokens_per_clip(run.clip_shape)
        self.train_flops = TRAIN_FLOPS_PER_FORWARD * run.objective.flops_per_clip(run.clip_shape)
        self.peak, self.peak_source = device_peak(run.device, run.dtype or torch.float32)
        self.reset()

    def reset(self) -> None:
        self.t0, self.steps, self.loss, self.waited = time.perf_counter(), 0, 0.0, 0.0

    def add(self, loss: float, waited: float) -> None:
        self.steps += 1
        self.loss += loss
        self.waited += waited

    def record(self, gnorm: float, lr: float, epoch: int) -> dict[str, Any]:
        run = self.run
        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        clips_s = self.steps * run.global_batch / elapsed
        flops_s = clips_s * self.train_flops
        rec = {"step": run.step, "epoch": epoch, "loss": self.loss / max(1, self.steps), "lr": lr, "grad_norm": gnorm,
               "clips_per_s": clips_s, "input_tokens_per_s": clips_s * self.input_tokens,
               "encoder_tokens_per_s": clips_s * self.encoder_tokens, "tflops_per_s": flops_s / 1e12,
               "mfu": flops_s / (self.peak * run.info.world_size) if self.peak else None,
               "stall": self.waited / elapsed, "peak_memory_gb": peak_memory_bytes(run.device) / 1e9,
               "clips_seen": run.seen.clips, "hours_seen": run.seen.hours, "age_days_seen": run.seen.mean_age,
               "nonfinite_skipped": run.skipped, "time": time.time()}
        self.reset()
        return rec


def _header(run: _Run, meter: _Meter, resumed_from: str | None) -> dict[str, Any]:
    return {"event": "start", "time": time.time(), "resumed_from": resumed_from, "device": str(run.device),
            "device_name": torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "cpu",
            "dtype": str(run.dtype or torch.float32).replace("torch.", ""), "world_size": run.info.world_size,
            "global_batch": run.global_batch, "parameters": count_parameters(run.objective),
            "encoder_parameters": count_parameters(run.objective.encoder), "clip": list(run.clip_shape),
            "input_tokens_per_clip": meter.input_tokens, "encoder_tokens_per_clip": meter.encoder_tokens,
            "train_flops_per_clip": meter.train_flops, "peak_flops": meter.peak, "peak_source": meter.peak_source,
            "torch": torch.__version__}


def _summary(run: _Run, records: list[dict[str, Any]], stopped_by: str) -> dict[str, Any]:
    """Means over the run's log intervals, the first (warm-up, compilation, autotuning) left out when
    there are others."""
    steady = records[1:] if len(records) > 1 else records

    def mean(k: str) -> float | None:
        return float(np.mean([r[k] for r in steady])) if steady and steady[0].get(k) is not None else None

    return {"run": str(run.path), "step": run.step, "stopped_by": stopped_by,
            "checkpoint": str(run.last_checkpoint) if run.last_checkpoint else None,
            "final_loss": records[-1]["loss"] if records else None,
            "first_loss": records[0]["loss"] if records else None,
            "clips_per_s": mean("clips_per_s"), "input_tokens_per_s": mean("input_tokens_per_s"),
            "encoder_tokens_per_s": mean("encoder_tokens_per_s"), "mfu": mean("mfu"), "stall": mean("stall"),
            "peak_memory_gb": max((r["peak_memory_gb"] for r in records), default=None),
            "clips_seen": run.seen.clips, "hours_seen": run.seen.hours, "nonfinite_skipped": run.skipped}


def train(cfg: Config) -> TrainResult:
    """Train (or resume) the run `cfg.train.out` for `cfg.train.steps` optimizer steps."""
    validate(cfg)
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    owns_group = not torch.distributed.is_initialized()
    info = distributed.setup(cfg.train.device)
    try:
        return _train(cfg, info)
    finally:
        if owns_group:
            distributed.cleanup(info)
        torch.set_num_threads(threads)  # a caller's process keeps its own setting


def _train(cfg: Config, info: distributed.DistInfo) -> TrainResult:
    out = Path(cfg.train.out)
    found = latest_checkpoint(out)
    state = load_checkpoint(found) if found is not None else None
    if state is not None:
        diff = config_differences(state["config"], cfg, ("objective", "model", *objective_sections(cfg)))
        if diff:
            shown = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, a, b in ((k, *v) for k, v in diff.items()))
            raise ResumeError(f"{out} holds a run of another model or objective ({found}): {shown}. Use another "
                              f"train.out, or the saved settings to resume")
    vocabulary = run_vocabulary(cfg, state)
    run = _Run(cfg, info, vocabulary)
    if state is not None:
        run.resume(state)
        log.info("resumed %s at step %d", found, run.step)
    elif info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        if vocabulary is not None:
            vocabulary.save(out / "vocab.json")
    logger = RunLogger(out, enabled=info.is_main)
    meter = _Meter(run)
    logger.write(_header(run, meter, str(found) if found else None))
    records: list[dict[str, Any]] = []
    stopped_by = "steps"
    from tqdm import tqdm

    bar = tqdm(total=cfg.train.steps, initial=run.step, desc="train", unit="step", dynamic_ncols=True,
               disable=not (info.is_main and cfg.train.progress))
    try:
        with _StopFlag() as flag:
            while run.step < cfg.train.steps:
                loss, gnorm, stop, waited, ages = run.train_step(flag.set)
                lr = run.optimizer.param_groups[0]["lr"]
                run.apply_or_skip(loss, gnorm)
                run.step += 1
                run.seen.add(run.global_batch, run.global_batch * run.span_frames / run.stream.fps / 3600, ages)
                meter.add(loss, waited)
                bar.update(1)
                if run.step % cfg.train.log_every == 0 or run.step == cfg.train.steps or stop:
                    rec = meter.record(gnorm, lr, run.stream.state_dict()["epoch"])
                    records.append(rec)
                    logger.write(rec)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", tok_s=f"{rec['input_tokens_per_s']:.0f}",
                                    stall=f"{rec['stall']:.0%}")
                if stop or run.step % cfg.train.save_every == 0 or run.step == cfg.train.steps:
                    run.save()
                if stop:
                    stopped_by = "sigterm"
                    break
    finally:
        bar.close()
        run.stream.close()
        logger.close()
    summary = _summary(run, records, stopped_by)
    if info.is_main:
        write_text(out / "summary.json", json.dumps(summary, indent=2))
    return TrainResult(run=out, step=run.step, stopped_by=stopped_by, checkpoint=run.last_checkpoint, summary=summary,
                       is_main=info.is_main)
