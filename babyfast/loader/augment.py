"""Clip-consistent augmentation: its parameters, drawn from the loader's seed, and its CPU application.

Parameters are a pure function of (seed, epoch, global clip position), so a resumed run, any number of
workers and the GPU and CPU paths all see the same crops. Geometry (random resized crop with one box for
every frame of a clip, horizontal flip) runs in DALI on the GPU or in torch on the CPU; colour jitter is a
per-clip affine map in RGB (brightness, contrast around mid-grey, saturation towards luma, hue rotation
about the grey axis) applied by `colour_affine` in torch on either device, so both paths agree by
construction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Augment:
    """What the loader does to each clip. `Augment()` is the VideoMAE-style default; `Augment.none()`
    returns clips as stored.

    size:            output side in pixels (square crops); None keeps the stored frame size (no crop)
    scale, ratio:    random resized crop: area fraction and aspect ratio ranges of the box
    flip:            probability of a horizontal flip
    brightness, contrast, saturation: factors drawn uniformly from [1 - x, 1 + x]
    hue:             degrees drawn uniformly from [-hue, hue]

    Which frames a clip reads (clip length, frame step, start grid) are the loader's arguments.
    """

    size: int | None = 224
    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0

    def __post_init__(self) -> None:
        if self.size is not None and self.size < 1:
            raise ValueError(f"Augment.size must be >= 1 or None, got {self.size}")
        if not (0 < self.scale[0] <= self.scale[1] <= 1):
            raise ValueError(f"Augment.scale must satisfy 0 < lo <= hi <= 1, got {self.scale}")
        if not (0 < self.ratio[0] <= self.ratio[1]):
            raise ValueError(f"Augment.ratio must satisfy 0 < lo <= hi, got {self.ratio}")
        if not (0 <= self.flip <= 1):
            raise ValueError(f"Augment.flip is a probability, got {self.flip}")
        for name in ("brightness", "contrast", "saturation"):
            if not (0 <= getattr(self, name) < 1):
                raise ValueError(f"Augment.{name} must be in [0, 1), got {getattr(self, name)}")
        if not (0 <= self.hue <= 180):
            raise ValueError(f"Augment.hue is in degrees [0, 180], got {self.hue}")

    @staticmethod
    def none() -> Augment:
        return Augment(size=None, flip=0.0)

    @property
    def has_colour(self) -> bool:
        return bool(self.brightness or self.contrast or self.saturation or self.hue)

    def draw(self, seed: int, epoch: int, positions: np.ndarray, height: int | np.ndarray,
             width: int | np.ndarray) -> ClipParams:
        """Parameters for the clips at these global epoch positions, whose frames are height x width (one
        size for all, or one per clip: stores ingested with --no-crop keep each video's aspect ratio)."""
        n = len(positions)
        heights = np.broadcast_to(np.asarray(height), (n,))
        widths = np.broadcast_to(np.asarray(width), (n,))
        box = np.zeros((n, 4), dtype=np.int64)  # y0, x0, h, w in stored pixels
        flip = np.zeros(n, dtype=bool)
        colour = np.tile(np.array([1.0, 1.0, 1.0, 0.0]), (n, 1))  # brightness, contrast, saturation, hue
        for i, pos in enumerate(positions):
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFFFFFF, int(epoch), int(pos), 0xB4B1])
            box[i] = self._box(rng, int(heights[i]), int(widths[i]))
            flip[i] = rng.random() < self.flip
            colour[i, 0] = rng.uniform(1 - self.brightness, 1 + self.brightness)
            colour[i, 1] = rng.uniform(1 - self.contrast, 1 + self.contrast)
            colour[i, 2] = rng.uniform(1 - self.saturation, 1 + self.saturation)
            colour[i, 3] = rng.uniform(-self.hue, self.hue)
        return ClipParams(box=box, flip=flip, colour=colour)

    def _box(self, rng: np.random.Generator, h: int, w: int) -> tuple[int, int, int, int]:
        if self.size is None:
            return 0, 0, h, w
        area = h * w
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(log_lo, log_hi))
            bw = int(round(math.sqrt(target * aspect)))
            bh = int(round(math.sqrt(target / aspect)))
            if 0 < bw <= w and 0 < bh <= h:
                return int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1)), bh, bw
        # no box fitted in ten draws: the largest centred box within the ratio range
        aspect = w / h
        if aspect < self.ratio[0]:
            bw, bh = w, int(round(w / self.ratio[0]))
        elif aspect > self.ratio[1]:
            bh, bw = h, int(round(h * self.ratio[1]))
        else:
            bw, bh = w, h
        return (h - bh) // 2, (w - bw) // 2, bh, bw


@dataclass
class ClipParams:
    box: np.ndarray     # (n, 4) int64: y0, x0, h, w
    flip: np.ndarray    # (n,) bool
    colour: np.ndarray  # (n, 4): brightness, contrast, saturation, hue (degrees)

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-clip (3x3 matrix, 3-vector offset) of the colour jitter in RGB, 0..255 units."""
        n = len(self.colour)
        mats = np.zeros((n, 3, 3))
        offs = np.zeros((n, 3))
        grey = np.ones(3) / math.sqrt(3)
        cross = np.array([[0, -grey[2], grey[1]], [grey[2], 0, -grey[0]], [-grey[1], grey[0], 0]])
        for i, (b, c, s, hue) in enumerate(self.colour):
            sat = s * np.eye(3) + (1 - s) * np.outer(np.ones(3), _LUMA)
            t = math.radians(hue)
            rot = np.eye(3) + math.sin(t) * cross + (1 - math.cos(t)) * (cross @ cross)
            mats[i] = b * c * (rot @ sat)
            offs[i] = b * (1 - c) * 128.0
        return mats, offs


def colour_affine(video: torch.Tensor, mats: np.ndarray, offs: np.ndarray) -> torch.Tensor:
    """Apply per-clip colour affines to uint8 video [B, T, H, W, 3] (any device); returns uint8."""
    m = torch.as_tensor(mats, dtype=torch.float32, device=video.device)
    o = torch.as_tensor(offs, dtype=torch.float32, device=video.device)
    x = video.to(torch.float32)
    y = torch.einsum("bthwc,bdc->bthwd", x, m) + o[:, None, None, None, :]
    return y.round_().clamp_(0, 255).to(torch.uint8)


def crop_resize_flip(clip: np.ndarray | torch.Tensor, box: np.ndarray, flip: bool,
                     size: int | None) -> np.ndarray | torch.Tensor:
    """Geometry for one clip (T, H, W, 3) uint8: crop the box, resize to size x size, maybe flip.

    A numpy clip is processed on the CPU and returned as numpy; a torch clip stays on its device (the
    GPU path), with the same arithmetic.
    """
    y0, x0, bh, bw = (int(v) for v in box)
    on_torch = isinstance(clip, torch.Tensor)
    out = clip[:, y0:y0 + bh, x0:x0 + bw]
    if size is not None and (bh, bw) != (size, size):
        t = (out if on_torch else torch.from_numpy(np.ascontiguousarray(out))).permute(0, 3, 1, 2).to(torch.float32)
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out = t.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        out = out if on_torch else out.numpy()
    if flip:
        out = out.flip(2) if on_torch else out[:, :, ::-1]
    return out.contiguous() if on_torch else np.ascontiguousarray(out)
