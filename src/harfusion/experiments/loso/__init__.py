"""Leave-one-subject-out, `harfusion loso`: `command` runs it; `plan` says which folds (and
which classes they cannot learn), `outputs` reads what finished folds left, `scores` pools
their macro F1, `calibration` their calibration, `render` writes loso.json, loso.md and the
figures."""
