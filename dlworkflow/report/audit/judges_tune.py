"""Automatic judges: Model 3: hyperparameters tuned."""

from __future__ import annotations

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judge import Judgement, judge


@judge("hyperparameters_tuned")
def hyperparameters_tuned(ev: Evidence) -> Judgement:
    study = ev.latest("tune")
    if study is not None:
        s = study.summary
        return Judgement(
            1.0,
            f"`dlw tune` searched tune.space on validation: study "
            f"{s.get('study')}, {s.get('n_trials')} trials "
            f"({s.get('n_pruned')} pruned), best {s.get('metric')} "
            f"{s.get('best_value')} (reports/tune.html)",
        )
    configs = {r.config_hash for r in ev.history("train")}
    found = []
    if ev.lr_find_plot is not None:
        found.append("a learning-rate range test (reports/lr_find.png)")
    if len(configs) > 1:
        found.append(f"{len(configs)} training configurations compared (ledger, MLflow)")
    if found:
        return Judgement(
            0.5,
            " and ".join(found) + "; no automated search is recorded",
            "`dlw tune` (a search over tune.space in dlworkflow.yaml)",
        )
    return Judgement(
        0.0,
        "no learning-rate range test and a single training configuration",
        "`dlw lr-find`, and train more than one configuration",
    )
