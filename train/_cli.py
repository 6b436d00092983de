"""`babyfast train`, `babyfast vocab` and `babyfast plot`."""
from __future__ import annotations

import argparse
import json
import logging
import sys

log = logging.getLogger(__name__)


def _train(args: argparse.Namespace) -> int:
    from .checkpoint import CheckpointError
    from .config import ConfigError, load_config
    from .loop import NonFiniteLoss, train

    try:
        cfg = load_config(args.config, args.overrides)
        result = train(cfg)
    except (ConfigError, NonFiniteLoss, CheckpointError) as e:
        print(f"babyfast train: {e}", file=sys.stderr)
        return 1
    if not result.is_main:  # under torchrun, rank 0 speaks for the run
        return 0
    s = result.summary
    if s.get("clips_per_s") is not None:
        mfu = f"{100 * s['mfu']:.1f}%" if s.get("mfu") is not None else "n/a"
        print(f"{result.run}: step {result.step} ({result.stopped_by}); loss {s['first_loss']:.4f} -> "
              f"{s['final_loss']:.4f}; {s['clips_per_s']:.1f} clips/s, {s['input_tokens_per_s']:.0f} input tokens/s, "
              f"{s['encoder_tokens_per_s']:.0f} encoder tokens/s, MFU {mfu}, loader stall {100 * s['stall']:.1f}%")
    else:
        print(f"{result.run}: step {result.step} ({result.stopped_by}); nothing left to train")
    if args.json:
        print(json.dumps(s))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from .plot import plot_run

    try:
        path = plot_run(args.run, args.out)
    except (FileNotFoundError, ValueError) as e:
        print(f"babyfast plot: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _vocab(args: argparse.Namespace) -> int:
    from babyfast.store.layout import StoreError

    from .vocab import build_vocabulary, store_utterances

    try:
        texts = store_utterances(args.stores)
    except (StoreError, ValueError) as e:
        print(f"babyfast vocab: {e}", file=sys.stderr)
        return 1
    if not texts:
        print(f"babyfast vocab: {', '.join(args.stores)} hold no transcripts", file=sys.stderr)
        return 1
    vocab = build_vocabulary(texts, args.min_count, args.max_size)
    if args.out:
        vocab.save(args.out)
    print(f"{len(texts)} utterances, {len(vocab) - 2} words (+ padding, unknown) seen >= {args.min_count} times"
          + (f"; written to {args.out}" if args.out else ""))
    print("most frequent: " + ", ".join(vocab.itos[2:2 + args.show]))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (VideoMAE) on a store; resumes a run folder that has checkpoints",
                       description="Train from a YAML config with dotted overrides, e.g. "
                                   "babyfast train --config configs/videomae_tiny_cpu.yaml optim.lr=3e-4 "
                                   "train.steps=200. Under torchrun every rank runs this same command.")
    p.add_argument("--config", help="YAML file, or the name of one in configs/ (e.g. videomae_tiny_cpu)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides (data.store=..., train.out=...)")
    p.add_argument("--json", action="store_true", help="also print the run summary as JSON")
    p.set_defaults(func=_train)
    p = sub.add_parser("vocab", help="the word vocabulary of stores' transcripts (what the contrastive trainer builds)")
    p.add_argument("stores", nargs="+")
    p.add_argument("--min-count", type=int, default=1, help="words seen fewer times are unknown (default 1)")
    p.add_argument("--max-size", type=int, default=None, help="keep at most this many ids")
    p.add_argument("--out", help="write the vocabulary (JSON) here")
    p.add_argument("--show", type=int, default=20, help="print this many of the most frequent words")
    p.set_defaults(func=_vocab)
    p = sub.add_parser("plot", help="draw a run's loss and throughput to a PNG")
    p.add_argument("run", help="run folder (holds metrics.jsonl)")
    p.add_argument("--out", help="PNG path (default RUN/plot.png)")
    p.set_defaults(func=_plot)
