"""Inputs the micro-benchmarks share, made once per session: BabyWorld frames and a small ingested store."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

GOP, SIZE = 16, 256


@pytest.fixture(scope="session")
def babyworld_clip() -> np.ndarray:
    """One GOP of BabyWorld frames, (16, 256, 256, 3) uint8: what ingest stores and the loader decodes."""
    from babyfast.synth.world import Recording, RecordingSpec

    spec = RecordingSpec("bench", 4, 0, 0, GOP / 10, 10, SIZE, SIZE, age_days=300.0)
    frames = np.stack(list(Recording(spec).frames()))
    assert frames.shape == (GOP, SIZE, SIZE, 3), frames.shape
    return frames


@pytest.fixture(scope="session")
def small_store(tmp_path_factory) -> Path:
    """36 s of BabyWorld at 256 px, 10 fps, h264 GOP 16, ingested the default way (22 chunks)."""
    from babyfast.store.ingest import ingest
    from babyfast.synth import write_corpus

    work = tmp_path_factory.mktemp("bench_store")
    write_corpus(work / "src", children=1, hours=0.01, size=SIZE, fps=10, recording_minutes=0.6, seed=2, workers=1,
                 progress=False)
    result = ingest(work / "src", work / "store", fps=10, size=SIZE, gop=GOP, workers=1, progress=False)
    assert result.ok, result.problems
    return work / "store"
