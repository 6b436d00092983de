"""Training benchmark: babyfast's VideoMAE step against Hugging Face transformers' VideoMAEForPreTraining, and
babyfast's contrastive step (no peer builds the same model).

1. Step (any device): the same model built both ways from one config (transformers from a
   `VideoMAEConfig`, no weights downloaded), the same uint8 batch of BabyWorld clips, the same tube masks
   (mask ratio 0.9), AdamW, fp32 on the CPU / bf16 autocast on CUDA. transformers takes normalized float
   `[B, T, C, H, W]`, so its step includes that conversion, as it would in a trainer; babyfast normalizes
   inside its fused patchify. Steps alternate between the two so that both see the same machine state.
   Reported: input tokens/s of each and their ratio, MFU from babyfast's FLOP formula (the same
   architecture, so the same FLOPs), and both encoders' parameter counts.
2. End to end (CUDA only, `--e2e`): ViT-S and ViT-B on 16x224^2 clips, bf16: `babyfast.train.train` with
   the real ClipLoader on a store ingested from camera-like sources, against transformers' model fed by a
   torch DataLoader with PyAV decoding the same sources (bench/loader.py's baseline dataset). Reported:
   tokens/s, MFU, loader stall, peak memory; targets MFU >= 40% for ViT-B, stall <= 2%, >= 3x the
   baseline's tokens/s.

Writes bench/results/train.json (CPU) or train_gpu.json (CUDA), or --out DIR.

    python -m bench.train [--model vit_tiny] [--batch 8] [--steps 4] [--e2e] [--out DIR]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from bench._common import machine, write_result

CLIP, SIZE = 16, 224


def _batch(work: Path, batch: int) -> Any:
    """One batch of real BabyWorld clips (16 x 224^2 uint8) drawn around utterances (so that the
    contrastive step has its texts), from a small store made here."""
    from babyfast.loader.augment import Augment
    from babyfast.loader.clip_loader import ClipLoader
    from babyfast.store.ingest import ingest
    from babyfast.synth import write_corpus

    src, store = work / "src", work / "store"
    write_corpus(src, children=1, hours=0.02, size=256, fps=10, recording_minutes=1.2, seed=5, workers=2,
                 progress=False)
    ingest(src, store, fps=10, size=256, gop=16, workers=2, progress=False)
    loader = ClipLoader(store, clip_len=CLIP, batch_size=batch, augment=Augment(size=SIZE), seed=0, anchor="utterance")
    return next(iter(loader))


def _hf_model(encoder_cfg: dict[str, Any], decoder: tuple[int, int, int]) -> torch.nn.Module:
    # a benchmark peer (requirements-bench.txt), absent where `make test` type-checks
    from transformers import VideoMAEConfig, VideoMAEForPreTraining  # pyright: ignore[reportMissingImports]

    d, depth, heads = encoder_cfg["embed_dim"], encoder_cfg["depth"], encoder_cfg["num_heads"]
    dd, ddepth, dheads = decoder
    cfg = VideoMAEConfig(image_size=SIZE, patch_size=16, num_channels=3, num_frames=CLIP, tubelet_size=2,
                         hidden_size=d, num_hidden_layers=depth, num_attention_heads=heads, intermediate_size=4 * d,
                         qv_bias=True, use_mean_pooling=False, norm_pix_loss=True, decoder_hidden_size=dd,
                         decoder_num_hidden_layers=ddepth, decoder_num_attention_heads=dheads,
                         decoder_intermediate_size=4 * dd,
                         # a PreTrainedConfig keyword taken by __post_init__, outside the dataclass signature
                         attn_implementation="sdpa")  # pyright: ignore[reportCallIssue]
    return VideoMAEForPreTraining(cfg)


def _hf_inputs(video: torch.Tensor) -> torch.Tensor:
    """transformers' input: normalized float [B, T, C, H, W] (the trainer's preprocessing)."""
    mean = torch.tensor((0.485, 0.456, 0.406), device=video.device).view(1, 1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225), device=video.device).view(1, 1, 3, 1, 1)
    return (video.permute(0, 1, 4, 2, 3).float() / 255.0 - mean) / std


def _timed(step: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def step_benchmark(model: str, video: torch.Tensor, steps: int, device: torch.device) -> dict[str, Any]:
    from babyfast.train.config import load_config
    from babyfast.train.loop import build_objective
    from babyfast.train.metrics import device_peak
    from babyfast.train.models import count_parameters
    from babyfast.train.models.vit import Block
    from babyfast.train.objectives.videomae import VideoMAE
    from babyfast.train.optim import build_optimizer

    cfg = load_config(None, [f"model.name={model}", "data.store=-", f"data.clip_len={CLIP}", f"data.size={SIZE}"])
    torch.manual_seed(0)
    ours = build_objective(cfg).to(device)
    if not isinstance(ours, VideoMAE):
        raise TypeError(f"the step benchmark compares VideoMAE objectives, got {type(ours).__name__}")
    ours_opt = build_optimizer(ours, cfg.optim, device, ours.no_weight_decay())
    hf = _hf_model(ours.encoder.config,
                   (ours.decoder_dim, len(ours.decoder), cast(Block, ours.decoder[0]).attn.num_heads)).to(device)
    hf_opt = torch.optim.AdamW(hf.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=device.type == "cuda")
    video = video.to(device)
    b = video.shape[0]
    grid = ours.encoder.grid(video.shape)
    mask = ours.sampler(grid).sample(step=0, batch=b, device=device)
    n_tokens = grid[0] * grid[1] * grid[2]
    bool_mask = torch.zeros(b, n_tokens, dtype=torch.bool, device=device)
    bool_mask[torch.arange(b, device=device)[:, None], mask.masked] = True
    dtype = torch.bfloat16 if device.type == "cuda" else None

    def ours_step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = ours({"video": video}, step=0).loss
        loss.backward()
        ours_opt.step()
        ours_opt.zero_grad(set_to_none=True)

    def hf_step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = hf(pixel_values=_hf_inputs(video), bool_masked_pos=bool_mask).loss
        loss.backward()
        hf_opt.step()
        hf_opt.zero_grad(set_to_none=True)

    for fn in (ours_step, hf_step):  # warm-up: allocations, autotuning, lazy inits
        fn()
    times: dict[str, list[float]] = {"babyfast": [], "transformers": []}
    for _ in range(steps):
        times["babyfast"].append(_timed(ours_step, device))
        times["transformers"].append(_timed(hf_step, device))
    flops = 3 * ours.flops_per_clip((CLIP, SIZE, SIZE))
    peak, source = device_peak(device, dtype or torch.float32)
    out: dict[str, Any] = {"model": model, "batch": b, "input_tokens_per_clip": n_tokens,
                           "train_flops_per_clip": flops, "peak_flops": peak, "peak_source": source,
                           "parameters": {"babyfast_encoder": count_parameters(ours.encoder),
                                          "transformers_encoder": count_parameters(hf.get_submodule("videomae")),
                                          "babyfast_total": count_parameters(ours),
                                          "transformers_total": count_parameters(hf)},
                           "step_seconds": times}
    for name, ts in times.items():
        med = float(np.median(ts))
        out[name] = {"median_step_s": med, "input_tokens_per_s": b * n_tokens / med,
                     "mfu": (b * flops / med) / peak if peak else None}
    out["ratio"] = out["babyfast"]["input_tokens_per_s"] / out["transformers"]["input_tokens_per_s"]
    return out


def contrastive_benchmark(model: str, batch: Any, steps: int, device: torch.device) -> dict[str, Any]:
    """babyfast's contrastive step (video tower on every tubelet, mean text encoder, InfoNCE) on the batch."""
    from babyfast.train.build import build_objective
    from babyfast.train.config import load_config
    from babyfast.train.metrics import device_peak
    from babyfast.train.objectives.contrastive import Contrastive
    from babyfast.train.optim import build_optimizer
    from babyfast.train.vocab import build_vocabulary

    cfg = load_config(None, [f"model.name={model}", "objective=contrastive", "data.store=-", f"data.clip_len={CLIP}",
                             f"data.size={SIZE}"])
    torch.manual_seed(0)
    objective = build_objective(cfg, build_vocabulary([t for t in batch.anchor_text if t])).to(device)
    if not isinstance(objective, Contrastive):
        raise TypeError(f"the contrastive benchmark needs a Contrastive objective, got {type(objective).__name__}")
    opt = build_optimizer(objective, cfg.optim, device, objective.no_weight_decay())
    ids, mask = objective.vocabulary.encode(batch.anchor_text, objective.max_words)
    inputs = {"video": batch.video.to(device), "text_ids": ids.to(device), "text_mask": mask.to(device),
              "valid": torch.ones(len(batch), dtype=torch.bool, device=device)}
    dtype = torch.bfloat16 if device.type == "cuda" else None

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = objective(inputs, step=0).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    med = float(np.median([_timed(step, device) for _ in range(steps)]))
    n_tokens, _ = objective.tokens_per_clip((CLIP, SIZE, SIZE))
    flops = 3 * objective.flops_per_clip((CLIP, SIZE, SIZE))
    peak, _ = device_peak(device, dtype or torch.float32)
    b = len(batch)
    return {"model": model, "batch": b, "median_step_s": med, "clips_per_s": b / med,
            "input_tokens_per_s": b * n_tokens / med, "mfu": (b * flops / med) / peak if peak else None}


