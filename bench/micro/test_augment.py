"""Augmentation on the CPU: `babyfast.loader.augment.transform_clips` on a batch of 8 clips of 16 x 256^2
(as the store holds them) to 16 x 224^2, the same parameters every round.

`extra_info["clips_per_s"]` holds the rate of the fastest round.
"""
from __future__ import annotations

import numpy as np
import pytest

from babyfast.loader.augment import Augment, transform_clips

BATCH = 8
_AREA = (224 / 256) ** 2
AUGMENTS = {
    "default": Augment(),  # random resized crop (scale 0.25-1) to 224 + flip
    "colour": Augment(brightness=0.2, contrast=0.2, saturation=0.2, hue=5.0),
    "crop_only": Augment(size=224, scale=(_AREA, _AREA), ratio=(1.0, 1.0), flip=0.0),
}


@pytest.mark.parametrize("name", list(AUGMENTS))
def test_transform_clips_cpu(benchmark, babyworld_clip, name):
    aug = AUGMENTS[name]
    clips = [np.roll(babyworld_clip, i, axis=0) for i in range(BATCH)]  # distinct clips, same content
    t, h, w = babyworld_clip.shape[:3]
    params = aug.draw(0, 0, np.arange(BATCH), h, w)
    out = benchmark(transform_clips, clips, params, aug, "cpu")
    assert tuple(out.shape) == (BATCH, t, 224, 224, 3)
    benchmark.extra_info["clips"] = BATCH
    benchmark.extra_info["clips_per_s"] = BATCH / benchmark.stats.stats.min
