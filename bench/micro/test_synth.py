"""BabyWorld: frames rendered (and encoded) per second at 256x256, one process.

`extra_info["frames_per_s"]` holds the rate of the fastest round; `python -m bench.synth` writes the
README's table (including the 10-minute, multi-process corpus run that the speed target is about).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from babyfast.synth.corpus import render_recording
from babyfast.synth.world import Recording, RecordingSpec

FRAMES = 300


def _spec(name: str) -> RecordingSpec:
    return RecordingSpec(name, 0, 0, 0, FRAMES / 10, 10, 256, 256, age_days=150.0)


def _record(benchmark) -> None:
    benchmark.extra_info["frames"] = FRAMES
    benchmark.extra_info["frames_per_s"] = FRAMES / benchmark.stats.stats.min


def test_render_256(benchmark):
    def run():
        return sum(1 for _ in Recording(_spec("r")).frames())

    assert benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1) == FRAMES
    _record(benchmark)


@pytest.mark.parametrize("codec", ["h264", "mjpeg"])
def test_render_and_encode_256(benchmark, tmp_path: Path, codec):
    def run():
        return render_recording(_spec("e"), tmp_path, codec=codec)["info"].frames

    # age 150 days: the acuity blur filter is in the loop too
    assert benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1) == FRAMES
    _record(benchmark)
