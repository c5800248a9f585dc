"""Deterministic synthetic PAMAP2: raw `.dat` files a PAMAP2 reader cannot tell apart by format.

No download is possible on a fresh machine, so the default data set is generated. It has to be
realistic enough for the experiments to mean something: every activity has a physical motion
model (posture sets the gravity direction seen by each sensor, gait-like periodic motion with a
subject-specific cadence, task motion of the hand, vibration), heart rate follows intensity with
a first-order lag, and subjects differ in sensor mounting, vigour, cadence and resting heart rate.
Several activity pairs differ mainly in one modality (sitting / watching TV / computer work in
hand motion, standing / ironing in the hand, ascending / descending stairs in the ankle, walking /
Nordic walking in the hand, car driving / sitting in whole-body vibration; heart rate adds the
intensity that separates vacuuming from ironing or Nordic from plain walking when a limb sensor is
missing), so single-modality models lose to fusion without any class being trivial.

It must also be about as hard as real recordings, or conclusions drawn on it would not hold on
people. The body carries the limbs (the wrist moves with the trunk and swings about the shoulder,
so a running arm feels the swing's tangential and centripetal acceleration), sensors sit
differently on everyone (tilted, sometimes turned over), and each subject does each activity in
their own way: vigour per limb, cadence, how a limb is held, whether the arm swings or stays
still, the shape of their gait, a double bounce or a boxer's skip over the rope. Amplitudes,
sensor noise and heart-rate levels were calibrated against real PAMAP2 recordings with
`benchmarks/synthetic_realism.py`, which prints how close the default set comes.

Every random draw comes from a generator seeded with `(seed, subject, ...)`, so a subject's files
do not depend on which other subjects are generated (except in the rare case where an activity
would fall below three subjects and is given back to one that had dropped it).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harfusion.atomic import atomic_path
from harfusion.data.pamap2 import (
    OPTIONAL_ACTIVITIES,
    PROTOCOL_ACTIVITIES,
    RAW_FIELDS,
    SAMPLE_RATE_HZ,
    SESSIONS,
    TRANSIENT_ACTIVITY,
)
from harfusion.params import SyntheticParams

FS = int(SAMPLE_RATE_HZ)
G = 9.81
ACC6_LIMIT = 6 * G  # the ±6 g accelerometer saturates here; the ±16 g one at 16 g
ACC16_LIMIT = 16 * G
EARTH_FIELD_UT = np.array([20.0, 0.0, -44.0])  # central Europe: north, west, up
HAND, CHEST, ANKLE = 0, 1, 2
FWD, LAT, UP = 0, 1, 2  # heading-frame axes; a rotation about them is roll, pitch, yaw
ROLL, PITCH, YAW = 0, 1, 2
SHORT_SUBJECTS = frozenset({109})  # like the real 109: only a few activities
OPTIONAL_SUBJECTS = frozenset({101, 105, 106, 108, 109})  # real PAMAP2 subjects with Optional
# The real protocol order: sedentary, household, stairs, locomotion, vigorous.
PROTOCOL_ORDER = (1, 2, 3, 17, 16, 12, 13, 4, 7, 6, 5, 24)
OPTIONAL_ORDER = (9, 10, 11, 18, 19, 20)
MIN_SUBJECTS_PER_ACTIVITY = 3
_PI = np.pi
# The body carries the limbs: the wrist moves with the shoulder, sharp shocks softened by the
# shoulder and elbow (a moving average over this long), and swings about it, so it also feels the
# swing's tangential and centripetal acceleration.
ARM_DAMPING_S = 0.06
# How sensors sit on people: a tilt of up to this many degrees per sensor, and the chance that a
# limb sensor is strapped on turned over (180° about the limb; real subject 108's hand and ankle).
MOUNT_DEG = ((10.0, 75.0), (4.0, 22.0), (4.0, 16.0))
MOUNT_FLIP_P = (0.4, 0.0, 0.1)
# How differently people hold a limb while doing the same thing (sd of pitch, roll, yaw offsets in
# degrees, per sensor), and how their cadence differs from activity to activity (log-sd).
POSE_SD_DEG = (35.0, 8.0, 8.0)
CADENCE_STYLE = 0.08
# Everyone's gait has its own shape (gait is a biometric): per subject and activity each harmonic
# of a segment's rotation gets its own amplitude (log-sd) and phase offset (sd, rad). Rotations
# only: they reshape what each axis sees without changing the size of the acceleration.
SHAPE_AMP_SD = 0.3
SHAPE_PHASE_SD = 1.0
# Some people keep the arm nearly still where others swing it (a bag or a bottle carried, the arm
# held bent at the chest while running): with the activity's `still` chance, the hand's rhythmic
# motion shrinks to this fraction. The wrist still rides on the trunk, so it keeps the body's
# bounce and loses only the swing.
STILL_ARM = 0.15
MAX_TERMS = 32  # drawn for every activity whatever its rhythms hold, so draws stay aligned
# White noise per sensor, measured on real PAMAP2 at rest (hand, chest, ankle).
ACC_NOISE = (0.12, 0.10, 0.2)  # m/s²
GYRO_NOISE = 0.025  # rad/s
MAG_NOISE = 0.35  # µT


# --- Motion model vocabulary ---------------------------------------------------------------


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
        impacts += (Impact(HAND, 1, pole, 0.04, (-0.5, 0.0, 1.0), _PI),)
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
                    _t(ANKLE, False, UP, 4.0, 1, _PI / 2),
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
                    chest=2.2, hand=0.1, swing=0.2, ankle=1.0, heel=35.0, lift=3.0, lift_phase=_PI
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
                    _t(HAND, True, PITCH, 0.15, 1, _PI / 2),
                    _t(HAND, False, UP, 2.0),
                    _t(HAND, False, FWD, 2.0, 1, _PI / 2),
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
                    _t(HAND, False, LAT, 3.0, 1, _PI / 2),
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

# Segment frames: columns are the sensor axes in the heading frame when the posture is upright.
_BASE_FRAME = (
    np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]]),  # hand: x down the forearm
    np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),  # chest: y up
    np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),  # ankle: x up the shank
)


# --- Small numerical helpers ---------------------------------------------------------------


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFF_FFFF_FFFF_FFFF, *key])


def _smooth_noise(rng: np.random.Generator, n: int, knot_s: float, dims: int = 1) -> np.ndarray:
    """Band-limited noise (~N(0, 1)): random knots every `knot_s`, smoothstep-interpolated."""
    step = max(knot_s * FS, 1.0)
    knots = rng.standard_normal((int(n / step) + 3, dims))
    pos = np.arange(n) / step + rng.random()
    i = pos.astype(np.int64)
    s = pos - i
    s = (s * s * (3.0 - 2.0 * s))[:, None]
    return knots[i] * (1.0 - s) + knots[i + 1] * s


def _envelope(rng: np.random.Generator, n: int, on_s: float, off_s: float) -> np.ndarray:
    """On/off switching with exponential bout lengths and soft edges, in [0, 1]."""
    mean = on_s + off_s
    count = int(n / (mean * FS)) * 2 + 8
    on = np.maximum(rng.exponential(on_s * FS, count), 20).astype(np.int64)
    off = np.maximum(rng.exponential(off_s * FS, count), 20).astype(np.int64)
    while on.sum() + off.sum() < n:  # rarely taken: lengthen until the bouts cover the segment
        on, off = on * 2, off * 2
    lengths = np.column_stack([off, on]).ravel()
    lengths[0] = int(rng.random() * lengths[0])
    state = np.repeat(np.tile([0.0, 1.0], count), lengths)[:n]
    ramp = 25
    csum = np.concatenate(
        [[0.0], np.cumsum(np.pad(state, (ramp // 2, ramp - ramp // 2 - 1), "edge"))]
    )
    return (csum[ramp:] - csum[:-ramp]) / ramp


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _posture_matrix(pitch: float, roll: float, yaw: float, base: np.ndarray) -> np.ndarray:
    """Segment axes in the heading frame: yaw · pitch · roll applied to the upright frame."""
    rz = _rotation(np.array([0.0, 0.0, 1.0]), np.radians(yaw))
    ry = _rotation(np.array([0.0, 1.0, 0.0]), np.radians(pitch))
    rx = _rotation(np.array([1.0, 0.0, 0.0]), np.radians(roll))
    return rz @ ry @ rx @ base


def _rotate(v: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Rodrigues: rotate each row of `v` by the rotation vector in the same row of `theta`."""
    angle = np.linalg.norm(theta, axis=1, keepdims=True)
    k = theta / np.maximum(angle, 1e-12)
    cos, sin = np.cos(angle), np.sin(angle)
    dot = np.sum(k * v, axis=1, keepdims=True)
    return v * cos + np.cross(k, v) * sin + k * dot * (1.0 - cos)


