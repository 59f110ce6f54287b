"""reports/tune.html and the final report's study: built from real Optuna studies (a quick one
with a known objective, and a real `dlw tune` study on the digits)."""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from dlworkflow.project import Project  # noqa: E402
from dlworkflow.report.tune_page import (  # noqa: E402
    IMPORTANCE_METHOD,
    importances,
    study_view,
    tune_html,
    write_tune_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def pngs(text: str) -> list[bytes]:
    return [
        base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    ]


def section(text: str, key: str) -> str:
    start = text.index(f"<section id='{key}'")
    return text[start : text.index("</section>", start)]


def known_study(n_trials: int = 14) -> optuna.Study:
    """A real TPE + median-pruner study whose value depends mostly on the learning rate (the
    weight decay adds little; batch size nothing): importances must say so."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("train.learning_rate", 1e-5, 1e-1, log=True)
        wd = trial.suggest_float("train.weight_decay", 0.0, 0.01)
        trial.suggest_categorical("train.batch_size", [16, 32, 64])
        trial.set_user_attr("pid", 4242)
        value = 0.0
        for epoch in range(1, 4):
            value = 0.95 - 0.1 * abs(math.log10(lr) + 2.0) - wd + 0.01 * epoch
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=4),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    study.optimize(objective, n_trials=n_trials)
    return study


def test_tune_html_inlines_history_importances_parallel_and_trial_table():
    study = known_study()
    states = [t.state.name for t in study.trials]
    assert "PRUNED" in states and "COMPLETE" in states  # the page has both kinds to show
    text = tune_html(study, title="digits: hyperparameter search", metric="accuracy")

    images = pngs(text)
    assert len(images) == 3 and all(img.startswith(PNG_MAGIC) for img in images)
    assert "<script" not in text and "http://" not in text and "https://" not in text
    for key in ("history", "importances", "parallel", "trials"):
        assert f"<section id='{key}'" in text

    values, why = importances(study)
    assert why is None and math.isclose(sum(values.values()), 1.0, abs_tol=1e-6)
    assert max(values, key=values.get) == "train.learning_rate"
    assert IMPORTANCE_METHOD.split(" ")[0] in section(text, "importances")

    trials = section(text, "trials")
    rows = re.findall(r"<tr><td class='num'>(\d+)</td><td>(\w+)</td>", trials)
    assert [int(n) for n, _ in rows] == [t.number for t in study.trials]
    assert [s for _, s in rows] == [s.lower() for s in states]
    assert "train.learning_rate" in trials and "epochs run" in trials and "4242" in trials
    best = study.best_trial
    summary = section(text, "summary")
    assert f"{best.value:.4f}" in summary and f"pruned {states.count('PRUNED')}" in summary


def test_study_view_best_so_far_and_pruned_values():
    study = known_study(10)
    view = study_view(study, "accuracy")
    assert view.maximize and view.best is not None
    assert view.best.number == study.best_trial.number
    for trial, frozen in zip(view.trials, study.trials):
        assert trial.epochs == len(frozen.intermediate_values)
        if frozen.state.name == "PRUNED":  # shown at the value it was stopped on
            assert trial.last == frozen.intermediate_values[max(frozen.intermediate_values)]


def test_a_study_without_complete_trials_still_renders(tmp_path: Path):
    study = optuna.create_study(direction="maximize")
    text = tune_html(study, title="empty", metric="accuracy")
    assert "No trial has run yet" in text and "Importances not available" in text
    project = Project.init(tmp_path / "proj", name="empty")
    path = write_tune_report(project, study)
    assert path == project.paths.reports / "tune.html" and path.is_file()


def test_final_report_without_a_study_says_none_was_run(tmp_path: Path):
    from dlworkflow.report.evidence import gather
    from dlworkflow.report.sections import approach

    project = Project.init(tmp_path / "proj", name="none")
    body = approach(gather(project, with_audit=False)).body
    assert "No hyperparameter search is recorded" in body and "data-missing='dlw tune'" not in body


def test_a_digits_study_writes_tune_html_and_the_final_report_shows_it(digits_project: Project):
    from dlworkflow.report.step import report

    project = digits_project
    project.update_config(
        {
            "tune.space": {
                "train.learning_rate": {"type": "log_uniform", "low": 1e-3, "high": 5e-2},
                "train.batch_size": {"type": "categorical", "choices": [32, 64]},
            },
            "tune.trials": 4,
            "tune.epochs": 2,
            "tune.startup_trials": 2,
        }
    )
    result = project.tune(progress=False)
    path = project.paths.reports / "tune.html"
    assert Path(result.report) == path and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert len(pngs(text)) == 3  # history, importances, parallel coordinates
    rows = re.findall(r"<tr><td class='num'>(\d+)</td><td>(\w+)</td>", section(text, "trials"))
    assert [int(n) for n, _ in rows] == [0, 1, 2, 3]
    assert "train.batch_size" in section(text, "importances")
    assert f"{result.best_value:.4f}" in section(text, "summary")

    final = report(project, pdf=False).html.read_text(encoding="utf-8")
    approach = section(final, "approach")
    assert result.study in approach and f"{result.best_value:.4f}" in approach
    assert "<a href='tune.html'>reports/tune.html</a>" in approach
    assert f"complete {result.n_complete}, pruned {result.n_pruned}" in approach
    assert project.ledger.test_reads() == []
