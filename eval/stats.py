"""Intervals and tests for milestone scores: Wilson for a plain binomial, the interval a chance responder
falls in, percentile bootstrap over trials, and a paired bootstrap for the difference of two responders
scored on the same trials."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["wilson_interval", "chance_interval", "bootstrap_interval", "paired_bootstrap", "BOOTSTRAP_SAMPLES"]

BOOTSTRAP_SAMPLES = 10_000


def wilson_interval(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% by default)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # The interval holds p in exact arithmetic; rounding can put the bound a hair inside it (4/4 gives an
    # upper bound of 0.9999999999999999), which the report's error bars cannot draw.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def chance_interval(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The central interval of accuracies (k/n) a responder at chance `p` falls in with prob. `level`."""
    if n <= 0:
        return 0.0, 1.0
    k = np.arange(n + 1)
    logpmf = (math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
              + k * math.log(p) + (n - k) * math.log1p(-p))
    cdf = np.cumsum(np.exp(logpmf))
    tail = (1 - level) / 2
    lo = int(np.searchsorted(cdf, tail))
    hi = int(np.searchsorted(cdf, 1 - tail))
    return lo / n, min(hi, n) / n


def bootstrap_interval(scores: Sequence[float] | np.ndarray, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-trial scores (resampling trials)."""
    x = np.asarray(scores, dtype=np.float64)
    if x.size == 0:
        return 0.0, 1.0
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def paired_bootstrap(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, level: float = 0.95,
                     samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Mean of a - b over the same trials, and its percentile bootstrap interval (trials resampled
    together, so that what the two responders share cancels)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired_bootstrap: both responders need the same trials, got {x.shape} and {y.shape}")
    d = x - y
    return float(d.mean()) if d.size else 0.0, bootstrap_interval(d, level, samples, seed)
