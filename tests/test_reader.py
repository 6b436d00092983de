"""The C++ shard reader (`babyfast._core.ShardReader`) and `babyfast.store.reader.ChunkReader`.

Every store here is written by zarr-python 3 with the format-1 sharding layout, and every expected byte
string comes from zarr-python's own sharding code (the shard read through the array's store, its index
decoded by zarr's `ShardingCodec`), never from our parser.
"""
from __future__ import annotations

import errno
import gc
import math
import os
import pickle
import random
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec
from zarr.codecs.sharding import _ShardReader
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

try:  # the reference CRC-32C: our pin, or the package the GPU machine's zarr brings
    from crc32c import crc32c as crc32c_ref
except ImportError:
    from google_crc32c import value as crc32c_ref

from babyfast import _core
from babyfast.store.reader import ChunkReader, LayoutError


@dataclass(frozen=True)
class Spec:
    """One video of a test store: T frames of H x W, G frames per chunk, S chunks per shard."""

    frames: int
    height: int
    width: int
    gop: int
    shard_chunks: int
    inner: str  # "raw" -> [bytes, crc32c]; "zstd" -> [bytes, zstd, crc32c]
    index_location: str = "end"


# T is never a multiple of S*G, sizes are odd, and each layout variant appears.
SPECS = {
    "raw_end": Spec(frames=37, height=5, width=7, gop=3, shard_chunks=4, inner="raw"),
    "zstd_end": Spec(frames=50, height=9, width=11, gop=4, shard_chunks=3, inner="zstd"),
    "raw_start": Spec(frames=23, height=3, width=13, gop=2, shard_chunks=5, inner="raw", index_location="start"),
    "zstd_start": Spec(frames=41, height=6, width=5, gop=5, shard_chunks=2, inner="zstd", index_location="start"),
    "one_chunk": Spec(frames=5, height=4, width=4, gop=8, shard_chunks=3, inner="raw"),
}


def _inner_codecs(kind: str) -> list:
    if kind == "raw":
        return [BytesCodec(), Crc32cCodec()]
    return [BytesCodec(), ZstdCodec(level=3), Crc32cCodec()]


def _frames(spec: Spec, rng: np.random.Generator) -> np.ndarray:
    shape = (spec.frames, spec.height, spec.width, 3)
    if spec.inner == "raw":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    # Few distinct values: zstd compresses each chunk to a different size.
    return (rng.integers(0, 6, shape, dtype=np.uint8) * 40).astype(np.uint8)


def write_video(group: zarr.Group, video_id: str, spec: Spec, rng: np.random.Generator) -> np.ndarray:
    data = _frames(spec, rng)
    shard = (spec.gop * spec.shard_chunks, spec.height, spec.width, 3)
    arr = group.create_array(
        f"videos/{video_id}/frames", shape=data.shape, dtype="uint8", chunks=shard,
        serializer=ShardingCodec(chunk_shape=(spec.gop, spec.height, spec.width, 3),
                                 codecs=_inner_codecs(spec.inner), index_location=spec.index_location),
        compressors=None, filters=None, fill_value=0)
    arr[:] = data
    return data


