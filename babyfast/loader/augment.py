"""Clip-consistent augmentation: its parameters, drawn from the loader's seed, and `transform_clips`, which
applies them to a batch of decoded clips on the CPU or on the GPU.

Parameters are a pure function of (seed, epoch, global clip position), so a resumed run, any number of
workers and the GPU and CPU paths all see the same crops. One box serves every frame of a clip.

Per clip, in this order: colour jitter (a per-clip affine map in RGB: brightness, contrast around mid-grey,
saturation towards luma, hue rotation about the grey axis) on the crop box, rounded to uint8; the
antialiased bilinear resize of the box to size x size, rounded to uint8; the horizontal flip. Colour comes
first because the resize's weights are non-negative and sum to one: the colour's rounding error passes
through them unamplified, so the result stays within one grey level of the exact (float64, rounded once)
computation. The other order would multiply the resize's rounding error by the colour gain.

- CPU (numpy clips from PyAV or DALI's CPU decoders, device "cpu"): one pass of the C++ core in fixed
  point (`babyfast._core.resize_crop`, 16 frames at a time), which reads the box where it lies in the
  decoded clip, maps each row's colours as it gathers it, resizes and flips, and writes into the batch.
  Boxes of the output size need no resize: colour and flip then take `babyfast._core.colour_crop`.
- Any torch device (clips decoded on the GPU by DALI, or CPU-decoded clips for a GPU consumer, whose crop
  boxes travel in one uint8 copy): the same steps in float32 torch ops, rounded at the same points.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from babyfast import _core

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


def transform_clips(clips: Sequence[np.ndarray | torch.Tensor], params: ClipParams, augment: Augment,
                    device: str | torch.device) -> torch.Tensor:
    """The augmented batch, uint8 ``[B, T, S, S, 3]`` on `device` (S = ``augment.size``; the stored frame size
    when that is None, which needs every clip of one size).

    clips: uint8 ``(T, H, W, 3)`` per clip, numpy arrays (CPU decoders) or torch tensors (DALI on the GPU);
    params: ``augment.draw(...)`` for these clips, whose boxes are in each clip's own pixels.

    Example:
        >>> aug = Augment(size=112, brightness=0.2, contrast=0.2, saturation=0.2, hue=5)
        >>> clips = [np.zeros((16, 128, 160, 3), np.uint8)] * 2
        >>> transform_clips(clips, aug.draw(0, 0, np.arange(2), 128, 160), aug, "cpu").shape
        torch.Size([2, 16, 112, 112, 3])
    """
    device = torch.device(device)
    if len(clips) != len(params.box):
        raise ValueError(f"{len(clips)} clips but parameters for {len(params.box)}")
    if len(clips) == 0:
        raise ValueError("transform_clips needs at least one clip")
    frames = {int(c.shape[0]) for c in clips}
    if len(frames) > 1:
        raise ValueError(f"clips of one batch must have the same number of frames, got {sorted(frames)}")
    if augment.size is None:
        sizes = {tuple(int(v) for v in c.shape[1:3]) for c in clips}
        if len(sizes) > 1:
            raise ValueError(f"Augment(size=None) keeps the stored frame size, but these clips differ: "
                             f"{sorted(sizes)}; give Augment(size=...)")
        out_hw = cast("tuple[int, int]", sizes.pop())  # shape[1:3] of a 4-d clip: (height, width)
    else:
        out_hw = (augment.size, augment.size)
    for i, c in enumerate(clips):
        y0, x0, bh, bw = (int(v) for v in params.box[i])
        if c.ndim != 4 or c.shape[3] != 3 or y0 < 0 or x0 < 0 or y0 + bh > c.shape[1] or x0 + bw > c.shape[2]:
            raise ValueError(f"clip {i} of shape {tuple(c.shape)} does not hold its crop box "
                             f"(y0={y0}, x0={x0}, h={bh}, w={bw})")
    colour = params.affine() if augment.has_colour else None
    if device.type == "cpu":
        return _transform_cpu(clips, params, colour, out_hw)
    return _transform_torch(_boxes_on(device, clips, params), params, colour, out_hw)


_IDENTITY = (np.eye(3), np.zeros(3))


def _transform_cpu(clips: Sequence[np.ndarray | torch.Tensor], params: ClipParams,
                   colour: tuple[np.ndarray, np.ndarray] | None, out_hw: tuple[int, int]) -> torch.Tensor:
    t = int(clips[0].shape[0])
    out = torch.empty((len(clips), t, *out_hw, 3), dtype=torch.uint8)
    dst = out.numpy()
    for i, clip in enumerate(clips):
        src = clip.cpu().numpy() if isinstance(clip, torch.Tensor) else clip
        if src.dtype != np.uint8:
            raise ValueError(f"clip {i} is {src.dtype}; the loader's clips are uint8")
        if src.strides[2:] != (3, 1):  # the C++ pass reads packed RGB pixels
            src = np.ascontiguousarray(src)
        y0, x0, bh, bw = (int(v) for v in params.box[i])
        flip = bool(params.flip[i])
        if (bh, bw) == out_hw:
            if colour is not None or flip:
                m, o = (colour[0][i], colour[1][i]) if colour is not None else _IDENTITY
                _core.colour_crop(src, (y0, x0, bh, bw), flip, m, o, dst[i])
            else:
                dst[i] = src[:, y0:y0 + bh, x0:x0 + bw]
        elif colour is not None:  # colour on the rows the resize gathers: the box is read once
            _core.resize_crop(src, (y0, x0, bh, bw), flip, dst[i], colour[0][i], colour[1][i])
        else:
            _core.resize_crop(src, (y0, x0, bh, bw), flip, dst[i])
    return out


def _nchw(video: torch.Tensor) -> torch.Tensor:
    """(T, H, W, 3) as (T, 3, H, W) with channels-last strides: the same memory, no copy."""
    return video.permute(0, 3, 1, 2)


def _boxes_on(device: torch.device, clips: Sequence[np.ndarray | torch.Tensor],
              params: ClipParams) -> list[torch.Tensor]:
    """Each clip's crop box as a uint8 tensor on `device`. Clips already there are viewed, not copied; the
    boxes of CPU clips are gathered into one (pinned, for CUDA) buffer and sent in one copy."""
    crops = []
    for i, clip in enumerate(clips):
        y0, x0, bh, bw = (int(v) for v in params.box[i])
        crops.append(clip[:, y0:y0 + bh, x0:x0 + bw])
    if all(isinstance(c, torch.Tensor) and c.device == device for c in crops):
        return crops
    host_crops = [c.cpu().numpy() if isinstance(c, torch.Tensor) else c for c in crops]
    ends = np.cumsum([c.size for c in host_crops])
    host = torch.empty(int(ends[-1]), dtype=torch.uint8, pin_memory=device.type == "cuda")
    flat = host.numpy()
    for c, end in zip(host_crops, ends, strict=True):
        flat[end - c.size:end].reshape(c.shape)[...] = c
    sent = host.to(device, non_blocking=True)
    return [sent[end - c.size:end].view(c.shape) for c, end in zip(host_crops, ends, strict=True)]


def _transform_torch(boxes: Sequence[torch.Tensor], params: ClipParams,
                     colour: tuple[np.ndarray, np.ndarray] | None, out_hw: tuple[int, int]) -> torch.Tensor:
    """The CPU path's steps in float32 torch ops on the boxes' device, rounded where that path rounds."""
    device = boxes[0].device
    out = torch.empty((len(boxes), boxes[0].shape[0], *out_hw, 3), dtype=torch.uint8, device=device)
    if colour is not None:
        mats = torch.as_tensor(colour[0], dtype=torch.float32).to(device, non_blocking=True)
        offs = torch.as_tensor(colour[1], dtype=torch.float32).to(device, non_blocking=True)
    for i, box in enumerate(boxes):
        x = box.to(torch.float32)
        if colour is not None:
            # three broadcast multiply-adds rather than a matmul: exact float32 whatever TF32 setting is on
            m = mats[i]
            x = x[..., 0:1] * m[:, 0] + x[..., 1:2] * m[:, 1] + x[..., 2:3] * m[:, 2] + offs[i]
            x = x.round_().clamp_(0, 255)
        if tuple(box.shape[1:3]) != out_hw:
            x = F.interpolate(_nchw(x), size=out_hw, mode="bilinear", align_corners=False, antialias=True)
            x = x.round_().clamp_(0, 255).permute(0, 2, 3, 1)
        y = x.to(torch.uint8)
        out[i] = y.flip(2) if params.flip[i] else y
    return out
