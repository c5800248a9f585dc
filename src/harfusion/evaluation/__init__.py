"""Scoring (the `baseline`, `evaluate` and `analyze` stages): metrics, calibration, the
forest baseline every result is shown beside, and the per-run figures."""
