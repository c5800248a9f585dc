"""Who performs what, in which order and for how long: the cohort plan, cheap enough to check
coverage without simulating anything. Every random draw of the generator comes from
`subject_rng(seed, subject, ...)`, so a subject's files do not depend on which others exist."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harfusion.data.synthetic.pamap2_format import (
    OPTIONAL_ACTIVITIES,
    PROTOCOL_ACTIVITIES,
    SAMPLE_RATE_HZ,
    SESSIONS,
)
from harfusion.params import SyntheticParams

FS = int(SAMPLE_RATE_HZ)
SHORT_SUBJECTS = frozenset({109})  # like the real 109: only a few activities
OPTIONAL_SUBJECTS = frozenset({101, 105, 106, 108, 109})  # real PAMAP2 subjects with Optional

# The real protocol order: sedentary, household, stairs, locomotion, vigorous.
PROTOCOL_ORDER = (1, 2, 3, 17, 16, 12, 13, 4, 7, 6, 5, 24)
OPTIONAL_ORDER = (9, 10, 11, 18, 19, 20)
MIN_SUBJECTS_PER_ACTIVITY = 3


def subject_rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFF_FFFF_FFFF_FFFF, *key])


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
    rng = subject_rng(seed, subject, 1)
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
