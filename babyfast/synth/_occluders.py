"""Occluders: standing screens and blankets that hide toys and, when moved, reveal them again."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._raster import Canvas, Colour, box, ellipse, hsv, mix, pattern
from ._sprites import Sprite, bucket_size, to_sprite

__all__ = ["OccluderStyle", "occluder_style", "occluder_sprite", "OCCLUDER_KINDS"]

OCCLUDER_KINDS = ("screen", "blanket")


@dataclass(frozen=True)
class OccluderStyle:
    kind: str
    base: Colour
    other: Colour
    frame: Colour
    texture: str
    freq: float
    angle: float


def occluder_style(rng: np.random.Generator, kind: str) -> OccluderStyle:
    """A random screen or blanket look (ValueError for another kind)."""
    if kind not in OCCLUDER_KINDS:
        raise ValueError(f"unknown occluder kind {kind!r}; allowed: {OCCLUDER_KINDS}")
    base = hsv(rng.uniform(0, 360), rng.uniform(0.2, 0.7), rng.uniform(0.45, 0.9))
    other = mix(base, hsv(rng.uniform(0, 360), 0.5, 0.9), rng.uniform(0.3, 0.7))
    frame = mix(base, (0.1, 0.08, 0.06), 0.6)
    textures = ["plain", "stripes", "checker", "dots"] if kind == "screen" else ["stripes", "checker", "dots"]
    texture = str(rng.choice(textures))
    return OccluderStyle(kind, base, other, frame, texture, float(rng.uniform(5, 12)), float(rng.uniform(0, np.pi)))


@lru_cache(maxsize=1024)
def occluder_sprite(style: OccluderStyle, width_bucket: int, height_bucket: int) -> Sprite:
    """The occluder at a (width, height) size-bucket pair; anchored at its bottom centre."""
    w, h = bucket_size(width_bucket), bucket_size(height_bucket)
    cv = Canvas(w, h)
    u, v = cv.u, cv.v
    # canvas units are relative to the longer side; the shape's half-extent along each axis:
    hx, hy = w / max(w, h), h / max(w, h)
    t = pattern(u, v, style.texture, style.freq, style.angle)
    if style.kind == "screen":
        cv.paint(box(u, v, 0, 0, hx * 0.98, hy * 0.98, 0.03), style.frame)
        cv.paint_pattern(box(u, v, 0, -0.02 * hy, hx * 0.86, hy * 0.84), style.base, style.other, t)
    else:
        hem = hy * (0.92 + 0.06 * np.sin(u / hx * 11.0))
        mound = ellipse(u, v, 0, hy * 0.35, hx * 0.98, hy * 1.3) & (v < hem)
        # a plaid: the pattern crossed with itself turned a quarter
        t2 = pattern(u, v, style.texture, style.freq, style.angle + np.pi / 2)
        cv.paint_pattern(mound, style.base, style.other, np.maximum(t, t2) * 0.8)
    rgb, alpha = cv.finish(light=0.15)
    sp = to_sprite(rgb, alpha, w / 2.0, float(h))
    assert sp is not None
    return sp