# --- Subjects and plans ---------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How one subject does one activity."""

    amp: np.ndarray  # (3,) vigour per sensor
    cadence: float
    pose: np.ndarray  # (3, 3) degrees added to the activity's posture per sensor
    halves: np.ndarray  # (3,) bool: the limb moves at half the rhythm's rate
    shape_amp: np.ndarray  # (MAX_TERMS,) factor per term of a rhythm
    shape_phase: np.ndarray  # (MAX_TERMS,) rad per term of a rhythm
    swing: float  # factor on the hand's rhythmic motion (STILL_ARM for a still arm)


def _style(rng: np.random.Generator, profile: Profile, still: bool) -> Style:
    return Style(
        swing=STILL_ARM if still else 1.0,
        amp=np.exp(np.asarray(profile.style) * rng.standard_normal(3)),
        cadence=float(np.exp(CADENCE_STYLE * rng.standard_normal())),
        pose=rng.normal(0.0, 1.0, (3, 3)) * np.array(POSE_SD_DEG)[:, None],
        halves=rng.random(3) < np.asarray(profile.halves),
        shape_amp=np.exp(SHAPE_AMP_SD * rng.standard_normal(MAX_TERMS)),
        shape_phase=SHAPE_PHASE_SD * rng.standard_normal(MAX_TERMS),
    )


