"""One recording of BabyWorld: a simulated afternoon on the floor, seen from the child's head camera.

`Recording(spec).frames()` steps the world one frame at a time and yields the rendered frame with its
ground truth. The world: a caregiver sitting across the room whose hands pick toys up, show them, drop
them, roll them, hide them under blankets and slide screens in front of them; the child's own hand
reaching for toys; toys that fall, bounce, roll and stop; a caregiver face that looks at toys or at the
child and talks (`speech` writes what she says, from the truth); room light that drifts. The camera
(the child's head) looks at toys and at the caregiver's face with smooth pans, wobble and approaches
whose statistics depend on the child's age (`children.AgeModel`). Every random choice comes from
streams keyed by (seed, child, recording), so a recording is a pure function of its spec.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from ._children import AgeModel, ChildWorld, child_world, stream
from ._compose import Layer, compose
from ._geometry import FLOOR_FAR, FLOOR_NEAR, HORIZON, PANO_W, View, clamp_view, depth_factor
from ._occluders import occluder_sprite, occluder_style
from ._people import GAZE_CAMERA, face_sprite, hand_sprite, torso_sprite
from ._room import Room, make_room
from ._speech import caregiver_utterances
from ._sprites import angle_bucket, capsule_sprite, shadow_sprite, size_bucket
from ._toys import toy_sprite, toy_world_size
from .truth import FACE_TRACK, HAND_TRACK, OCCLUDER_TRACK, TruthBuilder
from .vocab import CATEGORIES

__all__ = ["RecordingSpec", "Recording", "REST", "ROLLING", "FALLING", "HELD", "FACE_TRACK", "OCCLUDER_TRACK"]

REST, ROLLING, FALLING, HELD = 0, 1, 2, 3
CAREGIVER, CHILD = 0, 1
_G = 700.0  # gravity, world units / s^2
_FACE_SIZE = 58.0
_FACE_HEIGHT = 122.0
_TORSO_SIZE = 100.0
_HAND_SIZE = 26.0
_REACH = 110.0  # how far (world units, sideways) the caregiver reaches without moving over
_SHUFFLE_SPEED = 90.0  # world units / s when she moves over


@dataclass(frozen=True)
class RecordingSpec:
    """Everything that determines one recording."""

    video_id: str
    seed: int
    child: int
    index: int
    seconds: float
    fps: float
    width: int
    height: int
    age_days: float | None = None  # None: the child's age at this recording index

    @property
    def n_frames(self) -> int:
        return max(1, int(round(self.seconds * self.fps)))


@dataclass(eq=False)
class Thing:
    """A toy or an occluder on the floor."""

    track: int
    kind: str  # "toy", "screen" or "blanket"
    x: float
    y: float
    h: float = 0.0
    vx: float = 0.0
    vy: float = 0.0
    vh: float = 0.0
    angle: float = 0.0
    state: int = REST
    holder: Hand | None = None
    category: int = -1
    instance: int = -1
    size: float = 30.0
    style: object = None
    width: float = 0.0
    height: float = 0.0
    covering: Thing | None = None  # a blanket lying over a toy
    covered_by: Thing | None = None


@dataclass(eq=False)
class Hand:
    owner: int
    x: float
    y: float
    h: float
    rest: Callable[[], tuple[float, float, float]]
    steps: deque[tuple] = field(default_factory=deque)
    step: tuple | None = None
    t0: float = 0.0
    p0: tuple[float, float, float] = (0.0, 0.0, 0.0)
    holding: Thing | None = None
    grip: float = 0.0
    focus: Thing | None = None

    @property
    def busy(self) -> bool:
        return self.step is not None or bool(self.steps)


def _ease(t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return t * t * t * (10 - 15 * t + 6 * t * t)


class Recording:
    """A recording being simulated; iterate `frames()` once."""

    def __init__(self, spec: RecordingSpec):
        if spec.width < 16 or spec.height < 16 or spec.width % 2 or spec.height % 2:
            raise ValueError(f"{spec.video_id}: frame size {spec.width}x{spec.height} must be even and >= 16")
        if spec.fps <= 0:
            raise ValueError(f"{spec.video_id}: fps {spec.fps} must be > 0")
        self.spec = spec
        self.home: ChildWorld = child_world(spec.seed, spec.child)
        self.age = spec.age_days if spec.age_days is not None else self.home.age_at(spec.index)
        self.model = AgeModel(self.age)
        self.rng = stream(spec.seed, spec.child, spec.index, 0x5117)
        self.dt = 1.0 / spec.fps
        self._rooms: dict[int, Room] = {}
        self.truth = TruthBuilder(spec, self.age, self.model)
        self._next_track = 0
        self._light = self._light_schedule()
        self.speech = self._speech_schedule()

    # ---- schedules fixed up front ---------------------------------------------------------------------

    def _light_schedule(self) -> np.ndarray:
        """Per-frame RGB light gain: slow drift, lamps switching, colour temperature changes."""
        rng = stream(self.spec.seed, self.spec.child, self.spec.index, 0x1167)
        n = self.spec.n_frames
        t = np.arange(n) / self.spec.fps
        level = rng.uniform(0.78, 0.95) + 0.04 * np.sin(2 * np.pi * t / rng.uniform(20, 60) + rng.uniform(0, 6))
        for _ in range(rng.poisson(self.spec.seconds / 90.0)):
            t_on, step = rng.uniform(0, self.spec.seconds), rng.choice([-1, 1]) * rng.uniform(0.06, 0.14)
            level = level + step * np.clip((t - t_on) / 1.0, 0, 1)
        warm = rng.uniform(-0.05, 0.05) + 0.02 * np.sin(2 * np.pi * t / rng.uniform(40, 120))
        gain = np.stack([level * (1 + warm), level, level * (1 - warm)], axis=1)
        return np.clip(gain, 0.5, 1.0)

    def _speech_schedule(self) -> list[tuple[float, float]]:
        """When the caregiver talks: (start, end) seconds. What she says is decided later, from the truth."""
        rng = stream(self.spec.seed, self.spec.child, self.spec.index, 0x5BEE)
        out, t = [], rng.uniform(0.3, 2.0)
        while t < self.spec.seconds - 0.5:
            dur = rng.uniform(0.8, 2.0)
            out.append((t, min(t + dur, self.spec.seconds)))
            t += dur + max(0.6, rng.exponential(3.5))
        return out

    # ---- episodes -------------------------------------------------------------------------------------

    def _room(self, which: int) -> Room:
        if which not in self._rooms:
            key = self.home.room_keys[which]
            self._rooms[which] = make_room(stream(self.spec.seed, key, 0x8003), self.spec.width)
        return self._rooms[which]

    def _track(self) -> int:
        self._next_track += 1
        return self._next_track - 1

    def _new_episode(self) -> None:
        rng = self.rng
        self.room = self._room(int(rng.integers(2)))
        self.cx_person = float(rng.uniform(200, PANO_W - 200))
        self.person_goal = self.cx_person
        self.y_person = HORIZON + float(rng.uniform(30, 50))
        self.things: list[Thing] = []
        box = self.home.toy_box
        k = int(rng.integers(5, 10))
        for i in rng.choice(len(box), size=min(k, len(box)), replace=False):
            cat, inst = box[int(i)]
            x, y = self._free_spot(rng)
            self.things.append(Thing(self._track(), "toy", x, y, category=cat, instance=inst,
                                     size=toy_world_size(cat, inst), angle=float(rng.uniform(0, 2 * math.pi))))
        occ_track = OCCLUDER_TRACK + len(self.truth.occluder_kinds)
        for kind in ("screen", "blanket"):
            if rng.random() < 0.55:
                if kind == "screen":
                    x = float(rng.uniform(self.cx_person - 200, self.cx_person + 200))
                    y = float(rng.uniform(self.y_person + 50, self.y_person + 130))
                    w, h = float(rng.uniform(80, 140)), float(rng.uniform(50, 80))
                else:
                    x, y = self._free_spot(rng)
                    w, h = float(rng.uniform(55, 80)), float(rng.uniform(30, 42))
                th = Thing(occ_track, kind, float(np.clip(x, 60, PANO_W - 60)), y, style=occluder_style(rng, kind),
                           width=w, height=h)
                self.truth.occluder_kinds.append(kind)
                occ_track += 1
                self.things.append(th)
        first = self.toys()[int(rng.integers(len(self.toys())))]
        self.cam_x, self.cam_y = first.x, first.y - 20.0
        self.cam_vx = self.cam_vy = 0.0
        self.zoom, self.zoom_v = 1.0, 0.0
        self.fix = ("thing", first)
        rest_c = lambda: (self.cx_person + 18.0, self.y_person + 3.0, 28.0)  # noqa: E731
        self.hands = [
            Hand(CAREGIVER, *rest_c(), rest=rest_c),
            Hand(CHILD, 0.0, 0.0, 0.0, rest=self._child_rest),
        ]
        hx, hy, hh = self._child_rest()
        self.hands[1].x, self.hands[1].y, self.hands[1].h = hx, hy, hh
        self.gaze: Thing | None = None
        self.gaze_until = 0.0
        self.fix_until = 0.0
        self.approach_until = 0.0
        self.zoom_target = 1.0
        self.episode_end = self.t + float(rng.uniform(40, 100))
        self.episode += 1

    def _child_rest(self) -> tuple[float, float, float]:
        return self.cam_x + 20.0, FLOOR_NEAR + 120.0, 10.0

    def _free_spot(self, rng, reach: float = 260.0) -> tuple[float, float]:
        """A floor spot in front of the caregiver (within `reach` sideways), clear of other things."""
        for _ in range(30):
            x = float(np.clip(rng.uniform(self.person_goal - reach, self.person_goal + reach), 40, PANO_W - 40))
            y = float(rng.uniform(max(FLOOR_FAR, self.y_person + 15), FLOOR_NEAR - 10))
            if all((t.x - x) ** 2 + ((t.y - y) * 2) ** 2 > 45**2 for t in getattr(self, "things", [])):
                return x, y
        return x, y

    def toys(self) -> list[Thing]:
        return [t for t in self.things if t.kind == "toy"]

    # ---- events ---------------------------------------------------------------------------------------

    def _goto(self, target, dur):
        return ("goto", target if callable(target) else (lambda p=target: p), dur)

    def _grab(self, hand: Hand, thing: Thing, grip: float):
        def act():
            if thing.holder is not None or thing.covered_by is not None:
                hand.steps.clear()  # someone else took it, or it is hidden: give up
                hand.steps.append(self._goto(hand.rest, 0.8))
                hand.steps.append(("call", lambda: setattr(hand, "focus", None)))
                return
            if thing.covering is not None:
                thing.covering.covered_by = None
                thing.covering = None
            thing.holder, thing.state = hand, HELD
            thing.vx = thing.vy = thing.vh = 0.0
            hand.holding, hand.grip = thing, grip
        return ("call", act)

    def _release(self, hand: Hand, vx: float = 0.0, vy: float = 0.0, drape: Thing | None = None):
        def act():
            thing = hand.holding
            hand.holding = None
            if thing is None:
                return
            thing.holder = None
            if drape is not None and drape.covered_by is None and drape.holder is None:
                thing.x, thing.y, thing.h, thing.state = drape.x, drape.y + 0.5, 0.0, REST
                thing.covering, drape.covered_by = drape, thing
                drape.state, drape.vx, drape.vy = REST, 0.0, 0.0
                return
            if thing.kind == "screen":
                thing.h, thing.state = 0.0, REST
                return
            thing.state, thing.vx, thing.vy, thing.vh = FALLING, vx, vy, 0.0
        return ("call", act)

    def _above(self, thing: Thing, lift: float):
        return lambda: (thing.x, thing.y + 0.5, thing.h + lift)

    def _caregiver_event(self) -> None:
        rng, hand = self.rng, self.hands[CAREGIVER]
        toys = [t for t in self.toys() if t.holder is None and t.covered_by is None]
        free_blankets = [t for t in self.things if t.kind == "blanket" and t.covering is None and t.holder is None]
        screens = [t for t in self.things if t.kind == "screen" and t.holder is None]
        if not toys:
            return
        kinds = ["show", "drop", "roll", "move", "hide", "slide"]
        p = np.array([0.22, 0.2, 0.22, 0.14, 0.14 if free_blankets else 0, 0.08 if screens else 0])
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        toy = toys[int(rng.integers(len(toys)))]
        hand.focus = toy
        s = hand.steps
        reach = float(rng.uniform(0.7, 1.2))
        # she shuffles over to what she is about to handle rather than growing a long arm
        target = screens[0] if kind == "slide" and screens else toy
        if abs(target.x - self.cx_person) > _REACH:
            self.person_goal = float(np.clip(target.x - np.sign(target.x - self.cx_person) * 60.0, 80, PANO_W - 80))
            s.append(self._goto(hand.rest, abs(self.person_goal - self.cx_person) / _SHUFFLE_SPEED + 0.1))
        if kind in ("show", "drop", "move"):
            grip = toy.size * 0.45
            s.append(self._goto(self._above(toy, grip), reach))
            s.append(self._grab(hand, toy, grip))
            if kind == "show":
                near = (self.cx_person + rng.uniform(-35, 35), self.y_person + 12.0, 70.0 + grip)
                s.append(self._goto(near, rng.uniform(0.6, 1.0)))
                s.append(("shake", rng.uniform(0.6, 1.6)))
                x, y = self._free_spot(rng, _REACH)
                s.append(self._goto((x, y, grip + rng.uniform(5, 40)), rng.uniform(0.6, 1.0)))
                s.append(self._release(hand))
            elif kind == "drop":
                x, y = toy.x + rng.uniform(-60, 60), float(np.clip(toy.y + rng.uniform(-30, 30), FLOOR_FAR, FLOOR_NEAR))
                s.append(self._goto((x, y, grip + rng.uniform(50, 100)), rng.uniform(0.5, 0.9)))
                s.append(("wait", rng.uniform(0.1, 0.6)))
                s.append(self._release(hand, vx=rng.uniform(-30, 30)))
            else:
                x, y = self._free_spot(rng, _REACH)
                s.append(self._goto((x, y, grip + 8.0), rng.uniform(0.7, 1.2)))
                s.append(self._release(hand))
        elif kind == "roll":
            speed = rng.uniform(80, 220)
            ang = rng.uniform(0, 2 * math.pi)
            s.append(self._goto(lambda: (toy.x - 12 * math.cos(ang), toy.y - 6 * math.sin(ang), toy.size * 0.3), reach))

            def push(toy=toy, ang=ang, speed=speed):
                if toy.holder is None and toy.covered_by is None:
                    toy.state, toy.vx, toy.vy = ROLLING, speed * math.cos(ang), 0.5 * speed * math.sin(ang)
            s.append(("call", push))
        elif kind == "hide":
            blanket = free_blankets[int(rng.integers(len(free_blankets)))]
            grip = blanket.height * 0.6
            s.append(self._goto(self._above(blanket, grip), reach))
            s.append(self._grab(hand, blanket, grip))
            s.append(self._goto(self._above(toy, grip + 30.0), rng.uniform(0.6, 1.0)))
            s.append(self._release(hand, drape=toy))
            s.append(self._goto(hand.rest, 0.8))
            s.append(("wait", rng.uniform(1.5, 4.0)))
            s.append(self._goto(self._above(blanket, grip), reach))
            s.append(self._grab(hand, blanket, grip))
            x, y = self._free_spot(rng, _REACH)
            s.append(self._goto((toy.x + rng.uniform(-20, 20), toy.y, grip + 60.0), 0.5))
            s.append(self._goto((x, y, grip + 10.0), rng.uniform(0.6, 1.0)))
            s.append(self._release(hand))
        else:
            screen = screens[0]
            hand.focus = screen
            grip = screen.height
            s.append(self._goto(self._above(screen, grip), reach))
            s.append(self._grab(hand, screen, grip))
            nx = float(np.clip(screen.x + rng.choice([-1, 1]) * rng.uniform(60, 140), 60, PANO_W - 60))
            s.append(self._goto((nx, screen.y + 0.5, grip), rng.uniform(0.8, 1.5)))
            s.append(self._release(hand))
        s.append(self._goto(hand.rest, rng.uniform(0.6, 1.0)))
        s.append(("call", lambda: setattr(hand, "focus", None)))

    def _child_event(self) -> None:
        rng, hand = self.rng, self.hands[CHILD]
        near = [t for t in self.toys() if t.holder is None and t.covered_by is None and t.y > FLOOR_NEAR - 110
                and abs(t.x - self.cam_x) < 90]
        if not near:
            return
        toy = near[int(rng.integers(len(near)))]
        hand.focus = toy
        s = hand.steps
        grip = toy.size * 0.45
        s.append(self._goto(self._above(toy, grip), rng.uniform(0.8, 1.4)))
        if rng.random() < 0.6:
            s.append(self._grab(hand, toy, grip))
            # carried toward the camera: the target follows the head, at an offset drawn once per reach
            # (drawing it in the lambda would draw a new one every frame: a jittering hand)
            dx = float(rng.uniform(-20, 20))
            s.append(self._goto(lambda: (self.cam_x + dx, FLOOR_NEAR - 5, grip + 40), 0.8))
            s.append(("shake", rng.uniform(0.5, 1.5)))
            s.append(self._release(hand, vx=rng.uniform(-60, 60), vy=rng.uniform(-80, -20)))
        else:
            def bat(toy=toy):
                if toy.holder is None and toy.covered_by is None:
                    toy.state, toy.vx, toy.vy = ROLLING, rng.uniform(-120, 120), rng.uniform(-90, -30)
            s.append(("call", bat))
        s.append(self._goto(hand.rest, 0.9))
        s.append(("call", lambda: setattr(hand, "focus", None)))

    # ---- simulation step ------------------------------------------------------------------------------

    def _step_hand(self, hand: Hand) -> None:
        for _ in range(8):  # instant steps chain within one frame
            if hand.step is None:
                if not hand.steps:
                    break
                hand.step, hand.t0, hand.p0 = hand.steps.popleft(), self.t, (hand.x, hand.y, hand.h)
            kind = hand.step[0]
            if kind == "call":
                hand.step[1]()
                hand.step = None
                continue
            el = self.t - hand.t0
            if kind == "goto":
                tx, ty, th = hand.step[1]()
                dur = hand.step[2]
                e = _ease(el / dur)
                hand.x = hand.p0[0] + (tx - hand.p0[0]) * e
                hand.y = hand.p0[1] + (ty - hand.p0[1]) * e
                hand.h = hand.p0[2] + (th - hand.p0[2]) * e
                done = el >= dur
            elif kind == "shake":
                hand.x = hand.p0[0] + 7.0 * math.sin(2 * math.pi * 3.0 * el)
                hand.h = hand.p0[2] + 5.0 * math.sin(2 * math.pi * 3.0 * el + 1.0)
                done = el >= hand.step[1]
            else:  # wait
                done = el >= hand.step[1]
            if done:
                hand.step = None
            break
        th = hand.holding
        if th is not None:
            if th.kind == "screen":
                th.x = hand.x
            else:
                th.x, th.y, th.h = hand.x, hand.y, max(hand.h - hand.grip, 0.0)

    def _step_thing(self, th: Thing) -> None:
        dt = self.dt
        if th.holder is not None or th.covered_by is not None or th.kind == "screen":
            return
        if th.covering is not None:
            th.x, th.y = th.covering.x, th.covering.y + 0.5
            return
        if th.state == FALLING:
            th.vh -= _G * dt
            th.h += th.vh * dt
            th.x += th.vx * dt
            th.y += th.vy * dt
            if th.h <= 0.0:
                th.h = 0.0
                if th.vh < -90.0:
                    th.vh = -0.35 * th.vh
                    th.vx *= 0.7
                    th.vy *= 0.7
                else:
                    th.vh = 0.0
                    th.state = ROLLING if math.hypot(th.vx, th.vy) > 5.0 else REST
        elif th.state == ROLLING:
            friction = 0.7 if (th.kind == "toy" and CATEGORIES[th.category].rolls) else 5.0
            th.x += th.vx * dt
            th.y += th.vy * dt
            decay = math.exp(-friction * dt)
            th.vx *= decay
            th.vy *= decay
            if th.kind == "toy" and CATEGORIES[th.category].spins:
                th.angle += th.vx * dt / max(th.size * 0.45, 1.0)
            if math.hypot(th.vx, th.vy) < 5.0:
                th.state, th.vx, th.vy = REST, 0.0, 0.0
        if th.x < 20 or th.x > PANO_W - 20:
            th.vx = -th.vx
            th.x = float(np.clip(th.x, 20, PANO_W - 20))
        if th.y < FLOOR_FAR or th.y > FLOOR_NEAR:
            th.vy = -th.vy
            th.y = float(np.clip(th.y, FLOOR_FAR, FLOOR_NEAR))

    def _toy_focus(self) -> Thing | None:
        for hand in self.hands:
            if hand.focus is not None and hand.focus.kind == "toy":
                return hand.focus
        return None

    def _step_attention(self) -> None:
        rng, m = self.rng, self.model
        speaking = self._speaking()
        # caregiver gaze: at the toy in play, another toy, or the child
        if self.t >= self.gaze_until:
            focus = self._toy_focus()
            r = rng.random()
            visible = [t for t in self.toys() if t.covered_by is None]
            if r < 0.3 or not visible:
                self.gaze = None
            elif focus is not None and r < 0.8:
                self.gaze = focus
            else:
                self.gaze = visible[int(rng.integers(len(visible)))]
            self.gaze_until = self.t + float(rng.uniform(1.0, 3.0))
        # where the child looks
        if self.t >= self.fix_until:
            r = rng.random()
            focus = self._toy_focus()
            toys = [t for t in self.toys() if t.covered_by is None] or self.toys()
            if r < 0.18 + (0.25 if speaking else 0.0):
                self.fix = ("face", None)
            elif focus is not None and r < 0.65:
                self.fix = ("thing", focus)
            elif r < 0.93:
                self.fix = ("thing", toys[int(rng.integers(len(toys)))])
            else:
                self.fix = ("point", (float(rng.uniform(self.cx_person - 250, self.cx_person + 250)),
                                      float(rng.uniform(FLOOR_FAR, FLOOR_NEAR))))
            self.fix_until = self.t + float(rng.gamma(2.0, m.fixation_s / 2.0))
        if self.t >= self.approach_until and self.zoom_target > 1.0:
            self.zoom_target = 1.0
        elif self.zoom_target == 1.0 and self.fix[0] == "thing" and rng.random() < m.approach_rate * self.dt:
            self.zoom_target = float(rng.uniform(1.3, 1.7))
            self.approach_until = self.t + float(rng.uniform(2.0, 5.0))
        if not self.hands[CAREGIVER].busy and rng.random() < self.dt / 4.0:
            self._caregiver_event()
        if not self.hands[CHILD].busy and rng.random() < m.reach_rate * self.dt:
            self._child_event()

    def _fix_point(self) -> tuple[float, float]:
        kind, what = self.fix
        if kind == "face":
            d = float(depth_factor(self.y_person))
            return self.cx_person, self.y_person - _FACE_HEIGHT * d
        if kind == "thing":
            what = cast(Thing, what)  # set by the "thing" branches of the gaze policy
            d = float(depth_factor(what.y))
            return what.x, what.y - (what.h + 0.5 * what.size) * d
        return cast("tuple[float, float]", what)  # a "point" fixation holds (x, y)

    def _step_camera(self) -> None:
        w = self.model.orient_rate
        tx, ty = self._fix_point()
        for axis in ("x", "y"):
            p, v = getattr(self, f"cam_{axis}"), getattr(self, f"cam_v{axis}")
            target = tx if axis == "x" else ty
            v += (w * w * (target - p) - 2 * w * v) * self.dt
            p += v * self.dt
            setattr(self, f"cam_{axis}", p)
            setattr(self, f"cam_v{axis}", v)
        wz = 1.5
        self.zoom_v += (wz * wz * (self.zoom_target - self.zoom) - 2 * wz * self.zoom_v) * self.dt
        self.zoom += self.zoom_v * self.dt
        # wobble: AR(1) noise with a correlation time of 0.15 s whatever the frame rate: faster than
        # any deliberate head turn, so it stays separable from orienting
        rho = math.exp(-self.dt / 0.15)
        sd = self.model.wobble * math.sqrt(1 - rho * rho)
        self.jx = rho * self.jx + sd * self.rng.standard_normal()
        self.jy = rho * self.jy + sd * self.rng.standard_normal()
        moving = self.zoom_target > 1.0 and abs(self.zoom_v) > 0.02
        self.bob = self.model.bob * math.sin(2 * math.pi * 1.8 * self.t) if moving else 0.0

    def _speaking(self) -> bool:
        while self._speech_i < len(self.speech) and self.speech[self._speech_i][1] <= self.t:
            self._speech_i += 1
        return self._speech_i < len(self.speech) and self.speech[self._speech_i][0] <= self.t

    # ---- rendering ------------------------------------------------------------------------------------

    def _layers(self, view: View) -> tuple[list[Layer], dict]:
        layers: list[Layer] = []
        info: dict = {"toys": [], "hands": [], "occluders": []}
        W, H = view.width, view.height
        margin = 0.6 * max(W, H)

        def visible(sx, sy):
            return -margin < sx < W + margin and -margin < sy < H + margin

        home = self.home
        # caregiver
        px, py, scale = view.project(self.cx_person, self.y_person)
        if visible(px, py):
            layers.append(Layer(torso_sprite(home.caregiver, size_bucket(_TORSO_SIZE * scale)), int(px), int(py),
                                self.y_person))
        fx, fy, _ = view.project(self.cx_person, self.y_person, _FACE_HEIGHT)
        if self.gaze is None:
            gb = GAZE_CAMERA
        else:
            gx, gy, _ = view.project(self.gaze.x, self.gaze.y, self.gaze.h + 0.5 * self.gaze.size)
            gb = angle_bucket(math.atan2(gy - fy, gx - fx))
        talking = self._speaking() and math.sin(2 * math.pi * 3.5 * self.t) > 0
        self.face_gaze_bucket = gb
        layers.append(Layer(face_sprite(home.caregiver, size_bucket(_FACE_SIZE * scale), gb, talking),
                            int(fx), int(fy), self.y_person + 0.01, FACE_TRACK))
        # things
        hand_depth = {}
        for hand in self.hands:
            hand_depth[id(hand)] = (hand.y + 0.4) if hand.owner == CAREGIVER else 1e6
        for th in self.things:
            sx, sy, sc = view.project(th.x, th.y, th.h)
            depth = th.y if th.holder is None else hand_depth[id(th.holder)] - 0.01
            if th.covering is not None:
                depth = th.covering.y + 0.3
            if th.kind == "toy":
                info["toys"].append(th)
                if not visible(sx, sy):
                    continue
                if th.h < 60 and th.holder is None or th.h < 5:
                    gx, gy, gsc = view.project(th.x, th.y, 0.0)
                    sw = th.size * gsc * max(0.4, 1.0 - th.h / 120.0)
                    sh = shadow_sprite(int(sw), max(2, int(sw * 0.28)))
                    if sh is not None:
                        layers.append(Layer(sh, int(gx), int(gy), th.y - 0.4, occludes=False))
                sp = toy_sprite(th.category, th.instance, size_bucket(th.size * sc), angle_bucket(th.angle))
                if sp is not None:
                    layers.append(Layer(sp, int(sx), int(sy), depth, th.track))
            else:
                info["occluders"].append(th)
                if not visible(sx, sy):
                    continue
                sp = occluder_sprite(th.style, size_bucket(th.width * sc), size_bucket(th.height * sc))
                layers.append(Layer(sp, int(sx), int(sy), depth, th.track))
        # hands and arms
        for k, hand in enumerate(self.hands):
            hx, hy, hs = view.project(hand.x, hand.y, hand.h)
            if hand.owner == CAREGIVER:
                sxs, sys_, _ = view.project(self.cx_person + 30.0, self.y_person, 82.0)
                colour, skin, depth, radius = home.caregiver.shirt, home.caregiver.skin, hand.y + 0.4, 8.0 * hs
                size = _HAND_SIZE * hs
            else:
                sxs, sys_ = W * 0.62, H * 1.15
                colour, skin, depth, radius = home.sleeve, home.skin, 1e6, 0.045 * W * view.zoom
                size = 0.12 * W * view.zoom
                hy = min(hy, H * 1.3)
            info["hands"].append((HAND_TRACK + k, hand))
            if not (visible(hx, hy) or visible(sxs, sys_)):
                continue
            arm = capsule_sprite(sxs, sys_, hx, hy, radius, colour)
            if arm is not None:
                layers.append(Layer(arm[0], arm[1], arm[2], depth - 0.001))
            ang = angle_bucket(math.atan2(hy - sys_, hx - sxs))
            layers.append(Layer(hand_sprite(skin, size_bucket(size), ang), int(hx), int(hy), depth, HAND_TRACK + k))
        return layers, info

    def frames(self) -> Iterator[np.ndarray]:
        """Simulate and render the recording; yields (height, width, 3) uint8 frames. Truth: `self.truth`."""
        if getattr(self, "_started", False):
            raise RuntimeError(f"{self.spec.video_id}: a Recording renders once; make a new one to render again")
        self._started = True
        spec = self.spec
        self.t = 0.0
        self.episode = -1
        self.jx = self.jy = self.bob = 0.0
        self._speech_i = 0
        self._next_track = 0
        self._new_episode()
        for i in range(spec.n_frames):
            self.t = i * self.dt
            if self.t >= self.episode_end:
                self._new_episode()
            self._step_attention()
            step = _SHUFFLE_SPEED * self.dt
            self.cx_person += float(np.clip(self.person_goal - self.cx_person, -step, step))
            for hand in self.hands:
                self._step_hand(hand)
            for th in self.things:
                self._step_thing(th)
            self._step_camera()
            zoom = float(np.clip(self.zoom, 0.8, 2.0))
            cx, cy = clamp_view(self.cam_x + self.jx, self.cam_y + self.jy + self.bob, zoom, spec.width, spec.height)
            view = View(cx, cy, zoom, spec.width, spec.height)
            layers, info = self._layers(view)
            background = self.room.view(view)
            # kept (by reference, no copy) so that tests can re-compose a frame without one layer
            self.last_scene = (background, layers, self._light[i])
            frame, seen = compose(background, layers, self._light[i])
            self.truth.add_frame(i, view, self._light[i], self.episode, info, seen, self)
            yield frame
        self.utterances = caregiver_utterances(self.truth, self.speech,
                                               stream(spec.seed, spec.child, spec.index, 0x7A1C))
        self.truth.utterances = self.utterances
