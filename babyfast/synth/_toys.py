"""How each toy looks: one drawing per category (its shape family), varied per instance.

An instance's look (colours, surface pattern, proportions, size) is a pure function of (category,
instance), independent of any seed, so "instance 6 of duck" is the same toy in every probe set and
never appears in a training recording (see `vocab.PROBE_INSTANCES`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from ._raster import (
    PATTERNS,
    Canvas,
    Colour,
    box,
    capsule,
    ellipse,
    heart,
    hsv,
    mix,
    pattern,
    polygon,
    star_points,
)
from ._sprites import Sprite, bucket_angle, bucket_size, to_sprite
from .vocab import CATEGORIES

__all__ = ["ToyStyle", "toy_style", "toy_sprite", "toy_world_size", "N_INSTANCES"]

N_INSTANCES = 8
_DARK: Colour = (0.12, 0.1, 0.1)
_WHITE: Colour = (0.95, 0.95, 0.93)

# Nominal sizes relative to a ball, so a key is small and a house is big whatever the instance.
_SCALE = {
    "ball": 0.9, "block": 0.85, "duck": 1.0, "car": 1.05, "cup": 0.85, "star": 0.95, "ring": 0.85,
    "teddy": 1.15, "banana": 0.95, "apple": 0.8, "fish": 1.0, "boat": 1.05, "house": 1.15, "tree": 1.2,
    "bottle": 1.0, "shoe": 0.95, "key": 0.75, "spoon": 0.8, "heart": 0.85, "hat": 1.0, "drum": 0.95,
    "book": 1.0, "flower": 1.0, "butterfly": 0.95,
}


@dataclass(frozen=True)
class ToyStyle:
    """The look of one toy instance."""

    body: Colour
    second: Colour
    accent: Colour
    texture: str
    freq: float
    tex_angle: float
    stretch: tuple[float, float]
    scale: float  # size relative to the category's nominal size


def _palette_colour(rng: np.random.Generator, palette: str) -> Colour:
    if palette == "duck":
        return hsv(rng.uniform(44, 56), rng.uniform(0.7, 0.95), rng.uniform(0.85, 1.0)) if rng.random() < 0.75 \
            else hsv(rng.uniform(30, 60), rng.uniform(0.0, 0.12), rng.uniform(0.85, 0.97))
    if palette == "warm":
        return hsv(rng.uniform(-15, 60), rng.uniform(0.6, 0.95), rng.uniform(0.75, 1.0))
    if palette == "brown":
        return hsv(rng.uniform(18, 38), rng.uniform(0.35, 0.75), rng.uniform(0.35, 0.8))
    if palette == "yellow":
        return hsv(rng.uniform(47, 58), rng.uniform(0.65, 0.95), rng.uniform(0.85, 1.0))
    if palette == "apple":
        return hsv(float(rng.choice([2.0, 100.0, 52.0])) + rng.uniform(-6, 6), rng.uniform(0.7, 0.95),
                   rng.uniform(0.6, 0.95))
    if palette == "green":
        return hsv(rng.uniform(85, 150), rng.uniform(0.5, 0.9), rng.uniform(0.35, 0.75))
    if palette == "metal":
        return hsv(rng.uniform(40, 52), rng.uniform(0.45, 0.7), rng.uniform(0.7, 0.9)) if rng.random() < 0.5 \
            else hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.1), rng.uniform(0.6, 0.85))
    if palette == "red":
        return hsv(rng.uniform(-20, 8), rng.uniform(0.6, 0.95), rng.uniform(0.7, 1.0))
    return hsv(rng.uniform(0, 360), rng.uniform(0.55, 0.95), rng.uniform(0.6, 0.97))


@cache
def toy_style(category: int, instance: int) -> ToyStyle:
    """The look of instance `instance` of category `category` (ValueError outside the known ranges)."""
    if not 0 <= category < len(CATEGORIES):
        raise ValueError(f"toy category {category} out of range 0..{len(CATEGORIES) - 1}")
    if not 0 <= instance < N_INSTANCES:
        raise ValueError(f"toy instance {instance} out of range 0..{N_INSTANCES - 1}")
    cat = CATEGORIES[category]
    rng = np.random.default_rng([0xB0B1, category, instance])
    body = _palette_colour(rng, cat.palette)
    h, s, v = _hsv_of(body)
    if rng.random() < 0.5:
        second = hsv(h + rng.uniform(140, 220), rng.uniform(0.4, 0.9), rng.uniform(0.6, 1.0))
    else:
        second = mix(body, _WHITE if v < 0.6 or rng.random() < 0.6 else _DARK, rng.uniform(0.45, 0.75))
    accent = hsv(rng.uniform(0, 360), rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0))
    texture = str(rng.choice(PATTERNS, p=[0.25, 0.2, 0.15, 0.1, 0.15, 0.15]))
    squeeze = rng.uniform(0.82, 1.0)
    stretch = (squeeze, 1.0) if rng.random() < 0.5 else (1.0, squeeze)
    if cat.spins:
        stretch = (1.0, 1.0)
    return ToyStyle(
        body=body, second=second, accent=accent, texture=texture, freq=float(rng.uniform(6, 14)),
        tex_angle=float(rng.uniform(0, math.pi)), stretch=stretch, scale=float(rng.uniform(0.88, 1.12)),
    )


def _hsv_of(c: Colour) -> tuple[float, float, float]:
    import colorsys

    h, s, v = colorsys.rgb_to_hsv(*c)
    return h * 360.0, s, v


def toy_world_size(category: int, instance: int) -> float:
    """A toy's nominal size in world units (a ball instance is about 40)."""
    return 44.0 * _SCALE[CATEGORIES[category].word] * toy_style(category, instance).scale


