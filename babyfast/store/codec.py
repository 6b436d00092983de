"""`babyfast.gop`: the zarr v3 chunk codec of the store, one closed GOP per chunk.

A chunk of shape (G, H, W, 3) uint8 is stored as a small, self-contained Matroska file holding one closed,
B-frame-free GOP of G frames (h264, hevc, av1, vp9), as one JPEG image (G = 1), or as zstd-compressed raw
pixels. Every chunk decodes on its own: with PyAV here, with DALI (NVDEC, or DALI's CPU decoder for vp9) in
the loader. Frame sizes need not be even: frames are padded to even sizes for 4:2:0 and cropped back.
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, cast

import av
import av.error
import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.registry import register_codec

from .. import _core
from .layout import CODECS
from .recording import to_rgb

if TYPE_CHECKING:
    from zarr.core.array_spec import ArraySpec

CODEC_NAME = "babyfast.gop"

# codec -> (PyAV encoder, default quality, how quality maps onto encoder options)
VIDEO_CODECS = ("h264", "hevc", "av1", "vp9")
IMAGE_CODECS = ("jpeg",)
assert CODECS == VIDEO_CODECS + IMAGE_CODECS + ("raw",), "format.CODECS and the codecs implemented here differ"
DEFAULT_QUALITY = {"h264": 18, "hevc": 20, "av1": 28, "vp9": 24, "jpeg": 2, "raw": 3}
DEFAULT_PRESET = {"h264": "veryfast", "hevc": "ultrafast", "av1": "10", "vp9": "6", "jpeg": "", "raw": ""}


def _encoder_options(codec: str, gop: int, quality: int, preset: str) -> tuple[str, dict[str, str]]:
    # Every option serves one promise: the chunk is one closed GOP with no B-frames, so any decoder can
    # start at its first frame and nothing references another chunk.
    if codec == "h264":
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0"
        return "libx264", {"crf": str(quality), "preset": preset, "x264-params": params}
    if codec == "hevc":
        # and x265 on one frame thread without a worker pool: chunks are encoded in parallel already, and
        # x265's pool and parallel frames are where its intermittent crashes are reported
        params = (f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0:log-level=error"
                  ":pools=none:frame-threads=1")
        return "libx265", {"crf": str(quality), "preset": preset, "x265-params": params}
    if codec == "vp9":
        return "libvpx-vp9", {
            "crf": str(quality), "b": "0", "g": str(gop), "lag-in-frames": "0", "auto-alt-ref": "0",
            "deadline": "good", "cpu-used": preset, "row-mt": "1",
        }
    if codec == "av1":
        return "libsvtav1", {"crf": str(quality), "preset": preset, "g": str(gop),
                             "svtav1-params": "irefresh-type=2:pred-struct=1"}
    raise ValueError(f"{CODEC_NAME}: no video encoder for codec {codec!r}; allowed: {', '.join(VIDEO_CODECS)}")


def _even(n: int) -> int:
    return n + (n & 1)


def _pad_even(frames: np.ndarray) -> np.ndarray:
    t, h, w, c = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, _even(h) - h), (0, _even(w) - w), (0, 0)), mode="edge")


def encode_gop(frames: np.ndarray, codec: str, quality: int | None = None, preset: str | None = None,
               fps: int = 10) -> bytes:
    """Encode uint8 frames (T, H, W, 3) as one self-contained chunk payload."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{CODEC_NAME}: expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    quality = DEFAULT_QUALITY[codec] if quality is None else quality
    preset = DEFAULT_PRESET[codec] if preset is None else preset
    if codec == "raw":
        import numcodecs

        return bytes(numcodecs.Zstd(level=quality).encode(np.ascontiguousarray(frames)))
    if codec == "jpeg":
        if frames.shape[0] != 1:
            raise ValueError(f"{CODEC_NAME}: jpeg chunks hold one frame (G = 1), got {frames.shape[0]}")
        return _encode_jpeg(frames[0], quality)
    encoder, options = _encoder_options(codec, frames.shape[0], quality, preset)
    padded = _pad_even(frames)
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height = padded.shape[2], padded.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = options
        stream.thread_count = 1  # chunks are encoded in parallel already; threads here only add overhead
        for frame in padded:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    h, w = frame.shape[:2]
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height = w, h
    ctx.pix_fmt = "yuvj444p"
    ctx.time_base = Fraction(1, 10)
    ctx.options = {"qmin": str(quality), "qmax": str(quality)}
    # one swscale thread, as in `to_rgb`: zarr may encode in threads that outlive this call
    vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(format="yuvj444p",
                                                                                        threads=1)
    packets = ctx.encode(vf) + ctx.encode(None)
    return b"".join(bytes(p) for p in packets)


