"""Tube masking (VideoMAE): one spatial mask per clip, repeated through time, drawn on the device.

Masks are a pure function of (seed, step, global sample index): the sampler draws the noise of the whole
global batch from a generator seeded by (seed, step) and each rank or micro-batch takes its rows. So a
resumed run draws the same masks, and a step split over ranks masks each clip as one process holding the
concatenated batch would.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["TubeMask", "TubeMaskSampler"]


@dataclass
class TubeMask:
    """Tubelet indices (int64, sorted, into the `(time, row, column)` token order of `patchify`)."""

    visible: torch.Tensor  # [B, T'·n_visible]
    masked: torch.Tensor   # [B, T'·n_masked]


class TubeMaskSampler:
    """Masks `ratio` of the spatial positions of a `(T', H', W')` tubelet grid, the same ones at every T'.

    As VideoMAE: `int(ratio · H'·W')` positions masked per time slice.
    """

    def __init__(self, grid: tuple[int, int, int], ratio: float, seed: int = 0) -> None:
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"TubeMaskSampler: mask ratio must be in [0, 1), got {ratio}")
        self.grid, self.ratio, self.seed = tuple(int(g) for g in grid), float(ratio), int(seed)
        t, h, w = self.grid
        self.per_slice = h * w
        self.masked_per_slice = int(ratio * self.per_slice)
        if self.masked_per_slice == self.per_slice:
            raise ValueError(f"TubeMaskSampler: ratio {ratio} masks all {self.per_slice} positions of a slice")

    @property
    def num_visible(self) -> int:
        return self.grid[0] * (self.per_slice - self.masked_per_slice)

    @property
    def num_masked(self) -> int:
        return self.grid[0] * self.masked_per_slice

    def _generator(self, step: int, device: torch.device) -> torch.Generator:
        key = int(np.random.SeedSequence([self.seed & (2**63 - 1), int(step), 0x7B3E]).generate_state(1, np.uint64)[0])
        return torch.Generator(device=device).manual_seed(key & (2**63 - 1))

    def sample(self, step: int, batch: int, device: torch.device | str = "cpu", offset: int = 0,
               total: int | None = None) -> TubeMask:
        """Masks of samples `offset .. offset + batch - 1` of a global batch of `total` (default `batch`)
        at optimizer step `step`."""
        device = torch.device(device)
        total = batch + offset if total is None else int(total)
        if offset < 0 or offset + batch > total:
            raise ValueError(f"TubeMaskSampler: samples [{offset}, {offset + batch}) are outside a global batch "
                             f"of {total}")
        noise = torch.rand((total, self.per_slice), generator=self._generator(step, device), device=device)
        order = noise[offset:offset + batch].argsort(dim=1)
        keep = self.per_slice - self.masked_per_slice
        slices = torch.arange(self.grid[0], device=device)[None, :, None] * self.per_slice

        def expand(spatial: torch.Tensor) -> torch.Tensor:
            spatial = spatial.sort(dim=1).values
            return (slices + spatial[:, None, :]).reshape(batch, -1)

        return TubeMask(visible=expand(order[:, :keep]), masked=expand(order[:, keep:]))
