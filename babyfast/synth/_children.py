"""Children: who they are, how old they are at each recording, and how age changes what they see.

Each child has a caregiver, two rooms, a toy box of training instances and a first-recording age;
recordings follow at intervals of one to three weeks, like the longitudinal head-camera corpora.
`AgeModel` turns an age into the statistics that change with it: visual acuity (blur) and head
motion (how fast and how often the child orients, approaches toys, reaches for them; how much the
head wobbles). The numbers are a plausible model, chosen so that an age-ordered curriculum sees a
systematic change, not measurements.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._people import PersonStyle, person_style
from ._raster import Colour, hsv, mix
from .vocab import CATEGORIES, TRAIN_INSTANCES

__all__ = ["AgeModel", "ChildWorld", "child_world", "stream"]

MIN_AGE_DAYS = 60.0
MAX_AGE_DAYS = 1100.0


def stream(*key: int) -> np.random.Generator:
    """A random generator keyed by integers (seed, child, recording, purpose ...): independent streams."""
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in key])


@dataclass(frozen=True)
class AgeModel:
    """Age-dependent statistics of a recording. `maturity` runs from 0 (2 months) to 1 (about 2 years)."""

    age_days: float

    @property
    def maturity(self) -> float:
        return float(np.clip((self.age_days - 60.0) / 660.0, 0.0, 1.0))

    @property
    def blur_sigma(self) -> float:
        """Gaussian blur (pixels at 256 px width) standing in for acuity, which improves fast in year one."""
        return float(2.2 * math.exp(-(self.age_days - 60.0) / 140.0))

    @property
    def orient_rate(self) -> float:
        """Stiffness (rad/s) of the head's pull toward what the child looks at: older children turn faster."""
        return 1.2 + 2.0 * self.maturity

    @property
    def fixation_s(self) -> float:
        """Mean time looking at one thing before looking elsewhere."""
        return 3.2 - 1.7 * self.maturity

    @property
    def wobble(self) -> float:
        """Head wobble (world units): poor head control in young infants."""
        return 2.8 - 1.8 * self.maturity

    @property
    def approach_rate(self) -> float:
        """Approaches (crawling or walking toward a toy) per second."""
        return 0.01 + 0.07 * self.maturity

    @property
    def reach_rate(self) -> float:
        """Reaches for a toy with the child's own hand, per second."""
        return 0.015 + 0.08 * self.maturity

    @property
    def bob(self) -> float:
        """Vertical bob (world units) of the view while the child moves toward something."""
        return 4.0 * self.maturity


@dataclass(frozen=True)
class ChildWorld:
    """A child's home: caregiver, rooms, toys, own skin and sleeve colours, first age and spacing."""

    child: int
    subject: str
    caregiver: PersonStyle
    skin: Colour
    sleeve: Colour
    room_keys: tuple[int, int]
    toy_box: tuple[tuple[int, int], ...]
    first_age: float
    age_step: float

    def age_at(self, recording: int) -> float:
        return min(self.first_age + recording * self.age_step, MAX_AGE_DAYS)


def child_world(seed: int, child: int) -> ChildWorld:
    """The child `child` of the corpus made with `seed`."""
    rng = stream(seed, child, 0xC41D)
    toy_box = []
    for cat in CATEGORIES:
        n = 1 if rng.random() < 0.6 else 2
        for inst in rng.choice(TRAIN_INSTANCES, size=n, replace=False):
            toy_box.append((cat.id, int(inst)))
    tone = rng.uniform(0, 1)
    return ChildWorld(
        child=child,
        subject=f"child{child}",
        caregiver=person_style(rng),
        skin=mix(hsv(28, 0.25, 0.97), hsv(22, 0.5, 0.45), tone),
        sleeve=hsv(rng.uniform(0, 360), rng.uniform(0.3, 0.8), rng.uniform(0.5, 0.95)),
        room_keys=(int(rng.integers(1 << 30)), int(rng.integers(1 << 30))),
        toy_box=tuple(toy_box),
        first_age=float(rng.uniform(90, 540)),
        age_step=float(rng.uniform(7, 21)),
    )
