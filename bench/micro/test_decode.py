"""CPU decode of store chunks: one GOP per codec through `babyfast.store.codec.decode_gop`, and the loader's
CPU path over an ingested store (C++ reader + PyAV in threads + gather) for a batch of clips.

`extra_info["frames_per_s"]` holds the rate of the fastest round.
"""
from __future__ import annotations

import numpy as np
import pytest

from babyfast.store.codec import decode_gop, encode_gop

BATCH = 8


def _record(benchmark, frames: int) -> None:
    benchmark.extra_info["frames"] = frames
    benchmark.extra_info["frames_per_s"] = frames / benchmark.stats.stats.min


@pytest.mark.parametrize("codec", ["h264", "vp9", "jpeg", "raw"])
def test_decode_gop(benchmark, babyworld_clip, codec):
    """One chunk of 16 frames of 256x256 (jpeg: its one frame), encoded with the store's defaults."""
    frames = babyworld_clip[:1] if codec == "jpeg" else babyworld_clip
    payload = encode_gop(frames, codec)
    t, h, w = frames.shape[:3]
    out = benchmark(decode_gop, payload, codec, t, h, w)
    assert out.shape == frames.shape
    benchmark.extra_info["payload_bytes"] = len(payload)
    _record(benchmark, t)


def test_store_clips_cpu(benchmark, small_store):
    """A batch of 8 GOP-aligned 16-frame clips from an ingested h264 store, read and decoded as the
    ClipLoader's CPU path does (StoreSource, PyAV decoder, 2 threads)."""
    from babyfast.loader.sources import StoreSource

    source = StoreSource(small_store, threads=2, decoder="pyav")
    gop = source.info.gop
    chunks = int(source.frames_per_video[0]) // gop
    starts = np.random.default_rng(0).choice(chunks, size=BATCH, replace=chunks < BATCH) * gop
    requests = [(0, np.arange(s, s + gop)) for s in starts]
    try:
        clips = benchmark.pedantic(source.frames, args=(requests,), rounds=10, iterations=1, warmup_rounds=1)
        assert all(isinstance(c, np.ndarray) and c.shape[0] == gop for c in clips), clips
    finally:
        source.close()
    _record(benchmark, BATCH * gop)
