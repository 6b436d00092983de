"""Small real stores and tiny training settings for the training tests (seconds per run on the CPU)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _media import make_video

from babyfast.store.ingest import ingest

ROOT = Path(__file__).resolve().parents[1]


def make_store(root: Path) -> Path:
    """Three short recordings of two children, ingested as raw 32x32 @10 fps, GOP 4."""
    src = root / "src"
    src.mkdir(parents=True)
    for i, n in enumerate([80, 60, 100]):
        make_video(src / f"v{i}.mp4", frames=n, w=64, h=48, rate=30)
    (src / "ages.csv").write_text("video,subject,age_days\nv0,S1,300\nv1,S1,100\nv2,S2,200\n")
    r = ingest(src, root / "store", fps=10, size=32, gop=4, codec="raw", shard_chunks=2, progress=False)
    assert r.ok, r.problems
    return root / "store"


def tiny(store: Path, out: Path, *extra: str) -> list[str]:
    """Dotted overrides for a tiny VideoMAE run: 4x32x32 clips (8 tubelets, 2 visible), width 64, 2 blocks."""
    return [f"data.store={store}", "data.clip_len=4", "data.size=32", "data.batch_size=2", "data.threads=1",
            "model.embed_dim=64", "model.depth=2", "model.num_heads=2", "model.attention_backend=sdpa",
            "model.patchify_backend=torch", "videomae.mask_ratio=0.75", "videomae.decoder_dim=32",
            "videomae.decoder_depth=1", "train.device=cpu", "train.progress=false", "train.log_every=2",
            "train.threads=1", f"train.out={out}", *extra]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.pop("TRITON_INTERPRET", None)  # the CPU training path never runs Triton
    e["OMP_NUM_THREADS"] = "1"
    return e


def babyfast(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "babyfast", *args], capture_output=True, text=True,
                          timeout=timeout, env=env(), cwd=ROOT, **kwargs)