@dataclass(frozen=True)
class Traits:
    """What stays fixed for one subject: physique, fitness and how the sensors were strapped on."""

    cadence: float
    amp: np.ndarray  # per sensor
    rest_hr: float
    max_hr: float
    fitness: float
    tau_up: float
    tau_down: float
    mount: np.ndarray  # (3, 3, 3): per sensor, segment → sensor rotation
    style: dict[int, Style]  # per activity
    hard_iron: np.ndarray  # (3, 3) µT
    gyro_bias: np.ndarray  # (3, 3) rad/s
    acc6_scale: np.ndarray  # (3, 3)
    acc6_bias: np.ndarray  # (3, 3) m/s²
    temp_base: np.ndarray  # (3,) °C
    temp_rise: np.ndarray  # (3,) °C


def _mount(rng: np.random.Generator, sensor: int) -> np.ndarray:
    low, high = MOUNT_DEG[sensor]
    tilt = _rotation(rng.standard_normal(3), np.radians(rng.uniform(low, high)))
    flip = np.diag([1.0, -1.0, -1.0]) if rng.random() < MOUNT_FLIP_P[sensor] else np.eye(3)
    return flip @ tilt


def _traits(seed: int, subject: int) -> Traits:
    rng = _rng(seed, subject, 0)
    mount = np.stack([_mount(rng, s) for s in range(3)])
    styles = _rng(seed, subject, 5)
    arms = _rng(seed, subject, 6)  # a stream of its own: the older style draws stay as they were
    style = {
        activity: _style(styles, profile, bool(arms.random() < profile.still))
        for activity, profile in sorted(PROFILES.items())
    }
    return Traits(
        cadence=rng.uniform(0.93, 1.07),
        amp=rng.uniform(0.95, 1.05) * rng.uniform(0.95, 1.05, 3),
        rest_hr=rng.uniform(55.0, 85.0),
        max_hr=rng.uniform(175.0, 200.0),
        fitness=rng.uniform(0.8, 1.2),
        tau_up=rng.uniform(20.0, 50.0),
        tau_down=rng.uniform(40.0, 90.0),
        mount=mount,
        style=style,
        hard_iron=rng.normal(0.0, 2.0, (3, 3)),
        gyro_bias=rng.normal(0.0, 0.015, (3, 3)),
        acc6_scale=1.0 + rng.normal(0.0, 0.01, (3, 3)),
        acc6_bias=rng.normal(0.0, 0.2, (3, 3)),
        temp_base=np.array([31.5, 34.5, 32.5]) + rng.normal(0.0, 0.8, 3),
        temp_rise=rng.uniform(0.5, 2.0, 3),
    )


@dataclass
class _Draft:
    """One subject's plan before coverage is balanced across subjects."""

    subject: int
    short: bool
    factors: dict[int, float]
    protocol: list[int]
    protocol_dropped: list[int]
    optional: list[int] | None
    optional_dropped: list[int]
    optional_spare: list[int]  # what the subject would do if given an Optional session
    order_swap: int | None
    priority: float


