"""The clip planner: ~1e9 candidates over 10k videos (target >= 10 M clips/s, 1 thread).

`extra_info["clips_per_s"]` holds the rate of the fastest round; `python -m bench.plan` writes the
README's table (the same synthetic index).
"""
from __future__ import annotations

import pytest

from babyfast.loader.plan import ORDERS, ClipPlan
from bench.plan import make_index

CLIPS = 2_000_000
BATCH = 256


@pytest.fixture(scope="module")
def index():
    return make_index(10_000, seed=0)


def _record(benchmark, clips: int) -> None:
    benchmark.extra_info["clips"] = clips
    benchmark.extra_info["clips_per_s"] = clips / benchmark.stats.stats.min


@pytest.mark.parametrize("order", ORDERS)
def test_plan_one_call(benchmark, index, order):
    frames, ages = index
    plan = ClipPlan(frames, ages, 16, 1, order=order, seed=0)
    assert plan.num_candidates > 900_000_000
    videos, _ = benchmark.pedantic(plan.plan, args=(0, 3, 8, 0, CLIPS), rounds=5, iterations=1, warmup_rounds=1)
    assert len(videos) == CLIPS
    _record(benchmark, CLIPS)


@pytest.mark.parametrize("order", ORDERS)
def test_plan_per_batch(benchmark, index, order):
    """One call per batch of 256 clips, as the loader asks: includes the Python wrapper's checks."""
    frames, ages = index
    plan = ClipPlan(frames, ages, 16, 1, order=order, seed=0)
    clips = 200 * BATCH

    def run() -> None:
        for start in range(0, clips, BATCH):
            plan.plan(0, 3, 8, start, BATCH)

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    _record(benchmark, clips)
