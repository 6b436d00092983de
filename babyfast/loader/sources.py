"""Where the loader's frames come from: a babyfast store (fast path) or plain video files (no ingest).

Both give the loader the same four things: per-video frame counts and ages (for the planner), per-video
metadata (id, subject, timestamps, utterances), and `frames(requests)`: the decoded uint8 frames of a batch
of (video, frame indices) requests, each either an array (n, H, W, 3) or an exception saying what failed.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from babyfast._fork import rebuild_after_fork

if TYPE_CHECKING:
    from babyfast.store.reader import ChunkReader

log = logging.getLogger(__name__)

# What a forked DataLoader worker inherits from its parent's decoders and never frees: their destructors
# would wait for, or touch, threads that fork did not copy (DALI's pipeline threads crash the worker).
_FORK_LEFTOVERS: list = []


@dataclass
class VideoMeta:
    id: str
    subject: str
    age_days: float
    fps: float
    timestamps: np.ndarray | None = None
    utterances: list[tuple[float, float, str]] | None = None


@dataclass
class ReadBatch:
    """A batch's chunk bytes between the read and decode stages: the requests, (key, payload) of each chunk
    read, the chunks that failed, and the reader's buffer that holds the payloads until decoded."""

    requests: list[tuple[int, np.ndarray]]
    payloads: list[tuple[tuple[int, int], Any]]
    errors: dict[tuple[int, int], ChunkError]
    keep: Any = None

    def release(self) -> None:
        self.payloads, self.keep = [], None


class ChunkError(RuntimeError):
    """A chunk that could not be read or decoded; names the video and the chunk."""

    def __init__(self, video: str, chunk: int, what: str) -> None:
        super().__init__(f"video {video!r} chunk {chunk}: {what}")
        self.video, self.chunk, self.what = video, chunk, what


def _one_chunk_view(decoded: dict, v: int, idx: np.ndarray, chunks: np.ndarray, g: int) -> np.ndarray | None:
    """The clip as a strided view of its chunk's decoded frames, when all its frames lie in one chunk at
    a constant positive step; None otherwise. The decoded arrays are the loader's own and only read."""
    if len(idx) == 0 or int(chunks[-1]) != int(chunks[0]):
        return None
    c = int(chunks[0])
    local = idx - c * g
    step = int(local[1] - local[0]) if len(local) > 1 else 1
    if step < 1 or not np.array_equal(local, local[0] + step * np.arange(len(local))):
        return None
    return decoded[(v, c)][int(local[0]):int(local[-1]) + 1:step]


