"""The physics: each subject's traits (sensor mounting, vigour per limb, cadence, pose, gait
shape, whether an arm swings) and the motion they produce, sensed by three IMUs and a heart-rate
strap: gravity through the posture, the trunk carrying the limbs, lever-arm acceleration of a
swinging arm, vibration, sensor noise and range limits, heart rate following intensity with a
lag."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harfusion.data.synthetic.cohort import FS, subject_rng
from harfusion.data.synthetic.pamap2_format import RAW_FIELDS, TRANSIENT_ACTIVITY
from harfusion.data.synthetic.profiles import CHEST, HAND, PROFILES, UP, YAW, Profile
from harfusion.params import SyntheticParams

G = 9.81
ACC6_LIMIT = 6 * G  # the ±6 g accelerometer saturates here; the ±16 g one at 16 g
ACC16_LIMIT = 16 * G
EARTH_FIELD_UT = np.array([20.0, 0.0, -44.0])  # central Europe: north, west, up

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

# Segment frames: columns are the sensor axes in the heading frame when the posture is upright.
_BASE_FRAME = (
    np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]]),  # hand: x down the forearm
    np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),  # chest: y up
    np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),  # ankle: x up the shank
)


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


def subject_traits(seed: int, subject: int) -> Traits:
    rng = subject_rng(seed, subject, 0)
    mount = np.stack([_mount(rng, s) for s in range(3)])
    styles = subject_rng(seed, subject, 5)
    arms = subject_rng(
        seed, subject, 6
    )  # a stream of its own: the older style draws stay as they were
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
        phase = 2 * np.pi * np.cumsum(rate) / FS + rng.uniform(0, 2 * np.pi)
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
            d = np.mod(harmonic * phase + imp.phase + np.pi, 2 * np.pi) - np.pi
            width = 2 * np.pi * harmonic * hz * imp.width_s
            direction = np.asarray(imp.direction) / np.linalg.norm(imp.direction)
            # Mean-free, since the body goes nowhere on average.
            shape = np.exp(-0.5 * (d / width) ** 2) - width / np.sqrt(2 * np.pi)
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
    bump = (0.7 * np.sin(np.pi * x) ** 2)[:, None, None]
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


def simulate_session(
    params: SyntheticParams,
    seed: int,
    subject: int,
    session_index: int,
    bouts: list[tuple[int, int]],
) -> np.ndarray:
    """All 54 columns of one `.dat` file."""
    traits = subject_traits(seed, subject)
    rng = subject_rng(seed, subject, session_index, 4)
    trans = [
        round(params.transient_seconds * rng.uniform(0.6, 1.4) * FS) for _ in range(len(bouts) + 1)
    ]
    trans = [max(t, 2) if params.transient_seconds else 0 for t in trans]  # np.gradient needs 2

    def walk(i: int, n: int) -> np.ndarray:
        rng = subject_rng(seed, subject, session_index, 0, i, 3)
        return _segment(PROFILES[0], n, rng, traits, traits.style[TRANSIENT_ACTIVITY])

    bodies, heads, tails = [], [], []
    for i, (activity, n) in enumerate(bouts):
        pre, post = trans[i], trans[i + 1]
        seg_rng = subject_rng(seed, subject, session_index, activity, i, 2)
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
