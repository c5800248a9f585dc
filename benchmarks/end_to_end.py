"""End to end on fresh clones of this commit: the README's cold `uv run dvc repro` against the
same stage commands run one after another without DVC, then start-up and the no-op repro in
that clone (startup.py), and with `--sweep` the 13-configuration ablation sweep. Also the
forest baseline stage's time against train's (target: at most 10%).

    uv run python benchmarks/end_to_end.py                    # default params (target 3 min)
    uv run python benchmarks/end_to_end.py --sweep -j 2       # and the sweep (target 45 min)
    uv run python benchmarks/end_to_end.py --smoke            # tiny params, for CI

The cold run includes building the clone's virtual environment from uv.lock (uv's package
cache warm, as on any machine that has installed the project once); the bare baseline builds
its own environment first, untimed, so the ratio is what DVC adds. The sweep's baseline is 13
times the bare pipeline: running the configurations one after another without DVC.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml
from _common import Row, fresh_clone, parser, report, run_child, uv

SMOKE = {
    "chunk_size": 128,
    "data.synthetic.seconds_per_activity": 5.0,
    "data.synthetic.transient_seconds": 2.0,
    "model.embed_dim": 16,
    "model.front.motion.channels": [8, 16],
    "model.front.motion.strides": [4, 4],
    "train.max_epochs": 1,
    "train.ensemble": 1,
    "evaluate.mc_samples": 2,
    "evaluate.latency_batches": 3,
}
TARGET_REPRO_S = 180
TARGET_SWEEP_S = 45 * 60


TARGET_BASELINE_SHARE = 0.10  # of train's time


def stage_commands(clone: Path) -> dict[str, str]:
    stages = yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]
    return {name: stage["cmd"] for name, stage in stages.items()}


def main() -> None:
    args = parser(__doc__ or "")
    args.add_argument("--sweep", action="store_true", help="also run the 13-configuration sweep")
    args.add_argument("-j", "--jobs", type=int, default=2, help="sweep workers")
    options = args.parse_args()
    overrides = SMOKE if options.smoke else {}
    os.environ.pop("VIRTUAL_ENV", None)  # each clone uses its own environment
    ours = fresh_clone(options.work / "e2e" / "dvc", overrides)
    bare = fresh_clone(options.work / "e2e" / "bare", overrides)

    cold = run_child([uv(), "run", "dvc", "repro"], cwd=ours)
    run_child([uv(), "sync", "--locked"], cwd=bare)
    stages = {
        name: run_child([uv(), "run", "--no-sync", "bash", "-c", command], cwd=bare).seconds
        for name, command in stage_commands(bare).items()
    }
    rows = [
        Row("cold uv run dvc repro vs stages run bare", cold.seconds, sum(stages.values()), "s",
            f"<= {TARGET_REPRO_S} s"),
        Row("stage baseline vs stage train, bare", stages["baseline"], stages["train"], "s",
            f"<= {TARGET_BASELINE_SHARE:.2f}x"),
    ]  # fmt: skip
    if options.sweep:
        sweep = run_child([uv(), "run", "harfusion", "sweep", "-j", str(options.jobs)], cwd=ours)
        rows.append(Row(f"sweep of 13, -j {options.jobs}, vs 13 bare pipelines", sweep.seconds,
                        13 * sum(stages.values()), "s", f"<= {TARGET_SWEEP_S} s"))  # fmt: skip
    report("end to end (fresh clones)", rows)
    startup = [uv(), "run", "--no-sync", "python", "benchmarks/startup.py"]
    subprocess.run([*startup, *(["--smoke"] if options.smoke else [])], cwd=ours, check=True)


if __name__ == "__main__":
    main()