class StoreSource:
    """Frames from a babyfast store: the C++ reader fetches chunk bytes; DALI decodes them on the GPU
    (device "cuda"), or on the CPU DALI's CPU decoders (vp9, jpeg) or PyAV (h264, hevc, av1) in threads,
    and zstd for raw.

    decoder: "auto" (DALI where it applies and is installed), "dali" or "pyav".
    """

    def __init__(self, store: str | os.PathLike[str], threads: int = 2, device: str = "cpu",
                 max_chunks: int = 64, decoder: str = "auto") -> None:
        from babyfast.store import layout as fmt

        self.path = Path(store)
        self.info = fmt.store_info(self.path)
        self.index = fmt.read_index(self.path)
        if len(self.index["id"]) == 0:
            raise ValueError(f"{self.path}: the store holds no videos; ingest some first (babyfast ingest)")
        self.ids = [str(v) for v in self.index["id"]]
        self.frames_per_video = self.index["frames"].astype(np.int64)
        self.ages = self.index["age_days"].astype(np.float64)
        # index rows that cannot be true give the planner no clips (a claim of 10**15 frames would be
        # nearly every clip of the epoch, and all of them missing)
        self.excluded: list[tuple[str, int, str]] = []
        for i, what in fmt.index_problems(self.index, self.info.gop).items():
            self.frames_per_video[i] = 0
            self.excluded.append((self.ids[i], -1, what))
            log.warning("%s: video %r left out: %s", self.path, self.ids[i], what)
        self.threads = threads
        self.device = str(device)
        self.max_chunks = max_chunks
        if decoder not in ("auto", "dali", "pyav"):
            raise ValueError(f"decoder must be 'auto', 'dali' or 'pyav', got {decoder!r}")
        self.decoder = decoder
        self._gpu = None  # the GPU decoder (DALI mixed)
        self._dali_cpu = None
        self._init_lock = threading.Lock()
        self._reader: ChunkReader | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._meta: dict[int, VideoMeta] = {}
        self._videos: dict[int, Any] = {}  # StoredVideo, or what is wrong with its metadata
        rebuild_after_fork(self)

    def __getstate__(self) -> dict[str, Any]:
        # C++ readers and thread pools stay in the process that made them; workers make their own
        state = dict(self.__dict__)
        state.update(_reader=None, _pool=None, _gpu=None, _dali_cpu=None)
        del state["_init_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_lock = threading.Lock()
        rebuild_after_fork(self)

    def _after_fork(self) -> None:
        # a forked DataLoader worker: the parent's threads do not exist here (see _FORK_LEFTOVERS)
        _FORK_LEFTOVERS.append((self._reader, self._pool, self._dali_cpu, self._gpu))
        self._reader, self._pool, self._dali_cpu, self._gpu = None, None, None, None
        self._init_lock = threading.Lock()  # another thread of the parent may have held it

    @property
    def gop(self) -> int:
        return self.info.gop

    def _video(self, v: int) -> Any:
        """Video v's checked metadata (a StoredVideo), or a str saying why the loader cannot use it."""
        if v not in self._videos:
            from babyfast.store._validate import load_video
            from babyfast.store.layout import StoreError

            reader, _ = self._ensure()
            try:
                self._videos[v] = load_video(reader, self.info, self.ids[v],
                                             indexed_frames=int(self.frames_per_video[v]))
            except StoreError as e:
                self._videos[v] = str(e)
            except Exception as e:  # noqa: BLE001  (damaged metadata of one video must not stop the loader)
                self._videos[v] = f"unreadable metadata ({type(e).__name__}: {e})"
        return self._videos[v]

    def _attrs_of(self, v: int) -> dict[str, Any]:
        return self._video(v).attrs

    def meta(self, v: int) -> VideoMeta:
        if v not in self._meta:
            video = self._video(v)
            if isinstance(video, str):
                raise ValueError(f"{self.path}: video {self.ids[v]!r}: {video}")
            attrs = video.attrs
            self._meta[v] = VideoMeta(
                id=self.ids[v], subject=attrs.get("subject") or "", fps=float(attrs["fps"]),
                age_days=float("nan") if attrs.get("age_days") is None else float(attrs["age_days"]),
                timestamps=video.timestamps, utterances=video.utterances)
        return self._meta[v]

    def _ensure(self) -> tuple[ChunkReader, ThreadPoolExecutor]:
        """This process's reader and decode threads, made on first use."""
        with self._init_lock:  # batch threads call this at once on the first batches
            self._ensure_locked()
            reader, pool = self._reader, self._pool
        assert reader is not None and pool is not None  # made together by _ensure_locked
        return reader, pool

    def _ensure_locked(self) -> None:
        if self._reader is None:
            from babyfast.store.reader import ChunkReader

            self._reader = ChunkReader(self.path, threads=self.threads, verify=True)
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="babyfast-decode")
        if not self.device.startswith("cuda") and self._dali_cpu is None and self.decoder != "pyav":
            from babyfast.loader._dali_decode import CPU_CODECS, DaliGopDecoder

            if self.info.codec in CPU_CODECS:
                try:
                    self._dali_cpu = DaliGopDecoder(self.info.codec, None, self.max_chunks, self.threads)
                except ImportError:
                    if self.decoder == "dali":
                        raise
                    log.info("DALI is not installed: PyAV decodes %s chunks on the CPU", self.info.codec)
            elif self.decoder == "dali":
                raise ValueError(f"{self.path}: DALI's CPU decoders read {', '.join(CPU_CODECS)}, not "
                                 f"{self.info.codec!r}; use decoder='pyav' or 'auto'")
        if self.device.startswith("cuda") and self._gpu is None and self.info.codec != "raw":  # raw: zstd on the CPU
            import torch

            from babyfast.loader._dali_decode import DaliGopDecoder

            index = torch.device(self.device).index
            self._gpu = DaliGopDecoder(self.info.codec, torch.cuda.current_device() if index is None else index,
                                       self.max_chunks, self.threads)

    def _decode_dali(self, dali, payloads: list) -> dict:
        """DALI decode of one batch of chunks; a chunk DALI cannot decode is retried alone to name it."""
        g = self.info.gop
        try:
            frames = dali.decode([p for _, p in payloads])
            results = list(zip([k for k, _ in payloads], frames, strict=False))
        except Exception:  # noqa: BLE001  (find which chunk broke the batch)
            results = []
            for key, p in payloads:
                try:  # one run per chunk: keep a copy, the next run may reuse DALI's buffers
                    t = dali.decode([p])[0]
                    results.append((key, t.clone() if dali.on_gpu else t))
                except Exception as e:  # noqa: BLE001
                    results.append((key, ChunkError(self.ids[key[0]], key[1], f"does not decode (DALI): {e}")))
        out = {}
        for (v, c), t in results:
            if not isinstance(t, ChunkError):
                a = self._attrs_of(v)
                t = t[:g, :int(a["height"]), :int(a["width"])]
                if t.shape[0] != g:
                    t = ChunkError(self.ids[v], c, f"decoded {t.shape[0]} frames, expected {g}")
            out[(v, c)] = t
        return out

    def read(self, requests: Sequence[tuple[int, np.ndarray]]) -> ReadBatch:
        """The chunk bytes of each (video index, frame indices) request, read once per chunk by the C++
        reader (what could not be read is a ChunkError per chunk)."""
        reader, _ = self._ensure()
        g = self.info.gop
        needed = sorted({(v, int(c)) for v, idx in requests for c in np.unique(idx // g)})
        errors: dict[tuple[int, int], ChunkError] = {}
        for v in sorted({v for v, _ in needed}):
            video = self._video(v)
            if isinstance(video, str):  # a video whose metadata is damaged fails its clips, not the run
                errors.update({k: ChunkError(self.ids[v], k[1], video) for k in needed if k[0] == v})
                continue
            n = video.layout.num_chunks
            errors.update({k: ChunkError(self.ids[v], k[1], f"past the array's {n} chunks (stale index?)")
                           for k in needed if k[0] == v and k[1] >= n})
        needed = [k for k in needed if k not in errors]
        batch = reader.read([(self.ids[v], c) for v, c in needed], on_error="mark")
        payloads = []
        for i, (v, c) in enumerate(needed):
            err = batch.error(i)
            if err is not None:
                errors[(v, c)] = ChunkError(self.ids[v], c, err)
            else:
                payloads.append(((v, c), batch.payload(i)))
        return ReadBatch(list(requests), payloads, errors, keep=batch)

    def decode(self, read: ReadBatch) -> list[np.ndarray | ChunkError]:
        """The frames of each request of `read`: chunks decoded once (DALI on the GPU, DALI's CPU decoders
        or PyAV in threads), then the requested frames gathered."""
        from babyfast.store.codec import decode_video_chunk

        def decode(item):
            (v, c), payload = item
            try:
                return (v, c), decode_video_chunk(payload, self._attrs_of(v))
            except Exception as e:  # noqa: BLE001  (a bad chunk is reported per clip, not fatal)
                return (v, c), ChunkError(self.ids[v], c, f"does not decode: {e}")

        if self._gpu is not None:
            import torch

            with self._gpu.lock:  # the decoded frames are views of DALI's buffers until gathered
                clips = self._assemble(read.requests, {**self._decode_dali(self._gpu, read.payloads), **read.errors})
                # the gather runs on torch's stream, DALI's next run on its own: finish reading first
                torch.cuda.current_stream().synchronize()
                return clips
        if self._dali_cpu is not None:
            decoded = self._decode_dali(self._dali_cpu, read.payloads)
        else:
            decoded = dict(self._ensure()[1].map(decode, read.payloads))
        read.release()  # the reader's arena goes back before the frames are gathered
        return self._assemble(read.requests, {**decoded, **read.errors})

    def frames(self, requests: Sequence[tuple[int, np.ndarray]]) -> list[np.ndarray | ChunkError]:
        """`decode(read(requests))`."""
        return self.decode(self.read(requests))

    def _assemble(self, requests: Sequence[tuple[int, np.ndarray]], decoded: dict) -> list:
        g = self.info.gop
        out: list[Any] = []
        for v, idx in requests:
            chunks = idx // g
            bad = next((decoded[(v, int(c))] for c in np.unique(chunks)
                        if isinstance(decoded[(v, int(c))], ChunkError)), None)
            if bad is not None:
                out.append(bad)
                continue
            view = None if self._gpu is not None else _one_chunk_view(decoded, v, idx, chunks, g)
            if view is not None:  # a clip inside one chunk (the default: clips of one GOP): no copy
                out.append(view)
                continue
            picked = [decoded[(v, int(c))][int(f - c * g)] for f, c in zip(idx, chunks, strict=True)]
            if self._gpu is not None:
                import torch

                out.append(torch.stack(picked))  # the gather is the one copy out of DALI's buffers
            else:
                out.append(np.stack(picked))
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._reader = self._pool = None


class VideoFileSource:
    """Frames straight from video files with PyAV (seek to the keyframe before the clip, decode forward).

    Slower than a store: every clip pays a seek, the decode of the GOP head and a resize at full source
    resolution. Frames are the source's own (no resampling); sizes must agree, or pass `size` to resize
    the short side and centre-crop.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], size: int | None = None, threads: int = 2) -> None:
        from babyfast.store.recording import SourceError, open_source

        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("from_videos: no video paths given")
        self.size = size
        self.threads = threads
        counts, fps, shapes = [], [], []
        for p in self.paths:
            try:
                container, stream = open_source(p)
            except SourceError as e:
                raise ValueError(f"{p}: {e}") from e
            with container:
                n = stream.frames or 0
                if n <= 0:  # some containers do not store a frame count: count packets instead
                    n = sum(1 for pkt in container.demux(stream) if pkt.size)
                counts.append(n)
                rate = stream.average_rate or stream.guessed_rate
                fps.append(float(rate) if rate else 0.0)
                shapes.append((stream.codec_context.height, stream.codec_context.width))
        if size is None and len(set(shapes)) > 1:
            raise ValueError(f"from_videos: frame sizes differ ({sorted(set(shapes))}); pass size= to resize")
        self.ids = [p.stem for p in self.paths]
        self.excluded: list[tuple[str, int, str]] = []
        self.frames_per_video = np.array(counts, dtype=np.int64)
        self.ages = np.full(len(self.paths), np.nan)
        self.fps = fps
        self.gop = 1
        self._pool: ThreadPoolExecutor | None = None
        rebuild_after_fork(self)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        rebuild_after_fork(self)

    def _after_fork(self) -> None:
        self._pool = None  # the parent's threads do not exist in a forked worker

    def meta(self, v: int) -> VideoMeta:
        return VideoMeta(id=self.ids[v], subject="", age_days=float("nan"), fps=self.fps[v], utterances=[])

    def _clip(self, v: int, idx: np.ndarray) -> np.ndarray | ChunkError:
        import av
        import av.error

        from babyfast.store.recording import _centre_crop, output_size, to_rgb

        path = self.paths[v]
        want = set(int(i) for i in idx)
        got: dict[int, np.ndarray] = {}
        try:
            with av.open(str(path)) as c:
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                rate = s.average_rate or s.guessed_rate
                t0 = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
                first = int(idx.min())
                c.seek(int((t0 + first / float(rate)) / s.time_base), stream=s, backward=True, any_frame=False)
                for frame in c.decode(s):
                    k = int(round((float(frame.time) - t0) * float(rate)))
                    if k in want:
                        if self.size is None:
                            img = to_rgb(frame)
                        else:
                            sw, sh, ow, oh = output_size(frame.width, frame.height, self.size, True)
                            img = _centre_crop(to_rgb(frame, width=sw, height=sh, interpolation="AREA"), ow, oh)
                        got[k] = img
                    if k >= int(idx.max()):
                        break
        except av.error.FFmpegError as e:
            return ChunkError(self.ids[v], int(idx[0]), f"{path}: {e}")
        missing = sorted(want - set(got))
        if missing:
            return ChunkError(self.ids[v], int(idx[0]), f"{path}: frames {missing[:5]} not found")
        return np.stack([got[int(i)] for i in idx])

    def read(self, requests: Sequence[tuple[int, np.ndarray]]) -> ReadBatch:
        """Nothing to read ahead: PyAV opens, seeks and decodes each file in `decode`."""
        return ReadBatch(list(requests), [], {})

    def decode(self, read: ReadBatch) -> list[np.ndarray | ChunkError]:
        if self._pool is None:  # none yet, or dropped by a fork
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="babyfast-pyav")
        return list(self._pool.map(lambda r: self._clip(*r), read.requests))

    def frames(self, requests: Sequence[tuple[int, np.ndarray]]) -> list[np.ndarray | ChunkError]:
        return self.decode(self.read(requests))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._pool = None
