"""Names of the files the stages hand to each other, in a module that imports nothing: a reader
learns where a writer puts its output without importing the writer (and all it imports)."""

MANIFEST = "manifest.json"  # in the tensorize output: shards, windows per split, classes
NORM_STATS = "norm_stats.json"  # beside it: train-split mean and std per column

# Where outputs are built before they are renamed into place: one git-ignored folder that the
# `tidy` stage depends on, so litter left by a killed stage changes that dependency and the next
# `dvc repro` removes it, even when it restores every other stage from the run-cache.
TEMPORARIES = ".tmp"
