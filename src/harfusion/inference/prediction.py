"""What predict knows of one recording: its windows, their calibrated probabilities and, where
the recording says, their true activities; the CSV and the timeline are drawn from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harfusion.data.window_reader import Windows


@dataclass
class Prediction:
    windows: Windows
    probabilities: np.ndarray  # float32 [windows, classes], calibrated
    uncertainty: np.ndarray | None  # [windows]: predictive entropy of the dropout samples
    truth: np.ndarray | None  # [windows]: the activity of a pure window, else NO_LABEL

    @property
    def path(self) -> Path:
        return self.windows.recording.path
