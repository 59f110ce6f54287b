"""Label-issue candidates by confident learning (cleanlab) on out-of-fold predicted
probabilities of a quick model (logistic regression) on the map's features."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

CV_FOLDS = 5
SHOWN_ISSUES = 40  # candidates shown in the report


@dataclass
class Candidate:
    position: int  # row position in the subsample
    given: str
    suggested: str
    confidence: float  # the model's probability of the suggested label
    given_probability: float


@dataclass
class LabelIssues:
    n_checked: int
    candidates: list[Candidate] = field(default_factory=list)
    model_accuracy: float = float("nan")  # out-of-fold accuracy of the quick model
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.candidates) / self.n_checked if self.n_checked else 0.0


def find_label_issues(X: np.ndarray, labels: np.ndarray, *, seed: int) -> LabelIssues:
    """Candidates ranked by the model's confidence that the given label is wrong."""
    labels = np.asarray(labels).astype(str)
    classes, counts = np.unique(labels, return_counts=True)
    usable = np.isin(labels, classes[counts >= CV_FOLDS])
    notes = []
    if (~usable).any():
        few = classes[counts < CV_FOLDS].tolist()
        notes.append(f"classes with fewer than {CV_FOLDS} samples left out: {few[:10]}")
    if len(np.unique(labels[usable])) < 2:
        return LabelIssues(n_checked=0, notes=notes + ["too few samples per class to check"])
    rows = np.flatnonzero(usable)
    names, y = np.unique(labels[rows], return_inverse=True)
    probs = _out_of_fold(X[rows], y, seed=seed)
    result = LabelIssues(
        n_checked=len(rows), notes=notes, model_accuracy=float((probs.argmax(axis=1) == y).mean())
    )
    found = _cleanlab(y, probs)
    for i in found:
        top = int(probs[i].argmax())
        result.candidates.append(
            Candidate(
                position=int(rows[i]),
                given=str(names[y[i]]),
                suggested=str(names[top]),
                confidence=float(probs[i, top]),
                given_probability=float(probs[i, y[i]]),
            )
        )
    return result


def _out_of_fold(X: np.ndarray, y: np.ndarray, *, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.nan_to_num(np.asarray(X, dtype=np.float64))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.5))
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of a deliberately quick model
        return cross_val_predict(model, X, y, cv=folds, method="predict_proba")


def _cleanlab(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    from cleanlab.filter import find_label_issues as cl_find

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(
            cl_find(
                labels=y,
                pred_probs=probs,
                return_indices_ranked_by="self_confidence",
                n_jobs=1,  # its Pool forks this multi-threaded process: a deadlock was seen
            ),
            dtype=int,
        )