# ---- one drawing per category --------------------------------------------------------------------------


def _body(cv: Canvas, st: ToyStyle, mask, strength: float = 1.0) -> None:
    t = pattern(cv.u, cv.v, st.texture, st.freq, st.tex_angle) * strength
    cv.paint_pattern(mask, st.body, st.second, t)


def _ball(cv, st):
    _body(cv, st, ellipse(cv.u, cv.v, 0, 0, 0.95, 0.95))


def _block(cv, st):
    u, v = cv.u, cv.v
    _body(cv, st, box(u, v, -0.12, 0.15, 0.75, 0.75, 0.06))
    cv.paint(polygon(u, v, [(-0.87, -0.6), (0.63, -0.6), (0.92, -0.92), (-0.58, -0.92)]), mix(st.body, _WHITE, 0.35))
    cv.paint(polygon(u, v, [(0.63, -0.6), (0.92, -0.92), (0.92, 0.6), (0.63, 0.9)]), mix(st.body, _DARK, 0.35))
    cv.paint(box(u, v, -0.12, 0.15, 0.45, 0.45) & ~box(u, v, -0.12, 0.15, 0.3, 0.3), st.accent)


def _duck(cv, st):
    u, v = cv.u, cv.v
    cv.paint(polygon(u, v, [(-0.65, 0.15), (-1.0, -0.2), (-0.55, 0.45)]), st.body)
    _body(cv, st, ellipse(u, v, 0.0, 0.4, 0.85, 0.5), 0.5)
    cv.paint(ellipse(u, v, -0.1, 0.35, 0.45, 0.25), st.second)
    cv.paint(ellipse(u, v, 0.45, -0.35, 0.36, 0.36), st.body)
    cv.paint(polygon(u, v, [(0.72, -0.42), (1.0, -0.3), (0.72, -0.2)]), hsv(25, 0.9, 0.95))
    cv.paint(ellipse(u, v, 0.55, -0.45, 0.07, 0.07), _DARK)


def _car(cv, st):
    u, v = cv.u, cv.v
    cv.paint(polygon(u, v, [(-0.55, -0.05), (-0.3, -0.55), (0.3, -0.55), (0.6, -0.05)]), mix(st.body, _DARK, 0.2))
    cv.paint(polygon(u, v, [(-0.42, -0.1), (-0.25, -0.45), (0.25, -0.45), (0.47, -0.1)]), (0.7, 0.83, 0.95))
    _body(cv, st, box(u, v, 0, 0.2, 0.95, 0.3, 0.12))
    cv.paint(ellipse(u, v, 0.88, 0.1, 0.06, 0.08), st.accent)
    for x in (-0.55, 0.55):
        cv.paint(ellipse(u, v, x, 0.55, 0.28, 0.28), _DARK)
        cv.paint(ellipse(u, v, x, 0.55, 0.12, 0.12), (0.7, 0.7, 0.72))


