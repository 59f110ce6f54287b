"""A real end-to-end digits project (define, ingest, explore, split, train, evaluate, test,
export, serve, retrain, export again): each automatic judge turns from 0 to its points when the
evidence it uses appears, and the checklist cannot override evidence that contradicts it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project
from dlworkflow.report.audit import audit

CONFIG = {
    "data.source": "builtin:digits",
    "explore.backbone": "pixels",
    "model.params": {"channels": [16, 32], "convs_per_block": 1},
    "train.epochs": 6,
    "train.batch_size": 64,
    "train.learning_rate": 0.005,
    "train.threads": 2,
    "evaluate.bootstrap_samples": 200,
    "evaluate.slices": ["brightness"],
}


def points(project: Project) -> dict[str, float]:
    return {t.test.id: t.points for t in audit(project).tests}


def scored(project: Project, test_id: str):
    return next(t for t in audit(project).tests if t.test.id == test_id)


def serve_some(project: Project, n: int = 6) -> None:
    """Real requests through `dlw serve`'s app: the prediction log gets n lines."""
    import base64

    import httpx

    from dlworkflow.config import Serve
    from dlworkflow.deploy.serve.app import create_app

    token = "audit-test-token-" + "x" * 20
    application = create_app(project.root, Serve(), token=token)
    paths = pd.read_parquet(project.paths.manifest)["path"].head(n)
    body = {"images": [base64.b64encode(Path(p).read_bytes()).decode() for p in paths]}

    async def post() -> int:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                "/v1/predict", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            return response.status_code

    try:
        assert asyncio.run(post()) == 200
    finally:
        application.state.server.close()  # flushes the prediction log


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = Project.init(tmp_path_factory.mktemp("audit") / "digits", name="digits")
    project.update_config(CONFIG)
    return project


def test_points_appear_with_their_evidence(project: Project):
    before = points(project)
    assert sum(before.values()) == 0

    project.define(metric="accuracy", target=0.5, objective="read digits")
    project.ingest()
    project.explore()
    project.split()
    p = points(project)
    assert p["feature_schema"] == 1 and p["privacy_controls"] == 0.5
    assert "inferred the feature schema (10 classes" in scored(project, "feature_schema").evidence
    assert p["feature_requirements"] == 1 and p["feature_cost"] == 0
    assert "declared 'none'" in scored(project, "privacy_controls").evidence
    for later in (
        "training_reproducible",
        "simpler_model_not_better",
        "slice_quality",
        "validated_before_serving",
        "rollback_possible",
        "no_training_serving_skew",
    ):
        assert p[later] == 0, later

    project.train(progress=False)
    p = points(project)
    for test_id in (
        "training_reproducible",
        "model_specs_unit_tested",
        "dependency_changes_notified",
    ):
        assert p[test_id] == 0.5, test_id
    assert p["numerically_stable"] == 1  # every step's loss and gradient norm checked
    assert "not yet verified by a second run" in scored(project, "training_reproducible").evidence
    assert p["simpler_model_not_better"] == 0 and p["slice_quality"] == 0

    project.evaluate("val")  # baselines and slices on validation; the test set stays sealed
    p = points(project)
    assert p["simpler_model_not_better"] == 1 and p["slice_quality"] == 1
    assert p["model_debuggable"] == 0.5
    assert "on val" in scored(project, "simpler_model_not_better").evidence

    assert project.test().verdict.verdict == "PASS"
    assert "on test" in scored(project, "simpler_model_not_better").evidence
    assert points(project)["validated_before_serving"] == 0

    project.export()
    p = points(project)
    for test_id in (
        "validated_before_serving",
        "no_training_serving_skew",
        "feature_code_tested",
        "feature_cost",
    ):
        assert p[test_id] == 1, test_id
    for test_id in (
        "canaried_before_serving",
        "pipeline_integration_tested",
        "input_invariants_hold",
        "prediction_quality_not_regressed",
    ):
        assert p[test_id] == 0.5, test_id
    assert p["rollback_possible"] == 0 and p["compute_performance_not_regressed"] == 0

    serve_some(project)
    p = points(project)
    assert p["input_invariants_hold"] == 1
    assert p["compute_performance_not_regressed"] == 0.5
    assert "6 served predictions" in scored(project, "input_invariants_hold").evidence

    project.train(progress=False)  # same config, data and seed: the same weights
    assert points(project)["training_reproducible"] == 1
    project.test()
    project.export()  # the second PASS export: v2 champion, v1 before it
    p = points(project)
    assert p["rollback_possible"] == 1 and p["pipeline_integration_tested"] == 0.5
    assert "v1" in scored(project, "rollback_possible").evidence

    result = audit(project)
    assert result.final == min(result.sections.values())
    assert result.sections["Infrastructure"] == 5  # 1 + 0.5 + 0.5 + 1 + 0.5 + 0.5 + 1


def test_checklist_cannot_override_contradicting_evidence(project: Project):
    # a requirement the data does not meet: ingest records it, the audit fails the test
    project.update_config(
        {
            "data.requirements.min_samples_per_class": 1000,
            "audit.feature_requirements": {"done": "automated", "note": "data contracts"},
        }
    )
    try:
        project.ingest()
        s = scored(project, "feature_requirements")
        assert s.points == 0 and s.source == "evidence", s.evidence
        assert "not met" in s.evidence and "not counted" in s.checklist
        # a checklist answer does count where the evidence gives less and contradicts nothing
        project.update_config(
            {"audit.model_debuggable": {"done": "automated", "note": "trace tool in CI"}}
        )
        assert scored(project, "model_debuggable").points == 1
    finally:
        project.update_config({"data.requirements.min_samples_per_class": 10})
        project.ingest()
    assert scored(project, "feature_requirements").points == 1


def test_cli_prints_sections_and_final_score(project: Project):
    out = CliRunner().invoke(app, ["audit", "-p", str(project.root)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    for text in (
        "Data",
        "Model",
        "Infrastructure",
        "Monitoring",
        "final score",
        "ML Test Score",
        "next:",
    ):
        assert text in out.output
    assert (project.paths.reports / "audit.json").is_file()
