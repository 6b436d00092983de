"""Read one source recording with PyAV: resample to a fixed fps by timestamps, honour rotation, resize.

`iter_frames` is the single place where source pixels become store pixels; ingest and the tests' reference
both describe the same operation: for output frame k at time t0 + k/fps (t0 = the first frame's
timestamp), take the latest source frame whose timestamp is <= that time (sample and hold, so variable
frame rate sources are handled), rotate it as its display matrix says, scale its short side to `size`
(area filter) and centre-crop to size x size (or keep the aspect ratio, even sizes, with crop=False).

What a source may cost is bounded by what it holds, not by what it claims: a header declaring frames
beyond `limits.MAX_SOURCE_PIXELS` is refused before anything is decoded, and a jump between two
timestamps longer than `max_gap` is skipped (reported), not filled frame by frame.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from babyfast.store import _limits as limits

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi")


class SourceError(ValueError):
    """A source file that cannot be ingested; the message says why."""


@dataclass
class SourceReport:
    """What reading a source found out (filled as frames are read)."""

    source_fps: float | None = None
    rotation: int = 0
    width: int = 0
    height: int = 0
    codec: str = ""
    duration: float | None = None  # what the container declares for the video, when it says
    decoded_duration: float | None = None  # source seconds from the first decoded frame to the last one's end
    source_frames: int = 0  # source frames decoded
    bad_packets: int = 0
    bad_times: list[float] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (source time, seconds) of skipped jumps


def sha256_file(path: str | os.PathLike[str], block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def output_size(width: int, height: int, size: int, crop: bool) -> tuple[int, int, int, int]:
    """(scaled_w, scaled_h, out_w, out_h) for a display-oriented source of width x height."""
    scale = size / min(width, height)
    sw, sh = max(size, round(width * scale)), max(size, round(height * scale))
    if crop:
        return sw, sh, size, size
    even = lambda n: n - (n % 2)  # noqa: E731  (4:2:0 codecs want even sizes)
    return sw, sh, even(sw), even(sh)


def open_source(path: str | os.PathLike[str]):
    """Open a file with PyAV and return (container, video stream), or raise SourceError saying why."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise SourceError(f"cannot read: {e.strerror}") from e
    if size == 0:
        raise SourceError("empty file (0 bytes)")
    try:
        container = av.open(str(p), "r")
    except av.error.FFmpegError as e:
        raise SourceError(f"not a readable video container: {e}") from e
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise SourceError(f"no video stream (streams: {', '.join(kinds)})")
    return container, container.streams.video[0]


def stream_duration(container, stream) -> float | None:
    """Seconds of video the container says it holds (None when it does not say)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1e6
    return None


def declared_video_duration(container, stream) -> float | None:
    """Seconds the container declares for the video stream itself, when it does: the stream's duration, a
    Matroska track's DURATION tag, or the file's duration when the video is its only stream (with audio,
    the file's duration may be the audio's)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            pass
    if container.duration is not None and len(container.streams) == 1:
        return container.duration / 1e6
    return None


def _check_size(width: int, height: int, what: str) -> None:
    if width > limits.MAX_SOURCE_SIDE or height > limits.MAX_SOURCE_SIDE or \
            width * height > limits.MAX_SOURCE_PIXELS:
        raise SourceError(f"{what} is {width}x{height}, beyond what ingest reads (sides up to "
                          f"{limits.MAX_SOURCE_SIDE}, {limits.MAX_SOURCE_PIXELS} pixels in all); refused")


def to_rgb(frame: av.VideoFrame, **resize) -> np.ndarray:
    """uint8 (H, W, 3) RGB of a decoded frame; `resize`: width, height, interpolation for swscale.

    swscale runs on one thread, ours. PyAV >= 19 keeps one scaler per thread for the thread's life, and a
    scaler with worker threads of its own hangs any process forked while it lives (its teardown in the
    child waits for threads that were not copied): DataLoader workers after a decode in our thread pool.
    """
    return frame.to_ndarray(format="rgb24", threads=1, **resize)


