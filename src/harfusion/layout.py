"""Every path the stages and tools read or write, relative to the project root, in a module that
imports nothing: a reader learns where a writer puts its output without importing the writer
(and all it imports). `dvc.yaml` names the same paths for DVC; tests/test_layout.py holds the
two together.

Folders are `Path`s; a file name without a folder lives in the folder named above it (a stage
writes it there, or into a test's temporary copy of that folder).
"""

from pathlib import Path

PARAMS = Path("params.yaml")
ABLATIONS = Path("ablations.yaml")

# Where outputs are built before they are renamed into place: one git-ignored folder, the `tidy`
# stage's output, so litter left by a killed stage changes that output and the next `dvc repro`
# restores it without the litter, even when it restores every other stage from the run-cache.
TEMPORARIES = Path(".tmp")

# A user's own dataset descriptions (`data.dataset: datasets/mine.yaml`): a DVC dependency of
# the stages that read `data.dataset`, so an edit reruns what it changes.
USER_DATASETS = Path("datasets")

# preprocess: one CSV per subject × session × activity, and their index.
PROCESSED = Path("data/processed")
SHARD_INDEX = "shards.json"
# The checked dataset description the data were made with, in PROCESSED and TENSORS: later
# stages read it there, never `data.dataset` again.
DATASET = "dataset.json"
# split: which shards train, validate and test.
SPLITS = Path("data/splits")
SPLIT_SUMMARY = "summary.json"
# tensorize: windows as tensor shards.
TENSORS = Path("data/processed_tensors")
MANIFEST = "manifest.json"  # shards, windows per split, classes
NORM_STATS = "norm_stats.json"  # train-split mean and std per column

# plots_template: the page `dvc plots show/diff` fill (.dvc/config's plots.html_template names it)
PLOTS_TEMPLATE = Path("reports/dvc_plots_template.html")

# train
MODELS = Path("models")
MODEL_FILE = "model.pt"
TRAIN_REPORTS = Path("reports/train")  # METRICS (the kept epoch's), EPOCHS and MEMBERS
EPOCHS = "epochs.csv"  # one row per epoch: losses, validation scores, which one was kept
MEMBERS = "members.csv"  # one row per ensemble member: its seed, kept epoch and scores
RESUME = Path(".resume/train")  # checkpoints of an unfinished fit; never a DVC output

# baseline and evaluate write the same kinds of files, each into its own folder: METRICS, the
# headline numbers DVC shows (no key in two files), SCORES, every score of the test split (the
# same keys and meaning in both), and CONFUSION, the test predictions.
BASELINE = Path("reports/baseline")
EVAL = Path("reports/eval")
METRICS = "metrics.json"
SCORES = "scores.json"
CONFUSION = "confusion.csv"
PREDICTIONS = "predictions.csv"  # in EVAL: every test and validation window's logits
BASELINE_WINDOWS = "windows.json"  # in BASELINE: windows per split and class
LATENCY = "latency.json"
UNCERTAINTY = "uncertainty.json"
MISSING_MODALITY = "missing_modality.json"
RELIABILITY = "reliability.json"
CALIBRATION_PLOT = "calibration.png"
ATTENTION_PLOT = "attention_viz.png"

# export: the model file as ONNX (outside train's `models/`: DVC refuses overlapping outputs)
EXPORTS = Path("exports")
ONNX_MODEL = "model.onnx"
PARITY = "parity.json"  # torch against ONNX Runtime on the test windows

# analyze
ANALYSIS = Path("reports/analysis")
ANALYSIS_PLOTS = (
    "missing_modality.png",
    "per_class_f1.png",
    "calibration_before_after.png",
    "training_curves.png",
    "confusion.png",
)

# The `harfusion` command's outputs, beside the pipeline's.
SWEEP_LOGS = Path("reports/sweep/logs")
COMPARISON = Path("reports/comparison")
COMPARISON_JSON = "fusion_comparison.json"
LOSO = Path("reports/loso")
LOSO_MARKDOWN = "loso.md"  # the ablation report includes it
LOSO_JSON = "loso.json"
LOSO_FOLDS_PLOT = "folds.png"  # per fold, both models' macro F1
LOSO_CALIBRATION_PLOT = "calibration.png"  # per fold, reliability before and after calibration
REPORT = Path("reports/report.md")  # the ablation report for CML
REPORT_HTML = Path("reports/report.html")  # one self-contained page: the run and the ablations

# Where a sweep notes the workspace while DVC queues from it (`experiments.workspace`).
QUEUEING_NOTE = Path(".dvc/tmp/harfusion/queueing.json")
