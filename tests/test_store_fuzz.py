"""Fuzzing what a store's reader trusts: the frames array's zarr.json and the shard index. Random values
within and beyond the limits never crash and never hang: every read gives a clear error or the bytes
the metadata points at, and `check` flags what the loader would trip on."""
from __future__ import annotations

import copy
import faulthandler
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _media import make_video

from babyfast._core import crc32c
from babyfast.store import _limits as limits
from babyfast.store.layout import StoreError, store_info
from babyfast.store.ingest import ingest
from babyfast.store.summary import check
from babyfast.store.reader import ChunkReader, LayoutError, _parse_layout
from babyfast.store._validate import load_video

ROUNDS = 300
S = 3  # chunks per shard of the fuzzed store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fuzz")
    src = tmp / "src"
    src.mkdir()
    make_video(src / "a.mp4", frames=60, w=64, h=48)
    make_video(src / "b.mp4", frames=30, w=64, h=48)
    assert ingest(src, tmp / "store", size=32, gop=2, shard_chunks=S, codec="raw", progress=False).ok
    return tmp / "store"


@pytest.fixture(autouse=True)
def no_hang():
    # a hang is a failure with every thread's stack, not a stuck CI job
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _values(limit: int) -> list[Any]:
    return [0, 1, -1, 2, 3, 4, 6, 32, limit - 1, limit, limit + 1, 10**15, 2**63, 2**64, 1.5, 2.0, "4", None, [],
            {}, True, [1, 2], "start", "end", "middle", "default", "v2", ".", "/"]


# (path into the JSON, the limit that bounds it)
FIELDS = [(("shape", 0), limits.MAX_FRAMES), (("shape", 1), limits.MAX_SIDE), (("shape", 2), limits.MAX_SIDE),
          (("shape", 3), 3), (("chunk_grid", "configuration", "chunk_shape", 0), limits.MAX_SHARD_FRAMES),
          (("chunk_grid", "configuration", "chunk_shape", 1), limits.MAX_SIDE),
          (("codecs", 0, "configuration", "chunk_shape", 0), limits.MAX_GOP),
          (("codecs", 0, "configuration", "chunk_shape", 2), limits.MAX_SIDE),
          (("codecs", 0, "configuration", "index_location",), 0),
          (("codecs", 0, "configuration", "index_codecs"), 0), (("codecs", 0, "configuration"), 0),
          (("codecs", 0, "name"), 0), (("codecs",), 0), (("chunk_grid",), 0), (("chunk_grid", "name"), 0),
          (("chunk_key_encoding", "name"), 0), (("chunk_key_encoding", "configuration", "separator"), 0),
          (("chunk_key_encoding",), 0), (("data_type",), 0), (("zarr_format",), 3), (("node_type",), 0)]


