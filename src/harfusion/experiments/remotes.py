"""Experiments shared between machines, DVC's way: experiments are git refs that travel through a
git remote (`dvc exp push/pull`); their outputs and the run-cache travel through the default DVC
remote. Nothing is copied between folders by hand."""

from __future__ import annotations

import sys

from harfusion.errors import HarfusionError
from harfusion.experiments.dvc_client import (
    BASELINE_CONFUSION,
    BASELINE_WINDOWS,
    CONFUSION,
    MISSING_MODALITY,
    PREDICTIONS,
    SCORES,
    SPLIT_SUMMARY,
    Experiment,
    dvc,
    project,
)

# What the comparison, the report and the LOSO summary read of every experiment besides the
# metrics files (those come with `types=["metrics"]`): a gathering machine fetches these, not
# models or tensors. (The HTML report's figures of its one run are read from the remote.)
SUMMARY_INPUTS = (
    SPLIT_SUMMARY,
    SCORES,
    MISSING_MODALITY,
    CONFUSION,
    PREDICTIONS,
    BASELINE_CONFUSION,
    BASELINE_WINDOWS,
)


def default_dvc_remote() -> str | None:
    """The name of the default DVC remote (`dvc remote default`), None when there is none (or
    no DVC project here: queueing then says so)."""
    from dvc.exceptions import NotDvcRepoError

    try:
        with project() as repo:
            return repo.config["core"].get("remote") or None
    except NotDvcRepoError:
        return None


def push(names: list[str], git_remote: str, storage: str | None) -> str | None:
    """`dvc exp push --run-cache`: the experiments' refs to the git remote, their outputs and the
    whole run-cache (every stage this machine ran) to the DVC remote. (`dvc push --run-cache`
    alone would send the workspace's outputs, not the experiments'.) Returns what it did."""
    if not names:
        return None
    dvc("exp", "push", "--run-cache", git_remote, *names)
    return (
        f"pushed {len(names)} experiment(s) to git remote {git_remote!r}, their outputs "
        f"and the run-cache to DVC remote {storage!r}: {', '.join(names)}"
    )


def on_remote(git_remote: str) -> set[str]:
    """Names of the experiments of this commit that the git remote holds (`dvc exp list`)."""
    from dvc.exceptions import DvcException

    try:
        with project() as repo:
            listed = repo.experiments.ls(git_remote=git_remote)
    except DvcException as exc:
        raise HarfusionError(
            f"listing the experiments on git remote {git_remote!r}: {exc}"
        ) from None
    return {name for experiments in listed.values() for name, _ in experiments if name}


def pull(names: list[str], git_remote: str) -> list[str]:
    """`dvc exp pull` the named experiments that the git remote holds; return the missing ones.
    Their outputs stay on the DVC remote: `fetch_summary_inputs` brings what is read."""
    present = on_remote(git_remote)
    found = [name for name in names if name in present]
    missing = [name for name in names if name not in present]
    if found:
        # --force: when gathering, the remote's result replaces a local one of the same name
        dvc("exp", "pull", "--no-cache", "--force", git_remote, *found)
        print(f"gather: pulled {len(found)} experiment(s) from {git_remote!r}", flush=True)
    if missing:
        print(
            f"gather: missing on {git_remote!r} for this commit: {', '.join(missing)} (did their "
            "shard finish and push?)",
            file=sys.stderr,
            flush=True,
        )
    return missing


def fetch_summary_inputs(experiments: list[Experiment]) -> None:
    """Fetch from the DVC remote the metrics and `SUMMARY_INPUTS` of these experiments."""
    revs = [experiment.rev for experiment in experiments]
    if not revs:
        return
    try:
        with project() as repo:
            repo.fetch(revs=revs, workspace=False, types=["metrics"])
            repo.fetch(targets=list(SUMMARY_INPUTS), revs=revs, workspace=False)
    except Exception as exc:  # DVC's own errors name the remote and the file
        raise HarfusionError(
            f"fetching the experiments' results from the DVC remote: {exc}"
        ) from None
