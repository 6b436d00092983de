"""Encode rendered frames to a video file with PyAV, applying the child's acuity blur on the way.

The blur is an FFmpeg `gblur` filter on the YUV planes, so it costs C time, not Python time. Chroma is
blurred at half resolution with the same sigma, i.e. twice as much in image terms, which suits an
infant's colour acuity lagging behind luminance acuity. Encoders run single-threaded by default so that
the bytes of a file depend only on the frames (the corpus parallelises across recordings instead), and
without B-frames (see `VideoWriter`).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import cast

import numpy as np

from babyfast._atomic import commit, temp_path

__all__ = ["VideoWriter", "CODECS", "codec_extension"]

# codec name -> (PyAV encoder, container extension, pixel format, encoder options)
CODECS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "h264": ("libx264", "mp4", "yuv420p", {"preset": "veryfast", "crf": "20"}),
    "hevc": ("libx265", "mp4", "yuv420p", {"preset": "veryfast", "crf": "24"}),
    "vp9": ("libvpx-vp9", "webm", "yuv420p", {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"}),
    "mjpeg": ("mjpeg", "avi", "yuvj420p", {"q:v": "3"}),
}
_MIN_BLUR = 0.3  # below this a Gaussian changes almost nothing at 8 bits


def codec_extension(codec: str) -> str:
    """The container extension a codec is written in (ValueError listing the codecs for an unknown one)."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; allowed: {sorted(CODECS)}")
    return CODECS[codec][1]


class VideoWriter:
    """Write RGB frames to `path` (written to a temporary name, moved into place on `close`).

    `gop`: keyframe interval; None keeps the encoder's default (as a camera would). A given GOP is
    fixed: no scene-cut keyframes in between.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        codec: str = "h264",
        gop: int | None = None,
        blur_sigma: float = 0.0,
        threads: int = 1,
    ):
        import av
        import av.filter

        if codec not in CODECS:
            raise ValueError(f"{path}: unknown codec {codec!r}; allowed: {sorted(CODECS)}")
        encoder, ext, pix_fmt, options = CODECS[codec]
        if width % 2 or height % 2 or width < 16 or height < 16:
            raise ValueError(f"{path}: frame size {width}x{height} must be even and at least 16x16")
        if gop is not None and gop < 1:
            raise ValueError(f"{path}: gop {gop} must be >= 1")
        self.path = Path(path)
        self._tmp = temp_path(self.path)
        self.width, self.height = int(width), int(height)
        rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(str(self._tmp), "w", format={"mp4": "mp4", "webm": "webm", "avi": "avi"}[ext])
        # Every encoder in CODECS is a video encoder; the stubs only know that for literal codec names.
        st = cast(av.VideoStream, self._container.add_stream(encoder, rate=rate))
        st.width, st.height, st.pix_fmt = self.width, self.height, pix_fmt
        st.codec_context.thread_count = int(threads)
        opts = dict(options)
        # No B-frames: x264's B-frame decision came out differently from run to run on a loaded machine
        # (same input, same settings), and head cameras rarely use them either.
        x264 = ["bframes=0"]
        x265 = ["log-level=error", "pools=none", "frame-threads=1", "bframes=0"]  # no worker pool: see store.codec
        if gop is not None:
            st.codec_context.gop_size = int(gop)
            x264 += [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"]
            x265 += [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"]
        if codec == "h264":
            opts["x264-params"] = ":".join(x264)
        elif codec == "hevc":
            opts["x265-params"] = ":".join(x265)
        st.codec_context.options = opts
        self._stream = st
        self._rate = rate
        self._n = 0
        self._graph: av.filter.Graph | None = None
        if blur_sigma >= _MIN_BLUR:
            g = av.filter.Graph()
            src = g.add_buffer(width=self.width, height=self.height, format=av.VideoFormat("rgb24"), time_base=1 / rate)
            fmt = g.add("format", pix_fmt)
            blur = g.add("gblur", f"sigma={blur_sigma:.3f}")
            sink = g.add("buffersink")
            src.link_to(fmt)
            fmt.link_to(blur)
            blur.link_to(sink)
            g.configure()
            self._graph = g

    def write(self, rgb: np.ndarray) -> None:
        """Append one (height, width, 3) uint8 frame."""
        import av

        if self._container is None:
            raise RuntimeError(f"{self.path}: write() after close()")
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: frame {self._n} has shape {rgb.shape} {rgb.dtype}; "
                f"expected ({self.height}, {self.width}, 3) uint8"
            )
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self._n
        frame.time_base = 1 / self._rate
        self._n += 1
        if self._graph is not None:
            self._graph.push(frame)
            frame = cast(av.VideoFrame, self._graph.pull())  # a video graph yields video frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> Path:
        """Flush the encoder and move the file into place; returns its path."""
        if self._container is None:
            return self.path
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return commit(self._tmp, self.path)

    def abort(self) -> None:
        """Drop a half-written file."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is discarded anyway
                pass
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
