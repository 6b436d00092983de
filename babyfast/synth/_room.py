"""Rooms: a panorama of wall and floor (textures, furniture, windows) the head camera looks around in.

A room is drawn once per recording at the output resolution (a little finer, so that moderate zoom
stays sharp); every frame is then a resampled window of it (`Room.view`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._geometry import HORIZON, PANO_H, PANO_W, View, depth_factor
from ._raster import hsv, mix, value_noise

__all__ = ["Room", "make_room", "WALL_KINDS", "FLOOR_KINDS"]

WALL_KINDS = ("paint", "stripes", "dots", "diamonds", "panels")
FLOOR_KINDS = ("wood", "carpet", "tiles")
_OVERSAMPLE = 1.25  # the panorama's resolution relative to the output at zoom 1


@dataclass
class Room:
    """A rendered room: `pano` (H, W, 3) uint8 at `px_per_unit` pixels per world unit."""

    pano: np.ndarray
    px_per_unit: float
    wall: str
    floor: str

    def view(self, v: View) -> np.ndarray:
        """The (height, width, 3) uint8 window of the panorama a camera pose sees (nearest-neighbour)."""
        s = v.px_per_unit
        xs = ((v.cx + (np.arange(v.width) + 0.5 - v.width / 2.0) / s) * self.px_per_unit).astype(np.intp)
        ys = ((v.cy + (np.arange(v.height) + 0.5 - v.height / 2.0) / s) * self.px_per_unit).astype(np.intp)
        np.clip(xs, 0, self.pano.shape[1] - 1, out=xs)
        np.clip(ys, 0, self.pano.shape[0] - 1, out=ys)
        return self.pano.take(ys, axis=0).take(xs, axis=1)


def _floor_coords(Y: np.ndarray) -> np.ndarray:
    """A floor coordinate that advances by one per world unit of apparent size (perspective rows)."""
    d = depth_factor(np.maximum(Y, HORIZON))
    return np.log(d / 0.5) / 0.9 * (PANO_H - HORIZON) * 0.5


def make_room(rng: np.random.Generator, width_px: int) -> Room:
    """Draw a random room for output frames `width_px` wide."""
    ppu = width_px / 256.0 * _OVERSAMPLE
    W, H = int(round(PANO_W * ppu)), int(round(PANO_H * ppu))
    X = ((np.arange(W, dtype=np.float32) + 0.5) / ppu)[None, :]
    Y = ((np.arange(H, dtype=np.float32) + 0.5) / ppu)[:, None]
    img = np.zeros((H, W, 3), np.float32)
    hz = int(round(HORIZON * ppu))
    wall_kind = str(rng.choice(WALL_KINDS))
    floor_kind = str(rng.choice(FLOOR_KINDS))

    # wall
    wall = np.asarray(hsv(rng.uniform(0, 360), rng.uniform(0.05, 0.4), rng.uniform(0.65, 0.95)), np.float32)
    wall2 = np.asarray(mix(tuple(wall), hsv(rng.uniform(0, 360), 0.4, 0.8), 0.5), np.float32)
    Xw, Yw = X, Y[:hz]
    period = rng.uniform(18, 40)
    if wall_kind == "stripes":
        t = (np.sin(2 * np.pi * Xw / period) > 0.2) + 0 * Yw
    elif wall_kind == "dots":
        fx, fy = (Xw / period) % 1 - 0.5, (Yw / period + 0.5 * (np.floor(Xw / period) % 2)) % 1 - 0.5
        t = fx * fx + fy * fy < 0.05
    elif wall_kind == "diamonds":
        t = ((np.floor((Xw + Yw) / period) + np.floor((Xw - Yw) / period)) % 2) == 0
    elif wall_kind == "panels":
        t = (Yw > HORIZON * 0.55) & ((Xw % period) > 2.0)
    else:
        t = np.zeros((hz, 1), bool) + 0 * Xw
    t = np.broadcast_to(t, (hz, W)).astype(np.float32)
    img[:hz] = wall + (wall2 - wall) * (0.6 * t)[..., None]
    img[:hz] *= (0.94 + 0.12 * value_noise(rng, hz, W, 40 * ppu))[..., None]

    # floor
    fh = H - hz
    Yf = Y[hz:]
    q = _floor_coords(Yf)
    d = depth_factor(Yf).astype(np.float32)
    floor = np.asarray(hsv(rng.uniform(15, 45), rng.uniform(0.2, 0.6), rng.uniform(0.35, 0.8)), np.float32)
    if floor_kind == "carpet":
        floor = np.asarray(hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.5), rng.uniform(0.4, 0.85)), np.float32)
        n = 0.7 * value_noise(rng, fh, W, 2.0 * ppu) + 0.3 * value_noise(rng, fh, W, 30 * ppu)
        img[hz:] = floor * (0.85 + 0.3 * n)[..., None]
    elif floor_kind == "tiles":
        floor2 = np.asarray(mix(tuple(floor), (0.95, 0.95, 0.92), rng.uniform(0.3, 0.7)), np.float32)
        size = rng.uniform(20, 36)
        a, b = (X - PANO_W / 2) / d / size, q / size
        t = ((np.floor(a) + np.floor(b)) % 2).astype(np.float32)
        grout = (np.minimum(a % 1, b % 1) < 0.05).astype(np.float32)
        img[hz:] = floor + (floor2 - floor) * t[..., None]
        img[hz:] = img[hz:] * (1 - 0.5 * grout[..., None])
    else:
        plank = rng.uniform(10, 16)
        row = np.floor(q / plank)
        # each board its own shade; boards end at staggered places along x
        seg = np.floor((X + 97.0 * row) / rng.uniform(90, 160))
        shade = ((np.sin(row * 12.9898 + seg * 78.233) * 43758.5453) % 1.0).astype(np.float32)
        grain = np.sin(X * 0.7 + 4 * value_noise(rng, fh, W, 12 * ppu)) * 0.5 + 0.5
        seam = ((q / plank) % 1 < 0.06).astype(np.float32)
        img[hz:] = floor * (0.8 + 0.25 * shade + 0.08 * grain - 0.35 * seam)[..., None]
    if rng.random() < 0.6:
        _rug(rng, img, X, Y, hz)
    # baseboard
    bb = int(round(6 * ppu))
    img[max(0, hz - bb):hz] = np.asarray(mix(tuple(wall), (0.95, 0.95, 0.95), 0.7), np.float32)

    windows = [_window(rng, img, ppu) for _ in range(int(rng.integers(0, 3)))]
    for _ in range(int(rng.integers(1, 4))):
        _furniture(rng, img, ppu, hz)
    # light falls off away from the windows, and toward the ceiling
    light = np.full((1, W), 0.92, np.float32)
    for wx in windows:
        light = light + 0.12 * np.exp(-(((X - wx) / 140.0) ** 2))
    vert = (0.9 + 0.1 * np.clip(Y / HORIZON, 0, 1)).astype(np.float32)
    img *= (light * vert)[..., None]
    return Room(pano=np.clip(img * 255.0, 0, 255).astype(np.uint8), px_per_unit=ppu, wall=wall_kind, floor=floor_kind)


def _rug(rng, img, X, Y, hz):
    cx, cy = rng.uniform(150, PANO_W - 150), rng.uniform(HORIZON + 60, PANO_H - 40)
    rx, ry = rng.uniform(90, 200), rng.uniform(40, 90)
    Yf = Y[hz:]
    nx, ny = (X - cx) / rx, (Yf - cy) / ry
    inside = (np.abs(nx) < 1) & (np.abs(ny) < 1)
    if rng.random() < 0.5:
        inside = nx * nx + ny * ny < 1
        r = np.sqrt(nx * nx + ny * ny)
    else:
        r = np.maximum(np.abs(nx), np.abs(ny))
    c1 = np.asarray(hsv(rng.uniform(0, 360), rng.uniform(0.3, 0.8), rng.uniform(0.4, 0.9)), np.float32)
    c2 = np.asarray(hsv(rng.uniform(0, 360), rng.uniform(0.3, 0.8), rng.uniform(0.4, 0.9)), np.float32)
    c2 = c1 + (c2 - c1) * np.float32(rng.uniform(0.25, 0.6))  # a rug is patterned, but not loudly
    t = (np.sin(r * rng.uniform(6, 18)) > 0).astype(np.float32)
    rug = c1 + (c2 - c1) * t[..., None]
    img[hz:] = np.where(inside[..., None], rug, img[hz:])


def _window(rng, img, ppu) -> float:
    x0 = rng.uniform(40, PANO_W - 140)
    w, h = rng.uniform(60, 100), rng.uniform(55, 90)
    y0 = rng.uniform(15, HORIZON - h - 25)
    a, b = int(x0 * ppu), int((x0 + w) * ppu)
    c, d = int(y0 * ppu), int((y0 + h) * ppu)
    sky = np.linspace(0, 1, max(d - c, 1), dtype=np.float32)[:, None, None]
    top = np.asarray(hsv(205, 0.45, 0.95), np.float32)
    img[c:d, a:b] = top + (np.asarray((0.97, 0.97, 0.95), np.float32) - top) * sky
    frame = np.asarray(hsv(rng.uniform(0, 60), 0.15, rng.uniform(0.3, 0.95)), np.float32)
    t = max(1, int(4 * ppu))
    img[c:d, a:a + t] = frame
    img[c:d, b - t:b] = frame
    img[c:c + t, a:b] = frame
    img[d - t:d, a:b] = frame
    mx, my = (a + b) // 2, (c + d) // 2
    img[c:d, mx - t // 2:mx + t - t // 2] = frame
    img[my - t // 2:my + t - t // 2, a:b] = frame
    return x0 + w / 2


def _furniture(rng, img, ppu, hz):
    kind = rng.choice(["sofa", "shelf", "picture"])
    colour = np.asarray(hsv(rng.uniform(0, 360), rng.uniform(0.2, 0.7), rng.uniform(0.3, 0.8)), np.float32)
    x0 = rng.uniform(0, PANO_W - 160)
    if kind == "picture":
        w, h = rng.uniform(25, 50), rng.uniform(25, 45)
        y0 = rng.uniform(20, HORIZON - h - 30)
        a, b, c, d = (int(v * ppu) for v in (x0, x0 + w, y0, y0 + h))
        t = max(1, int(3 * ppu))
        img[c:d, a:b] = np.asarray((0.25, 0.18, 0.12), np.float32)
        img[c + t:d - t, a + t:b - t] = colour
        return
    if kind == "sofa":
        w, top, bottom = rng.uniform(120, 200), HORIZON - rng.uniform(40, 60), HORIZON + 12
    else:
        w, top, bottom = rng.uniform(50, 90), HORIZON - rng.uniform(90, 130), HORIZON + 8
    a, b, c, d = (int(v * ppu) for v in (x0, x0 + w, top, bottom))
    img[c:d, a:b] = colour
    if kind == "sofa":
        arm = int(14 * ppu)
        img[c + int(18 * ppu):d, a:a + arm] = colour * 0.8
        img[c + int(18 * ppu):d, b - arm:b] = colour * 0.8
        img[c + int(26 * ppu):c + int(28 * ppu), a + arm:b - arm] = colour * 0.7
    else:
        shelf = max(1, int(22 * ppu))
        for y in range(c, d, shelf):
            img[y:y + max(1, int(2 * ppu)), a:b] = colour * 0.6
            x = a + int(3 * ppu)
            while x < b - int(6 * ppu):
                bw = int(rng.uniform(2.5, 6) * ppu) + 1
                bh = int(rng.uniform(12, 19) * ppu)
                img[min(y + shelf, d) - bh:min(y + shelf, d), x:x + bw] = hsv(rng.uniform(0, 360), 0.6, 0.7)
                x += bw + 1