def _draft(seed: int, subject: int) -> _Draft:
    rng = _rng(seed, subject, 1)
    everything = PROTOCOL_ACTIVITIES + OPTIONAL_ACTIVITIES
    factors = dict(zip(everything, rng.uniform(0.6, 1.4, len(everything)).tolist(), strict=True))
    drop_p = rng.random(len(PROTOCOL_ORDER)) < 0.06
    short_keep = rng.choice(len(PROTOCOL_ORDER), 3, replace=False)
    swap = int(rng.integers(0, len(PROTOCOL_ORDER) - 1)) if rng.random() < 0.3 else None
    coin_optional = rng.random() < 0.5
    drop_o = rng.random(len(OPTIONAL_ORDER)) < 0.08
    short_keep_o = rng.choice(len(OPTIONAL_ORDER), 3, replace=False)
    priority = float(rng.random())

    short = subject in SHORT_SUBJECTS
    if short:
        drop_p = ~np.isin(np.arange(len(PROTOCOL_ORDER)), short_keep)
        drop_o = ~np.isin(np.arange(len(OPTIONAL_ORDER)), short_keep_o)
    else:  # a subject lacks at most two activities per session
        drop_p &= np.cumsum(drop_p) <= 2
        drop_o &= np.cumsum(drop_o) <= 2
    keep_o = [a for a, d in zip(OPTIONAL_ORDER, drop_o, strict=True) if not d]
    has_optional = subject in OPTIONAL_SUBJECTS or (not 101 <= subject <= 109 and coin_optional)
    return _Draft(
        subject=subject,
        short=short,
        factors=factors,
        protocol=[a for a, d in zip(PROTOCOL_ORDER, drop_p, strict=True) if not d],
        protocol_dropped=[a for a, d in zip(PROTOCOL_ORDER, drop_p, strict=True) if d],
        optional=keep_o if has_optional else None,
        optional_dropped=[a for a, d in zip(OPTIONAL_ORDER, drop_o, strict=True) if d],
        optional_spare=keep_o,
        order_swap=swap,
        priority=priority,
    )


def _balance(drafts: list[_Draft], optional_sessions: bool) -> None:
    """Give activities back until each is done by ≥3 subjects (only when ≥5 are generated)."""
    if len(drafts) < 5:
        return
    if optional_sessions:
        holders = [d for d in drafts if d.optional is not None]
        spare = sorted((d for d in drafts if d.optional is None), key=lambda d: d.priority)
        for d in spare[: max(0, MIN_SUBJECTS_PER_ACTIVITY - len(holders))]:
            d.optional = list(d.optional_spare)
    sessions = [("protocol", "protocol_dropped", PROTOCOL_ORDER)]
    if optional_sessions:
        sessions.append(("optional", "optional_dropped", OPTIONAL_ORDER))
    for kept_attr, dropped_attr, order in sessions:
        for activity in order:
            holders = [d for d in drafts if getattr(d, kept_attr) is not None]
            missing = MIN_SUBJECTS_PER_ACTIVITY - sum(
                activity in getattr(d, kept_attr) for d in holders
            )
            lacking = [d for d in holders if activity in getattr(d, dropped_attr)]
            for d in sorted(lacking, key=lambda d: (d.short, d.priority))[: max(missing, 0)]:
                kept = set(getattr(d, kept_attr)) | {activity}
                setattr(d, kept_attr, [a for a in order if a in kept])
                getattr(d, dropped_attr).remove(activity)