def _cup(cv, st):
    u, v = cv.u, cv.v
    cv.paint((ellipse(u, v, 0.5, 0.05, 0.38, 0.38) & ~ellipse(u, v, 0.5, 0.05, 0.22, 0.22)) & (u > 0.2), st.second)
    _body(cv, st, polygon(u, v, [(-0.6, -0.7), (0.45, -0.7), (0.33, 0.85), (-0.48, 0.85)]))
    cv.paint(ellipse(u, v, -0.075, -0.7, 0.525, 0.1), mix(st.body, _DARK, 0.55))


def _star(cv, st):
    _body(cv, st, polygon(cv.u, cv.v, star_points(0, 0.08, 5, 0.98, 0.42)))
    cv.paint(ellipse(cv.u, cv.v, 0, 0.1, 0.14, 0.14), st.accent)


def _ring(cv, st):
    u, v = cv.u, cv.v
    _body(cv, st, ellipse(u, v, 0, 0, 0.95, 0.95) & ~ellipse(u, v, 0, 0, 0.42, 0.42))


def _teddy(cv, st):
    u, v = cv.u, cv.v
    for x in (-0.58, 0.58):
        cv.paint(ellipse(u, v, x, -0.58, 0.3, 0.3), st.body)
        cv.paint(ellipse(u, v, x, -0.58, 0.15, 0.15), st.accent)
    _body(cv, st, ellipse(u, v, 0, 0.12, 0.78, 0.78), 0.3)
    cv.paint(ellipse(u, v, 0, 0.38, 0.36, 0.26), mix(st.body, _WHITE, 0.5))
    cv.paint(ellipse(u, v, 0, 0.28, 0.12, 0.08), _DARK)
    for x in (-0.28, 0.28):
        cv.paint(ellipse(u, v, x, -0.05, 0.075, 0.075), _DARK)


def _banana(cv, st):
    u, v = cv.u, cv.v
    band = (np.hypot(u, v + 0.45) < 1.05) & (np.hypot(u, v + 0.9) > 1.08) & ellipse(u, v, 0, 0.1, 0.97, 0.95)
    _body(cv, st, band, 0.25)
    for x in (-0.85, 0.85):
        cv.paint(band & ellipse(u, v, x, -0.1, 0.14, 0.5), (0.35, 0.25, 0.1))


def _apple(cv, st):
    u, v = cv.u, cv.v
    cv.paint(capsule(u, v, 0.0, -0.55, 0.08, -0.9, 0.06), (0.4, 0.25, 0.1))
    cv.paint(capsule(u, v, 0.12, -0.75, 0.45, -0.85, 0.11), hsv(110, 0.7, 0.6))
    _body(cv, st, ellipse(u, v, -0.25, 0.1, 0.6, 0.65) | ellipse(u, v, 0.25, 0.1, 0.6, 0.65)
          | ellipse(u, v, 0, 0.3, 0.8, 0.6), 0.3)


def _fish(cv, st):
    u, v = cv.u, cv.v
    cv.paint(polygon(u, v, [(0.35, 0.0), (0.97, -0.48), (0.97, 0.48)]), st.second)
    cv.paint(polygon(u, v, [(-0.35, -0.3), (0.15, -0.3), (-0.05, -0.62)]), st.second)
    _body(cv, st, ellipse(u, v, -0.15, 0.0, 0.68, 0.42))
    cv.paint(ellipse(u, v, -0.55, -0.08, 0.1, 0.1), _WHITE)
    cv.paint(ellipse(u, v, -0.57, -0.08, 0.05, 0.05), _DARK)


def _boat(cv, st):
    u, v = cv.u, cv.v
    cv.paint(capsule(u, v, 0.0, 0.35, 0.0, -0.9, 0.04), (0.45, 0.3, 0.15))
    cv.paint(polygon(u, v, [(0.06, -0.85), (0.06, 0.25), (0.72, 0.25)]), st.second)
    cv.paint(polygon(u, v, [(-0.04, -0.9), (-0.04, -0.65), (-0.35, -0.78)]), st.accent)
    _body(cv, st, polygon(u, v, [(-0.97, 0.35), (0.97, 0.35), (0.65, 0.8), (-0.65, 0.8)]))