# The chunk's header holds the stream's parameters. Probing would read frames to learn them again (a
# quarter of a 16-frame chunk's decode time), and opening the container still decodes a first frame, in a
# decoder of its own, unless told to skip it (over half the cost of opening a chunk). The frames are the
# same either way: they come from the decoder kept per thread.
_NO_PROBE = {"probesize": "32", "analyzeduration": "0"}
_NO_PROBE_DECODE = [{"skip_frame": "all"}]
_DECODERS_PER_THREAD = 4
_decoders = threading.local()


def _decoder(stream: av.VideoStream) -> av.VideoCodecContext:
    """An open decoder for chunks like `stream`'s, kept per thread across chunks.

    Opening a decoder costs about as much as demuxing a 16-frame chunk, and every chunk of a video has the
    same parameters, so each thread keeps its last few, keyed by what they were opened with. They decode
    on one thread (the caller's): chunks are decoded in parallel already, a chunk is one slice per frame,
    and a decoder with threads of its own would hang a process forked while it lives.
    """
    cc = stream.codec_context
    key = (cc.codec.name, bytes(cc.extradata or b""), cc.width, cc.height)
    cache: dict | None = getattr(_decoders, "cache", None)
    if cache is None:
        cache = _decoders.cache = {}
    ctx = cache.pop(key, None)
    if ctx is None:
        ctx = cast(av.VideoCodecContext, av.CodecContext.create(cc.codec.name, "r"))  # a video codec: cc's
        if cc.extradata:
            ctx.extradata = cc.extradata
        ctx.width, ctx.height = cc.width, cc.height
        ctx.thread_count = 1
        while len(cache) >= _DECODERS_PER_THREAD:
            cache.pop(next(iter(cache)))
    cache[key] = ctx  # most recently used last
    return ctx


# How our encoder's swscale wrote the chunks' YUV (BT.601, limited range), and the tags a decoder reports for
# it: AVCOL_SPC_UNSPECIFIED, BT470BG, SMPTE170M; AVCOL_RANGE_UNSPECIFIED, MPEG. Other frames go to swscale.
_BT601 = frozenset({2, 5, 6})
_LIMITED = frozenset({0, 1})


