"""Tables of calibration_study.py from its saved logits: calibrators and ensembles compared on
the same folds without retraining.

Pooled: every fold's test windows scored at once per replicate (a seed, or an ensemble of seeds),
then the mean over the 3 replicates; 95% intervals from 1,000 bootstrap resamples of the windows
within each fold (the same resample for every replicate and for before / after, so a difference
is paired). Per fold: the mean over replicates; std and worst over the 18 fold × replicate runs,
as `harfusion loso` reports them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from harfusion.evaluation.calibration import (  # noqa: E402
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
)
from harfusion.evaluation.metrics import f1_per_class, macro_f1  # noqa: E402
from harfusion.models.calibrator import (  # noqa: E402
    calibration_entry,
    fit_temperature,
    trained_class_windows,
)
from harfusion.models.ensemble import mean_probability  # noqa: E402

BINS = 15
TESTED = [101, 103, 104, 106, 107, 108]
BOOTSTRAP = 1000


@dataclass
class Run:
    """One fit's saved outputs."""

    val_logits: np.ndarray
    val_labels: np.ndarray
    val_subjects: np.ndarray
    test_logits: np.ndarray
    test_labels: np.ndarray
    test_subjects: np.ndarray
    train_counts: np.ndarray
    class_names: list[str]
    fit_seconds: float
    epochs: int

    def test_of(self, subject: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = self.test_subjects == subject
        return self.test_logits[chosen], self.test_labels[chosen]


def load_runs(folder: Path) -> dict[str, dict[tuple[int, int, int | None], Run]]:
    runs: dict[str, dict[tuple[int, int, int | None], Run]] = {}
    for path in sorted(folder.glob("*/*.npz")):
        if path.name.endswith(".partial.npz"):
            continue
        parts = path.stem.split("-")
        test, seed = int(parts[0][1:]), int(parts[1][1:])
        member = int(parts[2][1:]) if len(parts) > 2 else None
        data = np.load(path)
        runs.setdefault(path.parent.name, {})[(test, seed, member)] = Run(
            data["val_logits"],
            data["val_labels"],
            data["val_subjects"],
            data["test_logits"],
            data["test_labels"],
            data["test_subjects"],
            data["train_counts"],
            [str(c) for c in data["class_names"]],
            float(data["fit_seconds"]),
            int(data["epochs"]),
        )
    return runs


# ---------------------------------------------------------------- calibrators


def log_softmax(logits: np.ndarray) -> np.ndarray:
    return torch.from_numpy(logits).double().log_softmax(dim=1).numpy()


def ensemble(logits: list[np.ndarray]) -> np.ndarray:
    """Log of the members' mean probability: softmax of it is the averaged prediction."""
    return mean_probability([torch.from_numpy(x).double() for x in logits]).double().numpy()


def temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    return fit_temperature(torch.from_numpy(logits).float(), torch.from_numpy(labels).long())


def vector_scaling(
    logits: np.ndarray, labels: np.ndarray, penalty: float = 0.01
) -> Callable[[np.ndarray], np.ndarray]:
    """Per-class scale and bias (Guo et al. 2017), minimising NLL with an L2 pull towards the
    identity: a class absent from the calibration windows would otherwise get a bias of -inf."""
    z = torch.from_numpy(logits).double()
    y = torch.from_numpy(labels).long()
    k = z.shape[1]
    w = torch.zeros(k, dtype=torch.double, requires_grad=True)  # log scale
    b = torch.zeros(k, dtype=torch.double, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(z * w.exp() + b, y)
        loss = loss + penalty * (w.pow(2).sum() + b.pow(2).sum())
        loss.backward()
        return loss

    optimizer.step(closure)
    scale, bias = w.detach().exp().numpy(), b.detach().numpy()
    return lambda x: x * scale + bias


def temperature_floor(logits: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A temperature and a uniform floor: p = (1 - e) softmax(z / T) + e / K, both fitted on NLL.
    T sets the sharpness of the windows a model knows; e bounds the loss of the confidently
    wrong ones (a person doing what no training subject did), which a temperature alone can only
    buy by softening everything."""
    z = torch.from_numpy(logits).double()
    y = torch.from_numpy(labels).long()
    k = z.shape[1]
    log_t = torch.zeros(1, dtype=torch.double, requires_grad=True)
    floor = torch.full((1,), -4.0, dtype=torch.double, requires_grad=True)  # logit of e
    optimizer = torch.optim.LBFGS(
        [log_t, floor], lr=0.1, max_iter=200, line_search_fn="strong_wolfe"
    )

    def mixed(x: torch.Tensor, log_t: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        e = torch.sigmoid(floor)
        sharp = (x / log_t.exp()).log_softmax(dim=1) + torch.log1p(-e)
        return torch.logaddexp(sharp, (e / k).log().expand_as(sharp))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.nll_loss(mixed(z, log_t, floor), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted_t, fitted_floor = log_t.detach(), floor.detach()
    return lambda x: mixed(torch.from_numpy(x).double(), fitted_t, fitted_floor).numpy()


# ---------------------------------------------------------------- systems


@dataclass
class Fold:
    """One fold of one replicate: test labels, and test logits per calibrator."""

    labels: np.ndarray
    logits: dict[str, np.ndarray]
    known: np.ndarray  # windows of classes with training windows in this fold
    temperatures: dict[str, float] = field(default_factory=dict)


System = dict[tuple[int, int], Fold]  # (replicate, test subject) → Fold


def _calibrate(
    fold: Fold,
    name: str,
    source: tuple[np.ndarray, np.ndarray],
    test: np.ndarray,
    kinds: tuple[str, ...] = ("T", "VS"),
) -> None:
    """Add `name`-T (temperature), `name`-VS (vector scaling) and `name`-TF (temperature and
    floor), those of them in `kinds`, fitted on `source`."""
    if "T" in kinds:
        t = temperature(*source)
        fold.logits[f"{name}-T"] = test / t
        fold.temperatures[f"{name}-T"] = t
    if "VS" in kinds:
        fold.logits[f"{name}-VS"] = vector_scaling(*source)(test)
    if "TF" in kinds:
        fold.logits[f"{name}-TF"] = temperature_floor(*source)(test)


def trained(
    logits: np.ndarray, labels: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Only the windows of classes with training windows (`counts` per class): a window of a
    class the model never saw is wrong whatever the temperature, and drags a fitted one up."""
    keep = trained_class_windows(torch.from_numpy(labels), torch.from_numpy(counts)).numpy()
    return logits[keep], labels[keep]


def guarded(logits: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> float:
    """The pipeline's default temperature (`train.calibration: trained_classes`): fitted on the
    windows of trained classes, 1 where they hold fewer than two classes."""
    entry = calibration_entry(
        torch.from_numpy(logits).float(),
        torch.from_numpy(labels).long(),
        torch.from_numpy(counts),
        "trained_classes",
    )
    return entry["temperature"]


def _guard(fold: Fold, val: tuple[np.ndarray, np.ndarray], counts: np.ndarray, test: np.ndarray):
    """Add `valkg-T`, the pipeline's guarded trained-class temperature."""
    t = guarded(*val, counts)
    fold.logits["valkg-T"] = test / t
    fold.temperatures["valkg-T"] = t


def oof_pool(
    members: dict[int, Run], test: int, known: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted logits: each training subject as predicted by the member that left it out;
    `known`: only windows of classes that member trained on."""
    logits, labels = [], []
    for left_out, run in members.items():
        x, y = run.test_of(left_out)
        x, y = trained(x, y, run.train_counts) if known else (x, y)
        logits.append(x)
        labels.append(y)
    assert all(run.test_of(test)[0].size for run in members.values())
    return np.concatenate(logits), np.concatenate(labels)


def crossfit_members(
    runs: dict[tuple[int, int, int | None], Run], test: int, seed: int
) -> dict[int, Run]:
    return {m: r for (t, s, m), r in runs.items() if t == test and s == seed and m is not None}


def single(
    runs: dict, variant: str, seeds: list[int], crossfit: str | None, detail: bool = True
) -> System:
    """One model per fold and seed; calibrated on its validation subject, and (if the matching
    cross-fit variant ran) on the cross-fitted training subjects; `detail`: also the richer maps
    (vector scaling, a floor)."""
    system: System = {}
    for replicate, seed in enumerate(seeds):
        for test in TESTED:
            run = runs[variant][(test, seed, None)]
            x, y = run.test_of(test)
            fold = Fold(y, {"none": x}, run.train_counts[y] > 0)
            val = (run.val_logits, run.val_labels)
            _calibrate(fold, "val", val, x, ("T", "VS", "TF") if detail else ("T",))
            known = trained(*val, run.train_counts)
            _calibrate(fold, "valk", known, x, ("T", "VS") if detail else ("T",))
            _guard(fold, val, run.train_counts, x)
            members = crossfit_members(runs.get(crossfit or "", {}), test, seed)
            if members:
                _calibrate(fold, "oof", oof_pool(members, test), x)
                oofk = oof_pool(members, test, True)
                _calibrate(fold, "oofk", oofk, x)
                both = (np.concatenate([oofk[0], known[0]]), np.concatenate([oofk[1], known[1]]))
                _calibrate(fold, "oofk+valk", both, x, ("T",))
            system[(replicate, test)] = fold
    return system


def seed_ensemble(runs: dict, variant: str, groups: list[list[int]]) -> System:
    """Average the probabilities of several seeds' models; calibrated on the validation subject."""
    system: System = {}
    for replicate, seeds in enumerate(groups):
        for test in TESTED:
            members = [runs[variant][(test, seed, None)] for seed in seeds]
            x = ensemble([m.test_of(test)[0] for m in members])
            y = members[0].test_of(test)[1]
            fold = Fold(y, {"none": x}, members[0].train_counts[y] > 0)
            val = ensemble([m.val_logits for m in members])
            _calibrate(fold, "val", (val, members[0].val_labels), x, ("T",))
            counts = np.sum([m.train_counts for m in members], axis=0)
            _calibrate(fold, "valk", trained(val, members[0].val_labels, counts), x, ("T",))
            _guard(fold, (val, members[0].val_labels), counts, x)
            system[(replicate, test)] = fold
    return system


def crossfit_ensemble(runs: dict, variant: str, seeds: list[int], full: str | None) -> System:
    """The cross-fit members as an ensemble (each trained without one training subject).

    Calibrators: `val` / `valk` (the ensemble on the validation subject, all windows / known
    classes); `oof` / `oofk` (a temperature fitted on the members' pooled out-of-fold logits,
    applied to each member before averaging: calibrate, then average); `ens-oof…` (that
    temperature applied to the averaged prediction).
    With `full`, a second system adds the full model of the same seed as a sixth member."""
    system: System = {}
    for replicate, seed in enumerate(seeds):
        for test in TESTED:
            members = crossfit_members(runs[variant], test, seed)
            tests = [run.test_of(test)[0] for run in members.values()]
            vals = [run.val_logits for run in members.values()]
            if full:
                whole = runs[full][(test, seed, None)]
                tests.append(whole.test_of(test)[0])
                vals.append(whole.val_logits)
            y = next(iter(members.values())).test_of(test)[1]
            val_labels = next(iter(members.values())).val_labels
            x = ensemble(tests)
            counts = np.sum([run.train_counts for run in members.values()], axis=0)
            fold = Fold(y, {"none": x}, counts[y] > 0)
            _calibrate(fold, "val", (ensemble(vals), val_labels), x, ("T",))
            _calibrate(fold, "valk", trained(ensemble(vals), val_labels, counts), x, ("T",))
            for name, known in (("oof", False), ("oofk", True)):
                pool = oof_pool(members, test, known)
                t = temperature(*pool)
                fold.logits[f"{name}-T"] = ensemble([z / t for z in tests])
                fold.temperatures[f"{name}-T"] = t
                fold.logits[f"ens-{name}-T"] = x / t
            scale = vector_scaling(*oof_pool(members, test, True))
            fold.logits["oofk-VS"] = ensemble([scale(z) for z in tests])
            system[(replicate, test)] = fold
    return system


# ---------------------------------------------------------------- scores


def _ece(logits: np.ndarray, labels: np.ndarray) -> float:
    probs = torch.from_numpy(logits).double().softmax(dim=1)
    return expected_calibration_error(probs, torch.from_numpy(labels).long(), BINS)


def _nll(logits: np.ndarray, labels: np.ndarray) -> float:
    return negative_log_likelihood(
        torch.from_numpy(logits).double(), torch.from_numpy(labels).long()
    )


def _brier(logits: np.ndarray, labels: np.ndarray) -> float:
    probs = torch.from_numpy(logits).double().softmax(dim=1)
    return brier_score(probs, torch.from_numpy(labels).long())


METRICS = {"ece": _ece, "nll": _nll, "brier": _brier}


def pooled(
    system: System, calibrator: str, metric: str, resample=None, known: bool = False
) -> float:
    """Mean over replicates of the metric on all folds' test windows at once (`known`: only
    the windows of classes the fold trained on)."""
    score = METRICS[metric]
    values = []
    for replicate in sorted({r for r, _ in system}):
        xs, ys = [], []
        for test in TESTED:
            fold = system[(replicate, test)]
            chosen = resample[test] if resample is not None else np.arange(len(fold.labels))
            if known:
                chosen = chosen[fold.known[chosen]]
            xs.append(fold.logits[calibrator][chosen])
            ys.append(fold.labels[chosen])
        values.append(score(np.concatenate(xs), np.concatenate(ys)))
    return float(np.mean(values))


def bootstrap(
    system: System, pairs: list[tuple[str, str]], metric: str, rng: np.random.Generator
) -> dict[tuple[str, str], tuple[float, float, float, float]]:
    """Per (before, after) pair: 95% intervals of after and of after − before."""
    sizes = {test: len(system[(0, test)].labels) for test in TESTED}
    afters: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    deltas: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    cache: dict[str, float] = {}
    for _ in range(BOOTSTRAP):
        resample = {t: rng.integers(0, n, n) for t, n in sizes.items()}
        cache.clear()
        for before, after in pairs:
            for name in (before, after):
                if name not in cache:
                    cache[name] = pooled(system, name, metric, resample)
            afters[(before, after)].append(cache[after])
            deltas[(before, after)].append(cache[after] - cache[before])
    return {
        pair: (
            *np.percentile(afters[pair], [2.5, 97.5]),
            *np.percentile(deltas[pair], [2.5, 97.5]),
        )
        for pair in pairs
    }


def per_fold(system: System, calibrator: str, metric: str) -> dict[int, float]:
    """Mean over replicates, per fold."""
    score = METRICS[metric]
    replicates = sorted({r for r, _ in system})
    return {
        test: float(
            np.mean(
                [
                    score(system[(r, test)].logits[calibrator], system[(r, test)].labels)
                    for r in replicates
                ]
            )
        )
        for test in TESTED
    }


@dataclass
class F1Summary:
    """Mean and std: pooled over replicates; per fold over the fold × replicate runs."""

    pooled: tuple[float, float]  # learnable classes
    pooled_all: tuple[float, float]
    fold: tuple[float, float]
    fold_all: tuple[float, float]
    worst: float  # the worst fold × replicate run
    fold_means: dict[int, float]  # per fold, mean over replicates
    fold_means_std: float


def f1_scores(system: System, class_names: list[str], learnable: list[str]) -> F1Summary:
    """Learnable-class macro F1 per fold × replicate and pooled per replicate (as `harfusion
    loso` scores them), plus all-class macro F1 per fold."""
    rows, rows_all, folds = [], [], {t: [] for t in TESTED}
    pooled_scores, pooled_all = [], []
    for replicate in sorted({r for r, _ in system}):
        actual_all, predicted_all = [], []
        for test in TESTED:
            fold = system[(replicate, test)]
            actual = [class_names[i] for i in fold.labels]
            predicted = [class_names[i] for i in fold.logits["none"].argmax(axis=1)]
            f1 = f1_per_class(actual, predicted)
            every, chosen = macro_f1(f1), macro_f1(f1, learnable)
            rows.append(chosen)
            rows_all.append(every)
            folds[test].append(chosen)
            actual_all += actual
            predicted_all += predicted
        f1 = f1_per_class(actual_all, predicted_all)
        every, chosen = macro_f1(f1), macro_f1(f1, learnable)
        pooled_scores.append(chosen)
        pooled_all.append(every)
    fold_means = [float(np.mean(v)) for v in folds.values()]
    return F1Summary(
        (float(np.mean(pooled_scores)), _std(pooled_scores)),
        (float(np.mean(pooled_all)), _std(pooled_all)),
        (float(np.mean(rows)), _std(rows)),
        (float(np.mean(rows_all)), _std(rows_all)),
        float(np.min(rows)),
        dict(zip(TESTED, fold_means, strict=True)),
        _std(fold_means),
    )


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


# ---------------------------------------------------------------- report


def learnable_classes(runs: dict) -> tuple[list[str], list[str]]:
    """Classes with training windows in every base fold (as `harfusion loso` decides)."""
    base = [r for (t, s, m), r in runs["base"].items() if m is None]
    names = base[0].class_names
    counts = np.stack([r.train_counts for r in base])
    return names, [n for i, n in enumerate(names) if (counts[:, i] > 0).all()]


def _replicates(system: System) -> list[int]:
    return sorted({r for r, _ in system})


def calibration_table(
    system: System, calibrators: list[str], rng: np.random.Generator
) -> list[str]:
    pairs = [("none", c) for c in calibrators]
    ece_ci = bootstrap(system, pairs, "ece", rng)
    nll_ci = bootstrap(system, pairs, "nll", rng)
    before_fold = per_fold(system, "none", "ece")
    lines = [
        "| calibrator | pooled ECE [95% CI] | Δ ECE [95% CI] | pooled NLL [95% CI] "
        "| Δ NLL [95% CI] | Brier | ECE / NLL, known classes | per-fold ECE (mean of 6) "
        "| folds better | T (mean) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ece0, nll0 = pooled(system, "none", "ece"), pooled(system, "none", "nll")

    def known(name: str) -> str:
        ece, nll = (pooled(system, name, m, known=True) for m in ("ece", "nll"))
        return f"{ece:.3f} / {nll:.3f}"

    lines.append(
        f"| none | {ece0:.3f} | | {nll0:.3f} | | {pooled(system, 'none', 'brier'):.3f} "
        f"| {known('none')} | {np.mean(list(before_fold.values())):.3f} | | |"
    )
    for name in calibrators:
        ece, nll = pooled(system, name, "ece"), pooled(system, name, "nll")
        e_lo, e_hi, de_lo, de_hi = ece_ci[("none", name)]
        n_lo, n_hi, dn_lo, dn_hi = nll_ci[("none", name)]
        after_fold = per_fold(system, name, "ece")
        better = sum(after_fold[t] < before_fold[t] for t in TESTED)
        temps = [f.temperatures[name] for f in system.values() if name in f.temperatures]
        t_text = f"{np.mean(temps):.2f}" if temps else "–"
        lines.append(
            f"| {name} | {ece:.3f} [{e_lo:.3f}, {e_hi:.3f}] | {ece - ece0:+.3f} "
            f"[{de_lo:+.3f}, {de_hi:+.3f}] | {nll:.3f} [{n_lo:.3f}, {n_hi:.3f}] "
            f"| {nll - nll0:+.3f} [{dn_lo:+.3f}, {dn_hi:+.3f}] "
            f"| {pooled(system, name, 'brier'):.3f} | {known(name)} "
            f"| {np.mean(list(after_fold.values())):.3f} | {better} / 6 | {t_text} |"
        )
    return [*lines, ""]


def fold_table(system: System, calibrators: list[str], temperatures: list[str]) -> list[str]:
    """Per-fold test ECE (mean over replicates) and the fitted temperatures."""
    header = "| per fold, mean over replicates | " + " | ".join(map(str, TESTED)) + " |"
    lines = [header, "|---|" + "---:|" * len(TESTED)]
    for name in ["none", *calibrators]:
        values = per_fold(system, name, "ece")
        lines.append(f"| ECE {name} | " + " | ".join(f"{values[t]:.3f}" for t in TESTED) + " |")
    for name in temperatures:
        means = [
            np.mean([system[(r, t)].temperatures[name] for r in _replicates(system)])
            for t in TESTED
        ]
        lines.append(f"| T of {name} | " + " | ".join(f"{v:.2f}" for v in means) + " |")
    return [*lines, ""]


def stability_table(
    rows: list[tuple[str, System, str]], class_names: list[str], learnable: list[str]
) -> list[str]:
    lines = [
        "| model | replicates | pooled F1, learnable | per fold, learnable | worst run "
        "| std of fold means | per fold, all classes | pooled ECE: none / val-T / valk-T "
        "| fold means, learnable (101, 103, 104, 106, 107, 108) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, system, replicates in rows:
        f1 = f1_scores(system, class_names, learnable)
        eces = " / ".join(f"{pooled(system, c, 'ece'):.3f}" for c in ("none", "val-T", "valk-T"))
        means = ", ".join(f"{v:.3f}" for v in f1.fold_means.values())
        (p, ps), (fm, fs), (am, as_) = f1.pooled, f1.fold, f1.fold_all
        lines.append(
            f"| {name} | {replicates} | {p:.3f} ± {ps:.3f} | {fm:.3f} ± {fs:.3f} "
            f"| {f1.worst:.3f} | {f1.fold_means_std:.3f} | {am:.3f} ± {as_:.3f} "
            f"| {eces} | {means} |"
        )
    return [*lines, ""]


def one_fold_table(
    runs: dict, pairs: list[tuple[str, str | None]], test: int, seeds: list[int]
) -> list[str]:
    """One fold under different validation subjects: F1 and test ECE per calibrator, mean over
    seeds (the cross-fit columns only where its members ran)."""
    names, learnable = learnable_classes(runs)
    lines = [
        "| validation | learnable F1 | ECE none | val-T | valk-T | valkg-T | oofk-T | T of val-T "
        "| T of valkg-T | T of oofk-T |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, crossfit in pairs:
        f1s, eces, temps = [], {}, {}
        for seed in seeds:
            run = runs[variant][(test, seed, None)]
            x, y = run.test_of(test)
            predicted = [names[i] for i in x.argmax(axis=1)]
            f1s.append(macro_f1(f1_per_class([names[i] for i in y], predicted), learnable))
            fold = Fold(y, {"none": x}, run.train_counts[y] > 0)
            _calibrate(fold, "val", (run.val_logits, run.val_labels), x, ("T",))
            _calibrate(
                fold, "valk", trained(run.val_logits, run.val_labels, run.train_counts), x, ("T",)
            )
            _guard(fold, (run.val_logits, run.val_labels), run.train_counts, x)
            members = crossfit_members(runs.get(crossfit or "", {}), test, seed)
            if members:
                _calibrate(fold, "oofk", oof_pool(members, test, True), x, ("T",))
            for name, logits in fold.logits.items():
                eces.setdefault(name, []).append(_ece(logits, y))
            for name, value in fold.temperatures.items():
                temps.setdefault(name, []).append(value)
        cell = lambda d, k, f: f.format(np.mean(d[k])) if k in d else "–"  # noqa: E731
        val = ", ".join(map(str, sorted(set(runs[variant][(test, seeds[0], None)].val_subjects))))
        lines.append(
            f"| {val} | {np.mean(f1s):.3f} | {cell(eces, 'none', '{:.3f}')} "
            f"| {cell(eces, 'val-T', '{:.3f}')} | {cell(eces, 'valk-T', '{:.3f}')} "
            f"| {cell(eces, 'valkg-T', '{:.3f}')} | {cell(eces, 'oofk-T', '{:.3f}')} "
            f"| {cell(temps, 'val-T', '{:.2f}')} | {cell(temps, 'valkg-T', '{:.2f}')} "
            f"| {cell(temps, 'oofk-T', '{:.2f}')} |"
        )
    return [*lines, ""]


def cap_table(runs: dict, seeds: list[int]) -> list[str]:
    """Per fold: learnable F1 as trained, and its ceiling with every window of a trained class
    right (the windows of untrained classes keep the model's prediction)."""
    names, learnable = learnable_classes(runs)
    lines = [
        "| fold | learnable F1 | ceiling | untrained-class windows | where they went (all seeds) |",
        "|---|---:|---:|---:|---|",
    ]
    for test in TESTED:
        real, caps, went = [], [], {}
        for seed in seeds:
            run = runs["base"][(test, seed, None)]
            x, y = run.test_of(test)
            predicted = x.argmax(axis=1)
            known = run.train_counts[y] > 0
            actual = [names[i] for i in y]
            real.append(macro_f1(f1_per_class(actual, [names[i] for i in predicted]), learnable))
            oracle = np.where(known, y, predicted)
            caps.append(macro_f1(f1_per_class(actual, [names[i] for i in oracle]), learnable))
            for i in np.flatnonzero(~known):
                key = f"{names[y[i]]} → {names[predicted[i]]}"
                went[key] = went.get(key, 0) + 1
        top = ", ".join(f"{k} {v}" for k, v in sorted(went.items(), key=lambda kv: -kv[1])[:4])
        lines.append(
            f"| {test} | {np.mean(real):.3f} | {np.mean(caps):.3f} | {int((~known).sum())} "
            f"of {len(y)} | {top or '–'} |"
        )
    return [*lines, ""]


def guard_table(runs: dict) -> list[str]:
    """Per variant, the fits whose validation windows hold fewer than two trained classes: there
    the pipeline's default (`valkg-T`) keeps T = 1 instead of fitting one."""
    lines = [
        "| variant | fits | guard fires (val subject, trained classes in its windows) |",
        "|---|---:|---|",
    ]
    for variant, found in sorted(runs.items()):
        fired = []
        for (test, seed, member), run in sorted(found.items(), key=lambda kv: str(kv[0])):
            known = run.val_labels[run.train_counts[run.val_labels] > 0]
            if len(np.unique(known)) < 2:
                val = ",".join(map(str, sorted(set(run.val_subjects.tolist()))))
                who = f"t{test} s{seed}" + (f" m{member}" if member else "")
                fired.append(f"{who} (val {val}: {len(np.unique(known))})")
        lines.append(f"| {variant} | {len(found)} | {len(fired)}: {', '.join(fired) or '–'} |")
    return [*lines, ""]


def fit_cost(runs: dict) -> list[str]:
    """Fit seconds (one thread, on a machine shared with other work: only roughly comparable)."""
    lines = [
        "| variant | fits | mean fit seconds | mean epochs | seconds per epoch |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant, found in sorted(runs.items()):
        seconds = np.array([r.fit_seconds for r in found.values()])
        epochs = np.array([r.epochs for r in found.values()])
        lines.append(
            f"| {variant} | {len(found)} | {seconds.mean():.1f} | {epochs.mean():.1f} "
            f"| {np.mean(seconds / np.maximum(epochs, 1)):.2f} |"
        )
    return [*lines, ""]


def analyze(folder: Path, out: Path | None) -> None:
    torch.set_num_threads(1)  # tiny tensors: threads only contend
    runs = load_runs(folder)
    class_names, learnable = learnable_classes(runs)
    rng = np.random.default_rng(0)
    text = "\n".join(sections(runs, class_names, learnable, rng))
    print(text)
    if out:
        out.write_text(text + "\n")


SINGLE_CALIBRATORS = [
    "val-T",
    "valk-T",
    "valkg-T",
    "val-VS",
    "valk-VS",
    "val-TF",
    "oof-T",
    "oofk-T",
    "oof-VS",
    "oofk-VS",
    "oofk+valk-T",
]
ENSEMBLE_CALIBRATORS = ["val-T", "valk-T", "valkg-T"]
CROSSFIT_CALIBRATORS = ["val-T", "valk-T", "oof-T", "oofk-T", "ens-oofk-T", "oofk-VS"]


def _seeds_done(runs: dict, variant: str) -> list[int]:
    """Seeds for which every fold of `variant` finished."""
    found = runs.get(variant, {})
    seeds = sorted({s for (_, s, _) in found})
    return [s for s in seeds if all((t, s, None) in found for t in TESTED)]


def _crossfit_seeds(runs: dict, variant: str) -> list[int]:
    found = runs.get(variant, {})
    seeds = sorted({s for (_, s, _) in found})
    return [s for s in seeds if all(len(crossfit_members(found, t, s)) == 5 for t in TESTED)]


def _crossfit_seeds_for(runs: dict, variant: str, test: int) -> list[int]:
    found = runs.get(variant, {})
    seeds = sorted({s for (_, s, _) in found})
    return [s for s in seeds if len(crossfit_members(found, test, s)) == 5]


def _groups(seeds: list[int], size: int) -> list[list[int]]:
    """Disjoint groups of `size` consecutive seeds, at most 3."""
    return [seeds[i : i + size] for i in range(0, len(seeds) - size + 1, size)][:3]


def sections(
    runs: dict, class_names: list[str], learnable: list[str], rng: np.random.Generator
) -> list[str]:
    lines = [f"Learnable classes: {', '.join(learnable)}.", ""]
    base_seeds = _seeds_done(runs, "base")
    cross_seeds = _crossfit_seeds(runs, "crossfit")
    default = single(runs, "base", [1, 2, 3], "crossfit" if cross_seeds[:3] == [1, 2, 3] else None)
    calibrators = [c for c in SINGLE_CALIBRATORS if c in default[(0, TESTED[0])].logits]
    lines += ["### A1. The default model (one per fold), seeds 1-3", ""]
    lines += calibration_table(default, calibrators, rng)
    lines += fold_table(
        default,
        [c for c in ("val-T", "valk-T", "oofk-T") if c in calibrators],
        [c for c in ("val-T", "valk-T", "oofk-T") if c in calibrators],
    )
    many = single(runs, "base", base_seeds, None, detail=False)
    lines += [f"### A2. The default model, seeds {base_seeds[0]}-{base_seeds[-1]}", ""]
    lines += calibration_table(many, ENSEMBLE_CALIBRATORS, rng)
    stability = [
        ("default (one model)", default, "seeds 1-3"),
        ("default (one model)", many, f"seeds {base_seeds[0]}-{base_seeds[-1]}"),
    ]
    for k in (3, 5):
        groups = _groups(base_seeds, k)
        if len(groups) == 3:
            ensemble_system = seed_ensemble(runs, "base", groups)
            lines += [f"### A3. Seed ensembles of {k} ({groups})", ""]
            lines += calibration_table(ensemble_system, ENSEMBLE_CALIBRATORS, rng)
            lines += fold_table(ensemble_system, ["val-T", "valk-T"], ["valk-T"])
            stability.append((f"seed ensemble, K={k}", ensemble_system, str(groups)))
    if cross_seeds[:3] == [1, 2, 3]:
        members = crossfit_ensemble(runs, "crossfit", [1, 2, 3], None)
        lines += [
            "### A4. Cross-fit members (5 per fold, each without one training subject) "
            "as an ensemble, seeds 1-3",
            "",
        ]
        lines += calibration_table(members, CROSSFIT_CALIBRATORS, rng)
        lines += fold_table(members, ["valk-T", "oofk-T", "ens-oofk-T"], ["oofk-T"])
        stability.append(("cross-fit members as an ensemble (5)", members, "seeds 1-3"))
        both = crossfit_ensemble(runs, "crossfit", [1, 2, 3], "base")
        lines += ["### A5. The default model + its 5 cross-fit members, seeds 1-3", ""]
        lines += calibration_table(both, CROSSFIT_CALIBRATORS, rng)
        stability.append(("default + its cross-fit members (6)", both, "seeds 1-3"))
    chunk_seeds = _seeds_done(runs, "chunk1024")
    if chunk_seeds[:3] == [1, 2, 3]:
        crossfit = "chunk1024_crossfit"
        crossfit = crossfit if _crossfit_seeds(runs, crossfit)[:3] == [1, 2, 3] else None
        chunk = single(runs, "chunk1024", [1, 2, 3], crossfit, detail=False)
        names = [
            c for c in ("val-T", "valk-T", "oofk-T", "oofk+valk-T") if c in chunk[(0, 101)].logits
        ]
        lines += ["### A6. Windows of 1024 steps (one model per fold), seeds 1-3", ""]
        lines += calibration_table(chunk, names, rng)
        lines += fold_table(chunk, names, [n for n in names if n != "val-T"])
        groups = _groups(chunk_seeds, 3)
        if len(groups) == 3:
            ensemble_system = seed_ensemble(runs, "chunk1024", groups)
            lines += [f"### A7. Windows of 1024 steps, seed ensembles of 3 ({groups})", ""]
            lines += calibration_table(ensemble_system, ENSEMBLE_CALIBRATORS, rng)
            lines += fold_table(ensemble_system, ["val-T", "valk-T"], ["valk-T"])
    for variant in ("recnorm", "recnorm_triad", "recnorm_mag", "chunk1024", "val2"):
        seeds = _seeds_done(runs, variant)
        if seeds[:3] == [1, 2, 3]:
            system = single(runs, variant, [1, 2, 3], None, detail=False)
            stability.append((variant, system, "seeds 1-3"))
        if len(seeds) > 3:
            system = single(runs, variant, seeds, None, detail=False)
            stability.append((variant, system, f"seeds {seeds[0]}-{seeds[-1]}"))
        for k in (3, 5):
            groups = _groups(seeds, k)
            if len(groups) == 3:
                system = seed_ensemble(runs, variant, groups)
                stability.append((f"{variant}, seed ensemble, K={k}", system, str(groups)))
    lines += ["### B. Stability across people", ""]
    lines += stability_table(stability, class_names, learnable)
    lines += [
        f"### B2. What caps fold 107 (default model, seeds {base_seeds[0]}-{base_seeds[-1]})",
        "",
    ]
    lines += cap_table(runs, base_seeds)
    seeds_109 = [s for s in (1, 2, 3) if (108, s, None) in runs.get("base_val109", {})]
    crossfit_109 = _crossfit_seeds_for(runs, "crossfit_val109", 108)[:3]
    if seeds_109 == crossfit_109 == [1, 2, 3]:
        lines += [
            "### C. Fold 108 validated on 101 (the protocol) or on 109 (one activity only)",
            "",
        ]
        lines += one_fold_table(
            runs, [("base", "crossfit"), ("base_val109", "crossfit_val109")], 108, [1, 2, 3]
        )
    lines += ["### D. Where the guard fires (fewer than two trained classes to fit on)", ""]
    lines += guard_table(runs)
    lines += ["### Fit cost (one thread, shared machine)", ""]
    lines += fit_cost(runs)
    return lines
