"""Names of the files the stages hand to each other, in a module that imports nothing: a reader
learns where a writer puts its output without importing the writer (and all it imports)."""

MANIFEST = "manifest.json"  # in the tensorize output: shards, windows per split, classes
NORM_STATS = "norm_stats.json"  # beside it: train-split mean and std per column