def _display_frame(frame: av.VideoFrame, rotation: int, sw: int, sh: int) -> np.ndarray:
    k = (rotation // 90) % 4
    # scale in the coded orientation (sizes swapped for quarter turns), then turn to display orientation
    w, h = (sh, sw) if k % 2 else (sw, sh)
    img = to_rgb(frame, width=w, height=h, interpolation="AREA")
    return np.rot90(img, k) if k else img


def _centre_crop(img: np.ndarray, ow: int, oh: int) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - oh) // 2, (w - ow) // 2
    return np.ascontiguousarray(img[y:y + oh, x:x + ow])


def _geometry(frame: Any, size: int, crop: bool, report: SourceReport) -> tuple[int, int, int, int]:
    """(scaled width, height, stored width, height) of a source's frames, from its first (rotation included,
    recorded in `report`); SourceError beyond the limits."""
    report.rotation = int(round(frame.rotation or 0)) % 360
    k_turn = (report.rotation // 90) % 4
    dw, dh = (frame.height, frame.width) if k_turn % 2 else (frame.width, frame.height)
    report.width, report.height = dw, dh
    sw, sh, ow, oh = output_size(dw, dh, size, crop)
    if sw * sh > limits.MAX_SOURCE_PIXELS or max(ow, oh) > limits.MAX_SIDE:
        raise SourceError(f"frames of {dw}x{dh} would be scaled to {sw}x{sh} and stored at "
                          f"{ow}x{oh}, beyond the limits (stored sides up to {limits.MAX_SIDE}); "
                          f"an aspect ratio this extreme needs a crop")
    return sw, sh, ow, oh


def iter_frames(path: str | os.PathLike[str], fps: float, size: int, crop: bool = True,
                report: SourceReport | None = None,
                max_gap: float = limits.DEFAULT_MAX_GAP) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (source time in seconds, uint8 frame (H, W, 3)) at `fps`, resized as described above.

    A source frame followed by a jump of more than `max_gap` seconds is held for its usual length (the
    interval before it), then the output goes on with the frame after the jump; the jump is recorded in
    `report.gaps` and the stored timestamps show it.
    """
    report = report if report is not None else SourceReport()
    container, stream = open_source(path)
    with container:
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        report.source_fps = float(rate) if rate else None
        report.codec = stream.codec_context.name
        report.duration = declared_video_duration(container, stream)
        _check_size(stream.codec_context.width, stream.codec_context.height, "the header's frame size")
        step = 1.0 / fps
        # t0 and first are set by the first decoded frame, before anything reads them
        t0 = 0.0  # time of output frame 0, moved on by every skipped jump
        first = 0.0  # time of the first source frame
        k = 0  # next output frame
        held: tuple[float, np.ndarray] | None = None  # last source frame, already resized
        last_dt = 1.0 / report.source_fps if report.source_fps else step
        geometry = None
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as e:
                # a damaged container: keep what decoded so far, report where it stopped
                report.bad_packets += 1
                report.bad_times.append(held[0] if held else 0.0)
                log.warning("%s: demuxing stopped early: %s", path, e)
                break
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                report.bad_packets += 1
                t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
                report.bad_times.append(t if t is not None else (held[0] if held else 0.0))
                continue
            for frame in frames:
                t = frame.time
                if t is None:
                    t = (held[0] + last_dt) if held else 0.0
                if held is not None and t <= held[0]:
                    continue  # duplicate or out-of-order timestamp: keep the first
                _check_size(frame.width, frame.height, f"a frame at {t:.3f} s")
                report.source_frames += 1
                if geometry is None:
                    geometry = _geometry(frame, size, crop, report)
                    t0 = first = t
                if held is not None:
                    gap = t - held[0]
                    if gap > max_gap:
                        held_until = held[0] + last_dt
                        while t0 + k * step < held_until - 1e-9:
                            yield held[0], held[1]
                            k += 1
                        t0 += t - held_until
                        report.gaps.append((held[0], gap))
                    else:
                        last_dt = gap
                        while t0 + k * step < t - 1e-9:
                            yield held[0], held[1]
                            k += 1
                sw, sh, ow, oh = geometry
                held = (t, _centre_crop(_display_frame(frame, report.rotation, sw, sh), ow, oh))
        if held is None:
            if report.bad_packets:
                raise SourceError(f"no frame could be decoded ({report.bad_packets} undecodable packets)")
            raise SourceError("the video stream holds no frames")
        end = held[0] + last_dt  # the last frame is shown for as long as the one before it
        report.decoded_duration = end - first
        while t0 + k * step < end - 1e-9:
            yield held[0], held[1]
            k += 1