def e2e_benchmark(model: str, work: Path, steps: int, batch: int, workers: int) -> dict[str, Any]:
    """CUDA: the whole loop with the real loader, against transformers with DataLoader + PyAV."""
    import av

    from babyfast.store.ingest import ingest
    from babyfast.synth import write_corpus
    from babyfast.train.config import load_config
    from babyfast.train.loop import train
    from bench.loader import _ClipsFromFiles  # the baseline dataset of bench/loader.py (same sources, same clips)

    src, store = work / "camera", work / "camera_store"
    if not (src / "ages.csv").exists():
        write_corpus(src, children=2, hours=4 / 60, size="640x480", fps=30, recording_minutes=2, seed=3, workers=4,
                     progress=False)
    if not (store / "index").exists():
        ingest(src, store, fps=10, size=256, gop=16, workers=8, progress=False)
    cfg = load_config(f"videomae_{model.split('_')[1]}", [
        f"data.store={store}", f"data.batch_size={batch}", f"train.out={work / ('run_' + model)}",
        f"train.steps={steps}", "train.log_every=10", f"train.save_every={steps}", "train.progress=false"])
    ours = train(cfg).summary
    paths = sorted(src.glob("*.mp4"))
    durations, sizes = [], []
    for p in paths:
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            durations.append(float(s.duration * s.time_base))
            sizes.append((s.codec_context.height, s.codec_context.width))
    device = torch.device("cuda")
    from babyfast.train.models import SIZES
    from babyfast.train.objectives.videomae import DECODER_SIZES

    enc = SIZES[model]
    dd, dheads = DECODER_SIZES[enc["embed_dim"]]
    hf = _hf_model(enc, (dd, 4, dheads)).to(device)
    opt = torch.optim.AdamW(hf.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=True)
    ds = _ClipsFromFiles(paths, durations, sizes, "pyav", (steps + 10) * batch)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, pin_memory=True,
                                     persistent_workers=True)
    from babyfast.train.objectives import TubeMaskSampler

    sampler = TubeMaskSampler((CLIP // 2, SIZE // 16, SIZE // 16), 0.9)
    n_tokens = (CLIP // 2) * (SIZE // 16) ** 2
    waited, t_start, done = 0.0, None, 0
    it = iter(dl)
    for i in range(steps + 5):
        t = time.perf_counter()
        video = next(it).to(device, non_blocking=True)
        if i >= 5:
            waited += time.perf_counter() - t
        if i == 5:
            torch.cuda.synchronize()
            t_start, waited = time.perf_counter(), 0.0
        m = sampler.sample(i, video.shape[0], device).masked
        bool_mask = torch.zeros(video.shape[0], n_tokens, dtype=torch.bool, device=device)
        bool_mask[torch.arange(video.shape[0], device=device)[:, None], m] = True
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = hf(pixel_values=_hf_inputs(video), bool_masked_pos=bool_mask).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        done += i >= 5
    torch.cuda.synchronize()
    if t_start is None:
        raise ValueError(f"the end-to-end benchmark needs at least one timed step, got steps={steps}")
    elapsed = time.perf_counter() - t_start
    hf_tokens = done * batch * n_tokens / elapsed
    return {"model": model, "batch": batch, "steps": steps, "babyfast": ours,
            "transformers_dataloader_pyav": {"input_tokens_per_s": hf_tokens, "stall": waited / elapsed,
                                             "workers": workers},
            "ratio": ours["input_tokens_per_s"] / hf_tokens}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="step benchmark model (default vit_tiny on CPU, vit_base on CUDA)")
    ap.add_argument("--batch", type=int, default=None, help="clips per step (default 8 on CPU, 32 on CUDA)")
    ap.add_argument("--steps", type=int, default=4, help="timed steps of each model (after one warm-up)")
    ap.add_argument("--e2e", action="store_true", help="CUDA: also the end-to-end runs of ViT-S and ViT-B")
    ap.add_argument("--e2e-steps", type=int, default=60)
    ap.add_argument("--workers", type=int, default=8, help="DataLoader workers of the e2e baseline")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model = args.model or ("vit_base" if cuda else "vit_tiny")
    batch = args.batch or (32 if cuda else 8)
    work = Path(tempfile.mkdtemp(prefix="babyfast-bench-train-"))
    try:
        clips = _batch(work, batch)
        step = step_benchmark(model, clips.video, args.steps, device)
        contrastive = contrastive_benchmark(model, clips, args.steps, device)
        e2e = [e2e_benchmark(m, work, args.e2e_steps, batch, args.workers) for m in ("vit_small", "vit_base")] \
            if args.e2e and cuda else []
    finally:
        shutil.rmtree(work, ignore_errors=True)
    where = torch.cuda.get_device_name(0) if cuda else machine()["cpu"]
    def mfu(x):
        return f"{100 * x:.1f}%" if x is not None else "n/a"

    rows = [[f"babyfast {model} VideoMAE step", round(step["babyfast"]["input_tokens_per_s"]),
             mfu(step["babyfast"]["mfu"]), round(step["ratio"], 2)],
            [f"transformers VideoMAEForPreTraining ({model} config)", round(step["transformers"]["input_tokens_per_s"]),
             mfu(step["transformers"]["mfu"]), 1.0],
            [f"babyfast {model} contrastive step ({contrastive['clips_per_s']:.1f} clips/s)",
             round(contrastive["input_tokens_per_s"]), mfu(contrastive["mfu"]), "no peer"]]
    notes = [f"Same batch of {batch} BabyWorld clips 16x224^2 (drawn around utterances), same tube masks "
             "(ratio 0.9), AdamW; "
             f"{'bf16 autocast' if cuda else 'fp32'}; median of {args.steps} steps each, alternated. MFU against "
             f"{step['peak_source']}. Encoder parameters: babyfast {step['parameters']['babyfast_encoder']:,}, "
             f"transformers {step['parameters']['transformers_encoder']:,}."]
    for e in e2e:
        b = e["babyfast"]
        rows.append([f"babyfast {e['model']} end to end (ClipLoader, store)", round(b["input_tokens_per_s"]),
                     mfu(b["mfu"]), round(e["ratio"], 2)])
        rows.append([f"transformers {e['model']} + DataLoader({e['transformers_dataloader_pyav']['workers']}) + PyAV",
                     round(e["transformers_dataloader_pyav"]["input_tokens_per_s"]), "n/a", 1.0])
        notes.append(f"{e['model']}: babyfast loader stall {100 * b['stall']:.1f}% (target <= 2%), baseline stall "
                     f"{100 * e['transformers_dataloader_pyav']['stall']:.1f}%; target >= 3x.")
    name = "train_gpu" if cuda else "train"
    path = write_result(name, {
        "device": where, "step": step, "contrastive": contrastive, "e2e": e2e,
        "table": {"title": f"Training throughput on {where}: babyfast vs transformers' VideoMAE",
                  "columns": ["method", "input tokens/s", "MFU", "babyfast speed-up"], "rows": rows, "notes": notes},
    }, Path(args.out) if args.out else None)
    print(f"wrote {path}: babyfast {step['babyfast']['input_tokens_per_s']:.0f} vs transformers "
          f"{step['transformers']['input_tokens_per_s']:.0f} input tokens/s (x{step['ratio']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
