"""Sprites: pre-multiplied RGBA bitmaps ready for integer alpha blending, and the cache buckets for them.

A sprite is rendered once per (thing, size bucket, rotation bucket) and reused for every frame that
shows it at that size, so a frame costs a handful of small array blends rather than any drawing.
Alpha is stored on a 0..256 scale so that blending is `(dst * (256 - a) + rgb * a) >> 8` in uint16.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._raster import segment_distance

# Sizes are quantised geometrically: neighbouring buckets differ by 8%, below what a viewer notices.
_SIZE_STEP = 1.08
ANGLE_BUCKETS = 16


@dataclass(frozen=True, eq=False)
class Sprite:
    """A blend-ready bitmap. `ox`, `oy`: its top-left corner relative to the anchor point it is placed by."""

    prem: np.ndarray  # (h, w, 3) uint16: colour (0..255) times alpha (0..256)
    inv: np.ndarray  # (h, w, 1) uint16: 256 - alpha
    alpha: np.ndarray  # (h, w) float32 in 0..1, for visibility bookkeeping
    ox: int
    oy: int
    mass: float  # sum of alpha: the sprite's area in pixels

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape  # type: ignore[return-value]


def to_sprite(rgb: np.ndarray, alpha: np.ndarray, anchor_x: float, anchor_y: float) -> Sprite | None:
    """Trim an (rgb 0..1, alpha 0..1) bitmap to its visible pixels; None when nothing is visible.

    The anchor is given in the untrimmed bitmap's pixel coordinates.
    """
    a256 = np.rint(np.clip(alpha, 0, 1) * 256.0).astype(np.uint16)
    rows = np.flatnonzero(a256.any(axis=1))
    cols = np.flatnonzero(a256.any(axis=0))
    if rows.size == 0:
        return None
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    a = a256[r0:r1, c0:c1]
    col = np.rint(np.clip(rgb[r0:r1, c0:c1], 0, 1) * 255.0).astype(np.uint16)
    prem = col * a[..., None]
    af = a.astype(np.float32) / 256.0
    return Sprite(
        prem=np.ascontiguousarray(prem),
        inv=np.ascontiguousarray((256 - a)[..., None]),
        alpha=af,
        ox=int(c0 - round(anchor_x)),
        oy=int(r0 - round(anchor_y)),
        mass=float(af.sum()),
    )


def size_bucket(pixels: float) -> int:
    """The bucket index of a size in pixels (sizes below 2 px share bucket 0)."""
    return max(0, int(round(math.log(max(pixels, 2.0) / 2.0) / math.log(_SIZE_STEP))))


def bucket_size(bucket: int) -> int:
    """The pixel size a bucket renders at."""
    return max(2, int(round(2.0 * _SIZE_STEP**bucket)))


def angle_bucket(angle: float) -> int:
    """The rotation bucket (of `ANGLE_BUCKETS`) of an angle in radians."""
    return int(round(angle / (2 * math.pi) * ANGLE_BUCKETS)) % ANGLE_BUCKETS


def bucket_angle(bucket: int) -> float:
    return bucket * 2 * math.pi / ANGLE_BUCKETS


@lru_cache(maxsize=4096)
def shadow_sprite(width: int, height: int, strength: float = 0.35) -> Sprite | None:
    """A soft dark ellipse, anchored at its centre: the contact shadow under an object."""
    w, h = max(2, width), max(2, height)
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
    r2 = xs[None, :] ** 2 + ys[:, None] ** 2
    alpha = np.clip(1.0 - r2, 0, 1) ** 1.5 * strength
    return to_sprite(np.zeros((h, w, 3), np.float32), alpha, w / 2, h / 2)


def capsule_sprite(x0: float, y0: float, x1: float, y1: float, radius: float, colour) -> tuple[Sprite, int, int] | None:
    """An antialiased thick segment in screen pixels (an arm): (sprite, anchor x, anchor y).

    Drawn per frame (arms stretch continuously, so there is nothing to cache); the cost is the area of
    its bounding box only.
    """
    r = max(radius, 0.75)
    bx0, by0 = int(math.floor(min(x0, x1) - r - 1)), int(math.floor(min(y0, y1) - r - 1))
    bx1, by1 = int(math.ceil(max(x0, x1) + r + 1)), int(math.ceil(max(y0, y1) + r + 1))
    w, h = bx1 - bx0, by1 - by0
    if w <= 0 or h <= 0 or w * h > 4_000_000:
        return None
    ys = np.arange(h, dtype=np.float32)[:, None] + by0 + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :] + bx0 + 0.5
    d = segment_distance(xs, ys, x0, y0, x1, y1)
    alpha = np.clip(r - d + 0.5, 0, 1)
    rgb = np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3))
    # the shading of a cylinder across the arm gives it some volume
    shade = 0.8 + 0.2 * np.clip(1 - (d / r) ** 2, 0, 1)
    sp = to_sprite(rgb * shade[..., None], alpha, 0.0, 0.0)
    if sp is None:
        return None
    return sp, bx0, by0
