"""`dlw tune` on a new project with no `tune.space`: the default search space of the model and
strategy (learning rate, weight decay, batch size, dropout, augmentation where it applies),
searched on real digit images, recorded and reported as the default; `dlw config show` lists
it; `dlw demo --tune` runs a short study and applies nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dlworkflow import workflow
from dlworkflow.cli import app
from dlworkflow.config import ProjectConfig
from dlworkflow.project import Project
from dlworkflow.train.tune import space as space_mod
from modality_data import helpers

_train = helpers("train/conftest.py")
QUICK = {  # the demo's study, cut to two 1-epoch trials of a small CNN on 400 real digits
    **_train.FAST_CONFIG,
    **workflow.DEMO_TUNE,
    "tune.trials": 2,
    "tune.timeout_s": None,  # both trials, however busy the machine
    "tune.sampler": "random",
    "tune.seed": 7,
}
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def studied(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A split digits project with an empty tune.space, and the demo's `dlw tune` run on it
    (Project.tune's call: the tune step with reports/tune.html, without --apply)."""
    project = _train.build_digits_project(tmp_path_factory.mktemp("dflt"), config=QUICK)
    assert project.config.tune.space == {}
    yaml_before = project.paths.config.read_bytes()
    result = workflow.demo_tune(project, progress=False)
    return {"project": project, "result": result, "yaml_before": yaml_before}


def test_tune_with_no_space_searches_the_default_space(studied: dict) -> None:
    result = studied["result"]
    assert result.space_source == "default" and result.n_trials == 2
    assert "default space for small_cnn (scratch strategy)" in result.space_basis
    assert dict(result.rows())["search space"] == result.space_basis
    keys = set(result.space)
    assert {"train.learning_rate", "train.weight_decay", "train.batch_size"} <= keys
    assert {"model.params.dropout", "augment.rotation", "augment.translate"} <= keys
    lr = result.space["train.learning_rate"]  # a decade either side of 0.01 (FAST_CONFIG)
    assert lr == {"type": "log_uniform", "low": 0.001, "high": 0.1}
    assert result.space["train.batch_size"]["choices"] == [16, 32, 64]  # around 32
    assert set(result.best_params) == keys and 0.0 < result.best_value <= 1.0
    assert 1e-3 <= result.best_params["train.learning_rate"] <= 0.1


def test_the_ledger_and_the_page_say_the_default_space_was_searched(studied: dict) -> None:
    project: Project = studied["project"]
    summary = project.ledger.latest("tune").summary
    assert summary["space_source"] == "default" and summary["epochs"] == 1
    assert "in the default search space" in summary["headline"]
    assert summary["space"]["train.learning_rate"]["type"] == "log_uniform"
    page = (project.paths.reports / "tune.html").read_text()
    assert "default space for small_cnn (scratch strategy)" in page
    assert "augment.rotation" in page  # the searched space is listed
    # nothing applied: dlworkflow.yaml is as it was
    assert project.paths.config.read_bytes() == studied["yaml_before"]


def test_a_configured_space_is_searched_as_configured(tmp_path: Path) -> None:
    project = Project.init(tmp_path / "p", name="p")
    spec = {"type": "log_uniform", "low": 1e-4, "high": 1e-2}
    project.update_config({"tune.space": {"train.learning_rate": spec}})
    searched = space_mod.resolve(project)
    assert searched.source == "configured" and list(searched.space) == ["train.learning_rate"]
    assert searched.describe() == "tune.space of dlworkflow.yaml: 1 parameter"


def _space(task: str, model: str, strategy: str, **train: Any) -> dict[str, Any]:
    from dlworkflow.models import MODELS
    from dlworkflow.tasks import task_of

    cfg = ProjectConfig(name="p", task=task).with_overrides(
        {"model.name": model, **{f"train.{k}": v for k, v in train.items()}}
    )
    searched = space_mod.default_space(
        cfg,
        strategy=strategy,
        modality=task_of(task).modality,
        model_defaults=MODELS.get(model).defaults(),
    )
    space_mod.check_space(cfg, searched.space)  # every end of every range is a valid config
    return searched.dump()


