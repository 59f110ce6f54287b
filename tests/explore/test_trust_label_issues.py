"""The label-issue warning weighs the quick model that found the candidates."""

from __future__ import annotations

from types import SimpleNamespace

from dlworkflow.explore.label_issues import Candidate, LabelIssues
from dlworkflow.explore.trust import _label_issues


def _evidence(accuracy: float) -> SimpleNamespace:
    one = Candidate(position=0, given="a", suggested="b", confidence=0.9, given_probability=0.05)
    found = LabelIssues(n_checked=100, candidates=[one] * 40, model_accuracy=accuracy)
    return SimpleNamespace(label_issues=found)


def test_many_candidates_of_an_accurate_quick_model_are_a_high_warning():
    (warning,) = _label_issues(_evidence(0.95))  # type: ignore[arg-type]
    assert warning.severity == "high" and "accurate" not in warning.text


def test_candidates_of_a_weak_quick_model_are_a_low_hint_that_says_why():
    (warning,) = _label_issues(_evidence(0.51))  # type: ignore[arg-type]
    assert warning.severity == "low"
    assert "51% accurate" in warning.text
