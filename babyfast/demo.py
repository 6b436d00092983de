"""`make demo`: the main job on the embedded synthetic world, end to end on this machine.

    python -m babyfast.demo [DIR]

1. render a small BabyWorld corpus (recordings, utterances, ages, ground truth) into DIR/world;
2. ingest it into a GOP-chunked zarr v3 store, DIR/store, and print what the store holds;
3. check every chunk of the store (crc32c and a decode);
4. stream augmented clips out of it with ClipLoader (CPU path), report clips/s and where time went,
   and save a contact sheet of one batch, DIR/batch.png;
5. train vit_tiny with the VideoMAE objective on the CPU for a few minutes (configs/videomae_tiny_cpu.yaml)
   into DIR/run: checkpoints, JSONL and TensorBoard logs, a plot; print tokens/s, MFU and loader stall;
6. write held-out milestone probe suites, DIR/probes, and score the trained model and the same
   architecture with random weights on them: the report card, DIR/run/eval/report.{md,png,json}.

Re-running reuses what is already there (the world by its folder, the store by sha256 of each recording,
the run by its checkpoints: a finished run is not trained again, an interrupted one resumes).
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np


def _contact_sheet(video: np.ndarray, rows: int = 4, cols: int = 8) -> np.ndarray:
    """One row per clip, `cols` frames across: a picture of what the model will see."""
    b, t, h, w, _ = video.shape
    rows, cols = min(rows, b), min(cols, t)
    step = max(1, t // cols)
    sheet = np.full((rows * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            sheet[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = video[r, c * step]
    return sheet


def _train(store: Path, run: Path) -> dict | None:
    """The demo's training run; returns its summary (None after a failure, which it prints)."""
    from babyfast.train import load_config, plot_run, train
    from babyfast.train.checkpoint import CheckpointError
    from babyfast.train.config import CONFIG_DIR
    from babyfast.train.loop import NonFiniteLoss

    cfg = load_config(CONFIG_DIR / "videomae_tiny_cpu.yaml", [f"data.store={store}", f"train.out={run}"])
    try:
        result = train(cfg)
    except (NonFiniteLoss, CheckpointError) as e:
        print(f"   training failed: {e}")
        return None
    summary = result.summary if result.summary.get("clips_per_s") is not None else \
        json.loads((run / "summary.json").read_text())
    mfu = f"{100 * summary['mfu']:.1f}%" if summary.get("mfu") is not None else "n/a"
    print(f"   {cfg.model.name} ({cfg.data.clip_len}x{cfg.data.size}^2 clips, batch {cfg.data.batch_size}, mask "
          f"{cfg.videomae.mask_ratio}): step {summary['step']}, loss {summary['first_loss']:.4f} -> "
          f"{summary['final_loss']:.4f}")
    print(f"   {summary['clips_per_s']:.1f} clips/s, {summary['input_tokens_per_s']:.0f} input tokens/s, "
          f"{summary['encoder_tokens_per_s']:.0f} encoder tokens/s; MFU {mfu} (of a measured CPU GEMM); loader "
          f"stall {100 * summary['stall']:.1f}%; peak memory {summary['peak_memory_gb']:.2f} GB")
    print(f"   run folder {run}: checkpoints/, metrics.jsonl, tb/ (tensorboard --logdir {run / 'tb'}), "
          f"plot {plot_run(run)}")
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "demo")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from babyfast.store.ingest import ingest
    from babyfast.store.summary import check, format_summary, summarize
    from babyfast.synth import write_corpus, write_probes
    from babyfast.synth.png import write_png

    world, store, probes = out / "world", out / "store", out / "probes"
    print(f"== 1. BabyWorld: 3 children, 6 minutes of 256x256 @10 fps video -> {world}")
    if not (world / "ages.csv").exists():
        corpus = write_corpus(world, children=3, hours=0.1, size=256, fps=10, recording_minutes=1.0, seed=0, workers=2)
        print(f"   {len(corpus.recordings)} recordings, {corpus.frames} frames")
    else:
        print("   (already there)")

    print(f"== 2. ingest -> {store}")
    result = ingest(world, store, fps=10, size=256, gop=16, workers=2)
    print(f"   ingested {len(result.ingested)}, skipped {len(result.skipped)} (already complete), "
          f"{result.frames} frames in {result.seconds:.1f} s")
    for p in result.problems:
        print(f"   problem [{p.kind}] {p.file}: {p.reason}")
    print("   " + format_summary(summarize(store)).replace("\n", "\n   "))

    print("== 3. check every chunk")
    report = check(store, threads=2)
    print(f"   {report.chunks} chunks, {'all sound' if report.ok else f'{len(report.bad)} bad: {report.bad[:3]}'}")

    print("== 4. ClipLoader: 16-frame clips, random resized crop to 224, flip, colour jitter (CPU path)")
    from babyfast.loader.augment import Augment
    from babyfast.loader.clip_loader import ClipLoader

    loader = ClipLoader(store, clip_len=16, batch_size=8, device="cpu", seed=0, order="age_mix", threads=2,
                        augment=Augment(size=224, brightness=0.2, contrast=0.2, saturation=0.2, hue=5))
    t = time.perf_counter()
    batches = 0
    first = None
    for batch in loader:
        first = first if first is not None else batch
        batches += 1
        if batches == 12:
            break
    secs = time.perf_counter() - t
    if first is None:
        raise RuntimeError(f"{store}: the ClipLoader yielded no batch")
    clips = batches * 8
    print(f"   {batches} batches of {tuple(first['video'].shape)} uint8 in {secs:.1f} s: {clips / secs:.1f} clips/s, "
          f"{clips * 16 / secs:.0f} frames/s; {len(loader)} batches per epoch")
    print(f"   stage seconds: {json.dumps(loader.stats())}")
    print(f"   first clip: video {first['video_id'][0]}, frames {first['start'][0].item()}.., age "
          f"{first['age_days'][0].item():.0f} days, utterances {first['utterances'][0]}")
    sheet = write_png(out / "batch.png", _contact_sheet(first["video"].numpy()))
    print(f"   contact sheet of the first batch: {sheet}")

    print(f"== 5. train vit_tiny VideoMAE on the CPU -> {out / 'run'}")
    summary = _train(store, out / "run")
    if summary is None:
        return 1

    print(f"== 6. milestones: held-out BabyWorld probes -> {probes}; the model against its random-init control")
    if not (probes / "probes.json").exists():
        write_probes(probes, size=112, trials=96, quads=16, movie_frames=16, workers=2)
    from babyfast.eval.report import format_card, write_report
    from babyfast.eval.run import evaluate

    evaluation = evaluate(out / "run", probes, headline_only=True)
    paths = write_report(evaluation, out / "run" / "eval")
    print("   " + format_card(evaluation.as_dict()).replace("\n", "\n   "))
    print(f"   report card: {paths['md']}, {paths['png']}; a bigger run: babyfast synth-probes, babyfast eval")
    print("done.")
    return 0 if result.ok and report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