def _sequence(draft: _Draft, session: str, seconds: float) -> list[tuple[int, int]]:
    """(activity, rows) bouts in performing order; stairs alternate up and down twice."""
    if session == "Protocol":
        order = list(draft.protocol)
        if draft.order_swap is not None and draft.order_swap < len(order) - 1:
            j = draft.order_swap
            order[j], order[j + 1] = order[j + 1], order[j]
    else:
        order = list(draft.optional or [])
    rows = {a: max(round(seconds * draft.factors[a] * FS), 20) for a in order}
    bouts: list[tuple[int, int]] = []
    i = 0
    while i < len(order):
        if order[i : i + 2] == [12, 13]:
            up, down = rows[12], rows[13]
            bouts += [(12, up // 2), (13, down // 2), (12, up - up // 2), (13, down - down // 2)]
            i += 2
        else:
            bouts.append((order[i], rows[order[i]]))
            i += 1
    return bouts


# --- Motion ---------------------------------------------------------------------------------


def _moving_average(x: np.ndarray, seconds: float) -> np.ndarray:
    """Centred moving average along time (rows), edges padded with the edge values."""
    k = max(int(seconds * FS), 1)
    padded = np.pad(x, ((k // 2, k - k // 2 - 1), (0, 0)), "edge")
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(padded, axis=0)])
    return (csum[k:] - csum[:-k]) / k


def _lever_acceleration(rot: np.ndarray, lever: np.ndarray) -> np.ndarray:
    """Acceleration (m/s²) of a point `lever` metres from a pivot, the segment turning by `rot`."""
    position = _rotate(np.broadcast_to(lever, rot.shape), rot)
    return np.gradient(np.gradient(position, axis=0), axis=0) * FS**2


def _segment(
    profile: Profile, n: int, rng: np.random.Generator, traits: Traits, style: Style
) -> np.ndarray:
    """Noise-free sensor-segment-frame signals, shape (n, 3 sensors, 9): acc, gyro, mag."""
    lin = np.zeros((3, n, 3))  # heading frame: forward, left, up
    rot = np.zeros((3, n, 3))  # rotation vector in the heading frame
    for rhythm in profile.rhythms:
        cadence = traits.cadence * style.cadence if rhythm.cadence else 1.0
        hz = rhythm.hz * cadence * rng.uniform(0.95, 1.05)
        rate = hz * (1.0 + 0.06 * _smooth_noise(rng, n, 5.0)[:, 0])  # speeding up, slowing down
        phase = 2 * _PI * np.cumsum(rate) / FS + rng.uniform(0, 2 * _PI)
        env = (
            _envelope(rng, n, rhythm.bout_s, rhythm.bout_s * (1 - rhythm.duty) / rhythm.duty)
            if rhythm.duty < 1
            else np.ones(n)
        )
        # No two strides alike: vigour wanders over seconds and from cycle to cycle.
        env = env * np.exp(profile.vigour * _smooth_noise(rng, n, 8.0)[:, 0])
        env = env * (1.0 + 0.1 * _smooth_noise(rng, n, 1.0 / hz)[:, 0])
        for k, term in enumerate(rhythm.terms):
            # The subject's own shape: rotations only, and not the size of the hand's (its
            # swing sets the wrist's acceleration, which `style.amp` already varies).
            shift = term.phase + term.rot * style.shape_phase[k] + rng.normal(0, 0.15)
            shift = shift + 0.25 * _smooth_noise(rng, n, 6.0)[:, 0]
            harmonic = term.harmonic * (0.5 if style.halves[term.sensor] else 1)
            own_amp = style.shape_amp[k] if term.rot and term.sensor != HAND else 1.0
            swing = style.swing if term.sensor == HAND else 1.0
            amp = term.amp * own_amp * swing * rng.uniform(0.95, 1.05)
            wave = amp * np.sin(harmonic * phase + shift)
            target = rot if term.rot else lin
            target[term.sensor, :, term.axis] += env * wave
        for imp in rhythm.impacts:
            # Landing on one foot: half as often, on a foot that takes the whole weight.
            single = style.halves[imp.sensor]
            harmonic = imp.harmonic * (0.5 if single else 1)
            d = np.mod(harmonic * phase + imp.phase + _PI, 2 * _PI) - _PI
            width = 2 * _PI * harmonic * hz * imp.width_s
            direction = np.asarray(imp.direction) / np.linalg.norm(imp.direction)
            # Mean-free, since the body goes nowhere on average.
            shape = np.exp(-0.5 * (d / width) ** 2) - width / np.sqrt(2 * _PI)
            pulse = imp.amp * (1.4 if single else 1.0) * rng.uniform(0.95, 1.05) * shape * env
            lin[imp.sensor] += pulse[:, None] * direction
    for burst in profile.bursts:
        env = _envelope(rng, n, burst.on_s, 1.0 / burst.rate_hz)
        knot = 1.0 / (2.0 * burst.band_hz)
        rot[burst.sensor] += burst.rot * env[:, None] * _smooth_noise(rng, n, knot, 3)
        lin[burst.sensor] += burst.lin * env[:, None] * _smooth_noise(rng, n, knot, 3)
    if any(profile.vibration):
        shake = _smooth_noise(rng, n, 1 / 40, 3) * np.array([0.4, 0.4, 1.0])
        for s in range(3):
            lin[s] += profile.vibration[s] * shake * rng.uniform(0.8, 1.2)
    if profile.body_lin:
        lin += profile.body_lin * _smooth_noise(rng, n, 2.5, 3) * np.array([1.0, 1.0, 0.2])
    amp = (traits.amp * style.amp)[:, None, None]
    lin *= amp
    rot *= amp
    for s in range(3):
        rot[s] += profile.sway * _smooth_noise(rng, n, 1.5, 3)
        rot[s] += profile.drift * _smooth_noise(rng, n, 6.0, 3)
    postures = [
        _posture_matrix(*(posture + pose + jitter), _BASE_FRAME[s])
        for s, (posture, pose, jitter) in enumerate(
            zip(
                profile.posture,
                style.pose,
                rng.normal(0.0, profile.jitter_deg, (3, 3)) * (1, 1, 0.5),
                strict=True,
            )
        )
    ]
    # The hand's rotations turn the arm about the shoulder: the wrist sits `arm` metres out
    # along the forearm (the hand sensor's x axis), so a forearm held forward, as in running,
    # swings the wrist up and down as well as to and fro.
    lever = profile.arm * postures[HAND][:, 0]
    trunk = profile.carry * _moving_average(lin[CHEST], ARM_DAMPING_S)
    lin[HAND] += trunk + _lever_acceleration(rot[HAND], lever)

    heading_rate = profile.turn * _smooth_noise(rng, n, 4.0)[:, 0]
    heading = rng.normal(0.0, 0.3) + np.cumsum(heading_rate) / FS  # the rooms face one way
    earth = EARTH_FIELD_UT + rng.normal(0.0, 2.0, 3)  # indoor disturbance differs per place
    cos, sin = np.cos(heading), np.sin(heading)
    mag_h = np.column_stack(
        [earth[0] * cos + earth[1] * sin, -earth[0] * sin + earth[1] * cos, np.full(n, earth[2])]
    )
    out = np.empty((n, 3, 9))
    for s, posture in enumerate(postures):
        specific_force = lin[s].copy()
        specific_force[:, UP] += G
        out[:, s, 0:3] = _rotate(specific_force, -rot[s]) @ posture
        gyro = np.gradient(rot[s], axis=0) * FS
        gyro[:, YAW] += heading_rate
        out[:, s, 3:6] = gyro @ posture
        out[:, s, 6:9] = _rotate(mag_h, -rot[s]) @ posture
    return out


def _blend(a: np.ndarray, b: np.ndarray, walk: np.ndarray) -> np.ndarray:
    """A transient: fade from the previous activity into the next through some walking about."""
    n = len(walk)
    x = (np.arange(n) + 0.5) / max(n, 1)
    w = (x * x * (3 - 2 * x))[:, None, None]
    bump = (0.7 * np.sin(_PI * x) ** 2)[:, None, None]
    return (1 - bump) * ((1 - w) * a + w * b) + bump * walk


def _lagged(
    levels: list[float], lengths: list[int], start_value: float, tau_up: float, tau_down: float
) -> np.ndarray:
    """First-order lag towards a piecewise-constant level (closed form per piece, no row loop)."""
    out = np.empty(sum(lengths))
    value, start = start_value, 0
    for level, n in zip(levels, lengths, strict=True):
        tau = tau_up if level > value else tau_down
        decay = np.exp(-np.arange(1, n + 1) / (tau * FS))
        out[start : start + n] = level + (value - level) * decay
        value, start = float(out[start + n - 1]) if n else value, start + n
    return out


def _session(
    params: SyntheticParams,
    seed: int,
    subject: int,
    session_index: int,
    bouts: list[tuple[int, int]],
) -> np.ndarray:
    """All 54 columns of one `.dat` file."""
    traits = _traits(seed, subject)
    rng = _rng(seed, subject, session_index, 4)
    trans = [
        round(params.transient_seconds * rng.uniform(0.6, 1.4) * FS) for _ in range(len(bouts) + 1)
    ]
    trans = [max(t, 2) if params.transient_seconds else 0 for t in trans]  # np.gradient needs 2

    def walk(i: int, n: int) -> np.ndarray:
        rng = _rng(seed, subject, session_index, 0, i, 3)
        return _segment(PROFILES[0], n, rng, traits, traits.style[TRANSIENT_ACTIVITY])

    bodies, heads, tails = [], [], []
    for i, (activity, n) in enumerate(bouts):
        pre, post = trans[i], trans[i + 1]
        seg_rng = _rng(seed, subject, session_index, activity, i, 2)
        full = _segment(PROFILES[activity], pre + n + post, seg_rng, traits, traits.style[activity])
        heads.append(full[:pre])
        bodies.append(full[pre : pre + n])
        tails.append(full[pre + n :])
    pieces, labels, levels, lengths = [], [], [], []
    for i in range(len(bouts) + 1):
        if trans[i]:
            w = walk(i, trans[i])
            before = tails[i - 1] if i > 0 else w
            after = heads[i] if i < len(bouts) else w
            pieces.append(_blend(before, after, w))
            labels.append(TRANSIENT_ACTIVITY)
            levels.append(PROFILES[TRANSIENT_ACTIVITY].intensity)
            lengths.append(trans[i])
        if i < len(bouts):
            pieces.append(bodies[i])
            labels.append(bouts[i][0])
            levels.append(PROFILES[bouts[i][0]].intensity)
            lengths.append(bouts[i][1])
    seg = np.concatenate(pieces)  # (n, 3, 9)
    n = len(seg)

    data = np.full((n, RAW_FIELDS), np.nan, order="F")  # written and printed column by column
    start_cs = int(rng.integers(300, 1000))
    data[:, 0] = (start_cs + np.arange(n)) / 100.0
    data[:, 1] = np.repeat(labels, lengths)

    reserve = (traits.max_hr - traits.rest_hr) * traits.fitness
    bpm_levels = [traits.rest_hr + min(level * reserve, 0.95 * reserve) for level in levels]
    hr = _lagged(
        bpm_levels, lengths, traits.rest_hr + 0.1 * reserve, traits.tau_up, traits.tau_down
    )
    hr += 5.0 * _smooth_noise(rng, n, 8.0)[:, 0]
    gaps = rng.choice([10, 11, 12], size=n // 10 + 2, p=[0.05, 0.8, 0.15])
    at = np.cumsum(gaps) - gaps[0] + int(rng.integers(0, 11))
    at = at[at < n]
    data[at, 2] = np.clip(np.rint(hr[at] + rng.normal(0.0, 0.7, len(at))), 40, 220)

    temp_drift = _lagged(levels, lengths, levels[0], 120.0, 240.0)
    warm = 1.0 - np.exp(-np.arange(n) / (600.0 * FS))
    for s in range(3):
        base = 3 + 17 * s
        mounted = seg[:, s].reshape(n, 3, 3) @ traits.mount[s]
        acc = mounted[:, 0] + rng.normal(0.0, ACC_NOISE[s], (n, 3))
        gyro = mounted[:, 1] + traits.gyro_bias[s] + rng.normal(0.0, GYRO_NOISE, (n, 3))
        mag = mounted[:, 2] + traits.hard_iron[s] + rng.normal(0.0, MAG_NOISE, (n, 3))
        acc6 = acc * traits.acc6_scale[s] + traits.acc6_bias[s] + rng.normal(0.0, 0.1, (n, 3))
        temp = (
            traits.temp_base[s]
            + traits.temp_rise[s] * warm
            + 1.2 * temp_drift
            + 0.3 * _smooth_noise(rng, n, 90.0)[:, 0]
        )
        quat = _smooth_noise(rng, n, 2.0, 4) + rng.normal(0.0, 0.5, 4)
        data[:, base] = np.rint(temp * 16.0) / 16.0  # the sensor reports 1/16 °C steps
        data[:, base + 1 : base + 4] = np.clip(acc, -ACC16_LIMIT, ACC16_LIMIT)
        data[:, base + 4 : base + 7] = np.clip(acc6, -ACC6_LIMIT, ACC6_LIMIT)
        data[:, base + 7 : base + 10] = gyro
        data[:, base + 10 : base + 13] = mag
        data[:, base + 13 : base + 17] = quat / np.linalg.norm(quat, axis=1, keepdims=True)

    starts = np.flatnonzero(rng.random(n) < params.packet_drop_rate)
    if len(starts):
        span = rng.integers(2, 21, len(starts))
        imu = np.repeat(rng.integers(0, 3, len(starts)), span)
        rows = (
            np.repeat(starts, span)
            + np.arange(span.sum())
            - np.repeat(np.cumsum(span) - span, span)
        )
        keep = rows < n
        cols = 3 + 17 * imu[keep, None] + np.arange(17)
        data[rows[keep, None], cols] = np.nan
    return data + 0.0  # no "-0" tokens


# --- Writing --------------------------------------------------------------------------------

_POW10 = 10.0 ** np.arange(0, 23)
_EXACT_COLUMNS = (0, 1, 2, 3, 20, 37)  # time, activity, bpm, temperatures
_CHUNK_ROWS = 1 << 17


def _round6(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Round to 6 significant digits so Arrow's shortest repr prints what `%.6g` would.

    Returns the rounded column and the mask of values `%.6g` prints in exponent notation (below
    1e-4 or from 1e6), which Arrow would print differently and the caller formats itself.
    """
    v = np.abs(column)
    fixed = (v >= 1e-4) & (v < 1e6)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.floor(np.log10(np.where(fixed, v, 1.0)))
    k = (5 - e).astype(np.int64)
    m = np.rint(v * _POW10[k])
    k = np.clip(k - (m >= 999999.5) + (m < 99999.5), 0, 22)
    m = np.rint(v * _POW10[k])
    rounded = np.where(fixed, np.copysign(m / _POW10[k], column), column)
    exponent = ~fixed & (v != 0) & np.isfinite(v)
    return rounded, exponent


def format_rows(data: np.ndarray, exact_columns: tuple[int, ...] = (0,)) -> bytes:
    """The rows as PAMAP2 prints them: `%.6g` fields, `NaN` for missing, '\\n' line ends.

    Python's `%` formatting costs ~250 ns a field (~40 s for PAMAP2's 2.9 M rows); rounding in
    numpy and letting Arrow print the shortest representation is about twice as fast and gives
    the same bytes. `exact_columns` hold values that are already short (the timestamp, ids,
    whole bpm, 1/16 °C) and skip the rounding; the timestamp keeps its 0.01 s resolution even
    past 10,000 s, where `%.6g` would drop it.
    """
    chunks = range(0, len(data), _CHUNK_ROWS)  # bounded memory, and Arrow's 2 GiB string limit
    return b"".join(_format_chunk(data[i : i + _CHUNK_ROWS], exact_columns) for i in chunks)


def _format_chunk(data: np.ndarray, exact_columns: tuple[int, ...]) -> bytes:
    columns = []
    for j in range(data.shape[1]):
        column = data[:, j]
        if j in exact_columns:
            rounded, exponent = column, np.zeros(len(column), dtype=bool)
        else:
            rounded, exponent = _round6(column)
        text = pa.array(rounded, from_pandas=True).cast(pa.string())
        if exponent.any():
            special = pa.array([f"{v:.6g}" for v in column[exponent].tolist()])
            text = pc.call_function("replace_with_mask", [text, pa.array(exponent), special])
        columns.append(pc.fill_null(text, "NaN"))
    columns[-1] = pc.call_function("binary_join_element_wise", [columns[-1], "", "\n"])
    lines = pc.call_function("binary_join_element_wise", [*columns, " "])
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    start, stop = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return lines.buffers()[2].to_pybytes()[start:stop]


def plan(params: SyntheticParams, seed: int) -> dict[str, list[tuple[int, int]]]:
    """The bouts of each file, `(activity, rows)` in performing order, transients left out.

    Keyed like `generate`'s summary. Cheap: nothing is simulated, so tests and users can check
    coverage (which subject lacks which activity) without generating the data.
    """
    drafts = [_draft(seed, s) for s in sorted(set(params.subjects))]
    _balance(drafts, params.optional_sessions)
    files: dict[str, list[tuple[int, int]]] = {}
    for session in SESSIONS:
        if session == "Optional" and not params.optional_sessions:
            continue
        for draft in drafts:
            if session == "Optional" and not draft.optional:
                continue
            bouts = _sequence(draft, session, params.seconds_per_activity)
            files[f"{session}/subject{draft.subject}.dat"] = bouts
    return files


def _write_file(params: SyntheticParams, seed: int, name: str, bouts: list, out: Path) -> int:
    session, file = name.split("/")
    subject = int(file.removeprefix("subject").removesuffix(".dat"))
    data = _session(params, seed, subject, SESSIONS.index(session), bouts)
    (out / name).write_bytes(format_rows(data, _EXACT_COLUMNS))
    return len(data)


def generate(params: SyntheticParams, seed: int, out_dir: Path, workers: int = 1) -> dict[str, int]:
    """Write `Protocol/subject<id>.dat` (+ `Optional/` for some subjects) under `out_dir`.

    The whole directory appears at once (atomically) or not at all. Files are independent, so
    `workers` processes write them in parallel with the same bytes. Returns rows per file,
    keyed by the path relative to `out_dir`.
    """
    files = plan(params, seed)
    with atomic_path(out_dir) as tmp:
        for session in {name.split("/")[0] for name in files}:
            (tmp / session).mkdir(parents=True)
        jobs = [(params, seed, name, bouts, tmp) for name, bouts in files.items()]
        if workers > 1:
            with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
                rows = list(pool.map(_write_file, *zip(*jobs, strict=True)))
        else:
            rows = [_write_file(*job) for job in jobs]
    return dict(zip(files, rows, strict=True))