def test_the_default_space_differs_by_strategy_and_modality() -> None:
    scratch = _space("image-classification", "small_cnn", "scratch", learning_rate=2e-3)
    frozen = _space("image-classification", "efficientnet_lite0", "frozen", learning_rate=2e-3)
    finetune = _space("image-classification", "efficientnet_lite0", "finetune", learning_rate=2e-3)
    tabular = _space("tabular-classification", "mlp", "scratch")
    text = _space("text-classification", "transformer", "scratch")
    # images trained end to end get augmentation strength; frozen features, text and tables not
    assert "augment.rotation" in scratch and "augment.rotation" in finetune
    for space in (frozen, tabular, text):
        assert not any(k.startswith("augment.") for k in space)
    # a linear probe on frozen features: higher learning rates, more decay, larger batches
    assert frozen["train.learning_rate"]["high"] > scratch["train.learning_rate"]["high"]
    assert frozen["train.weight_decay"]["high"] > scratch["train.weight_decay"]["high"]
    assert min(frozen["train.batch_size"]["choices"]) == 64  # train.batch_size and up
    assert scratch["train.batch_size"]["choices"] == [32, 64, 128]
    # fine-tuning pretrained weights: lower learning rates, and the backbone's factor
    assert finetune["train.learning_rate"]["high"] < scratch["train.learning_rate"]["high"]
    assert "model.backbone_lr_factor" in finetune and "model.backbone_lr_factor" not in scratch
    # dropout wherever the model has the parameter (all of these do)
    assert all("model.params.dropout" in s for s in (scratch, frozen, finetune, tabular, text))


def test_config_show_lists_the_default_space_marked_as_default(studied: dict) -> None:
    project: Project = studied["project"]
    shown = CliRunner().invoke(app, ["config", "show", "--project", str(project.root)], env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "# tune.space is empty: `dlw tune` searches the default space for small_cnn" in (
        shown.output
    )
    assert "#   train.learning_rate: {type: log_uniform, low: 0.001, high: 0.1}" in shown.output
    assert yaml.safe_load(shown.output)["tune"]["space"] == {}  # still the config, as YAML


def test_demo_tune_runs_a_study_and_applies_nothing(
    studied: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = studied["result"]
    assert not result.applied and result.diff == "" and result.epochs == 1
    assert Path(result.report).name == "tune.html" and Path(result.report).is_file()
    assert studied["project"].paths.config.read_bytes() == studied["yaml_before"]
    # `dlw demo --tune` asks the demo for it
    seen: dict[str, Any] = {}

    def fake_demo(init: Any, folder: Any, **options: Any) -> Any:
        seen.update(options)
        raise RuntimeError("stop here")

    monkeypatch.setattr(workflow, "demo", fake_demo)
    out = CliRunner().invoke(app, ["demo", str(tmp_path / "d"), "--tune"], env=WIDE)
    assert out.exit_code != 0 and seen["tune"] is True


def test_the_report_and_the_audit_say_the_default_space_was_searched(studied: dict) -> None:
    from dlworkflow.report.audit.evidence import Evidence as AuditEvidence
    from dlworkflow.report.audit.judges_tune import hyperparameters_tuned
    from dlworkflow.report.evidence import gather
    from dlworkflow.report.sections import tuning

    project: Project = studied["project"]
    html = tuning(gather(project, with_audit=False))
    assert "default space for small_cnn (scratch strategy): 6 parameters (tune.space is empty)" in (
        html
    )
    assert "epochs per trial" in html
    judged = hyperparameters_tuned(AuditEvidence(project))
    best = studied["result"].best_value
    assert judged.points == 1.0 and f"best validation accuracy {best:.4f}" in judged.evidence
    assert "the default space for small_cnn" in judged.evidence
