"""Random chunk reads per second: the C++ shard reader against zarr-python on the same store (target >= 5x).

The store is a zarr v3 group in format-1 layout (videos/<id>/frames, sharding codec, index at the end,
inner codecs ending with crc32c). By default this script writes one with zarr-python: --videos videos of
--chunks chunks, each chunk --gop frames of --height x --width x 3 random uint8 (about 40 KB stored),
--shard-chunks chunks per shard. --store reads an existing store (e.g. one made by `babyfast ingest`).

Both readers get the same uniformly random sequence of (video, chunk) and return the stored bytes of
each inner chunk (payload + crc32c suffix, no decoding):

    cpp single      ChunkReader.read([pair]) per chunk (crc32c verified), a memoryview per chunk
    cpp batch       ChunkReader.read(32 pairs) per call, a memoryview per chunk
    zarr single     per chunk, what zarr-python's sharding codec does for a partial shard read: read
                    the shard index through the array's store, decode it with ShardingCodec, read the
                    chunk's byte range (zarr.core.sync.sync per chunk, as zarr's sync API does)
    zarr batch      the same 32 chunk reads gathered in one event-loop call (zarr's own concurrency)
    zarr ... index cached   the same, with each shard's decoded index kept in a dict (zarr itself does
                    not cache it; this variant gives zarr the advantage our reader's index cache has)

The ratio is taken against the faster of the two zarr variants. cpp rows are also measured with
verify=False; for context, zarr's ordinary array slice of one chunk (which also decodes it) is timed too.
The page cache is not dropped (warm cache): every shard
is read once before timing, so this measures the readers, not the disk. Each number is the median of
--repeat runs. Writes bench/results/reader.json (the README table comes from it).

    .venv/bin/python -m bench.reader
    .venv/bin/python -m bench.reader --store demo/store --reads 5000 --out /tmp/reader.json
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import RESULTS, write_result

TARGET = 5.0


def make_bench_store(root: Path, videos: int, chunks: int, gop: int, height: int, width: int,
                     shard_chunks: int, seed: int = 0, progress: bool = True) -> None:
    """Write a format-1 layout store of random frames with zarr-python (inner codecs [bytes, crc32c])."""
    import zarr
    from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec

    rng = np.random.default_rng(seed)
    group = zarr.open_group(str(root), mode="w")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=videos * chunks, unit="chunk", desc="bench store", file=sys.stderr)
    # One frame short of a whole number of chunks: the last chunk of each video is partial.
    frames = chunks * gop - 1
    for v in range(videos):
        arr = group.create_array(
            f"videos/v{v:03d}/frames", shape=(frames, height, width, 3), dtype="uint8",
            chunks=(gop * shard_chunks, height, width, 3),
            serializer=ShardingCodec(chunk_shape=(gop, height, width, 3), codecs=[BytesCodec(), Crc32cCodec()],
                                     index_location="end"),
            compressors=None, filters=None, fill_value=0)
        step = gop * shard_chunks
        for start in range(0, frames, step):
            stop = min(frames, start + step)
            arr[start:stop] = rng.integers(0, 256, (stop - start, height, width, 3), dtype=np.uint8)
            if bar is not None:
                bar.update(-(-(stop - start) // gop))
    if bar is not None:
        bar.close()


@dataclass
class _ZarrVideo:
    store_path: Any  # zarr StorePath of the frames array
    codec: Any  # its ShardingCodec
    encode_key: Callable[[tuple[int, ...]], str]
    shard_chunks: int


class ZarrRoute:
    """zarr-python's own path to a stored inner chunk: shard index via ShardingCodec, then the byte range."""

    def __init__(self, store: Path, video_ids: list[str]) -> None:
        import zarr
        from zarr.abc.store import RangeByteRequest
        from zarr.codecs import ShardingCodec
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        self._sync = sync
        self._range = RangeByteRequest
        self._prototype = default_buffer_prototype()
        self._videos: dict[str, _ZarrVideo] = {}
        for vid in video_ids:
            arr = zarr.open_array(str(store / "videos" / vid / "frames"), mode="r")
            meta: Any = arr.metadata  # v3 (sharded) here; zarr types it as the v2 | v3 union
            codec = meta.codecs[0]
            if not isinstance(codec, ShardingCodec):
                raise ValueError(f"video {vid!r}: frames array is not sharded ({codec})")
            s = meta.chunk_grid.chunk_shape[0] // codec.chunk_shape[0]
            self._videos[vid] = _ZarrVideo(arr.store_path, codec, meta.encode_chunk_key, s)

    async def _one(self, video_id: str, chunk: int, cache: dict | None):
        v = self._videos[video_id]
        s = v.shard_chunks
        key = v.encode_key((chunk // s, 0, 0, 0))
        getter = v.store_path / key
        index = None if cache is None else cache.get((video_id, key))
        if index is None:
            index = await v.codec._load_shard_index(getter, (s, 1, 1, 1))
            if cache is not None:
                cache[(video_id, key)] = index
        start, stop = index.get_chunk_slice((chunk % s, 0, 0, 0))
        return await getter.get(prototype=self._prototype, byte_range=self._range(start, stop))

    async def _many(self, pairs, cache: dict | None):
        return await asyncio.gather(*(self._one(v, c, cache) for v, c in pairs))

    def read_one(self, video_id: str, chunk: int, cache: dict | None = None):
        """One chunk's stored bytes; with `cache` (a dict), shard indexes are decoded once and kept."""
        return self._sync(self._one(video_id, chunk, cache))

    def read_many(self, pairs, cache: dict | None = None):
        return self._sync(self._many(pairs, cache))


def _timed_interleaved(repeat: int, routes: dict[str, Callable[[], int]]) -> dict[str, dict[str, Any]]:
    """Median time of each route over `repeat` rounds; the routes take turns within a round, so a
    neighbour's load on a shared machine falls on all of them alike."""
    runs: dict[str, list[float]] = {name: [] for name in routes}
    reads: dict[str, int] = {}
    for _ in range(repeat):
        for name, fn in routes.items():
            t0 = time.perf_counter()
            reads[name] = fn()
            runs[name].append(time.perf_counter() - t0)
    out = {}
    for name in routes:
        med = statistics.median(runs[name])
        out[name] = {"reads": reads[name], "seconds_median": med, "seconds_runs": runs[name],
                     "reads_per_s": reads[name] / med}
    return out


def zarr_array_slices(store: Path, video_ids: list[str], pairs: list[tuple[str, int]],
                      repeat: int) -> dict[str, Any] | None:
    """Context, not a same-bytes comparison: zarr-python's ordinary `arr[c*G:(c+1)*G]`, which also decodes
    (and checks the crc of) each chunk. Only for stores whose inner codecs zarr has built in."""
    import zarr

    # Any: v3 sharded arrays here; zarr types .metadata as the v2 | v3 union and the codec as any codec
    arrays: dict[str, Any] = {v: zarr.open_array(str(store / "videos" / v / "frames"), mode="r") for v in video_ids}
    builtin = {"bytes", "crc32c", "zstd", "gzip", "blosc", "transpose"}
    for arr in arrays.values():
        inner = arr.metadata.codecs[0].to_dict()["configuration"]["codecs"]
        if any(c["name"] not in builtin for c in inner):
            return None

    def go() -> int:
        for v, c in pairs:
            g = arrays[v].metadata.codecs[0].chunk_shape[0]
            arrays[v][c * g:(c + 1) * g]
        return len(pairs)

    return _timed_interleaved(repeat, {"slice": go})["slice"]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from babyfast import _core
    from babyfast.store.reader import ChunkReader

    tmp = None
    if args.store:
        store = Path(args.store)
        created = False
    else:
        tmp = tempfile.TemporaryDirectory(prefix="babyfast-bench-reader-", dir=args.workdir)
        store = Path(tmp.name) / "store"
        make_bench_store(store, args.videos, args.chunks, args.gop, args.height, args.width, args.shard_chunks,
                         seed=args.seed, progress=not args.quiet)
        created = True
    try:
        video_ids = sorted(p.parent.parent.name for p in (store / "videos").glob("*/frames/zarr.json"))
        if not video_ids:
            raise SystemExit(f"{store}: no videos/<id>/frames arrays")
        reader = ChunkReader(store, threads=args.threads, verify=True)
        reader_nv = ChunkReader(store, threads=args.threads, verify=False)
        zroute = ZarrRoute(store, video_ids)
        all_pairs = [(v, c) for v in video_ids for c in range(reader.num_chunks(v))]
        rng = random.Random(args.seed)
        seq = [rng.choice(all_pairs) for _ in range(args.reads)]
        batches = [seq[i:i + args.batch] for i in range(0, len(seq) - args.batch + 1, args.batch)]

        # Warm the page cache (and check both routes agree on every byte of the sequence).
        for i in range(0, len(all_pairs), 256):
            reader.read(all_pairs[i:i + 256])
        for v, c in seq[:200]:
            if bytes(reader.read([(v, c)])[0]) != zroute.read_one(v, c).to_bytes():
                raise SystemExit(f"C++ reader and zarr-python disagree on video {v!r} chunk {c}")
        sizes = [reader.read([p]).size(0) for p in all_pairs[:: max(1, len(all_pairs) // 500)]]

        def cpp_single(r: ChunkReader) -> Callable[[], int]:
            def go() -> int:
                for p in seq:
                    r.read([p])[0]
                return len(seq)
            return go

        def cpp_batch(r: ChunkReader) -> Callable[[], int]:
            def go() -> int:
                for b in batches:
                    batch = r.read(b)
                    for i in range(len(b)):
                        batch[i]
                return sum(len(b) for b in batches)
            return go

        def zarr_single(cached: bool) -> Callable[[], int]:
            def go() -> int:
                cache = {} if cached else None
                for v, c in seq:
                    zroute.read_one(v, c, cache)
                return len(seq)
            return go

        def zarr_batch(cached: bool) -> Callable[[], int]:
            def go() -> int:
                cache = {} if cached else None
                for b in batches:
                    zroute.read_many(b, cache)
                return sum(len(b) for b in batches)
            return go

        m = _timed_interleaved(args.repeat, {
            "cpp_single": cpp_single(reader), "cpp_single_noverify": cpp_single(reader_nv),
            "zarr_single": zarr_single(False), "zarr_single_index_cached": zarr_single(True)})
        m.update(_timed_interleaved(args.repeat, {
            "cpp_batch": cpp_batch(reader), "cpp_batch_noverify": cpp_batch(reader_nv),
            "zarr_batch": zarr_batch(False), "zarr_batch_index_cached": zarr_batch(True)}))
        slice_reads = zarr_array_slices(store, video_ids, seq[: max(1, len(seq) // 4)], args.repeat)
        if slice_reads is not None:
            m["zarr_array_slice_decoded"] = slice_reads
        mean_size = float(np.mean(sizes))
        for v in m.values():
            v["MB_per_s"] = v["reads_per_s"] * mean_size / 1e6
        def rate(name: str) -> float:
            return m[name]["reads_per_s"]

        # Against the faster zarr-python variant (index cached or not): the conservative ratio.
        zarr_best = {k: max(rate(f"zarr_{k}"), rate(f"zarr_{k}_index_cached")) for k in ("single", "batch")}
        ratios = {
            "single": rate("cpp_single") / zarr_best["single"],
            "batch": rate("cpp_batch") / zarr_best["batch"],
            "single_noverify": rate("cpp_single_noverify") / zarr_best["single"],
            "batch_noverify": rate("cpp_batch_noverify") / zarr_best["batch"],
            "single_vs_zarr_uncached_index": rate("cpp_single") / rate("zarr_single"),
            "batch_vs_zarr_uncached_index": rate("cpp_batch") / rate("zarr_batch"),
        }
    finally:
        if tmp is not None:
            tmp.cleanup()

    rows = []
    for label, kind in (("single chunk", "single"), (f"batch of {args.batch}", "batch")):
        rows.append([label, m[f"cpp_{kind}"]["reads_per_s"], m[f"cpp_{kind}_noverify"]["reads_per_s"],
                     m[f"zarr_{kind}"]["reads_per_s"], m[f"zarr_{kind}_index_cached"]["reads_per_s"],
                     round(ratios[kind], 1), m[f"cpp_{kind}"]["MB_per_s"]])
    return {
        "machine": {"crc32c_hardware": _core.crc32c_has_hardware()},  # beside write_result's machine stamp
        "cache": "warm: page cache not dropped; every shard read once before timing",
        "store": {"path": str(store) if not created else "(temporary, written by this script)",
                  "created_by_script": created, "videos": len(video_ids), "chunks": len(all_pairs),
                  "mean_chunk_bytes": mean_size, "shard_chunks": reader.layout(video_ids[0]).shard_chunks,
                  "gop": reader.layout(video_ids[0]).gop,
                  "frame": [reader.layout(video_ids[0]).height, reader.layout(video_ids[0]).width, 3]},
        "settings": {"threads": args.threads, "reads": len(seq), "batch": args.batch, "repeat": args.repeat,
                     "seed": args.seed, "sequence": "uniform random (video, chunk), the same for every reader"},
        "measurements": m,
        "ratios": ratios,
        "target_ratio": TARGET,
        "meets_target": min(ratios["single"], ratios["batch"]) >= TARGET,
        "table": {
            "title": f"Random chunk reads/s, C++ reader vs zarr-python ({args.threads} threads, warm cache)",
            "columns": ["reads", "C++ reads/s (crc32c verified)", "C++ (no verify)", "zarr-python",
                        "zarr-python, index cached", "ratio (verified / best zarr)", "C++ MB/s"],
            "rows": rows,
            "notes": [f"{len(all_pairs)} chunks of {mean_size / 1e3:.1f} KB in {len(video_ids)} videos; "
                      f"target ratio >= {TARGET:g}x. zarr-python: shard index via ShardingCodec + byte-range "
                      f"read per chunk (as its partial shard read does; 'index cached' keeps each decoded "
                      f"index), batches gathered in one event-loop call."],
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", help="read this store instead of writing a temporary one")
    ap.add_argument("--workdir", help="where the temporary store goes (default: the system temp dir)")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--chunks", type=int, default=768, help="chunks per video")
    ap.add_argument("--gop", type=int, default=8, help="frames per chunk")
    ap.add_argument("--height", type=int, default=36)
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--shard-chunks", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reads", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "reader.json"),
                    help="result file (default bench/results/reader.json)")
    args = ap.parse_args()
    out = Path(args.out)
    if out.suffix != ".json":
        ap.error(f"--out {out}: must name a .json file")
    result = run(args)
    out = write_result(out.stem, {"benchmark": "reader", **result}, out.parent)
    for row in result["table"]["rows"]:
        print(f"{row[0]:>14}: C++ {row[1]:>10,.0f}/s  (no verify {row[2]:>10,.0f}/s)  zarr {row[3]:>8,.0f}/s"
              f"  (index cached {row[4]:>8,.0f}/s)  ratio {row[5]:.1f}x")
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(f"{verdict} the target of {TARGET:g}x; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
