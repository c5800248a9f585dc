"""`dvc plots show` and `dvc plots diff` draw offline: DVC's own commands, unchanged, fill the
page the `plots_template` stage writes (Vega inline), as `.dvc/config` says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harfusion import layout
from harfusion.evaluation.plots_template import write_page
from tests.browser import drawn_vega_views, dump_dom, network_references, vega_plots

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = "epoch,train_loss,val_loss,val_acc,val_f1_macro,kept\n" + "".join(
    f"{e},{2.0 - 0.3 * e},{2.1 - 0.2 * e},{0.2 * e},{0.15 * e},{int(e == 3)}\n" for e in range(1, 5)
)
CONFUSION = "actual,predicted\nwalking,walking\nwalking,running\nrunning,running\n"


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, check=True
    )


def vega_plot_definitions() -> list:
    """dvc.yaml's data plots: the top-level ones and the stages' CSV plots (not the images)."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    staged = [
        entry
        for stage in spec["stages"].values()
        for entry in stage.get("plots", [])
        if isinstance(entry, dict)
    ]
    return spec["plots"] + staged


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC repository with this project's plot definitions, config and templates, and small
    files in the places the stages write them."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    repo = tmp_path_factory.mktemp("plots")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc(repo, "init", "-q")
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": vega_plot_definitions()}))
    write_page(repo / layout.PLOTS_TEMPLATE)
    (repo / layout.TRAIN_REPORTS).mkdir(parents=True)
    (repo / layout.TRAIN_REPORTS / layout.EPOCHS).write_text(EPOCHS)
    for folder in (layout.EVAL, layout.BASELINE):
        (repo / folder).mkdir(parents=True)
        (repo / folder / layout.CONFUSION).write_text(CONFUSION)
    return repo


@pytest.fixture(scope="module")
def shown(plots_repo: Path) -> Path:
    _dvc(plots_repo, "plots", "show", "-o", "shown")
    return plots_repo / "shown" / "index.html"


def test_dvc_plots_show_loads_nothing_from_the_network(shown: Path) -> None:
    html = shown.read_text()
    assert vega_plots(html) == 4  # loss and validation F1 by epoch, two confusion matrices
    assert network_references(html) == []
    assert "cdn.jsdelivr.net" not in html  # DVC's default page loads Vega from there
    assert "window.vegaEmbed" in html  # the bundle, inline


def test_the_template_keeps_dvcs_placeholders_but_not_its_cdn_scripts(plots_repo: Path) -> None:
    template = (plots_repo / layout.PLOTS_TEMPLATE).read_text()
    assert "{plot_divs}" in template and "{scripts}" not in template
    assert network_references(template) == []


@pytest.mark.slow
def test_dvc_plots_show_draws_every_plot_in_chromium_offline(shown: Path) -> None:
    dom = dump_dom(shown)
    assert drawn_vega_views(dom) == vega_plots(shown.read_text()) == 4
    assert dom.count(">kept<") == 3  # the kept epoch labelled: train loss, val loss, val F1
