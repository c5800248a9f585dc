"""Writing the synthetic set: the cohort plan simulated file by file, in parallel processes,
into one folder that appears whole or not at all."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from harfusion.atomic import atomic_path
from harfusion.data.dat_writer import format_rows
from harfusion.data.synthetic.cohort import plan
from harfusion.data.synthetic.motion import simulate_session
from harfusion.data.synthetic.pamap2_format import EXACT_COLUMNS, SESSIONS
from harfusion.params import SyntheticParams


def _write_file(params: SyntheticParams, seed: int, name: str, bouts: list, out: Path) -> int:
    session, file = name.split("/")
    subject = int(file.removeprefix("subject").removesuffix(".dat"))
    data = simulate_session(params, seed, subject, SESSIONS.index(session), bouts)
    (out / name).write_bytes(format_rows(data, EXACT_COLUMNS))
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
