"""The DALI GPU path of ClipLoader (runs only where CUDA and DALI are present)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from _media import make_video, psnr

from babyfast.loader.augment import Augment
from babyfast.loader.clip_loader import ClipLoader
from babyfast.store.ingest import ingest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", params=["h264", "hevc", "vp9", "jpeg"])
def store(request, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp(f"gpu-{request.param}")
    src = tmp / "src"
    src.mkdir()
    for i in range(2):
        make_video(src / f"v{i}.mp4", frames=150, w=160, h=120, rate=30)
    gop = 1 if request.param == "jpeg" else 8
    assert ingest(src, tmp / "store", fps=10, size=64, gop=gop, codec=request.param, progress=False).ok
    return tmp / "store"


def test_gpu_frames_match_zarr(store: Path) -> None:
    pytest.importorskip("nvidia.dali")
    g = zarr.open_group(str(store), mode="r")
    loader = ClipLoader(store, clip_len=8, batch_size=4, augment=Augment.none(), device="cuda")
    for batch in loader:
        assert batch["video"].is_cuda and batch["video"].dtype == torch.uint8
        for v, s, clip in zip(batch["video_id"], batch["start"], batch["video"]):
            ref = g[f"videos/{v}/frames"][int(s):int(s) + 8]
            assert psnr(clip.cpu().numpy(), ref) > 35  # NVDEC vs PyAV: same bitstream, colour conversion differs


def test_gpu_and_cpu_augmentation_agree(store: Path) -> None:
    pytest.importorskip("nvidia.dali")
    aug = Augment(size=48, brightness=0.3, contrast=0.3, saturation=0.3, hue=10)
    gpu = next(iter(ClipLoader(store, clip_len=8, batch_size=4, augment=aug, device="cuda", seed=3)))
    cpu = next(iter(ClipLoader(store, clip_len=8, batch_size=4, augment=aug, device="cpu", seed=3)))
    assert gpu["video_id"] == cpu["video_id"] and torch.equal(gpu["start"], cpu["start"])
    assert psnr(gpu["video"].cpu().numpy(), cpu["video"].numpy()) > 30
    assert np.array_equal(gpu["position"].numpy(), cpu["position"].numpy())
