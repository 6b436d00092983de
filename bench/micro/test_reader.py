"""Random chunk reads: the C++ shard reader against zarr-python (target >= 5x, 2 threads).

Same store layout and zarr-python route as `python -m bench.reader` (which writes the README's table); a
smaller store (2 videos x 256 chunks of ~41 KB) so the suite stays short. Each round reads the same random
sequence; `extra_info["reads_per_s"]` holds the rate of the fastest round.
"""
from __future__ import annotations

import random

import pytest

from babyfast.store.reader import ChunkReader
from bench.reader import ZarrRoute, make_bench_store

READS = 512
BATCH = 32
THREADS = 2


@pytest.fixture(scope="module")
def bench_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_reader") / "store"
    make_bench_store(root, videos=2, chunks=256, gop=8, height=36, width=48, shard_chunks=64,
                            progress=False)
    videos = ["v000", "v001"]
    reader = ChunkReader(root, threads=THREADS)
    pairs = [(v, c) for v in videos for c in range(reader.num_chunks(v))]
    rng = random.Random(0)
    seq = [rng.choice(pairs) for _ in range(READS)]
    for i in range(0, len(pairs), 128):  # warm the page cache
        reader.read(pairs[i:i + 128])
    return root, videos, seq


def _record(benchmark, reads: int) -> None:
    benchmark.extra_info["reads"] = reads
    benchmark.extra_info["reads_per_s"] = reads / benchmark.stats.stats.min


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "noverify"])
def test_cpp_single(benchmark, bench_store, verify):
    root, _, seq = bench_store
    reader = ChunkReader(root, threads=THREADS, verify=verify)

    def go():
        for p in seq:
            reader.read([p])[0]

    benchmark.pedantic(go, rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, len(seq))


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "noverify"])
def test_cpp_batch(benchmark, bench_store, verify):
    root, _, seq = bench_store
    reader = ChunkReader(root, threads=THREADS, verify=verify)
    batches = [seq[i:i + BATCH] for i in range(0, len(seq), BATCH)]

    def go():
        for b in batches:
            batch = reader.read(b)
            for i in range(len(b)):
                batch[i]

    benchmark.pedantic(go, rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, len(seq))


@pytest.mark.parametrize("index_cached", [False, True], ids=["index", "index_cached"])
def test_zarr_single(benchmark, bench_store, index_cached):
    root, videos, seq = bench_store
    route = ZarrRoute(root, videos)
    want = bytes(ChunkReader(root).read([seq[0]])[0])
    assert route.read_one(*seq[0]).to_bytes() == want

    def go():
        cache = {} if index_cached else None
        for v, c in seq:
            route.read_one(v, c, cache)

    benchmark.pedantic(go, rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, len(seq))


@pytest.mark.parametrize("index_cached", [False, True], ids=["index", "index_cached"])
def test_zarr_batch(benchmark, bench_store, index_cached):
    root, videos, seq = bench_store
    route = ZarrRoute(root, videos)
    batches = [seq[i:i + BATCH] for i in range(0, len(seq), BATCH)]

    def go():
        cache = {} if index_cached else None
        for b in batches:
            route.read_many(b, cache)

    benchmark.pedantic(go, rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, len(seq))
