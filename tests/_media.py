"""Real encoded test recordings made with PyAV, and an independent reference of what ingest must store."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def scene(i: int, h: int, w: int) -> np.ndarray:
    """A smooth, moving picture (gradients and a soft blob) that codecs compress well but not trivially."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = (0.3 + 0.4 * np.sin(i / 7.0)) * w, (0.5 + 0.3 * np.cos(i / 5.0)) * h
    blob = np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * (0.12 * min(h, w)) ** 2)))
    r = 40 + 150 * x / w + 60 * blob
    g = 60 + 100 * y / h + 90 * blob * np.sin(i / 3.0) ** 2
    b = 120 + 60 * np.sin(x / w * 6.28 + i / 4.0) - 80 * blob
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def make_video(path: Path, frames: int = 40, w: int = 160, h: int = 120, rate: int = 30, codec: str = "libx264",
               pts_ms: list[int] | None = None, rotation: int | None = None, audio: bool = False,
               crf: int = 8, images: list[np.ndarray] | None = None,
               container_options: dict[str, str] | None = None) -> list[np.ndarray]:
    """Write a real recording; returns the frames as given to the encoder (coded orientation).
    container_options: muxer options, e.g. {"movflags": "faststart"} (mp4 index first)."""
    images = images if images is not None else [scene(i, h, w) for i in range(frames)]
    with av.open(str(path), "w", options=container_options or {}) as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height = images[0].shape[1], images[0].shape[0]
        s.pix_fmt = "yuv420p"
        if codec in ("libx264", "libx265"):
            s.options = {"crf": str(crf)}
        if pts_ms is not None:
            s.time_base = Fraction(1, 1000)
            s.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            s.set_display_rotation(rotation)
        a = c.add_stream("aac", rate=16000) if audio else None
        for i, img in enumerate(images):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts_ms is not None:
                f.pts, f.time_base = pts_ms[i], Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        if a is not None:
            for p in a.encode(None):
                c.mux(p)
    return images


def make_audio_only(path: Path, seconds: float = 1.0) -> None:
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
        n = int(16000 * seconds)
        samples = (np.sin(np.arange(n) / 10.0) * 0.3).astype(np.float32)[None]
        step = 1024
        for i in range(0, n - step, step):
            fr = av.AudioFrame.from_ndarray(samples[:, i:i + step], format="fltp", layout="mono")
            fr.sample_rate = 16000
            fr.pts = i
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)


def reference(path: Path, fps: float, size: int, crop: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """What the store must hold, computed independently of babyfast: decode every frame with PyAV, pick for
    each output time t0 + k/fps the last source frame at or before it (the last frame lasting as long as the
    gap before it), rotate by the display matrix, resize the short side (area filter) and centre-crop."""
    with av.open(str(path)) as c:
        decoded = [(f.time, f) for f in c.decode(video=0)]
    times = np.array([t for t, _ in decoded])
    rot = int(decoded[0][1].rotation or 0) % 360
    end = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1.0 / fps)
    out_times = times[0] + np.arange(int(np.ceil((end - times[0]) * fps - 1e-6))) / fps
    pick = np.searchsorted(times, out_times + 1e-9, side="right") - 1
    f0 = decoded[0][1]
    dw, dh = (f0.height, f0.width) if (rot // 90) % 2 else (f0.width, f0.height)
    scale = size / min(dw, dh)
    sw, sh = max(size, round(dw * scale)), max(size, round(dh * scale))
    ow, oh = (size, size) if crop else (sw - sw % 2, sh - sh % 2)
    frames = []
    cache: dict[int, np.ndarray] = {}
    for i in pick:
        if i not in cache:
            f = decoded[i][1]
            cw, ch = (sh, sw) if (rot // 90) % 2 else (sw, sh)
            img = np.rot90(f.reformat(width=cw, height=ch, format="rgb24", interpolation="AREA").to_ndarray(), rot // 90)
            y, x = (img.shape[0] - oh) // 2, (img.shape[1] - ow) // 2
            cache[i] = img[y:y + oh, x:x + ow]
        frames.append(cache[i])
    return np.stack(frames), times[pick]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