def _set(doc: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        if isinstance(doc, dict) and key in doc or isinstance(doc, list) and isinstance(key, int) and key < len(doc):
            doc = doc[key]
        else:
            return
    if isinstance(doc, dict) or isinstance(doc, list) and isinstance(path[-1], int) and path[-1] < len(doc):
        doc[path[-1]] = value


def _layout(frames_dir: Path, meta: Any):
    try:
        return _parse_layout("a", frames_dir, meta)
    except LayoutError:
        return None


def test_fuzzed_array_metadata_gives_a_clear_error_or_the_right_bytes(store: Path) -> None:
    meta_path = store / "videos" / "a" / "frames" / "zarr.json"
    original_text = meta_path.read_text()
    original = json.loads(original_text)
    before = _parse_layout("a", meta_path.parent, original)
    expected = {c: bytes(b) for c, b in enumerate(ChunkReader(store).read([("a", c) for c in range(10)]))}
    info = store_info(store)
    rng = np.random.default_rng(15)
    outcomes = {"refused": 0, "read": 0}
    try:
        for _ in range(ROUNDS):
            roll = rng.random()
            if roll < 0.05:
                meta_path.write_bytes(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes())
                meta: Any = None
            elif roll < 0.1:
                meta = [original]
                meta_path.write_text(json.dumps(meta))
            else:
                meta = copy.deepcopy(original)
                for _ in range(int(rng.integers(1, 4))):
                    path, limit = FIELDS[int(rng.integers(len(FIELDS)))]
                    options = _values(limit)
                    _set(meta, path, options[int(rng.integers(len(options)))])
                meta_path.write_text(json.dumps(meta))
            after = _layout(meta_path.parent, meta) if isinstance(meta, dict) else None
            reader = ChunkReader(store)
            try:
                n = reader.num_chunks("a")
                batch = reader.read([("a", c) for c in range(min(n, 10))], on_error="mark")
            except LayoutError as e:
                assert str(meta_path) in str(e), e
                assert after is None
                outcomes["refused"] += 1
            else:
                assert after is not None
                outcomes["read"] += 1
                for c in range(len(batch)):
                    err = batch.error(c)
                    assert (err is not None and str(meta_path.parent) in err) or bytes(batch[c]) == expected[c], (meta, c)
            try:
                load_video(reader, info, "a", indexed_frames=20)
                usable = True
            except StoreError as e:
                assert "videos/a" in str(e)
                usable = False
            assert usable == (after == before), meta  # only metadata that says what the original says is used
            result = check(store, progress=False)
            assert result.ok == (after == before), (meta, result.bad[:3])
            assert all(v == "a" for v, _, _ in result.bad)  # b is untouched and checked as ever
    finally:
        meta_path.write_text(original_text)
    assert outcomes["refused"] > ROUNDS // 3 and outcomes["read"] > 0, outcomes
    assert check(store, progress=False).ok


def _entries(rng: np.random.Generator, original: np.ndarray, size: int) -> np.ndarray:
    absent = 2**64 - 1
    rows = []
    for i in range(S):
        off, n = int(original[i][0]), int(original[i][1])
        kind = int(rng.integers(9))
        if kind == 1:
            off, n = (int(x) for x in original[int(rng.integers(S))])  # another chunk's bytes (or its own)
        elif kind == 2:
            off = int(rng.integers(0, size))
            n = int(rng.integers(0, size - off + 1))
        elif kind == 3:
            off, n = size + int(rng.integers(0, 1000)), int(rng.integers(1, 100))  # past the end
        elif kind == 4:
            n = 2**63 + int(rng.integers(0, 2**62))  # an absurd length
        elif kind == 5:
            off, n = absent, absent  # a chunk never written
        elif kind == 6:
            off, n = absent, int(rng.integers(0, 50))  # half absent
        elif kind == 7:
            n = 0
        elif kind == 8:
            off = (off + int(rng.integers(1, 8))) % 2**64  # shifted a little
        rows.append((off, n))  # kind 0: as it was
    return np.array(rows, dtype=np.uint64)


def test_fuzzed_shard_indexes_give_a_clear_error_or_the_bytes_they_point_at(store: Path) -> None:
    rng = np.random.default_rng(16)
    shards = sorted((store / "videos" / "a" / "frames" / "c").iterdir(), key=lambda p: int(p.name))
    kept = {p: (p / "0" / "0" / "0").read_bytes() for p in shards}
    seen = {"error": 0, "bytes": 0}
    try:
        for _ in range(ROUNDS):
            shard_dir = shards[int(rng.integers(len(shards)))]
            shard = int(shard_dir.name)
            data = kept[shard_dir]
            body = S * 16
            original = np.frombuffer(data[-(body + 4):-4], dtype="<u8").reshape(S, 2)
            entries = _entries(rng, original, len(data) - body - 4)
            packed = entries.astype("<u8").tobytes()
            crc = int(crc32c(packed)) if rng.random() < 0.9 else int(rng.integers(0, 2**32))
            (shard_dir / "0" / "0" / "0").write_bytes(data[:-(body + 4)] + packed + crc.to_bytes(4, "little"))
            chunks = [c for c in range(shard * S, shard * S + S) if c < 10]
            reader = ChunkReader(store)  # a fresh index cache: the file was rewritten in place
            batch = reader.read([("a", c) for c in chunks], on_error="mark")
            failed = set()
            for j, c in enumerate(chunks):
                err = batch.error(j)
                if err is not None:
                    assert str(shard_dir) in err, err
                    failed.add(c)
                    seen["error"] += 1
                    continue
                off, n = (int(x) for x in entries[c - shard * S])
                got = bytes(batch[j])
                assert got == data[off:off + n], (c, off, n)  # exactly the bytes the index points at
                assert int(crc32c(got[:-4])) == int.from_bytes(got[-4:], "little")  # verified by the reader
                seen["bytes"] += 1
            spans = [(int(o), int(n), shard * S + i) for i, (o, n) in enumerate(entries)
                     if int(o) != 2**64 - 1 and 0 < int(n) < 2**63]
            overlapping = {c for o, n, c in spans for o2, n2, c2 in spans if c != c2 and o < o2 + n2 and o2 < o + n}
            result = check(store, progress=False)
            flagged = {c for v, c, _ in result.bad if v == "a"}
            assert (failed | (overlapping & set(chunks))) <= flagged, (entries, result.bad)
            assert all(v == "a" for v, _, _ in result.bad)
    finally:
        for p, data in kept.items():
            (p / "0" / "0" / "0").write_bytes(data)
    assert seen["error"] > 0 and seen["bytes"] > 0, seen
    assert check(store, progress=False).ok
