"""`babyfast check` names corrupt chunks; the reader's bytes match zarr-python's on an ingested store."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _media import make_video

from babyfast.store.summary import check
from babyfast.store.ingest import ingest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "a.mp4", frames=60, w=96, h=72)
    make_video(src / "b.mp4", frames=45, w=96, h=72)
    r = ingest(src, tmp_path / "store", fps=10, size=48, gop=4, shard_chunks=2, progress=False)
    assert r.ok
    return tmp_path / "store"


def _chunk_span(store: Path, vid: str, shard: int, inner: int) -> tuple[Path, int, int]:
    import numpy as np

    path = store / "videos" / vid / "frames" / "c" / str(shard) / "0" / "0" / "0"
    data = path.read_bytes()
    index = np.frombuffer(data[-(2 * 16 + 4):-4], dtype="<u8").reshape(2, 2)
    return path, int(index[inner, 0]), int(index[inner, 1])


def test_check_sound_store(store: Path) -> None:
    r = check(store, progress=False)
    assert r.ok and r.chunks == 5 + 4


def test_check_names_corrupt_chunk_and_missing_shard(store: Path) -> None:
    path, off, n = _chunk_span(store, "a", 1, 1)  # chunk 3 of video a
    data = bytearray(path.read_bytes())
    data[off + n // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    (store / "videos" / "b" / "frames" / "c" / "1" / "0" / "0" / "0").unlink()  # chunks 2 and 3 of video b
    r = check(store, progress=False)
    bad = {(v, c) for v, c, _ in r.bad}
    assert bad == {("a", 3), ("b", 2), ("b", 3)}, r.bad
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "babyfast", "check", str(store), "--no-progress"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 1
    assert "CORRUPT video a chunk 3" in out.stdout and "CORRUPT video b chunk 2" in out.stdout


def test_reader_bytes_equal_zarr_python_on_ingested_store(store: Path) -> None:
    import asyncio

    import zarr
    from zarr.core.buffer import default_buffer_prototype

    from zarr.codecs.sharding import _ShardReader

    from babyfast.store.reader import ChunkReader

    arr = zarr.open_group(str(store), mode="r")["videos/a/frames"]
    sharding = arr.metadata.codecs[0]
    reader = ChunkReader(store)
    batch = reader.read([("a", c) for c in range(5)])
    for c in range(5):
        shard_key = f"videos/a/frames/c/{c // 2}/0/0/0"
        shard = asyncio.run(arr.store_path.store.get(shard_key, prototype=default_buffer_prototype()))
        sr = asyncio.run(_ShardReader.from_bytes(shard, sharding, (2, 1, 1, 1)))
        expected = sr[(c % 2, 0, 0, 0)].to_bytes()
        assert bytes(batch[c]) == expected


def test_check_reports_a_video_with_broken_metadata_and_checks_the_rest(store: Path) -> None:
    (store / "videos" / "b" / "frames" / "zarr.json").write_text("{ not json")
    r = check(store, progress=False)
    assert [(v, c) for v, c, _ in r.bad] == [("b", -1)] and "unreadable" in r.bad[0][2]
    assert r.chunks == 5  # every chunk of video a was still read and decoded


def test_loader_skips_clips_of_a_video_with_broken_metadata(store: Path) -> None:
    from babyfast.loader import Augment, ClipLoader

    (store / "videos" / "b" / "frames" / "zarr.json").write_text("{ not json")
    loader = ClipLoader(store, clip_len=4, batch_size=2, augment=Augment.none(), on_error="skip")
    ids = {v for batch in loader for v in batch["video_id"]}
    assert ids == {"a"} and loader.stats()["skipped"] >= 1 and loader.skipped[0][0] == "b"


def test_plain_zarr_walks_the_store_and_check_repairs_an_old_one(tmp_path: Path) -> None:
    import json as _json

    import zarr

    from babyfast.store.layout import repair_groups

    src = tmp_path / "src"
    src.mkdir()
    make_video(src / "a.mp4", frames=30, w=48, h=32, rate=10)
    (src / "utterances.csv").write_text("video,start,end,text\na,0.0,0.5,hello\n")
    assert ingest(src, tmp_path / "store", fps=10, size=32, gop=4, codec="raw", progress=False).ok
    store = tmp_path / "store"
    root = zarr.open_group(str(store), mode="r")
    assert set(root.group_keys()) == {"videos", "index"}
    assert [name for name, _ in root["videos"].members()] == ["a"]
    names = [name for name, _ in root.members(max_depth=None)]
    assert "videos/a/frames" in names and "videos/a/utterances/text" in names
    assert "frames" in str(root.tree())
    assert repair_groups(store) == []  # nothing to repair in a store written now
    (store / "videos" / "zarr.json").unlink()  # as stores written before this version
    with pytest.raises(KeyError):
        zarr.open_group(str(store), mode="r")["videos"]
    r = subprocess.run([sys.executable, "-m", "babyfast", "check", str(store), "--repair", "--no-progress"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "REPAIRED videos: wrote its group metadata" in r.stdout
    assert _json.loads((store / "videos" / "zarr.json").read_text())["node_type"] == "group"
    assert [name for name, _ in zarr.open_group(str(store), mode="r")["videos"].members()] == ["a"]
