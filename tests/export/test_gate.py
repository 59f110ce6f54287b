"""The gate: the metric (its value, or its interval's lower bound) AND the deployment
constraints measured on the exported ONNX model; a failed constraint FAILs a model whose
metric passes, and the verdict carries the evidence."""

from __future__ import annotations

import json

import pytest

from dlworkflow.errors import ConfigError
from dlworkflow.evaluate.bootstrap import bootstrap_interval
from dlworkflow.evaluate.constraints import check_constraints
from dlworkflow.evaluate.gate import FAIL, PASS, judge
from dlworkflow.metrics import METRICS, compute
from dlworkflow.models.predict import label_indices, load_model, predict_proba
from dlworkflow.runtime.spec import example_input
from dlworkflow.store import load_split


@pytest.fixture
def evidence(digits):
    """(project, model, meta, validation accuracy, its 95% interval); constraints reset after."""
    model, meta = load_model(digits)
    rows = load_split(digits, "val")
    y, proba = label_indices(rows, meta["classes"]), predict_proba(digits, model, meta, rows)
    value = compute("accuracy", y, proba)
    interval = bootstrap_interval(
        METRICS.get("accuracy"), y, proba, n_resamples=200, confidence=0.95, seed=0
    )
    yield digits, model, meta, value, interval
    digits.update_config(
        {"problem.constraints": {"max_latency_ms": None, "max_model_size_mb": None}}
    )


def verdict(value, interval, checks, gate_on="value"):
    return judge(
        metric="accuracy",
        value=value,
        interval=interval,
        confidence=0.95,
        target=0.5,
        gate_on=gate_on,
        constraints=checks,
    )


def test_failed_constraints_fail_a_model_whose_metric_passes(evidence):
    project, model, meta, value, interval = evidence
    assert value >= 0.5  # the metric alone passes
    project.update_config(
        {"problem.constraints": {"max_latency_ms": 0.0001, "max_model_size_mb": 0.001}}
    )
    checks = check_constraints(project, model, meta, example_input(meta, 1))
    assert [c.name for c in checks] == ["max_latency_ms", "max_model_size_mb"]
    latency, size = checks
    assert 0.0001 < latency.measured < 1000 and not latency.passed
    assert "1 thread" in latency.detail and "p95" in latency.detail
    assert 0.001 < size.measured < 1 and not size.passed  # small_cnn [8, 16]: ~9 kB
    result = verdict(value, interval, checks)
    assert result.verdict == FAIL and result.metric_passed
    assert "constraint failed" in result.sentence() and "latency" in result.sentence()
    record = json.loads(json.dumps(result.record()))  # JSON-ready evidence for the ledger
    assert [c["passed"] for c in record["constraints"]] == [False, False]


def test_generous_constraints_pass(evidence):
    project, model, meta, value, interval = evidence
    project.update_config(
        {"problem.constraints": {"max_latency_ms": 1000, "max_model_size_mb": 100}}
    )
    checks = check_constraints(project, model, meta, example_input(meta, 3))  # first row used
    assert all(c.passed for c in checks) and len(checks) == 2
    result = verdict(value, interval, checks)
    assert result.verdict == PASS and "constraints hold" in result.sentence()


def test_no_constraints_measure_nothing(evidence):
    project, model, meta, _, _ = evidence
    assert check_constraints(project, model, meta) == []


def test_gate_on_lower_bound_is_stricter():
    interval = (0.46, 0.91)  # the estimate meets 0.5, its lower bound does not
    assert verdict(0.8, interval, []).verdict == PASS
    strict = verdict(0.8, interval, [], gate_on="lower_bound")
    assert strict.verdict == FAIL and "lower bound" in strict.sentence()
    assert verdict(0.8, (0.6, 0.9), [], gate_on="lower_bound").verdict == PASS
    old = judge(metric="accuracy", value=0.8, interval=interval, confidence=0.95, target=0.5)
    assert old.passed and old.constraints == () and old.gate_on == "value"
    with pytest.raises(ValueError, match="gate_on"):
        judge(
            metric="accuracy",
            value=0.8,
            interval=interval,
            confidence=0.95,
            target=0.5,
            gate_on="median",
        )


def test_gate_on_is_a_config_option(digits):
    assert digits.config.evaluate.gate_on == "value"
    digits.update_config({"evaluate.gate_on": "lower_bound"})
    assert digits.config.evaluate.gate_on == "lower_bound"
    with pytest.raises(ConfigError):
        digits.update_config({"evaluate.gate_on": "median"})
    digits.update_config({"evaluate.gate_on": "value"})


def test_dlw_test_fails_on_a_constraint_and_records_the_evidence(tmp_path):
    """Through `dlw test`: the metric passes, the exported model is too large -> FAIL, with
    the measured size in the verdict, the ledger and the exit code; export then refuses."""
    from modality_data import helpers

    trained_digits = helpers("export/conftest.py").trained_digits
    from dlworkflow.deploy.export.step import ExportRefusedError

    project = trained_digits(tmp_path)
    project.update_config(
        {"problem.constraints": {"max_model_size_mb": 0.0001, "max_latency_ms": 1000}}
    )
    result = project.test()
    assert result.verdict.metric_passed and result.verdict.verdict == FAIL
    assert result.exit_code == 3
    latency, size = sorted(result.verdict.constraints, key=lambda c: c.name)
    assert size.name == "max_model_size_mb" and not size.passed and size.measured > 0.0001
    assert latency.passed and 0 < latency.measured < 1000
    assert "constraint failed" in result.verdict.sentence()
    record = project.ledger.latest("test")
    assert record.outputs["verdict"] == FAIL
    assert {c["name"]: c["passed"] for c in record.outputs["constraints"]} == {
        "max_model_size_mb": False,
        "max_latency_ms": True,
    }
    with pytest.raises(ExportRefusedError):
        project.export()