def make_store(root: Path, specs: dict[str, Spec], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = zarr.open_group(str(root), mode="w")
    return {vid: write_video(group, vid, spec, rng) for vid, spec in specs.items()}


def zarr_stored_chunk(root: Path, video_id: str, chunk: int) -> bytes:
    """The stored bytes of one inner chunk, through zarr-python's sharding code."""
    arr = zarr.open_array(str(root / "videos" / video_id / "frames"), mode="r")
    codec = arr.metadata.codecs[0]
    assert isinstance(codec, ShardingCodec)
    s = arr.metadata.chunk_grid.chunk_shape[0] // codec.chunk_shape[0]
    key = arr.metadata.encode_chunk_key((chunk // s, 0, 0, 0))
    shard_bytes = sync((arr.store_path / key).get(prototype=default_buffer_prototype()))
    assert shard_bytes is not None, f"zarr sees no shard {key}"
    shard = sync(_ShardReader.from_bytes(shard_bytes, codec, (s, 1, 1, 1)))
    return shard[(chunk % s, 0, 0, 0)].to_bytes()


def zarr_index(root: Path, video_id: str, shard: int) -> np.ndarray:
    """A shard's (offset, nbytes) entries as zarr-python decodes them."""
    arr = zarr.open_array(str(root / "videos" / video_id / "frames"), mode="r")
    codec = arr.metadata.codecs[0]
    s = arr.metadata.chunk_grid.chunk_shape[0] // codec.chunk_shape[0]
    shard_bytes = sync((arr.store_path / arr.metadata.encode_chunk_key((shard, 0, 0, 0))).get(
        prototype=default_buffer_prototype()))
    return sync(_ShardReader.from_bytes(shard_bytes, codec, (s, 1, 1, 1))).index.offsets_and_lengths.reshape(-1, 2)


def shard_file(root: Path, video_id: str, shard: int) -> Path:
    return root / "videos" / video_id / "frames" / "c" / str(shard) / "0" / "0" / "0"


def num_chunks(spec: Spec) -> int:
    return math.ceil(spec.frames / spec.gop)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray], dict[tuple[str, int], bytes]]:
    root = tmp_path_factory.mktemp("reader") / "store"
    data = make_store(root, SPECS)
    expected = {(vid, c): zarr_stored_chunk(root, vid, c) for vid, spec in SPECS.items()
                for c in range(num_chunks(spec))}
    return root, data, expected


@pytest.fixture
def small_store(tmp_path) -> Path:
    """A private store that a test may damage."""
    root = tmp_path / "store"
    make_store(root, {"a": SPECS["raw_end"], "b": SPECS["zstd_start"]}, seed=7)
    return root


# --- bytes equal zarr-python's -------------------------------------------------------------------------


@pytest.mark.parametrize("video_id", sorted(SPECS))
def test_every_chunk_equals_zarr(store, video_id):
    root, _, expected = store
    reader = ChunkReader(root, threads=2)
    n = reader.num_chunks(video_id)
    assert n == num_chunks(SPECS[video_id])
    batch = reader.read([(video_id, c) for c in range(n)])
    assert len(batch) == n
    for c in range(n):
        want = expected[(video_id, c)]
        assert bytes(batch[c]) == want, f"{video_id} chunk {c}"
        assert bytes(batch.payload(c)) == want[:-4]
        assert batch.size(c) == len(want)
        assert batch.error(c) is None
        # the suffix is the crc32c of the payload, by an independent implementation
        assert int.from_bytes(want[-4:], "little") == crc32c_ref(want[:-4])


@pytest.mark.parametrize("video_id", sorted(SPECS))
def test_payload_decodes_to_the_arrays_frames(store, video_id):
    root, data, _ = store
    spec = SPECS[video_id]
    reader = ChunkReader(root)
    n = reader.num_chunks(video_id)
    batch = reader.read([(video_id, c) for c in range(n)])
    zstd = numcodecs.Zstd()
    for c in range(n):
        payload = bytes(batch.payload(c))
        raw = payload if spec.inner == "raw" else zstd.decode(payload)
        got = np.frombuffer(raw, dtype=np.uint8).reshape(spec.gop, spec.height, spec.width, 3)
        want = np.zeros_like(got)  # the last chunk is padded with the fill value
        real = data[video_id][c * spec.gop:(c + 1) * spec.gop]
        want[:len(real)] = real
        np.testing.assert_array_equal(got, want)


def test_shard_index_equals_zarrs(store):
    root, _, _ = store
    reader = _core.ShardReader(threads=1)
    for vid, spec in SPECS.items():
        for s in range(math.ceil(num_chunks(spec) / spec.shard_chunks)):
            ours = reader.shard_index(str(shard_file(root, vid, s)), spec.shard_chunks, spec.index_location)
            theirs = zarr_index(root, vid, s)
            assert len(ours) == len(theirs) == spec.shard_chunks
            for entry, (off, nbytes) in zip(ours, theirs.tolist()):
                if off == 2**64 - 1:
                    assert entry is None
                else:
                    assert entry == (off, nbytes)


def test_random_order_with_repeats_across_videos(store):
    root, _, expected = store
    keys = sorted(expected)
    rng = random.Random(3)
    reader = ChunkReader(root, threads=3)
    for size in (1, 2, 7, 64, 300):
        pairs = [rng.choice(keys) for _ in range(size)]
        pairs += pairs[: size // 3]  # repeats of chunks already in the batch
        rng.shuffle(pairs)
        batch = reader.read(pairs)
        assert [bytes(batch[i]) for i in range(len(pairs))] == [expected[p] for p in pairs]


def test_shard_reader_direct_requests(store):
    root, _, expected = store
    reader = _core.ShardReader(threads=2, index_cache=0)
    reqs, want = [], []
    for (vid, c), stored in expected.items():
        spec = SPECS[vid]
        path = shard_file(root, vid, c // spec.shard_chunks)
        # str and os.PathLike paths are both accepted
        reqs.append((path if c % 2 else str(path), c % spec.shard_chunks, spec.shard_chunks, spec.index_location))
        want.append(stored)
    batch = reader.read(reqs, verify=True)
    assert [bytes(batch[i]) for i in range(len(reqs))] == want
    assert bytes(batch[-1]) == want[-1]
    stats = reader.stats()
    assert stats["index_cache_size"] == 0 and stats["chunks"] == len(reqs)


def test_buffer_protocol_and_offsets(store):
    root, _, expected = store
    pairs = [("zstd_end", 3), ("raw_start", 0), ("zstd_end", 3), ("one_chunk", 0)]
    batch = ChunkReader(root).read(pairs)
    whole = memoryview(batch)
    assert whole.readonly and whole.format == "B" and whole.ndim == 1
    assert len(whole) == batch.nbytes
    flat = np.frombuffer(batch, dtype=np.uint8)
    for i, p in enumerate(pairs):
        off, n = batch.offset(i), batch.size(i)
        assert off % 64 == 0
        assert bytes(whole[off:off + n]) == expected[p] == flat[off:off + n].tobytes()
    view = batch[0]
    assert view.readonly
    with pytest.raises(TypeError):
        view[0] = 1
    with pytest.raises(IndexError, match="out of range for a batch of 4"):
        batch[4]
    assert bytes(batch[-4]) == expected[pairs[0]]


# --- arenas: reuse, lifetime ------------------------------------------------------------------------------


def test_arenas_are_reused_and_live_views_never_change(store):
    root, _, expected = store
    keys = sorted(expected)
    rng = random.Random(11)
    reader = ChunkReader(root, threads=2)
    kept = []  # (views, expected bytes) of batches whose batch object is gone but whose views live
    for k in range(6):
        pairs = [rng.choice(keys) for _ in range(40)]
        batch = reader.read(pairs)
        # memoryviews of chunks alone hold some batches; a numpy array over the whole buffer others
        flat = np.frombuffer(batch, dtype=np.uint8) if k % 2 else None
        kept.append(([batch[i] for i in range(0, 40, 3)], [expected[pairs[i]] for i in range(0, 40, 3)],
                     batch.payload(1), expected[pairs[1]][:-4], flat))
        del batch, flat
        gc.collect()
    # Every batch is still held through its views, so each needed a fresh arena.
    stats = reader.stats()
    assert stats["arenas_created"] == 6 and stats["arenas_reused"] == 0
    # Many more batches that churn freely: they reuse one arena and never touch the held ones.
    for _ in range(30):
        pairs = [rng.choice(keys) for _ in range(rng.randint(1, 60))]
        b = reader.read(pairs)
        assert bytes(b[len(pairs) - 1]) == expected[pairs[-1]]
        del b
    for views, wants, payload, want_payload, _flat in kept:
        assert [bytes(v) for v in views] == wants
        assert bytes(payload) == want_payload
    stats = reader.stats()
    assert stats["arenas_created"] <= 7
    assert stats["arenas_reused"] >= 29
    # Releasing the views returns their arenas to the pool.
    idle_before = stats["arenas_idle"]
    kept.clear()
    gc.collect()
    assert reader.stats()["arenas_idle"] > idle_before


def test_a_view_outlives_its_batch_and_reader(store):
    root, _, expected = store
    reader = ChunkReader(root)
    batch = reader.read([("raw_end", 5), ("zstd_end", 2)])
    view, payload = batch[1], batch.payload(0)
    del batch, reader
    gc.collect()
    other = ChunkReader(root)
    for _ in range(5):
        other.read([("raw_end", c) for c in range(13)])
    assert bytes(view) == expected[("zstd_end", 2)]
    assert bytes(payload) == expected[("raw_end", 5)][:-4]


def test_concurrent_reads_from_python_threads(store):
    root, _, expected = store
    keys = sorted(expected)
    reader = ChunkReader(root, threads=2)
    failures: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(20):
            pairs = [rng.choice(keys) for _ in range(rng.randint(1, 40))]
            batch = reader.read(pairs)
            for i, p in enumerate(pairs):
                if bytes(batch[i]) != expected[p]:
                    failures.append(f"{p} in thread {seed}")

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_reader_in_a_forked_child(store):
    # The child must not use (or wait for) the parent's reader threads.
    root, _, expected = store
    reader = ChunkReader(root, threads=2)
    pairs = [("zstd_end", c) for c in range(8)] + [("raw_start", 3)]
    reader.read(pairs)  # threads started and indexes cached before the fork
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            batch = reader.read(pairs)
            ok = [bytes(batch[i]) for i in range(len(batch))] == [expected[p] for p in pairs]
            os.write(write_fd, b"ok" if ok else b"wrong bytes")
            code = 0
        except BaseException as e:  # noqa: BLE001
            os.write(write_fd, repr(e).encode()[:500])
        finally:
            os._exit(code)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_fd, "rb") as f:
        said = f.read().decode()
    assert said == "ok" and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert bytes(reader.read([pairs[0]])[0]) == expected[pairs[0]]  # the parent's reader still works


def test_reader_in_a_spawned_process(store):
    # A fresh interpreter (as a spawned DataLoader worker) gets the reader pickled as its settings.
    root, _, expected = store
    script = ("import pickle, sys\n"
              "reader = pickle.loads(sys.stdin.buffer.read())\n"
              "sys.stdout.buffer.write(bytes(reader.read([('zstd_start', 2)])[0]))\n")
    out = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(ChunkReader(root)),
                         capture_output=True, timeout=120, check=True)
    assert out.stdout == expected[("zstd_start", 2)]


def test_reader_pickles_as_its_settings(store):
    root, _, expected = store
    clone = pickle.loads(pickle.dumps(ChunkReader(root, threads=3, verify=False, index_cache=7)))
    assert clone.store_path == root and clone.stats()["threads"] == 3
    assert clone.stats()["index_cache_capacity"] == 7
    assert bytes(clone.read([("raw_end", 4)])[0]) == expected[("raw_end", 4)]


def test_rewritten_shard_is_read_fresh(small_store):
    # zarr rewrites the whole shard; the chunks compress differently, so the index changes too.
    reader = ChunkReader(small_store)
    before = bytes(reader.read([("b", 1)])[0])
    assert before == zarr_stored_chunk(small_store, "b", 1)
    old_index = zarr_index(small_store, "b", 0)
    arr = zarr.open_array(str(small_store / "videos" / "b" / "frames"), mode="r+")
    arr[0:10] = np.full((10, 6, 5, 3), 9, dtype=np.uint8)
    assert not np.array_equal(zarr_index(small_store, "b", 0), old_index)
    after = bytes(reader.read([("b", 1)])[0])
    assert after == zarr_stored_chunk(small_store, "b", 1) != before


# --- errors -----------------------------------------------------------------------------------------------


def test_missing_shard_file(small_store):
    path = shard_file(small_store, "a", 1)
    path.unlink()
    reader = ChunkReader(small_store)
    with pytest.raises(FileNotFoundError) as exc:
        reader.read([("a", 0), ("a", 5)])
    msg = str(exc.value)
    assert str(path) in msg and "video 'a' chunk 5" in msg and "inner chunk 1" in msg
    assert exc.value.errno == errno.ENOENT
    # the C++ reader alone says the same, without the video context
    with pytest.raises(FileNotFoundError, match="missing shard file"):
        _core.ShardReader().read([(str(path), 0, 4, "end")])
    # chunks of other shards still read
    assert bytes(reader.read([("a", 0)])[0]) == zarr_stored_chunk(small_store, "a", 0)


def test_truncated_shard_index_at_end(small_store):
    path = shard_file(small_store, "a", 0)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="corrupt shard index") as exc:
        ChunkReader(small_store).read([("a", 2)])
    assert str(path) in str(exc.value) and "video 'a' chunk 2" in str(exc.value)
    path.write_bytes(raw[:40])  # shorter than the index itself
    with pytest.raises(ValueError, match=r"corrupt shard index .* smaller than its 68-byte index"):
        ChunkReader(small_store).read([("a", 2)])


