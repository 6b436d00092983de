"""Lossless image files for the probe suites: a minimal PNG writer and a PyAV-based reader.

Probe frames must be exact (the permanence check compares frames bit for bit), so they are PNG. The
writer needs only zlib; reading goes through FFmpeg's PNG decoder, an implementation independent of
the writer.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from babyfast._atomic import write_bytes

__all__ = ["write_png", "read_png", "encode_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(rgb: np.ndarray, level: int = 6) -> bytes:
    """The PNG file bytes of an (H, W, 3) uint8 image (8-bit RGB, no interlace)."""
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"encode_png needs an (H, W, 3) uint8 array, got shape {a.shape} dtype {a.dtype}")
    h, w = a.shape[:2]
    # Filter type 1 (Sub) per row: neighbouring pixels are similar, so their differences compress well.
    rows = a.reshape(h, w * 3).astype(np.int16)
    sub = rows.copy()
    sub[:, 3:] -= rows[:, :-3]
    raw = np.empty((h, w * 3 + 1), np.uint8)
    raw[:, 0] = 1
    raw[:, 1:] = (sub & 0xFF).astype(np.uint8)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
            + _chunk(b"IEND", b""))


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image as PNG (atomically); returns the path."""
    return write_bytes(path, encode_png(rgb))


def read_png(path: str | Path) -> np.ndarray:
    """Decode an image file (PNG or anything FFmpeg reads) to an (H, W, 3) uint8 RGB array."""
    import av
    import av.error

    try:
        with av.open(str(path)) as c:
            for frame in c.decode(video=0):
                return frame.to_ndarray(format="rgb24", threads=1)  # see babyfast.store.recording.to_rgb
    except (av.error.FFmpegError, OSError) as e:
        raise ValueError(f"{path}: cannot decode image ({e})") from e
    raise ValueError(f"{path}: no image in file")
