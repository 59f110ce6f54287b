"""Quality of dlw's network on the new tasks next to classical models, on the same split, in
one run.

- randhie (statsmodels' RAND Health Insurance Experiment, 20,190 rows, 9 covariates, target:
  outpatient visits, tabular-regression): test RMSE of dlw's MLP (the default network of
  `dlw init --task tabular-regression`, trained by `dlw train` with the shipped settings)
  next to scikit-learn's HistGradientBoostingRegressor and ridge regression (RidgeCV).
- Yeast (river's copy, 2,417 genes, 103 features, 14 labels, tabular-multilabel): test
  macro-F1 of dlw's MLP (per-label thresholds tuned on validation, as `dlw train` does)
  next to one-vs-rest logistic regression (threshold 0.5, and with per-label thresholds tuned
  on the same validation rows, for a like-for-like comparison).

Each project is made with the public API (init, define, ingest, split, train); every model
sees the same train rows (the classical ones also train on them alone, validation is only for
dlw's early stopping and thresholds) and is scored on the same test rows with the task's own
metric code (dlworkflow.tasks), which tests/test_task_targets.py checks against scikit-learn.
The classical models see the same encoded features as the network (train-split
standardisation and one-hot categories: dlworkflow.preprocess.tabular).

Goals, printed as MET / NOT MET (exit 1 when one is not met):
- randhie: dlw's RMSE within 3% of the better classical model (ratio <= 1.03): a network on
  9 covariates should match gradient boosting, not lose to it;
- Yeast: dlw's macro-F1 at least that of one-vs-rest logistic regression with tuned
  thresholds (ratio >= 1.0).

    python bench/task_baselines.py [--folder /tmp/dlw-task-bench] [--seed 42] [--quick]

One seeded run, no repeats: quality, not time, is measured, and the seeded training gives
(nearly) the same figures on a rerun: repeats would add minutes, not information. --quick
(what `make bench-all` runs) is that run (about 1 minute on 2 idle cores).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from dlworkflow.models.predict import load_model, predict_logits  # noqa: E402
from dlworkflow.preprocess.tabular import encode_table  # noqa: E402
from dlworkflow.project import Project  # noqa: E402
from dlworkflow.store import read_assignments, read_manifest  # noqa: E402
from dlworkflow.tasks import task_of  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verdict import Goal, finish, work_folder  # noqa: E402

RMSE_GOAL = 1.03  # dlw RMSE / best classical RMSE, at most
F1_GOAL = 1.0  # dlw macro-F1 / OvR logistic (tuned thresholds) macro-F1, at least


def build(root: Path, task: str, source: str, metric: str, target: float, seed: int) -> Project:
    project = Project.init(root, task=task)
    project.update_config({"seed": seed})
    project.define(metric=metric, target=target, objective="benchmark")
    project.ingest(source, progress=False)
    project.split()
    started = time.perf_counter()
    result = project.train(progress=False)
    print(
        f"  {task}: dlw train {time.perf_counter() - started:.1f} s, "
        f"best val {result.metric} {result.best_metric:.4f} at epoch {result.best_epoch} "
        f"of {result.epochs_run}",
        flush=True,
    )
    return project


def parts(
    project: Project,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], object, dict, np.ndarray]:
    """Encoded features and encoded targets per split, the model's meta, and the network's
    raw outputs on the test rows."""
    model, meta = load_model(project)
    task = task_of(meta["task"])
    manifest = read_manifest(project).merge(
        read_assignments(project)[["sample_id", "split"]], on="sample_id"
    )
    x, y, rows = {}, {}, {}
    for name in ("train", "val", "test"):
        rows[name] = manifest[manifest["split"] == name].reset_index(drop=True)
        x[name] = encode_table(rows[name], meta["preprocessing"])
        y[name] = task.encode(rows[name]["label"].astype(str).tolist(), meta["classes"])
    logits = predict_logits(project, model, meta, rows["test"])
    return x, y, meta, task.outputs(logits, meta["target"]), meta["classes"]


def regression(folder: Path, seed: int) -> tuple[float, dict[str, float]]:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV

    project = build(folder / "randhie", "tabular-regression", "builtin:randhie", "rmse", 4.0, seed)
    x, y, meta, out, _ = parts(project)
    task = task_of("tabular-regression")
    score = {"dlw": task.score("rmse", y["test"], out, {})}
    for name, model in (
        ("HistGradientBoosting", HistGradientBoostingRegressor(random_state=seed)),
        ("ridge (RidgeCV)", RidgeCV(alphas=np.logspace(-3, 3, 13))),
    ):
        model.fit(x["train"], y["train"])
        score[name] = task.score("rmse", y["test"], model.predict(x["test"])[:, None], {})
    return score["dlw"], score


def multilabel(folder: Path, seed: int) -> tuple[float, dict[str, float]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    project = build(folder / "yeast", "tabular-multilabel", "builtin:yeast", "macro_f1", 0.4, seed)
    x, y, meta, out, names = parts(project)
    task = task_of("tabular-multilabel")
    score = {"dlw": task.score("macro_f1", y["test"], out, meta["target"])}
    ovr = OneVsRestClassifier(LogisticRegression(max_iter=2000)).fit(x["train"], y["train"])
    proba = ovr.predict_proba(x["test"])
    score["OvR logistic (0.5)"] = task.score("macro_f1", y["test"], proba, {})
    tuned = task.fit_on_validation(y["val"], ovr.predict_proba(x["val"]), {})
    score["OvR logistic (tuned)"] = task.score("macro_f1", y["test"], proba, tuned)
    return score["dlw"], score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="bench-all size: the defaults")
    args = parser.parse_args()
    if args.folder is not None:  # a given folder starts empty
        shutil.rmtree(args.folder, ignore_errors=True)
        Path(args.folder).mkdir(parents=True)
    with work_folder(args.folder, "dlw-task-bench-") as folder:
        return run(args, folder)


def run(args: argparse.Namespace, folder: Path) -> int:
    rmse, reg = regression(folder, args.seed)
    f1, ml = multilabel(folder, args.seed)
    best = min(v for k, v in reg.items() if k != "dlw")
    ovr = ml["OvR logistic (tuned)"]
    print("\ntask                 model                       test metric")
    for name, value in reg.items():
        print(f"randhie (regression) {name:<27} RMSE {value:.4f}")
    for name, value in ml.items():
        print(f"yeast (multi-label)  {name:<27} macro-F1 {value:.4f}")
    finish(
        [
            Goal(
                "randhie: dlw RMSE / best classical RMSE",
                rmse / best,
                "<=",
                RMSE_GOAL,
                detail=f"dlw {rmse:.4f}, best classical {best:.4f}",
            ),
            Goal(
                "yeast: dlw macro-F1 / OvR logistic (tuned thresholds)",
                f1 / ovr,
                ">=",
                F1_GOAL,
                detail=f"dlw {f1:.4f}, OvR logistic {ovr:.4f}",
            ),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