def test_truncated_shard_index_at_start(small_store):
    # With the index first, a cut shard keeps a valid index whose ranges now pass the end of the file.
    spec = SPECS["zstd_start"]
    path = shard_file(small_store, "b", 1)
    raw = path.read_bytes()
    path.write_bytes(raw[:-10])
    inner_last = spec.shard_chunks - 1
    with pytest.raises(ValueError, match="past the end") as exc:
        ChunkReader(small_store).read([("b", 1 * spec.shard_chunks + inner_last)])
    assert str(path) in str(exc.value) and f"inner chunk {inner_last}" in str(exc.value)
    assert bytes(ChunkReader(small_store).read([("b", spec.shard_chunks)])[0]) == \
        zarr_stored_chunk(small_store, "b", spec.shard_chunks)


def test_flipped_byte_in_index(small_store):
    path = shard_file(small_store, "a", 2)
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0x10  # inside the last entry of the end-located index
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"corrupt shard index .*crc32c mismatch") as exc:
        ChunkReader(small_store).read([("a", 8)])
    assert str(path) in str(exc.value)
    # zarr-python agrees the index is corrupt
    with pytest.raises(Exception, match="(?i)checksum"):
        zarr_stored_chunk(small_store, "a", 8)


def test_flipped_byte_in_chunk(small_store):
    spec = SPECS["raw_end"]
    chunk = 6
    inner = chunk % spec.shard_chunks
    path = shard_file(small_store, "a", chunk // spec.shard_chunks)
    off, nbytes = zarr_index(small_store, "a", chunk // spec.shard_chunks)[inner].tolist()
    raw = bytearray(path.read_bytes())
    raw[off + nbytes // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    reader = ChunkReader(small_store)
    with pytest.raises(ValueError, match=r"crc32c") as exc:
        reader.read([("a", chunk - 1), ("a", chunk)])
    msg = str(exc.value)
    assert str(path) in msg and f"inner chunk {inner}" in msg and f"video 'a' chunk {chunk}" in msg
    # without verification the damaged bytes come back, exactly as zarr stores them
    unverified = ChunkReader(small_store, verify=False).read([("a", chunk)])
    assert bytes(unverified[0]) == zarr_stored_chunk(small_store, "a", chunk)


def test_on_error_mark(small_store):
    shard_file(small_store, "a", 3).unlink()  # chunk 12, the last one
    path1 = shard_file(small_store, "a", 1)
    off, _ = zarr_index(small_store, "a", 1)[1].tolist()  # chunk 5
    raw = bytearray(path1.read_bytes())
    raw[off] ^= 1
    path1.write_bytes(bytes(raw))
    pairs = [("a", 0), ("a", 12), ("b", 3), ("a", 5), ("a", 4), ("a", 12)]
    batch = ChunkReader(small_store).read(pairs, on_error="mark")
    assert len(batch) == 6 and batch.failed == 3 and batch.first_failed == 1
    for i in (0, 2, 4):
        assert batch.error(i) is None and batch.ok(i)
        assert bytes(batch[i]) == zarr_stored_chunk(small_store, *pairs[i])
    assert "missing shard file" in batch.error(1) and str(shard_file(small_store, "a", 3)) in batch.error(1)
    assert "crc32c" in batch.error(3) and "inner chunk 1" in batch.error(3)
    assert batch.error(5) == batch.error(1)
    with pytest.raises(FileNotFoundError):
        batch[1]
    with pytest.raises(ValueError, match="crc32c"):
        batch.payload(3)
    with pytest.raises(ValueError, match="^ctx: bad chunk"):
        batch.check(3, context="ctx")
    assert batch.check(0) is None
    assert batch.size(1) == 0


def test_absent_and_out_of_range_inner_chunks(store):
    root, _, _ = store
    spec = SPECS["raw_end"]
    last_shard = num_chunks(spec) // spec.shard_chunks
    path = str(shard_file(root, "raw_end", last_shard))
    reader = _core.ShardReader()
    # the last shard holds 1 real chunk: the others were never written
    with pytest.raises(ValueError, match=r"inner chunk 2 is absent") as exc:
        reader.read([(path, 2, spec.shard_chunks, "end")])
    assert path in str(exc.value)
    with pytest.raises(ValueError, match=r"inner chunk 9 is out of range \(the shard holds 4 chunks, valid 0..3\)"):
        reader.read([(path, 9, spec.shard_chunks, "end")])


def test_chunk_reader_argument_errors(store):
    root, _, _ = store
    reader = ChunkReader(root)
    with pytest.raises(KeyError, match=r"no video 'nope' in store") as exc:
        reader.read([("nope", 0)])
    assert str(root) in str(exc.value)
    with pytest.raises(KeyError, match="not a valid video id"):
        reader.num_chunks("../store")
    n = num_chunks(SPECS["raw_end"])
    with pytest.raises(IndexError, match=rf"video 'raw_end': chunk {n} out of range \(valid 0..{n - 1}"):
        reader.read([("raw_end", 0), ("raw_end", n)])
    with pytest.raises(IndexError, match=r"chunk -1 out of range"):
        reader.read([("raw_end", -1)])
    with pytest.raises(TypeError, match="chunk index must be an int"):
        reader.read([("raw_end", 1.0)])
    assert bytes(reader.read([("raw_end", np.int64(2))])[0]) == zarr_stored_chunk(root, "raw_end", 2)
    with pytest.raises(ValueError, match=r"on_error must be 'raise' or 'mark', got 'skip'"):
        reader.read([("raw_end", 0)], on_error="skip")
    with pytest.raises(FileNotFoundError, match="no zarr store"):
        ChunkReader(root / "missing")
    assert len(reader.read([])) == 0


def test_shard_reader_argument_errors(store):
    root, _, _ = store
    path = str(shard_file(root, "raw_end", 0))
    with pytest.raises(ValueError, match=r"threads must be in \[1, 256\], got 0"):
        _core.ShardReader(threads=0)
    with pytest.raises(ValueError, match="index_cache must be >= 0"):
        _core.ShardReader(index_cache=-1)
    reader = _core.ShardReader()
    with pytest.raises(ValueError, match=r"request 1: index_location must be 'start' or 'end', got 'middle'"):
        reader.read([(path, 0, 4, "end"), (path, 0, 4, "middle")])
    with pytest.raises(ValueError, match="request 0 must have 4 fields"):
        reader.read([(path, 0, 4)])
    with pytest.raises(TypeError, match="request 0: the path must be str or os.PathLike"):
        reader.read([(3, 0, 4, "end")])
    with pytest.raises(ValueError, match="request 0: inner must be a non-negative int"):
        reader.read([(path, -1, 4, "end")])
    with pytest.raises(ValueError, match="chunks_per_shard must be in"):
        reader.read([(path, 0, 0, "end")])
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'mark'"):
        reader.read([(path, 0, 4, "end")], on_error="ignore")
    # a wrong chunks_per_shard reads the wrong bytes as the index: caught by its crc
    with pytest.raises(ValueError, match="corrupt shard index"):
        reader.read([(path, 0, 3, "end")])


def _rewrite_meta(root: Path, video_id: str, edit) -> None:
    import json

    meta_path = root / "videos" / video_id / "frames" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["codecs"][0]["configuration"].update(index_location="middle"), "index_location must be"),
    (lambda m: m["codecs"][0]["configuration"].update(index_codecs=[{"name": "bytes",
                                                                     "configuration": {"endian": "little"}}]),
     "index_codecs must be"),
    (lambda m: m["codecs"][0]["configuration"].update(codecs=[{"name": "bytes"}]), "must end with crc32c"),
    (lambda m: m.update(codecs=[{"name": "bytes"}]), r"codecs must be exactly \[sharding_indexed\]"),
    (lambda m: m.update(data_type="uint16"), "data_type must be uint8"),
    (lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[12, 5, 3, 3]), "shard shape must be"),
])
def test_other_layouts_are_refused(small_store, edit, match):
    _rewrite_meta(small_store, "a", edit)
    with pytest.raises(LayoutError, match=match) as exc:
        ChunkReader(small_store).read([("a", 0)])
    assert "videos/a/frames/zarr.json" in str(exc.value)


