"""A stored vp9 chunk decodes on its own with DALI's CPU video decoder (what the loader's CPU path uses)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from _media import make_video, psnr

from babyfast.store.codec import decode_gop
from babyfast.store.ingest import ingest
from babyfast.store.reader import ChunkReader

dali = pytest.importorskip("nvidia.dali")


def _dali_cpu_decode(payloads: list[bytes]) -> list[np.ndarray]:
    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def

    @pipeline_def(batch_size=len(payloads), num_threads=1, device_id=None, exec_dynamic=True)
    def pipe():
        data = fn.external_source(source=lambda: [np.frombuffer(p, np.uint8) for p in payloads], batch=True,
                                  dtype=types.UINT8)
        return fn.decoders.video(data, device="cpu")

    p = pipe()
    p.build()
    (out,) = p.run()
    return [np.array(out[i]) for i in range(len(payloads))]


def test_dali_cpu_decodes_stored_vp9_chunks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "rec.mp4", frames=60, w=128, h=96, rate=30)
    r = ingest(src, tmp_path / "store", fps=10, size=64, gop=8, codec="vp9", shard_chunks=2, progress=False)
    assert r.ok, r.problems
    reader = ChunkReader(tmp_path / "store")
    batch = reader.read([("rec", 0), ("rec", 1), ("rec", 2)])
    payloads = [bytes(batch.payload(i)) for i in range(3)]
    decoded = _dali_cpu_decode(payloads)
    arr = zarr.open_group(str(tmp_path / "store"), mode="r")["videos/rec/frames"]
    real = arr.shape[0]  # 20 frames: the last chunk holds 4 real frames and 4 of zarr's padding
    for c, frames in enumerate(decoded):
        assert frames.shape == (8, 64, 64, 3)
        ours = decode_gop(payloads[c], "vp9", 8, 64, 64)
        n = min(8, real - c * 8)
        assert np.array_equal(ours[:n], arr[c * 8:c * 8 + n])
        assert psnr(frames, ours) > 40  # two decoders of one bitstream differ at most by colour conversion
