"""`reports/report.html`: the run's data named from its own params, the headline beside the
baseline's, every figure embedded; nothing loaded from the network."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import yaml

from harfusion import layout
from harfusion.experiments.report import html_report, relink
from harfusion.experiments.report_html import RUN_FIGURES, Run, embed_images
from tests.browser import network_references

ROOT = Path(__file__).resolve().parents[1]


def _png() -> bytes:
    figure, axis = plt.subplots(figsize=(4, 3))
    axis.plot([0, 1], [0, 1])
    out = io.BytesIO()
    figure.savefig(out, format="png")
    plt.close(figure)
    return out.getvalue()


def _run(raw_dir: str, dataset: dict | None = None) -> Run:
    """A run's outputs as DVC would read them, with params pointing `data.raw_dir` anywhere
    (and the checked `dataset` description preprocess wrote, when given)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["raw_dir"] = raw_dir
    files: dict[str, bytes] = {
        "params.yaml": yaml.safe_dump(params).encode(),
        "data/splits/summary.json": json.dumps(
            {
                "subjects": {"train": [101, 102, 103], "val": [104], "test": [105, 106]},
                "rows": {"train": 9000, "val": 3000, "test": 6000},
            }
        ).encode(),
        "reports/eval/metrics.json": json.dumps(
            {"accuracy": 0.81, "f1_macro": 0.78, "f1_macro_learnable": 0.9, "ece_before": 0.2}
        ).encode(),
        "reports/eval/latency.json": b'{"latency_ms": 1.5}',
        "reports/train/metrics.json": b'{"kept_epoch": 7, "val_loss": 0.4, "val_f1_macro": 0.8}',
        "reports/baseline/scores.json": json.dumps(
            {
                "model": "random_forest",
                "accuracy": 0.85,
                "f1_macro": 0.8,
                "per_class_f1": {"walking": 0.9, "sitting": 0.7, "running": 0.2},
            }
        ).encode(),
        "reports/baseline/windows.json": json.dumps(
            {"train": {"walking": 9, "sitting": 4, "running": 0}, "val": {}, "test": {}}
        ).encode(),
    }
    for path, _, _ in RUN_FIGURES[:-1]:  # the attention map is missing
        files[path.as_posix()] = _png()
    if dataset is not None:
        files[(layout.PROCESSED / layout.DATASET).as_posix()] = json.dumps(dataset).encode()
    return Run("experiment `x`", files.get)


def test_real_recordings_are_named_as_such(tmp_path: Path) -> None:
    page = html_report(_run("/data/PAMAP2_Dataset"), None, tmp_path, None, tmp_path / "r.html")
    text = re.sub(r"<[^>]+>", "", page)
    assert "recorded data (not generated) in /data/PAMAP2_Dataset" in text
    assert "synthetic" not in text.lower()
    assert "train subjects: 101, 102, 103 (9,000 rows, 13 windows)" in text
    assert "test subjects: 105, 106 (6,000 rows" in text
    # the baseline beside the model; its learnable-class F1 over the classes it trained on
    cells = re.sub(r"<td[^>]*>", "<td>", page)
    assert re.search(r"<td>accuracy</td>\s*<td>0.810</td>\s*<td>0.850</td>", cells)
    assert re.search(r"training windows</td>\s*<td>0.900</td>\s*<td>0.800</td>", cells)
    assert "<td>7 (0.400 / 0.800)</td>" in cells
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(RUN_FIGURES) - 1
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for data in images)
    assert "reports/eval/attention_viz.png is missing" in text
    assert network_references(page) == []


def test_synthetic_data_is_named_with_its_generator(tmp_path: Path) -> None:
    run = _run("./data/raw/synthetic/")  # spelt differently: still the synthesize stage's
    text = re.sub(r"<[^>]+>", "", html_report(run, None, tmp_path, None, tmp_path / "r.html"))
    assert "synthetic PAMAP2 that the synthesize stage generated" in text
    assert "generator seed 2026" in text


def test_the_dataset_and_its_modalities_are_named_from_the_runs_description(
    tmp_path: Path,
) -> None:
    """`modalities: all` (the default) reads as the modalities of the run's dataset."""
    dataset = {"name": "MHEALTH", "modalities": {"chest": {}, "ecg": {}, "left_ankle": {}}}
    run = _run("/data/MHEALTHDATASET", dataset)
    text = re.sub(r"<[^>]+>", "", html_report(run, None, tmp_path, None, tmp_path / "r.html"))
    assert "Data: MHEALTH: recorded data (not generated) in /data/MHEALTHDATASET" in text
    assert "modalities chest, ecg, left_ankle, seed" in text


def test_linked_figures_are_embedded_and_loso_links_follow_the_report(tmp_path: Path) -> None:
    loso = tmp_path / "reports" / "loso"
    loso.mkdir(parents=True)
    (loso / layout.LOSO_FOLDS_PLOT).write_bytes(_png())
    (loso / layout.LOSO_CALIBRATION_PLOT).write_bytes(_png())
    text = (
        "# LOSO\n\n![Macro F1 per fold](folds.png)\n\n## Calibration across people\n\n"
        f"![Reliability per fold, before and after calibration]({layout.LOSO_CALIBRATION_PLOT})\n"
    )
    report = tmp_path / "reports" / "report.md"
    moved = relink(text, loso, report)
    assert "![Macro F1 per fold](loso/folds.png)" in moved
    assert "(loso/calibration.png)" in moved
    embedded = embed_images(moved, report.parent)
    assert embedded.count("](data:image/png;base64,") == 2 and ".png)" not in embedded
    page = html_report(None, None, tmp_path, moved, report.with_suffix(".html"))
    assert "<h2>LOSO</h2>" in page and page.count('src="data:image/png;base64,') == 2
    assert "<h3>Calibration across people</h3>" in page