def _house(cv, st):
    u, v = cv.u, cv.v
    _body(cv, st, box(u, v, 0, 0.38, 0.7, 0.55))
    cv.paint(polygon(u, v, [(-0.92, -0.12), (0.92, -0.12), (0, -0.95)]), st.accent)
    cv.paint(box(u, v, 0.3, 0.64, 0.15, 0.29), mix(st.body, _DARK, 0.6))
    cv.paint(box(u, v, -0.3, 0.28, 0.16, 0.14), (0.75, 0.88, 0.97))


def _tree(cv, st):
    u, v = cv.u, cv.v
    cv.paint(box(u, v, 0, 0.75, 0.12, 0.24), (0.42, 0.27, 0.12))
    crown = (polygon(u, v, [(-0.85, 0.55), (0.85, 0.55), (0, -0.1)])
             | polygon(u, v, [(-0.7, 0.15), (0.7, 0.15), (0, -0.5)])
             | polygon(u, v, [(-0.5, -0.3), (0.5, -0.3), (0, -0.97)]))
    _body(cv, st, crown, 0.6)


def _bottle(cv, st):
    u, v = cv.u, cv.v
    _body(cv, st, box(u, v, 0, 0.3, 0.42, 0.62, 0.12) | ellipse(u, v, 0, -0.28, 0.42, 0.2))
    cv.paint(box(u, v, 0, -0.55, 0.17, 0.18), st.body)
    cv.paint(box(u, v, 0, -0.82, 0.2, 0.13, 0.04), st.accent)
    cv.paint(box(u, v, 0, 0.32, 0.42, 0.2), st.second)


def _shoe(cv, st):
    u, v = cv.u, cv.v
    upper = [(-0.9, 0.65), (-0.9, 0.1), (-0.55, -0.35), (-0.2, -0.35), (-0.1, 0.1), (0.55, 0.22), (0.92, 0.45),
             (0.92, 0.65)]
    _body(cv, st, polygon(u, v, upper))
    cv.paint(box(u, v, 0.0, 0.72, 0.94, 0.1, 0.08), mix(st.accent, _WHITE, 0.3))
    for k in range(3):
        y = 0.0 + 0.12 * k
        cv.paint(capsule(u, v, -0.5 + 0.1 * k, y, -0.15 + 0.1 * k, y - 0.05, 0.035), _WHITE)


def _key(cv, st):
    u, v = cv.u, cv.v
    bow = ellipse(u, v, -0.55, 0, 0.4, 0.4) & ~ellipse(u, v, -0.55, 0, 0.17, 0.17)
    blade = box(u, v, 0.25, 0, 0.62, 0.1) | box(u, v, 0.62, 0.18, 0.06, 0.14) | box(u, v, 0.8, 0.16, 0.06, 0.1)
    _body(cv, st, bow | blade, 0.3)


def _spoon(cv, st):
    u, v = cv.u, cv.v
    _body(cv, st, ellipse(u, v, -0.5, 0, 0.43, 0.3) | capsule(u, v, -0.1, 0, 0.95, 0.02, 0.09), 0.4)
    cv.paint(ellipse(u, v, -0.52, 0, 0.3, 0.19), mix(st.body, _WHITE, 0.35))


def _heart(cv, st):
    _body(cv, st, heart(cv.u, cv.v, 0, 0.1, 0.78))


def _hat(cv, st):
    u, v = cv.u, cv.v
    _body(cv, st, ellipse(u, v, 0, 0.25, 0.6, 0.8) & (v < 0.38))
    cv.paint(box(u, v, 0, 0.22, 0.62, 0.09) & ellipse(u, v, 0, 0.25, 0.62, 0.82), st.accent)
    cv.paint(ellipse(u, v, 0, 0.42, 0.98, 0.17), st.second)


def _drum(cv, st):
    u, v = cv.u, cv.v
    _body(cv, st, box(u, v, 0, 0.2, 0.75, 0.5) | ellipse(u, v, 0, 0.7, 0.75, 0.2))
    cv.paint(ellipse(u, v, 0, -0.3, 0.75, 0.2), (0.92, 0.86, 0.72))
    cv.paint(box(u, v, 0, -0.2, 0.76, 0.05), st.accent)
    cv.paint(box(u, v, 0, 0.62, 0.76, 0.05) | (ellipse(u, v, 0, 0.7, 0.76, 0.21) & (v > 0.62)), st.accent)


