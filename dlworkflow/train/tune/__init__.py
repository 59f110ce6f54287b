"""Step 6, `dlw tune`: hyperparameter search over `tune.space` on the validation split.

    result = tune(project)                           # == Project.tune(), `dlw tune`
    result = tune(project, trials=30, workers=4, apply=True)
    value = run_trial(project, {"train.learning_rate": 3e-3}, epochs=3, report=report)

Optuna TPE (or random search) with a median or ASHA pruner on the validation metric reported
every epoch; the study lives in SQLite in the project (.dlw/tune/study.db) and resumes where
a killed run stopped; --workers N runs trials in N processes; --backend ray runs the same study
on a Ray cluster (ray_backend.py). Trials never read the test set, never replace the trained
model and never record a "train" step. Modules: space (the search space), trial (one trial),
study (storage, sampler, pruner, workers), apply (--apply), step (the `tune` step), html
(reports/tune.html), ray_backend (Ray Tune).
"""

from dlworkflow.train.tune.step import TuneResult, tune
from dlworkflow.train.tune.trial import run_trial

__all__ = ["TuneResult", "run_trial", "tune"]
