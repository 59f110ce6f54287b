"""The task interface (dlworkflow/tasks/): the registry, what a task owns so far (target
parsing, strata, metric directions), the gate in a metric's direction, and that no step
branches on task names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from dlworkflow.config import TaskType
from dlworkflow.errors import ConfigError, UnknownKeyError
from dlworkflow.evaluate.gate import judge
from dlworkflow.tasks import TASKS, TargetError, task_names, task_of

PACKAGE = Path(__file__).resolve().parents[1] / "dlworkflow"
TASK_CHAINS = (  # a task name compared, listed or used as a key outside the registry
    re.compile(r"""\btask\w*\s*(?:==|!=)\s*["']"""),
    re.compile(r"""\btask\w*\s+(?:not\s+)?in\s+[(\[{]\s*["']"""),
    re.compile(r"""[{,]\s*["'](?:image|text|tabular)-\w+["']\s*:"""),
)


def test_the_registry_names_each_task_with_its_modality_and_default_model():
    assert task_names() == [
        "audio-classification",
        "image-classification",
        "image-multilabel",
        "image-regression",
        "object-detection",
        "semantic-segmentation",
        "sequence-classification",
        "tabular-classification",
        "tabular-multilabel",
        "tabular-regression",
        "text-classification",
        "text-multilabel",
    ]
    assert sorted(get_args(TaskType)) == task_names()  # the config's schema offers them all
    image = task_of("image-classification")
    assert (image.modality, image.kind, image.default_model) == (
        "image",
        "classification",
        "small_cnn",
    )
    assert task_of("text-classification").default_model == "minilm_classifier"
    assert task_of("tabular-classification").modality == "tabular"
    series, audio = task_of("sequence-classification"), task_of("audio-classification")
    assert (series.modality, series.kind, series.default_model) == (
        "sequence",
        "classification",
        "resnet1d",
    )
    assert (audio.modality, audio.default_model) == ("audio", "audio_efficientnet_lite0")
    with pytest.raises(UnknownKeyError, match="did you mean 'image-classification'"):
        task_of("image-clasification")
    assert all(TASKS.get(name).name == name for name in task_names())


def test_classification_targets_are_parsed_or_quarantined_with_the_reason():
    task = task_of("tabular-classification")
    assert task.parse_target("  cat ", column="label") == "cat"
    assert task.parse_target(3, column="label") == "3"
    for empty in (None, float("nan"), "", "  ", "n/a", "NaN", "null"):
        with pytest.raises(TargetError) as err:
            task.parse_target(empty, column="species")
        assert err.value.reason == "no label (empty or NaN species)"
    assert task.strata(["a", "b", "a"]) == ["a", "b", "a"]


def test_metrics_know_their_direction_and_which_may_be_primary():
    task = task_of("image-classification")
    assert task.primary_metrics() == ["accuracy", "balanced_accuracy", "macro_f1", "auroc"]
    ece = task.metric("ece")
    assert not ece.higher_is_better and not ece.primary
    assert ece.meets(0.02, 0.05) and not ece.meets(0.06, 0.05) and ece.better(0.01, 0.02)
    assert task.metric("accuracy").meets(0.95, 0.95)
    with pytest.raises(ConfigError, match="has no metric 'rmse'"):
        task.metric("rmse")


def test_the_gate_judges_a_lower_is_better_metric_at_its_pessimistic_end():
    common = {
        "metric": "rmse",
        "value": 3.2,
        "interval": (2.9, 3.7),
        "confidence": 0.95,
        "target": 3.5,
        "higher_is_better": False,
    }
    on_value = judge(**common)
    assert on_value.passed and "test rmse 3.2000" in on_value.sentence()
    assert "<= target 3.5" in on_value.sentence()
    on_bound = judge(**common, gate_on="lower_bound")  # the pessimistic end: 3.7 > 3.5
    assert not on_bound.passed
    assert "the upper bound of the 95% CI 3.7000" in on_bound.sentence()
    assert "> target 3.5" in on_bound.sentence()
    assert on_bound.record()["higher_is_better"] is False
    assert judge(**{**common, "value": 3.6}).verdict == "FAIL"
    assert judge(**{**common, "value": float("nan")}).verdict == "FAIL"
    higher = judge(
        metric="accuracy",
        value=0.96,
        interval=(0.94, 0.97),
        confidence=0.95,
        target=0.95,
        gate_on="lower_bound",
    )  # unchanged for accuracy
    assert not higher.passed and "the lower bound of the 95% CI 0.9400" in higher.sentence()


def test_no_step_branches_on_task_names():
    """Steps ask the task (task_of(name).modality, .parse_target, .metric(...)); only the
    registry and the config's list of names spell task names out."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "tasks" or path.name == "config.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(p.search(line) for p in TASK_CHAINS):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
