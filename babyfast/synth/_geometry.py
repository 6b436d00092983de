"""The stage every scene is played on, and the head camera that views it.

World units: a room is a panorama `PANO_W` wide and `PANO_H` tall (y points down); the wall is above
`HORIZON`, the floor below. Things stand on the floor at a ground position (x, y) and may be lifted a
height h above it. Nearer floor (larger y) is drawn larger (`depth_factor`), which is all the
perspective this world needs. At zoom 1 the camera sees `VIEW` world units across, whatever the
output size, so a 64-pixel render and a 640-pixel render show the same scene.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np

PANO_W = 768.0
PANO_H = 384.0
HORIZON = 150.0
VIEW = 256.0
FLOOR_NEAR = PANO_H - 14.0  # nearest ground y a thing may stand at
FLOOR_FAR = HORIZON + 24.0  # farthest


@overload
def depth_factor(y: float) -> float: ...
@overload
def depth_factor(y: np.ndarray) -> np.ndarray: ...
def depth_factor(y: float | np.ndarray) -> float | np.ndarray:
    """Apparent scale of a thing standing at ground y (0.5 at the horizon, 1.4 at the near edge)."""
    if isinstance(y, float):  # the per-frame path: plain floats, no array round trip
        return 0.5 + 0.9 * max(0.0, (y - HORIZON) / (PANO_H - HORIZON))
    return 0.5 + 0.9 * np.clip((np.asarray(y, dtype=np.float64) - HORIZON) / (PANO_H - HORIZON), 0.0, None)


@dataclass
class View:
    """A camera pose (centre cx, cy in world units; zoom) rendered at width x height pixels."""

    cx: float
    cy: float
    zoom: float
    width: int
    height: int

    @property
    def px_per_unit(self) -> float:
        return self.width / VIEW * self.zoom

    def project(self, x: float, y: float, h: float = 0.0) -> tuple[float, float, float]:
        """Screen position (px) of a point at ground (x, y) lifted h, and the pixels per world unit there."""
        d = float(depth_factor(y))
        s = self.px_per_unit
        sx = (x - self.cx) * s + self.width / 2.0
        sy = (y - h * d - self.cy) * s + self.height / 2.0
        return sx, sy, d * s


def clamp_view(cx: float, cy: float, zoom: float, width: int, height: int) -> tuple[float, float]:
    """Keep the view inside the panorama."""
    half_w = VIEW / zoom / 2.0
    half_h = VIEW * height / width / zoom / 2.0
    cx = float(np.clip(cx, half_w, PANO_W - half_w))
    cy = float(np.clip(cy, half_h, PANO_H - half_h))
    return cx, cy