@pytest.mark.parametrize("encoding", [{"name": "default", "separator": "."}, {"name": "v2", "separator": "/"},
                                      {"name": "v2", "separator": "."}])
def test_other_chunk_key_encodings(tmp_path, encoding):
    spec = SPECS["zstd_end"]
    root = tmp_path / "store"
    group = zarr.open_group(str(root), mode="w")
    arr = group.create_array(
        "videos/k/frames", shape=(spec.frames, spec.height, spec.width, 3), dtype="uint8",
        chunks=(spec.gop * spec.shard_chunks, spec.height, spec.width, 3), chunk_key_encoding=encoding,
        serializer=ShardingCodec(chunk_shape=(spec.gop, spec.height, spec.width, 3),
                                 codecs=_inner_codecs(spec.inner)),
        compressors=None, filters=None, fill_value=0)
    arr[:] = _frames(spec, np.random.default_rng(1))
    reader = ChunkReader(root)
    n = reader.num_chunks("k")
    batch = reader.read([("k", c) for c in range(n)])
    assert [bytes(batch[c]) for c in range(n)] == [zarr_stored_chunk(root, "k", c) for c in range(n)]


def test_crc32c_matches_the_crc32c_package():
    rng = np.random.default_rng(5)
    buf = rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    for n in (0, 1, 3, 8, 15, 1023, 3072, 3073, 24576, 24577, 65536, 100_000):
        for start in (0, 1, 5):
            piece = buf[start:start + n]
            assert _core.crc32c(piece) == crc32c_ref(piece)
    assert _core.crc32c(b"123456789") == 0xE3069283
    assert _core.crc32c(buf[500:], _core.crc32c(buf[:500])) == crc32c_ref(buf)


def test_index_cache_hits(store):
    root, _, _ = store
    reader = ChunkReader(root)
    reader.read([("raw_end", 0)])
    reader.read([("raw_end", 1), ("raw_end", 2)])
    stats = reader.stats()
    assert stats["index_cache_misses"] == 1 and stats["index_cache_hits"] == 1


def test_reader_module_does_not_import_zarr():
    # the fast path reads chunk bytes without zarr-python (nor PyAV, nor torch): check a fresh interpreter
    code = ("import sys, babyfast.store.reader\n"
            "heavy = sorted(m for m in ('zarr', 'av', 'torch') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_copytree_store_reads_the_same(store, tmp_path):
    # The reader keys its cache by path: a copy of the store is read from its own files.
    root, _, expected = store
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    reader = ChunkReader(copy)
    assert bytes(reader.read([("zstd_start", 3)])[0]) == expected[("zstd_start", 3)]
