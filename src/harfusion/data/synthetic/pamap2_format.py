"""What the synthetic generator needs of PAMAP2's raw format, read from the shipped PAMAP2
description where it says it (columns, sessions, rate, the transient label), plus the protocol
facts it does not hold: which session folder records which activities.

The generator writes PAMAP2 only: it is the embedded default data, the one place below the
description that may know a dataset's columns by name.
"""

from __future__ import annotations

from harfusion.data.description import load_description

PAMAP2 = load_description("pamap2")
RAW_COLUMNS: tuple[str, ...] = PAMAP2.columns
RAW_FIELDS = len(RAW_COLUMNS)
SAMPLE_RATE_HZ = PAMAP2.sampling_rate_hz
(TRANSIENT_ACTIVITY,) = PAMAP2.labels.ignore
SESSIONS: tuple[str, ...] = tuple(PAMAP2.files.sessions or ())
PROTOCOL_ACTIVITIES = (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)  # the Protocol folder's
OPTIONAL_ACTIVITIES = (9, 10, 11, 18, 19, 20)  # the Optional folder's, for some subjects
# Fields stored short already (time, activity, whole bpm, 1/16 °C): printed as they are.
EXACT_COLUMNS = tuple(
    RAW_COLUMNS.index(name)
    for name in (
        PAMAP2.clock.column,
        PAMAP2.labels.column,
        *PAMAP2.modality_channels("heart_rate"),
        *(c for c in RAW_COLUMNS if c.endswith("_temperature_c")),
    )
)
