"""Several stores in one epoch, in proportions set by weights, every position a pure function of
(seed, epoch, position).

An epoch of a `MixedPlan` has L positions (by default as many as all stores' clips together); store s gets
n_s of them, L apportioned by the weights (largest remainders). A keyed permutation of the L slots decides
which store each position reads, so the stores are interleaved evenly through the epoch. Store s walks its
own plan: its i-th slot of epoch e is its clip number g = e * n_s + i, i.e. position g mod N_s of its own
epoch g // N_s. A store drawn more often than it has clips therefore repeats its clips in a fresh order
only after it has shown them all; one drawn less often shows a different part in each epoch.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from babyfast.loader.plan import ClipPlan

__all__ = ["MixedPlan", "apportion"]

_SLOT_SEED = 0x6A09E667F3BCC909


def apportion(total: int, weights: Sequence[float]) -> np.ndarray:
    """Integer shares of `total` proportional to `weights` (largest remainders; ties to the lower index)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {list(weights)}")
    exact = total * w / w.sum()
    shares = np.floor(exact).astype(np.int64)
    rest = total - int(shares.sum())
    order = np.lexsort((np.arange(len(w)), -(exact - shares)))
    shares[order[:rest]] += 1
    return shares


class MixedPlan:
    """Stores' plans mixed by weights into one epoch sequence (see the module docstring).

    `plans[s]` plans store s over its own segments; `rows[s]` maps its segment indices to rows of the
    loader's whole segment table, which `at` returns.
    """

    def __init__(self, plans: Sequence[ClipPlan], rows: Sequence[np.ndarray], weights: Sequence[float], seed: int,
                 epoch_clips: int | None = None) -> None:
        if len(plans) != len(weights) or len(plans) != len(rows):
            raise ValueError(f"one weight per store: {len(plans)} stores, {len(weights)} weights")
        self.plans, self.rows = list(plans), [np.asarray(r, dtype=np.int64) for r in rows]
        self.sizes = np.array([p.num_candidates for p in plans], dtype=np.int64)
        total = int(epoch_clips) if epoch_clips is not None else int(self.sizes.sum())
        self.shares = apportion(total, weights)
        self.bounds = np.concatenate([[0], np.cumsum(self.shares)])
        self._slots = ClipPlan(np.array([total], np.int64), None, span=1, stride=1, order="shuffle",
                               seed=(seed ^ _SLOT_SEED) & (2**64 - 1))

    @property
    def num_candidates(self) -> int:
        return int(self.bounds[-1])

    def per_consumer(self, world: int = 1, drop_last: bool = True, offset: int = 0) -> int:
        rest = self.num_candidates - offset
        return rest // world if drop_last else math.ceil(rest / world)

    def at(self, epoch: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(segment row, start frame) at these epoch positions."""
        _, slot = self._slots.at(epoch, positions)
        store = np.searchsorted(self.bounds, slot, side="right") - 1
        rows, starts = np.empty(len(slot), np.int64), np.empty(len(slot), np.int64)
        for s in np.unique(store):
            pick = np.flatnonzero(store == s)
            g = epoch * self.shares[s] + (slot[pick] - self.bounds[s])
            own_epoch, own_pos = g // self.sizes[s], g % self.sizes[s]
            for e in np.unique(own_epoch):
                sub = pick[own_epoch == e]
                seg, start = self.plans[s].at(int(e), own_pos[own_epoch == e])
                rows[sub], starts[sub] = self.rows[s][seg], start
        return rows, starts

    def candidate(self, epoch: int, position: int) -> tuple[int, int]:
        rows, starts = self.at(epoch, np.array([position], np.int64))
        return int(rows[0]), int(starts[0])