def _book(cv, st):
    # an open picture book: a cover under two pages spread in a shallow V
    u, v = cv.u, cv.v
    cover = polygon(u, v, [(-0.98, -0.38), (0, -0.22), (0.98, -0.38), (0.98, 0.5), (0, 0.66), (-0.98, 0.5)])
    _body(cv, st, cover, 0.5)
    for side in (-1, 1):
        page = polygon(u, v, [(side * 0.9, -0.44), (0, -0.3), (0, 0.55), (side * 0.9, 0.4)])
        cv.paint(page, mix(_WHITE, st.second, 0.15))
        cv.paint(page & ellipse(u, v, side * 0.45, 0.05, 0.22, 0.2), st.accent)
        for k in range(3):
            y = -0.28 + 0.1 * k
            cv.paint(page & (np.abs(v - (y + 0.08 * side * u)) < 0.025) & (np.abs(u - side * 0.45) < 0.3), _DARK)


def _flower(cv, st):
    u, v = cv.u, cv.v
    cv.paint(capsule(u, v, 0, 0.2, 0, 0.98, 0.06), hsv(115, 0.7, 0.55))
    cv.paint(ellipse(u, v, 0.22, 0.65, 0.22, 0.08), hsv(115, 0.7, 0.55))
    petals = np.zeros(u.shape, bool)
    for k in range(6):
        a = k * math.pi / 3
        pu = u * math.cos(a) + (v + 0.28) * math.sin(a)
        pv = -u * math.sin(a) + (v + 0.28) * math.cos(a)
        petals |= ellipse(pu, pv, 0.42, 0, 0.3, 0.18)
    _body(cv, st, petals, 0.4)
    cv.paint(ellipse(u, v, 0, -0.28, 0.2, 0.2), st.accent)


def _butterfly(cv, st):
    u, v = cv.u, cv.v
    _body(cv, st, ellipse(u, v, -0.45, -0.28, 0.48, 0.4) | ellipse(u, v, 0.45, -0.28, 0.48, 0.4), 0.5)
    cv.paint(ellipse(u, v, -0.35, 0.38, 0.32, 0.3) | ellipse(u, v, 0.35, 0.38, 0.32, 0.3), st.second)
    for x in (-0.5, 0.5):
        cv.paint(ellipse(u, v, x, -0.3, 0.14, 0.14), st.accent)
    cv.paint(capsule(u, v, 0, -0.5, 0, 0.6, 0.08), _DARK)
    for x in (-0.3, 0.3):
        cv.paint(capsule(u, v, 0, -0.5, x, -0.95, 0.025), _DARK)


_DRAW = {
    "ball": _ball, "block": _block, "duck": _duck, "car": _car, "cup": _cup, "star": _star, "ring": _ring,
    "teddy": _teddy, "banana": _banana, "apple": _apple, "fish": _fish, "boat": _boat, "house": _house,
    "tree": _tree, "bottle": _bottle, "shoe": _shoe, "key": _key, "spoon": _spoon, "heart": _heart,
    "hat": _hat, "drum": _drum, "book": _book, "flower": _flower, "butterfly": _butterfly,
}
assert set(_DRAW) == {c.word for c in CATEGORIES}


def toy_sprite(category: int, instance: int, size_bucket: int, angle_bucket: int = 0) -> Sprite | None:
    """The sprite of a toy at a size bucket (`sprites.size_bucket`) and rotation bucket.

    Anchored at the bottom centre of its visible pixels: where it touches the floor. Only toys whose
    category spins are ever turned; others ignore `angle_bucket` (and share one cache entry per size).
    """
    return _toy_sprite(category, instance, size_bucket, angle_bucket if CATEGORIES[category].spins else 0)


@lru_cache(maxsize=4096)
def _toy_sprite(category: int, instance: int, size_bucket: int, angle_bucket: int) -> Sprite | None:
    cat = CATEGORIES[category]
    st = toy_style(category, instance)
    size = bucket_size(size_bucket)
    angle = bucket_angle(angle_bucket)
    cv = Canvas(size, size, angle=angle, stretch=st.stretch)
    _DRAW[cat.word](cv, st)
    rgb, alpha = cv.finish()
    rows = np.flatnonzero(alpha.max(axis=1) > 0.02)
    bottom = float(rows[-1] + 1) if rows.size else size
    return to_sprite(rgb, alpha, size / 2.0, bottom)
