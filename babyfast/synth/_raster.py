"""Vectorised 2-D rasterisation: shape masks, surface patterns, noise, and an antialiased canvas.

Everything here runs once per sprite or per room (the results are cached by the callers), so clarity
wins over speed; still, every operation is a numpy array expression over the whole grid.
Coordinates: a canvas maps its square to u, v in [-1, 1] with v pointing down (image order).
"""
from __future__ import annotations

import colorsys

import numpy as np

Colour = tuple[float, float, float]


class Canvas:
    """A supersampled RGBA canvas; shapes are painted back to front, then `finish` antialiases.

    `angle` (radians) turns the drawing (u, v are the rotated coordinates shapes see); `x`, `y` stay
    unrotated so that lighting comes from the same side however a toy is turned.
    """

    def __init__(
        self,
        width: int,
        height: int,
        angle: float = 0.0,
        supersample: int = 2,
        stretch: tuple[float, float] = (1.0, 1.0),
    ):
        self.width, self.height, self.ss = int(width), int(height), int(supersample)
        hs, ws = self.height * self.ss, self.width * self.ss
        half = max(self.width, self.height) / 2.0
        ys = ((np.arange(hs, dtype=np.float32) + 0.5) / self.ss - self.height / 2.0) / half
        xs = ((np.arange(ws, dtype=np.float32) + 0.5) / self.ss - self.width / 2.0) / half
        self.x, self.y = np.meshgrid(xs, ys)
        c, s = np.cos(angle), np.sin(angle)
        # `stretch` squeezes a drawing horizontally or vertically (factors <= 1 keep it inside the canvas)
        self.u = (c * self.x + s * self.y) / stretch[0]
        self.v = (-s * self.x + c * self.y) / stretch[1]
        self.rgb = np.zeros((hs, ws, 3), np.float32)
        self.alpha = np.zeros((hs, ws), np.float32)

    def paint(self, mask: np.ndarray, colour: Colour | np.ndarray, opacity: float = 1.0) -> None:
        """Paint `colour` (an RGB triple in 0..1, or an (h, w, 3) array) where `mask` holds."""
        col = np.asarray(colour, np.float32)
        m = mask.astype(np.float32) * opacity
        if col.ndim == 1:
            col = col[None, None, :]
        self.rgb += (col - self.rgb) * m[..., None]
        self.alpha = np.maximum(self.alpha, m)

    def paint_pattern(self, mask: np.ndarray, base: Colour, other: Colour, t: np.ndarray) -> None:
        """Paint a two-colour pattern: `t` in 0..1 mixes `base` toward `other`."""
        b = np.asarray(base, np.float32)
        o = np.asarray(other, np.float32)
        self.paint(mask, b + (o - b) * t[..., None].astype(np.float32))

    def finish(self, light: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
        """Shade (light from the upper left), average the supersamples: (rgb (h, w, 3), alpha (h, w)) in 0..1."""
        shade = 1.0 + light * (0.35 - 0.5 * ((self.x + 0.45) ** 2 + (self.y + 0.45) ** 2))
        rgb = np.clip(self.rgb * shade[..., None], 0.0, 1.0) * self.alpha[..., None]
        k = self.ss
        h, w = self.height, self.width
        a = self.alpha.reshape(h, k, w, k).mean(axis=(1, 3))
        prem = rgb.reshape(h, k, w, k, 3).mean(axis=(1, 3))
        col = np.where(a[..., None] > 1e-6, prem / np.maximum(a, 1e-6)[..., None], 0.0)
        return col.astype(np.float32), a.astype(np.float32)


# ---- shape masks (u, v are canvas coordinates) -------------------------------------------------------


def ellipse(u, v, cx, cy, rx, ry) -> np.ndarray:
    return ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 <= 1.0


def box(u, v, cx, cy, hw, hh, r: float = 0.0) -> np.ndarray:
    """Axis-aligned rectangle of half-sizes hw, hh with corner radius r."""
    qx = np.abs(u - cx) - hw + r
    qy = np.abs(v - cy) - hh + r
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    inside = np.minimum(np.maximum(qx, qy), 0)
    return outside + inside - r <= 0.0


def capsule(u, v, x0, y0, x1, y1, r) -> np.ndarray:
    """Points within r of the segment (x0, y0)–(x1, y1)."""
    return segment_distance(u, v, x0, y0, x1, y1) <= r


def segment_distance(u, v, x0, y0, x1, y1) -> np.ndarray:
    dx, dy = x1 - x0, y1 - y0
    ll = dx * dx + dy * dy
    t = np.clip(((u - x0) * dx + (v - y0) * dy) / ll, 0.0, 1.0) if ll > 0 else 0.0
    return np.hypot(u - (x0 + t * dx), v - (y0 + t * dy))


def polygon(u, v, pts) -> np.ndarray:
    """Even–odd inside test for a closed polygon given as [(x, y), ...]."""
    inside = np.zeros(np.shape(u), bool)
    n = len(pts)
    for i in range(n):
        xa, ya = pts[i]
        xb, yb = pts[(i + 1) % n]
        if ya == yb:
            continue
        crosses = (v < ya) != (v < yb)
        xcross = xa + (v - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (u < xcross)
    return inside


def star_points(cx, cy, n, r_out, r_in, rot=-np.pi / 2):
    return [
        (cx + (r_out if k % 2 == 0 else r_in) * np.cos(rot + k * np.pi / n),
         cy + (r_out if k % 2 == 0 else r_in) * np.sin(rot + k * np.pi / n))
        for k in range(2 * n)
    ]


def heart(u, v, cx, cy, s) -> np.ndarray:
    x = (u - cx) / s
    y = -(v - cy) / s
    return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0


# ---- surface patterns: 0..1 fields mixing a base colour toward a second one ----------------------------


def pattern(u, v, kind: str, freq: float, angle: float) -> np.ndarray:
    """A surface pattern field in 0..1: plain, stripes, dots, checker, rings or gradient."""
    if kind == "plain":
        return np.zeros(np.shape(u), np.float32)
    if kind == "stripes":
        return (np.sin(freq * (u * np.cos(angle) + v * np.sin(angle))) > 0.2).astype(np.float32)
    if kind == "dots":
        fu = (u * freq / np.pi) % 1.0 - 0.5
        fv = (v * freq / np.pi) % 1.0 - 0.5
        return (fu * fu + fv * fv < 0.09).astype(np.float32)
    if kind == "checker":
        k = freq / np.pi
        return ((np.floor(u * k) + np.floor(v * k)) % 2).astype(np.float32)
    if kind == "rings":
        return (np.sin(freq * np.hypot(u, v)) > 0).astype(np.float32)
    if kind == "gradient":
        return np.clip(0.5 + 0.5 * (u * np.cos(angle) + v * np.sin(angle)), 0, 1).astype(np.float32)
    raise ValueError(f"unknown pattern {kind!r}; allowed: plain, stripes, dots, checker, rings, gradient")


PATTERNS = ("plain", "stripes", "dots", "checker", "rings", "gradient")


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in 0..1: a coarse random grid of spacing `cell` pixels, bilinearly interpolated."""
    gh, gw = int(h / cell) + 2, int(w / cell) + 2
    g = rng.random((gh, gw)).astype(np.float32)
    ys = np.arange(h, dtype=np.float32) / cell
    xs = np.arange(w, dtype=np.float32) / cell
    y0 = ys.astype(np.int64)
    x0 = xs.astype(np.int64)
    wy = (ys - y0)[:, None]
    wx = (xs - x0)[None, :]
    rows = g[y0] * (1 - wy) + g[y0 + 1] * wy
    return rows[:, x0] * (1 - wx) + rows[:, x0 + 1] * wx


def hsv(h: float, s: float, v: float) -> Colour:
    """An RGB triple from hue in degrees, saturation and value in 0..1."""
    return colorsys.hsv_to_rgb((h % 360.0) / 360.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))


def mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(float(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]
