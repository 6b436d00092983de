"""Compositing: blend sprite layers over a background view, and measure what of each tracked thing shows.

Layers are drawn back to front (by `depth`). A tracked layer's visibility is the fraction of its
sprite's alpha mass that survives into the final frame: what lies outside the frame or under layers
drawn after it does not count. Its box is the sprite's extent clipped to the frame (the amodal box);
together they are the ground truth the probes and tests read.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._sprites import Sprite

__all__ = ["Layer", "Seen", "compose"]


@dataclass
class Layer:
    """One sprite placed with its anchor at screen pixel (x, y). `track` >= 0 asks for visibility.

    `occludes`: whether it hides what lies under it (a contact shadow darkens, it does not hide).
    """

    sprite: Sprite
    x: int
    y: int
    depth: float
    track: int = -1
    occludes: bool = True


@dataclass
class Seen:
    """What the frame shows of a tracked layer: box (x0, y0, x1, y1) in pixels, clipped; visibility 0..1."""

    box: tuple[int, int, int, int]
    visibility: float


def _rect(layer: Layer, width: int, height: int):
    sp = layer.sprite
    h, w = sp.shape
    x0, y0 = layer.x + sp.ox, layer.y + sp.oy
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, width), min(y0 + h, height)
    return x0, y0, cx0, cy0, cx1, cy1


def compose(
    background: np.ndarray, layers: list[Layer], gain: np.ndarray | None = None, measure: bool = True
) -> tuple[np.ndarray, dict[int, Seen]]:
    """Blend `layers` over `background` ((H, W, 3) uint8); returns (frame uint8, {track: Seen}).

    `gain`: optional per-channel light level in 0..1 applied to the whole frame (the room's lighting).
    """
    height, width = background.shape[:2]
    buf = background.astype(np.uint16)
    order = sorted(range(len(layers)), key=lambda i: layers[i].depth)
    placed = []  # (layer, clipped rect, source offsets) in drawing order
    for i in order:
        layer = layers[i]
        sp = layer.sprite
        x0, y0, cx0, cy0, cx1, cy1 = _rect(layer, width, height)
        if cx1 <= cx0 or cy1 <= cy0:
            placed.append((layer, None))
            continue
        sx0, sy0 = cx0 - x0, cy0 - y0
        sx1, sy1 = sx0 + (cx1 - cx0), sy0 + (cy1 - cy0)
        win = buf[cy0:cy1, cx0:cx1]
        np.multiply(win, sp.inv[sy0:sy1, sx0:sx1], out=win)
        win += sp.prem[sy0:sy1, sx0:sx1]
        win >>= 8
        placed.append((layer, (cx0, cy0, cx1, cy1, sx0, sy0)))
    if gain is not None:
        g = np.clip(np.rint(np.asarray(gain, np.float64) * 256.0), 0, 256).astype(np.uint16)
        buf *= g
        buf >>= 8
    frame = buf.astype(np.uint8)
    seen: dict[int, Seen] = {}
    if not measure:
        return frame, seen
    for k, (layer, rect) in enumerate(placed):
        if layer.track < 0:
            continue
        if rect is None:
            seen[layer.track] = Seen((0, 0, 0, 0), 0.0)
            continue
        cx0, cy0, cx1, cy1, sx0, sy0 = rect
        a = layer.sprite.alpha[sy0:sy0 + cy1 - cy0, sx0:sx0 + cx1 - cx0]
        cover = None
        for later, r2 in placed[k + 1:]:
            if r2 is None or not later.occludes:
                continue
            ox0, oy0 = max(cx0, r2[0]), max(cy0, r2[1])
            ox1, oy1 = min(cx1, r2[2]), min(cy1, r2[3])
            if ox1 <= ox0 or oy1 <= oy0:
                continue
            if cover is None:
                cover = np.ones(a.shape, np.float32)
            la = later.sprite.alpha[oy0 - r2[1] + r2[5]:oy1 - r2[1] + r2[5], ox0 - r2[0] + r2[4]:ox1 - r2[0] + r2[4]]
            cover[oy0 - cy0:oy1 - cy0, ox0 - cx0:ox1 - cx0] *= 1.0 - la
        vis = float((a * cover).sum() if cover is not None else a.sum()) / max(layer.sprite.mass, 1e-6)
        seen[layer.track] = Seen((cx0, cy0, cx1, cy1), min(vis, 1.0))
    return frame, seen
