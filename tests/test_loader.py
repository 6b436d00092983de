"""ClipLoader on the CPU: exactly-once sharding, determinism, resume, frames, augmentation, errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from _media import make_video

import babyfast.store  # noqa: F401
from babyfast.loader.augment import Augment
from babyfast.loader.clip_loader import ClipLoader
from babyfast.store.ingest import ingest

ROOT = Path(__file__).resolve().parents[1]
NONE = Augment.none()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("loader")
    src = tmp / "src"
    src.mkdir()
    for i, n in enumerate([120, 90, 150]):
        make_video(src / f"v{i}.mp4", frames=n, w=64, h=48, rate=30)
    (src / "ages.csv").write_text("video,subject,age_days\nv0,S1,300\nv1,S1,100\nv2,S2,200\n")
    (src / "utterances.csv").write_text("video,start,end,text\nv0,0.0,0.5,look at the ball!\nv0,2.0,2.5,a duck\n")
    r = ingest(src, tmp / "store", fps=10, size=32, gop=4, codec="raw", shard_chunks=2, progress=False)
    assert r.ok, r.problems
    return tmp / "store"


def clip_keys(batches) -> list[tuple[str, int]]:
    return [(v, int(s)) for b in batches for v, s in zip(b["video_id"], b["start"])]


def all_candidates(store: Path, span: int, stride: int) -> Counter:
    g = zarr.open_group(str(store), mode="r")
    out = Counter()
    for v in ("v0", "v1", "v2"):
        n = g[f"videos/{v}/frames"].shape[0]
        out.update((v, s) for s in range(0, n - span + 1, stride))
    return out


@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_exactly_once_over_ranks_and_workers(store: Path, world: int) -> None:
    expected = all_candidates(store, 4, 4)
    n = sum(expected.values())
    seen = Counter()
    for rank in range(world):
        loader = ClipLoader(store, clip_len=4, batch_size=2, augment=NONE, rank=rank, world_size=world,
                            drop_last=True, seed=5)
        if world == 2:  # one rank through a DataLoader with workers: the same clips, in the same order
            plain = clip_keys(loader)
            loader.set_epoch(0)
            dl = torch.utils.data.DataLoader(loader, batch_size=None, num_workers=2)
            assert clip_keys(dl) == plain
            seen.update(plain)
        else:
            seen.update(clip_keys(loader))
    assert all(c == 1 for c in seen.values()), "a clip was read twice"
    assert set(seen) <= set(expected)
    per_rank = (n // world) // 2 * 2  # drop_last: whole batches of each rank's share
    assert sum(seen.values()) == per_rank * world


def test_pad_reads_every_clip(store: Path) -> None:
    expected = all_candidates(store, 4, 4)
    seen = Counter()
    for rank in range(3):
        seen.update(clip_keys(ClipLoader(store, clip_len=4, batch_size=1, augment=NONE, rank=rank, world_size=3,
                                         drop_last=False)))
    assert set(seen) == set(expected)


def test_determinism_and_seed(store: Path) -> None:
    aug = Augment(size=24, brightness=0.3, contrast=0.3, saturation=0.3, hue=10)
    a = list(ClipLoader(store, clip_len=8, batch_size=3, augment=aug, seed=1))
    b = list(ClipLoader(store, clip_len=8, batch_size=3, augment=aug, seed=1))
    c = list(ClipLoader(store, clip_len=8, batch_size=3, augment=aug, seed=2))
    assert clip_keys(a) == clip_keys(b) and clip_keys(a) != clip_keys(c)
    assert all(torch.equal(x["video"], y["video"]) for x, y in zip(a, b))
    assert a[0]["video"].shape == (3, 8, 24, 24, 3) and a[0]["video"].dtype == torch.uint8


def test_frames_equal_zarr_slicing(store: Path) -> None:
    g = zarr.open_group(str(store), mode="r")
    for b in ClipLoader(store, clip_len=6, batch_size=4, augment=NONE, seed=3):
        for v, s, clip, fi in zip(b["video_id"], b["start"], b["video"], b["frame_index"]):
            s = int(s)
            assert np.array_equal(clip.numpy(), g[f"videos/{v}/frames"][s:s + 6])
            assert fi.tolist() == list(range(s, s + 6))
    strided = ClipLoader(store, clip_len=3, batch_size=2, frame_step=3, augment=Augment(size=None, flip=0))
    b = next(iter(strided))
    v, s = b["video_id"][0], int(b["start"][0])
    assert np.array_equal(b["video"][0].numpy(), g[f"videos/{v}/frames"][s:s + 7:3])


def test_metadata_ages_utterances_timestamps(store: Path) -> None:
    g = zarr.open_group(str(store), mode="r")
    ages = {"v0": 300.0, "v1": 100.0, "v2": 200.0}
    found_utterance = False
    for b in ClipLoader(store, clip_len=4, batch_size=4, augment=NONE):
        for i, v in enumerate(b["video_id"]):
            assert b["age_days"][i].item() == ages[v] and b["subject"][i] == ("S2" if v == "v2" else "S1")
            s = int(b["start"][i])
            np.testing.assert_allclose(b["timestamps"][i].numpy(), g[f"videos/{v}/timestamps"][s:s + 4])
            t0, t1 = b["timestamps"][i][0].item(), b["timestamps"][i][-1].item() + 0.1
            want = [u for u in [(0.0, 0.5, "look at the ball!"), (2.0, 2.5, "a duck")] if v == "v0" and u[0] < t1 and u[1] > t0]
            assert b["utterances"][i] == want
            found_utterance |= bool(want)
    assert found_utterance


def test_age_order_is_youngest_first(store: Path) -> None:
    b = ClipLoader(store, clip_len=4, batch_size=1, augment=NONE, order="age", window=1)
    ages = [x["age_days"][0].item() for x in b]
    assert ages == sorted(ages)


def test_augmentation_is_consistent_across_frames(store: Path) -> None:
    aug = Augment(size=16, scale=(0.2, 0.6), flip=0.5)
    loader = ClipLoader(store, clip_len=4, batch_size=8, augment=aug, seed=9)
    batch = next(iter(loader))
    g = zarr.open_group(str(store), mode="r")
    params = aug.draw(9, 0, batch["position"].numpy(), 32, 32)
    assert len({tuple(b) for b in params.box}) > 1 and 0 < params.flip.sum() < 8
    for i, (v, s) in enumerate(zip(batch["video_id"], batch["start"])):
        raw = torch.from_numpy(g[f"videos/{v}/frames"][int(s):int(s) + 4]).permute(0, 3, 1, 2).float()
        y0, x0, h, w = params.box[i]
        # the same box and flip on every frame: compare with torch applied frame by frame, independently
        for t in range(4):
            crop = raw[t:t + 1, :, y0:y0 + h, x0:x0 + w]
            ref = torch.nn.functional.interpolate(crop, size=(16, 16), mode="bilinear", antialias=True,
                                                  align_corners=False).round().clamp(0, 255)
            if params.flip[i]:
                ref = ref.flip(-1)
            # within one grey level: the loader resizes uint8 in fixed point, the reference in float
            assert (batch["video"][i, t].permute(2, 0, 1).float() - ref[0]).abs().max() <= 1


def test_resume_with_other_worker_counts(store: Path) -> None:
    full = clip_keys(ClipLoader(store, clip_len=4, batch_size=2, augment=NONE, seed=4))
    first = ClipLoader(store, clip_len=4, batch_size=2, augment=NONE, seed=4)
    dl = torch.utils.data.DataLoader(first, batch_size=None, num_workers=2)
    got = []
    for k, batch in enumerate(dl):
        got.append(batch)
        if k == 4:
            state = first.state_from_batch(batch)
            break
    second = ClipLoader(store, clip_len=4, batch_size=2, augment=NONE, seed=4)
    second.load_state_dict(json.loads(json.dumps(state)))
    rest = list(torch.utils.data.DataLoader(second, batch_size=None, num_workers=3))
    assert clip_keys(got) + clip_keys(rest) == full
    third = ClipLoader(store, clip_len=4, batch_size=2, augment=NONE, seed=4)
    third.load_state_dict(state)
    assert clip_keys(third) == clip_keys(rest)  # plain iteration, no workers
    with pytest.raises(ValueError, match="other settings"):
        ClipLoader(store, clip_len=4, batch_size=3, augment=NONE, seed=4).load_state_dict(state)


def test_resume_after_killed_process(store: Path, tmp_path: Path) -> None:
    script = ROOT / "tests" / "_loader_resume.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(store), str(out), "--slow"], env=env)
    log = out / "batches.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run([sys.executable, str(script), str(store), str(out)], env=env, check=True)
    resumed = [json.loads(x) for x in log.read_text().splitlines()]
    ref_out = tmp_path / "ref"
    subprocess.run([sys.executable, str(script), str(store), str(ref_out)], env=env, check=True)
    uninterrupted = [json.loads(x) for x in (ref_out / "batches.jsonl").read_text().splitlines()]
    # a batch received but not yet checkpointed when killed is received again: compare by batch index
    by_index = {b["batch_index"]: b for b in resumed}
    assert [by_index[b["batch_index"]] for b in uninterrupted] == uninterrupted
    assert len(by_index) == len(uninterrupted)


def test_torchrun_two_processes(store: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "ranks.json"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    str(ROOT / "tests" / "_loader_torchrun.py"), str(store), str(out)],
                   env=env, check=True, timeout=120)
    result = json.loads(out.read_text())
    a, b = (set(map(tuple, r)) for r in result["ranks"])
    assert a and b and not a & b
    assert len(a | b) == result["expected"]


def test_errors_at_construction(tmp_path: Path, store: Path) -> None:
    from babyfast.store import StoreError

    with pytest.raises(StoreError, match="no such store"):
        ClipLoader(tmp_path / "nope")
    ingest(tmp_path, tmp_path / "empty", progress=False)
    with pytest.raises(ValueError, match="holds no videos"):
        ClipLoader(tmp_path / "empty")
    with pytest.raises(ValueError, match="spans 60 frames but the longest selected video has 50"):
        ClipLoader(store, clip_len=60)
    with pytest.raises(ValueError, match="on_error"):
        ClipLoader(store, on_error="ignore")


def test_corrupt_chunk_skip_and_raise(store: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(store, bad)
    shard = bad / "videos" / "v1" / "frames" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF  # inside chunk 0 of v1
    shard.write_bytes(bytes(data))
    loader = ClipLoader(bad, clip_len=4, batch_size=2, augment=NONE, on_error="skip")
    keys = clip_keys(loader)
    assert ("v1", 0) not in keys and loader.stats()["skipped"] >= 1
    assert loader.skipped[0][:2] == ("v1", 0)
    assert len(keys) == len(clip_keys(ClipLoader(store, clip_len=4, batch_size=2, augment=NONE)))
    with pytest.raises(RuntimeError, match=r"video 'v1' chunk 0"):
        list(ClipLoader(bad, clip_len=4, batch_size=2, augment=NONE, on_error="raise"))


def test_from_videos_reads_plain_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    imgs = make_video(src / "a.mp4", frames=30, w=48, h=32, rate=10, crf=0)
    loader = ClipLoader.from_videos([src / "a.mp4"], clip_len=5, batch_size=2, augment=NONE, seed=1)
    for b in loader:
        for s, clip in zip(b["start"], b["video"]):
            ref = np.stack(imgs[int(s):int(s) + 5])
            assert np.abs(clip.numpy().astype(int) - ref).mean() < 3  # lossless h264, yuv420 round trip


def test_float_output_is_normalized(store: Path) -> None:
    u = next(iter(ClipLoader(store, clip_len=4, batch_size=2, augment=NONE)))
    f = next(iter(ClipLoader(store, clip_len=4, batch_size=2, augment=NONE, output="float")))
    mean = torch.tensor([0.485, 0.456, 0.406]) * 255
    std = torch.tensor([0.229, 0.224, 0.225]) * 255
    torch.testing.assert_close(f["video"], (u["video"].float() - mean) / std)


def test_dataloader_with_spawned_workers(store: Path) -> None:
    loader = ClipLoader(store, clip_len=4, batch_size=2, augment=NONE, seed=6)
    plain = clip_keys(loader)
    loader.set_epoch(0)
    dl = torch.utils.data.DataLoader(loader, batch_size=None, num_workers=2, multiprocessing_context="spawn")
    assert clip_keys(dl) == plain


_FORK_AFTER_DECODE = """
import sys, torch
from babyfast.loader.augment import Augment
from babyfast.loader.clip_loader import ClipLoader
loader = ClipLoader(sys.argv[1], clip_len=4, batch_size=2, augment=Augment(size=24), threads=2)
next(iter(loader))  # the decoders (PyAV in the loader's threads, or a DALI pipeline) are alive from here on;
# a peek does not move the epoch's start: the DataLoader reads all 5 batches
dl = torch.utils.data.DataLoader(loader, batch_size=None, num_workers=2, multiprocessing_context="fork")
print(len(list(dl)), "batches")
"""


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_dataloader_forked_after_decoding(tmp_path: Path, codec: str) -> None:
    """DataLoader workers forked after the loader decoded in this process must work. Two ways they broke:
    the worker freed the parent's DALI pipeline, whose threads fork did not copy (segfault, vp9 here); and
    PyAV >= 19 keeps a scaler per thread, whose own threads hung every forked child as it dropped the other
    threads' state (h264 here; seen with PyAV 19 / FFmpeg 8 on Python 3.12, the GPU machine's)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        make_video(src / f"v{i}.mp4", frames=60, w=96, h=64, rate=30)
    assert ingest(src, tmp_path / "store", fps=10, size=32, gop=4, codec=codec, progress=False).ok
    proc = subprocess.run([sys.executable, "-c", _FORK_AFTER_DECODE, str(tmp_path / "store")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["5", "batches"]


@pytest.mark.parametrize("codec,gop", [("vp9", 4), ("jpeg", 1)])
def test_dali_cpu_decoder_matches_pyav(tmp_path: Path, codec: str, gop: int) -> None:
    pytest.importorskip("nvidia.dali")
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "v.mp4", frames=90, w=64, h=48, rate=30)
    ingest(src, tmp_path / "store", fps=10, size=32, gop=gop, codec=codec, progress=False)
    dali = ClipLoader(tmp_path / "store", clip_len=4, batch_size=3, augment=NONE, seed=2, decoder="dali")
    pyav = ClipLoader(tmp_path / "store", clip_len=4, batch_size=3, augment=NONE, seed=2, decoder="pyav")
    assert dali.sources[0]._dali_cpu is None  # made lazily, per process
    for a, b in zip(dali, pyav):
        assert clip_keys([a]) == clip_keys([b])
        from _media import psnr

        # one bitstream, two decoders: they differ only in how chroma is upsampled to RGB
        assert psnr(a["video"].numpy(), b["video"].numpy()) > 35
    assert dali.sources[0]._dali_cpu is not None and pyav.sources[0]._dali_cpu is None
    with pytest.raises(ValueError, match="DALI's CPU decoders read vp9, jpeg"):
        ingest(src, tmp_path / "h", fps=10, size=32, gop=4, progress=False)
        next(iter(ClipLoader(tmp_path / "h", clip_len=4, batch_size=3, augment=NONE, decoder="dali")))


def test_store_with_kept_aspect_ratios(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "wide.mp4", frames=60, w=96, h=48, rate=10)
    make_video(src / "tall.mp4", frames=60, w=48, h=96, rate=10)
    ingest(src, tmp_path / "store", fps=10, size=32, gop=4, codec="raw", crop=False, progress=False)
    loader = ClipLoader(tmp_path / "store", clip_len=4, batch_size=4, augment=Augment(size=24), seed=1)
    g = zarr.open_group(str(tmp_path / "store"), mode="r")
    assert g["videos/wide/frames"].shape[1:3] == (32, 64) and g["videos/tall/frames"].shape[1:3] == (64, 32)
    batches = list(loader)
    assert {v for b in batches for v in b["video_id"]} == {"wide", "tall"}
    assert all(b["video"].shape[2:] == (24, 24, 3) for b in batches)
    # each clip's box was drawn inside its own video's frames: tall boxes for the tall video and so on
    shape = {"wide": (32, 64), "tall": (64, 32)}
    longest = 0
    for b in batches:
        hw = np.array([shape[v] for v in b["video_id"]])
        params = Augment(size=24).draw(1, 0, b["position"].numpy(), hw[:, 0], hw[:, 1])
        y0, x0, h, w = params.box.T
        assert np.all(y0 + h <= hw[:, 0]) and np.all(x0 + w <= hw[:, 1])
        longest = max(longest, int(np.maximum(h, w).max()))
    assert longest > 32  # boxes longer than the short side exist: each clip used its own frame size
    with pytest.raises(ValueError, match="differ in frame size"):
        list(ClipLoader(tmp_path / "store", clip_len=4, batch_size=4, augment=NONE, seed=1))


def test_clips_inside_one_chunk_are_views_and_every_request_reads_the_stored_frames(store: Path) -> None:
    from babyfast.loader.sources import StoreSource

    src = StoreSource(store)
    v = src.ids.index("v0")
    stored = zarr.open_group(str(store), mode="r")["videos/v0/frames"][:]
    requests = {"one chunk": np.arange(4, 8), "one chunk, step 2": np.array([8, 10]), "one frame": np.array([5]),
                "two chunks": np.arange(6, 10), "two chunks, step 3": np.array([2, 5, 8])}
    got = src.frames([(v, idx) for idx in requests.values()])
    for (what, idx), clip in zip(requests.items(), got, strict=True):
        assert np.array_equal(clip, stored[idx]), what
        # gop 4: a clip inside one chunk views the decoded chunk, one across chunks is gathered
        assert (clip.base is not None) == what.startswith("one"), what
    src.close()
