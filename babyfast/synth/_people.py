"""Caregivers and hands: faces whose eyes and head turn show where they look, torsos, hands.

A face's gaze is drawn, not just recorded: the pupils move within the eyes and the features shift
toward the gaze direction (a head turn), so a model can learn to follow it. Gaze is quantised to
`sprites.ANGLE_BUCKETS` screen directions, plus "looking at the camera" (frontal, centred pupils).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._raster import Canvas, Colour, box, capsule, ellipse, hsv, mix
from ._sprites import Sprite, bucket_angle, bucket_size, to_sprite

__all__ = ["PersonStyle", "person_style", "face_sprite", "torso_sprite", "hand_sprite", "GAZE_CAMERA"]

GAZE_CAMERA = -1  # gaze bucket of a face looking straight at the camera (the child)
_DARK: Colour = (0.1, 0.08, 0.08)


@dataclass(frozen=True)
class PersonStyle:
    skin: Colour
    hair: Colour
    long_hair: bool
    shirt: Colour
    iris: Colour


def person_style(rng: np.random.Generator) -> PersonStyle:
    """A random caregiver's look."""
    tone = rng.uniform(0, 1)
    skin = mix(hsv(28, 0.28, 0.95), hsv(22, 0.55, 0.38), tone)
    hair = hsv(rng.uniform(15, 40), rng.uniform(0.3, 0.8), rng.uniform(0.08, 0.6)) if rng.random() < 0.85 \
        else hsv(40, 0.15, rng.uniform(0.6, 0.85))
    shirt = hsv(rng.uniform(0, 360), rng.uniform(0.2, 0.8), rng.uniform(0.35, 0.9))
    iris = hsv(rng.uniform(20, 220), rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.5))
    return PersonStyle(skin=skin, hair=hair, long_hair=bool(rng.random() < 0.5), shirt=shirt, iris=iris)


@lru_cache(maxsize=2048)
def face_sprite(style: PersonStyle, size_bucket: int, gaze_bucket: int, mouth_open: bool = False) -> Sprite:
    """A face, anchored at its centre. `gaze_bucket` is a screen direction bucket or `GAZE_CAMERA`."""
    size = bucket_size(size_bucket)
    cv = Canvas(size, size)
    u, v = cv.u, cv.v
    if gaze_bucket == GAZE_CAMERA:
        gx = gy = 0.0
    else:
        a = bucket_angle(gaze_bucket)
        gx, gy = math.cos(a), math.sin(a)
    # the head turns toward the target: features slide sideways, less so vertically
    dx, dy = 0.2 * gx, 0.1 * gy
    if style.long_hair:
        cv.paint(ellipse(u, v, 0, 0.1, 0.82, 0.92) & (v < 0.75), style.hair)
    for x in (-0.66, 0.66):
        cv.paint(ellipse(u, v, x - 0.5 * dx, 0.08, 0.1, 0.16), mix(style.skin, _DARK, 0.1))
    cv.paint(ellipse(u, v, 0, 0.05, 0.68, 0.86), style.skin)
    cv.paint(ellipse(u, v, 0, 0.02, 0.72, 0.88) & (v < -0.38 + 0.08 * np.cos(u * 6)), style.hair)
    for x in (-0.26, 0.26):
        ex, ey = x + dx, -0.05 + dy
        cv.paint(ellipse(u, v, ex, ey, 0.15, 0.095), (0.97, 0.97, 0.97))
        px, py = ex + 0.08 * gx, ey + 0.04 * gy
        cv.paint(ellipse(u, v, px, py, 0.07, 0.07) & ellipse(u, v, ex, ey, 0.15, 0.095), style.iris)
        cv.paint(ellipse(u, v, px, py, 0.035, 0.035) & ellipse(u, v, ex, ey, 0.15, 0.095), _DARK)
        cv.paint(capsule(u, v, ex - 0.13, ey - 0.16, ex + 0.13, ey - 0.18, 0.03), mix(style.hair, _DARK, 0.3))
    cv.paint(ellipse(u, v, 1.4 * dx, 0.2 + dy, 0.07, 0.11), mix(style.skin, _DARK, 0.2))
    lips = mix(hsv(355, 0.55, 0.6), style.skin, 0.3)
    if mouth_open:
        cv.paint(ellipse(u, v, dx, 0.45 + dy, 0.15, 0.1), lips)
        cv.paint(ellipse(u, v, dx, 0.45 + dy, 0.11, 0.065), (0.3, 0.05, 0.08))
    else:
        cv.paint(capsule(u, v, dx - 0.15, 0.44 + dy, dx + 0.15, 0.44 + dy, 0.035), lips)
    rgb, alpha = cv.finish(light=0.12)
    sp = to_sprite(rgb, alpha, size / 2.0, size / 2.0)
    assert sp is not None
    return sp


@lru_cache(maxsize=512)
def torso_sprite(style: PersonStyle, size_bucket: int) -> Sprite:
    """Shoulders, neck and arms at rest of a seated person; anchored at the bottom centre."""
    size = bucket_size(size_bucket)
    cv = Canvas(size, size)
    u, v = cv.u, cv.v
    cv.paint(box(u, v, 0, -0.72, 0.16, 0.3), mix(style.skin, _DARK, 0.15))
    cv.paint(box(u, v, 0, 0.2, 0.78, 0.8, 0.3), style.shirt)
    cv.paint(ellipse(u, v, 0, -0.58, 0.2, 0.1), mix(style.skin, _DARK, 0.15))
    for x in (-0.62, 0.62):
        cv.paint(capsule(u, v, x, -0.35, x * 0.9, 0.65, 0.16), mix(style.shirt, _DARK, 0.15))
    rgb, alpha = cv.finish(light=0.2)
    sp = to_sprite(rgb, alpha, size / 2.0, float(size))
    assert sp is not None
    return sp


@lru_cache(maxsize=1024)
def hand_sprite(skin: Colour, size_bucket: int, angle_bucket: int) -> Sprite:
    """A hand whose fingers point along the angle bucket's screen direction; anchored at the palm centre."""
    size = bucket_size(size_bucket)
    # angle 0 points right; the drawing has fingers pointing up (-v), hence the quarter turn
    cv = Canvas(size, size, angle=bucket_angle(angle_bucket) + math.pi / 2)
    u, v = cv.u, cv.v
    cv.paint(ellipse(u, v, 0, 0.25, 0.42, 0.45), skin)
    for k, x in enumerate((-0.3, -0.1, 0.1, 0.3)):
        top = -0.62 - (0.12 if k in (1, 2) else 0.0)
        cv.paint(capsule(u, v, x, 0.05, x * 1.1, top, 0.1), skin)
    cv.paint(capsule(u, v, 0.35, 0.35, 0.68, -0.05, 0.1), skin)
    rgb, alpha = cv.finish(light=0.15)
    sp = to_sprite(rgb, alpha, size / 2.0, size / 2.0)
    assert sp is not None
    return sp
