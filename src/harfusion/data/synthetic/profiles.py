"""What each activity looks like, as data: per activity the posture, the rhythms (gait-like
periodic motion of each sensor and its impacts), bursts of task motion, vibration and the
heart-rate intensity, in body axes (HAND, CHEST, ANKLE; FWD, LAT, UP; ROLL, PITCH, YAW).
`motion` turns a profile and a subject's traits into sensor readings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harfusion.data.synthetic.pamap2_format import TRANSIENT_ACTIVITY

HAND, CHEST, ANKLE = 0, 1, 2
FWD, LAT, UP = 0, 1, 2  # heading-frame axes; a rotation about them is roll, pitch, yaw
ROLL, PITCH, YAW = 0, 1, 2


@dataclass(frozen=True)
class Term:
    """One harmonic of a rhythm: linear acceleration (m/s²) or rotation (rad) on one axis."""

    sensor: int
    rot: bool
    axis: int
    harmonic: float
    amp: float
    phase: float = 0.0


@dataclass(frozen=True)
class Impact:
    """A shock once per cycle (heel strike, pole plant, landing): a narrow pulse in m/s²."""

    sensor: int
    harmonic: float
    amp: float
    width_s: float
    direction: tuple[float, float, float] = (0.2, 0.0, 1.0)
    phase: float = 0.0


@dataclass(frozen=True)
class Rhythm:
    """Periodic motion at `hz` (a stride, a pedal turn, an ironing stroke), maybe intermittent."""

    hz: float
    terms: tuple[Term, ...]
    impacts: tuple[Impact, ...] = ()
    duty: float = 1.0  # fraction of time the rhythm runs
    bout_s: float = 5.0  # mean length of one run when duty < 1
    cadence: bool = True  # scales with the subject's cadence


@dataclass(frozen=True)
class Burst:
    """Irregular motion (gestures, typing, kicks): band-limited noise switched on and off."""

    sensor: int
    rate_hz: float  # bursts per second of rest
    on_s: float
    band_hz: float
    rot: float
    lin: float


@dataclass(frozen=True)
class Profile:
    """Everything that makes one activity look like itself."""

    intensity: float  # fraction of the heart-rate reserve
    posture: tuple[tuple[float, float, float], ...]  # per sensor: pitch, roll, yaw (degrees)
    # Log-sd between subjects of how vigorously they do it, overall or per sensor.
    style: float | tuple[float, float, float] = 0.15
    arm: float = 0.5  # m from the pivot of the hand's rotations to the wrist (shoulder: 0.5)
    carry: float = 1.0  # how much of the trunk's acceleration reaches the wrist
    # Per sensor, the chance that a subject moves that limb at half the rhythm's rate (rope
    # jumping: a double bounce per turn of the rope, or one foot per jump).
    halves: tuple[float, float, float] = (0.0, 0.0, 0.0)
    still: float = 0.0  # the chance that a subject keeps the arm still (STILL_ARM)
    vigour: float = 0.25  # log-sd of the effort, wandering over seconds within a bout
    jitter_deg: float = 4.0  # posture varies between bouts (and between subjects: POSE_SD_DEG)
    sway: float = 0.02  # rad, postural sway (~1 Hz)
    drift: float = 0.08  # rad, slow posture shifts (~0.1 Hz)
    rhythms: tuple[Rhythm, ...] = ()
    bursts: tuple[Burst, ...] = ()
    vibration: tuple[float, float, float] = (0.0, 0.0, 0.0)  # m/s², shared broadband shaking
    body_lin: float = 0.0  # m/s², low-frequency whole-body acceleration (a car)
    turn: float = 0.0  # rad/s, how fast the heading wanders


def _walk(
    chest: float = 1.0,
    hand: float = 1.0,
    swing: float = 0.35,
    ankle: float = 1.0,
    heel: float = 15.0,
    heel_width: float = 0.03,
    lift: float = 0.0,
    lift_phase: float = 0.0,
    shape: float = 0.0,
    pole: float = 0.0,
    shank: float | None = None,
) -> tuple[tuple[Term, ...], tuple[Impact, ...]]:
    """Terms of one gait cycle (a stride = two steps); the knobs are what activities vary.

    `ankle` scales the foot's linear motion and `shank` its rotation (default: the same).
    """
    shank = ankle if shank is None else shank
    terms = (
        Term(CHEST, False, UP, 2, 2.0 * chest),
        Term(CHEST, False, FWD, 2, 1.0 * chest, 1.2),
        Term(CHEST, False, LAT, 1, 0.7 * chest),
        Term(CHEST, True, ROLL, 1, 0.04 * chest),
        Term(CHEST, True, YAW, 1, 0.05 * chest, 0.4),
        Term(HAND, True, PITCH, 1, swing),
        Term(HAND, True, ROLL, 1, 0.2 * swing, 0.5),
        Term(HAND, False, FWD, 1, 1.5 * hand),
        Term(HAND, False, UP, 2, 0.9 * hand),
        Term(ANKLE, True, PITCH, 1, 0.5 * shank),
        Term(ANKLE, True, PITCH, 2, 0.15 * shank, 0.8 + shape),
        Term(ANKLE, True, PITCH, 3, 0.06 * shank, 1.5 - shape),
        Term(ANKLE, False, FWD, 1, 4.0 * ankle),
        Term(ANKLE, False, FWD, 2, 2.0 * ankle, shape),
        Term(ANKLE, False, UP, 2, 3.0 * ankle, 0.5),
        Term(ANKLE, False, UP, 1, lift, lift_phase),
    )
    impacts = (
        Impact(ANKLE, 1, heel, heel_width),
        Impact(CHEST, 2, 0.15 * heel * chest, 0.05, (0.0, 0.0, 1.0), 0.2),
    )
    if pole:
        impacts += (Impact(HAND, 1, pole, 0.04, (-0.5, 0.0, 1.0), np.pi),)
    return terms, impacts


def _rhythm(
    hz: float,
    gait: tuple[tuple[Term, ...], tuple[Impact, ...]],
    duty: float = 1.0,
    bout_s: float = 5.0,
) -> Rhythm:
    return Rhythm(hz, gait[0], gait[1], duty, bout_s)


def _t(
    sensor: int, rot: bool, axis: int, amp: float, harmonic: float = 1, phase: float = 0.0
) -> Term:
    return Term(sensor, rot, axis, harmonic, amp, phase)


# Postures per sensor (hand, chest, ankle) as (pitch, roll, yaw): pitch tilts the segment forward.
STAND = ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
SIT = ((-70.0, 25.0, 0.0), (-12.0, 0.0, 0.0), (-35.0, 0.0, 0.0))
LIE = ((-90.0, 40.0, 0.0), (-88.0, 0.0, 0.0), (-88.0, 0.0, 0.0))


def _posture(
    base: tuple[tuple[float, float, float], ...],
    hand: tuple[float, float, float] | None = None,
    chest: tuple[float, float, float] | None = None,
    ankle: tuple[float, float, float] | None = None,
) -> tuple[tuple[float, float, float], ...]:
    return (hand or base[HAND], chest or base[CHEST], ankle or base[ANKLE])


_BREATH = Rhythm(0.25, (_t(CHEST, True, PITCH, 0.012), _t(CHEST, False, FWD, 0.05)), cadence=False)
_GESTURES = Burst(HAND, 0.1, 2.5, 1.0, 0.3, 0.7)

# The arms do more than swing with the legs: a hand on the rail, wiping the face, regripping;
# more often in vigorous exercise (sweat, hair, a glance at the watch).
_ARM_ASIDE = Burst(HAND, 0.15, 3.0, 0.8, 0.2, 0.5)
_ARM_BUSY = Burst(HAND, 0.3, 3.0, 0.8, 0.3, 1.0)
_SHIFT_FEET = Burst(ANKLE, 0.04, 2.0, 0.6, 0.06, 0.25)
_SLOW_WALK = _walk(chest=0.6, hand=0.5, swing=0.2, ankle=0.7, heel=9.0)
PROFILES: dict[int, Profile] = {
    TRANSIENT_ACTIVITY: Profile(
        0.15,
        STAND,
        rhythms=(_rhythm(0.8, _SLOW_WALK, duty=0.5, bout_s=3.0),),
        bursts=(_GESTURES,),
        turn=0.3,
        arm=0.4,
    ),
    1: Profile(
        0.03,
        LIE,
        jitter_deg=6.0,
        sway=0.008,
        drift=0.1,
        rhythms=(_BREATH,),
        bursts=(Burst(HAND, 0.03, 2.0, 0.8, 0.2, 0.3),),
        arm=0.2,
    ),
    2: Profile(
        0.07,
        SIT,
        sway=0.015,
        drift=0.12,
        rhythms=(_BREATH,),
        bursts=(Burst(HAND, 0.3, 2.5, 1.0, 0.2, 0.5), _SHIFT_FEET),
        arm=0.2,
    ),
    3: Profile(
        0.12,
        STAND,
        sway=0.025,
        rhythms=(_BREATH,),
        bursts=(_GESTURES, _SHIFT_FEET),
        arm=0.3,
    ),
    4: Profile(0.30, STAND, rhythms=(_rhythm(0.9, _walk()),), turn=0.1, still=0.2),
    5: Profile(
        0.70,
        _posture(STAND, hand=(-60.0, 0.0, 0.0), chest=(8.0, 0.0, 0.0)),
        rhythms=(
            _rhythm(
                1.3,
                _walk(
                    chest=3.1,
                    hand=13.0,
                    swing=0.8,
                    ankle=3.0,
                    shank=1.4,
                    heel=80.0,
                    heel_width=0.022,
                ),
            ),
        ),
        bursts=(_ARM_BUSY,),
        turn=0.1,
        style=(0.2, 0.2, 0.0),  # some runners swing their arms much wider than others
        vigour=0.2,
        still=0.25,
    ),
    6: Profile(
        0.45,
        _posture(STAND, hand=(-65.0, 0.0, 0.0), chest=(25.0, 0.0, 0.0), ankle=(-20.0, 0.0, 0.0)),
        sway=0.01,
        rhythms=(
            Rhythm(
                1.2,
                (
                    _t(ANKLE, True, PITCH, 0.6),
                    _t(ANKLE, True, PITCH, 0.1, 2, 0.5),
                    _t(ANKLE, False, FWD, 4.0),
                    _t(ANKLE, False, UP, 4.0, 1, np.pi / 2),
                    _t(CHEST, True, ROLL, 0.03),
                    _t(CHEST, False, LAT, 0.3),
                ),
            ),
        ),
        vibration=(0.3, 0.4, 0.4),
        turn=0.08,
        arm=0.3,
    ),
    7: Profile(
        0.45,
        _posture(STAND, hand=(-15.0, 0.0, 0.0), chest=(3.0, 0.0, 0.0)),
        rhythms=(_rhythm(0.93, _walk(chest=1.05, hand=2.0, swing=0.6, pole=12.0)),),
        turn=0.1,
    ),
    12: Profile(
        0.70,
        _posture(STAND, chest=(8.0, 0.0, 0.0)),
        rhythms=(
            _rhythm(
                0.8,
                _walk(
                    chest=2.1,
                    hand=0.6,
                    swing=0.45,
                    ankle=2.0,
                    shank=1.3,
                    heel=28.0,
                    heel_width=0.05,
                    lift=5.0,
                    shape=2.0,
                ),
                duty=0.85,  # a pause on each landing
                bout_s=8.0,
            ),
        ),
        bursts=(_ARM_ASIDE,),
        turn=0.8,  # round the landings
        style=(0.12, 0.15, 0.25),  # step height and how one climbs differ most
    ),
    13: Profile(
        0.56,
        STAND,
        rhythms=(
            _rhythm(
                1.0,
                _walk(
                    chest=2.2, hand=0.1, swing=0.2, ankle=1.0, heel=35.0, lift=3.0, lift_phase=np.pi
                ),
                duty=0.85,
                bout_s=8.0,
            ),
        ),
        bursts=(_ARM_ASIDE,),
        turn=0.8,
        style=(0.08, 0.12, 0.2),
    ),
    16: Profile(
        0.36,
        _posture(STAND, hand=(-60.0, 0.0, 0.0), chest=(12.0, 0.0, 0.0)),
        rhythms=(
            Rhythm(
                0.55,
                (
                    _t(HAND, False, FWD, 4.0),
                    _t(HAND, True, PITCH, 0.3),
                    _t(HAND, True, YAW, 0.2, 1, 1.0),
                    _t(CHEST, False, FWD, 1.0),
                    _t(CHEST, True, YAW, 0.08, 1, 0.5),
                    _t(CHEST, True, PITCH, 0.05),
                ),
                duty=0.85,
                bout_s=10.0,
            ),
            _rhythm(0.75, _SLOW_WALK, duty=0.35, bout_s=3.0),
        ),
        turn=0.4,
        arm=0.4,
    ),
    17: Profile(
        0.12,
        _posture(STAND, hand=(-80.0, -10.0, 20.0), chest=(6.0, 0.0, 0.0)),
        rhythms=(
            _BREATH,
            Rhythm(
                0.8,
                (
                    _t(HAND, False, FWD, 2.5),
                    _t(HAND, False, FWD, 0.8, 2, 0.7),
                    _t(HAND, False, LAT, 0.8, 1, 1.5),
                    _t(HAND, True, YAW, 0.15),
                    _t(HAND, True, ROLL, 0.08, 1, 0.5),
                    _t(CHEST, True, YAW, 0.02),
                ),
                duty=0.8,
                bout_s=8.0,
            ),
        ),
        bursts=(Burst(HAND, 0.05, 3.0, 1.0, 0.4, 0.8), _SHIFT_FEET),
        arm=0.3,
    ),
    24: Profile(
        0.80,
        _posture(STAND, hand=(-45.0, 0.0, 30.0), chest=(5.0, 0.0, 0.0)),
        rhythms=(
            Rhythm(
                2.4,
                (
                    _t(CHEST, False, UP, 15.0),
                    _t(CHEST, False, UP, 4.0, 2),
                    _t(CHEST, True, PITCH, 0.1),
                    _t(CHEST, True, ROLL, 0.05, 1, 1.0),
                    _t(CHEST, False, LAT, 1.5, 0.5),  # weight shifting from side to side
                    _t(CHEST, True, ROLL, 0.04, 0.5),
                    _t(HAND, True, ROLL, 0.2),
                    _t(HAND, True, PITCH, 0.15, 1, np.pi / 2),
                    _t(HAND, False, UP, 2.0),
                    _t(HAND, False, FWD, 2.0, 1, np.pi / 2),
                    _t(ANKLE, False, UP, 12.0),
                    _t(ANKLE, True, PITCH, 0.25),
                ),
                (
                    Impact(ANKLE, 1, 68.0, 0.02, (0.1, 0.0, 1.0)),
                    Impact(CHEST, 1, 40.0, 0.03, (0.0, 0.0, 1.0)),
                ),
                duty=0.95,  # a stop now and then, when the rope catches
                bout_s=30.0,
            ),
        ),
        bursts=(_ARM_BUSY,),
        arm=0.3,  # the forearms turn the rope; the arms stay by the body, elbows bent
        carry=0.6,
        halves=(0.6, 0.0, 0.4),  # a double bounce per turn of the rope; the boxer's skip
        vigour=0.12,  # the rope keeps the pace
        style=(0.3, 0.18, 0.0),  # the rope sets the jump; people turn it with arms or wrists
    ),
    9: Profile(
        0.04,
        _posture(SIT, hand=(-60.0, 40.0, 0.0)),
        sway=0.01,
        drift=0.12,
        rhythms=(_BREATH,),
        bursts=(Burst(HAND, 0.03, 1.0, 2.0, 0.1, 0.3), _SHIFT_FEET),
        arm=0.2,
    ),
    10: Profile(
        0.07,
        _posture(SIT, hand=(-80.0, 10.0, 0.0)),
        sway=0.012,
        drift=0.12,
        rhythms=(_BREATH,),
        bursts=(
            Burst(HAND, 0.25, 12.0, 7.0, 0.02, 1.0),  # typing
            Burst(HAND, 0.1, 3.0, 1.5, 0.15, 0.6),  # the mouse
            _SHIFT_FEET,
        ),
        arm=0.1,  # typing and the mouse: the wrist barely leaves the desk
    ),
    11: Profile(
        0.12,
        _posture(SIT, hand=(-50.0, 0.0, 0.0), chest=(-15.0, 0.0, 0.0)),
        sway=0.015,
        rhythms=(_BREATH,),
        bursts=(Burst(HAND, 0.08, 4.0, 0.4, 0.35, 0.3), Burst(ANKLE, 0.1, 3.0, 0.5, 0.12, 0.2)),
        vibration=(0.35, 0.7, 0.15),
        body_lin=0.8,
        turn=0.12,
        arm=0.25,
    ),
    18: Profile(
        0.15,
        _posture(STAND, hand=(-70.0, 0.0, 0.0), chest=(15.0, 0.0, 0.0)),
        rhythms=(_rhythm(0.8, _SLOW_WALK, duty=0.1, bout_s=2.0),),
        bursts=(Burst(HAND, 0.3, 3.0, 1.2, 0.5, 1.5), Burst(CHEST, 0.1, 2.0, 0.6, 0.1, 0.4)),
        turn=0.2,
        arm=0.3,
    ),
    19: Profile(
        0.30,
        _posture(STAND, hand=(-50.0, 0.0, 0.0), chest=(20.0, 0.0, 0.0)),
        rhythms=(
            Rhythm(
                1.0,
                (
                    _t(HAND, False, FWD, 3.0),
                    _t(HAND, False, LAT, 3.0, 1, np.pi / 2),
                    _t(HAND, True, YAW, 0.3),
                ),
                duty=0.6,
                bout_s=6.0,
            ),
            _rhythm(0.8, _SLOW_WALK, duty=0.3, bout_s=4.0),
        ),
        bursts=(Burst(CHEST, 0.05, 3.0, 0.3, 0.4, 0.5),),
        turn=0.3,
        arm=0.4,
    ),
    20: Profile(
        0.65,
        _posture(STAND, hand=(-45.0, 0.0, 0.0), chest=(10.0, 0.0, 0.0)),
        rhythms=(
            _rhythm(
                1.3,
                _walk(
                    chest=3.0,
                    hand=10.0,
                    swing=0.7,
                    ankle=2.8,
                    shank=1.3,
                    heel=70.0,
                    heel_width=0.022,
                ),
                duty=0.5,
                bout_s=5.0,
            ),
            _rhythm(0.85, _walk(), duty=0.3, bout_s=4.0),
        ),
        bursts=(Burst(ANKLE, 0.1, 0.4, 4.0, 0.5, 20.0),),
        turn=0.8,
    ),
}