def _frame_rgb(frame: av.VideoFrame, out: np.ndarray) -> None:
    """out[:] = the RGB of a decoded frame: 8-bit 4:2:0 BT.601 by the C++ core, rounded, straight into `out`
    (swscale's unscaled path truncates, and goes through a frame and an array of its own); anything else
    by swscale."""
    if frame.format.name == "yuv420p" and frame.colorspace in _BT601 and frame.color_range in _LIMITED:
        planes = []
        for plane in frame.planes:
            flat = np.frombuffer(cast(Any, plane), np.uint8)  # a buffer; PyAV's stubs do not say so
            planes.append(flat[:flat.size // plane.line_size * plane.line_size].reshape(-1, plane.line_size))
        y, u, v = planes
        _core.yuv420_to_rgb(y, u, v, out)
    else:
        out[...] = to_rgb(frame)


def _decode_video(payload: bytes, codec: str, frames: int) -> np.ndarray:
    """The chunk's frames, each written into one (frames, H, W, 3) array as soon as it is decoded (while
    it is in cache: stacking them afterwards cost as much again as converting them)."""
    out: np.ndarray | None = None
    n = 0
    # PyAV's stubs type stream_options as list[str]; av.open reads a dict of options per stream
    with av.open(io.BytesIO(payload), "r", format="matroska", options=_NO_PROBE,  # pyright: ignore[reportCallIssue]
                 stream_options=_NO_PROBE_DECODE) as container:  # pyright: ignore[reportArgumentType]
        stream = container.streams.video[0]
        ctx = _decoder(stream)
        try:
            for packet in container.demux(stream):
                # the demuxer ends with an empty packet; decode(None) then drains the decoder
                for frame in ctx.decode(packet if packet.size else None):
                    if n == frames:  # bounded by the chunk's shape, whatever the payload holds
                        raise ValueError(f"{CODEC_NAME}: {codec} chunk decoded to more than {frames} frames, "
                                         f"expected {frames}")
                    if out is None:
                        out = np.empty((frames, frame.height, frame.width, 3), np.uint8)
                    if (frame.height, frame.width) != out.shape[1:3]:
                        raise ValueError(f"{CODEC_NAME}: {codec} chunk changes frame size at frame {n}")
                    _frame_rgb(frame, out[n])
                    n += 1
                if not packet.size:
                    break
        finally:
            ctx.flush_buffers()  # the next chunk starts from a clean decoder, whatever happened here
    if n != frames or out is None:
        raise ValueError(f"{CODEC_NAME}: {codec} chunk decoded to {n} frames, expected {frames}")
    return out


def decode_gop(payload: bytes | memoryview | np.ndarray, codec: str, frames: int, height: int,
               width: int) -> np.ndarray:
    """Decode one chunk payload to uint8 (frames, height, width, 3) on the CPU (PyAV or zstd)."""
    if codec == "raw":
        import numcodecs

        out = np.frombuffer(numcodecs.Zstd().decode(bytes(payload)), dtype=np.uint8)
        if out.size != frames * height * width * 3:
            raise ValueError(f"{CODEC_NAME}: raw chunk holds {out.size} bytes, expected {frames}x{height}x{width}x3")
        return out.reshape(frames, height, width, 3)
    if codec == "jpeg":
        ctx = av.CodecContext.create("mjpeg", "r")
        try:
            decoded = list(ctx.decode(av.Packet(bytes(payload)))) + list(ctx.decode(None))
        except av.error.FFmpegError as e:
            raise ValueError(f"{CODEC_NAME}: cannot decode jpeg chunk: {e}") from e
        if len(decoded) != frames:
            raise ValueError(f"{CODEC_NAME}: jpeg chunk decoded to {len(decoded)} frames, expected {frames}")
        out = np.stack([to_rgb(f) for f in decoded])
    else:
        try:
            out = _decode_video(bytes(payload), codec, frames)
        except av.error.FFmpegError as e:
            raise ValueError(f"{CODEC_NAME}: cannot decode {codec} chunk: {e}") from e
    if out.shape[1] < height or out.shape[2] < width:
        raise ValueError(f"{CODEC_NAME}: {codec} chunk frames are {out.shape[1:3]}, "
                         f"expected at least {(height, width)}")
    return np.ascontiguousarray(out[:, :height, :width])


def decode_video_chunk(payload: bytes | memoryview | np.ndarray, attrs: dict[str, Any]) -> np.ndarray:
    """Decode one chunk payload of a stored video, its geometry taken from the video's attributes."""
    return decode_gop(payload, str(attrs["codec"]), int(attrs["gop"]), int(attrs["height"]), int(attrs["width"]))


@dataclass(frozen=True)
class GopCodec(ArrayBytesCodec):
    """zarr v3 array->bytes codec: a (G, H, W, 3) uint8 chunk <-> one self-contained encoded GOP."""

    is_fixed_size = False

    codec: str = "h264"
    quality: int | None = None
    preset: str | None = None
    fps: int = 10

    def __init__(self, *, codec: str = "h264", quality: int | None = None, preset: str | None = None,
                 fps: int = 10) -> None:
        if codec not in CODECS:
            raise ValueError(f"{CODEC_NAME}: unknown codec {codec!r}; allowed: {', '.join(CODECS)}")
        object.__setattr__(self, "codec", codec)
        object.__setattr__(self, "quality", DEFAULT_QUALITY[codec] if quality is None else int(quality))
        object.__setattr__(self, "preset", DEFAULT_PRESET[codec] if preset is None else str(preset))
        object.__setattr__(self, "fps", int(fps))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GopCodec:
        if data.get("name") != CODEC_NAME:
            raise ValueError(f"{CODEC_NAME}: cannot read codec metadata {data!r}")
        return cls(**(data.get("configuration") or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": CODEC_NAME, "configuration": {
            "codec": self.codec, "quality": self.quality, "preset": self.preset, "fps": self.fps}}

    def evolve_from_array_spec(self, array_spec: ArraySpec) -> GopCodec:
        return self

    def validate(self, *, shape: tuple[int, ...], dtype: Any, chunk_grid: Any) -> None:
        native = dtype.to_native_dtype() if hasattr(dtype, "to_native_dtype") else np.dtype(dtype)
        if native != np.uint8 or len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"{CODEC_NAME}: needs a uint8 (T, H, W, 3) array, got {native} {shape}")

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        g, h, w, _ = chunk_spec.shape
        frames = decode_gop(chunk_bytes.as_numpy_array(), self.codec, g, h, w)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(frames)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        frames = np.ascontiguousarray(chunk_array.as_numpy_array())
        payload = encode_gop(frames, self.codec, self.quality, self.preset, self.fps)
        return chunk_spec.prototype.buffer.from_bytes(payload)

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError(f"{CODEC_NAME} chunks have no fixed encoded size")


register_codec(CODEC_NAME, GopCodec)

__all__ = ["CODECS", "CODEC_NAME", "GopCodec", "decode_gop", "decode_video_chunk", "encode_gop"]
