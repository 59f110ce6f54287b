"""The step-6 commands through the CLI: lr-find, augment-preview, train --resume, --devices."""

from __future__ import annotations

from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.project import Project
from dlworkflow.train import tracking

runner = CliRunner()


def dlw(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_lr_find_and_augment_preview_write_their_figures(digits_project: Project):
    p = ["-p", str(digits_project.root)]
    found = dlw("lr-find", *p, "--start", "1e-5", "--end", "10", "--steps", "30")
    assert found.exit_code == 0, found.output
    assert "suggested learning rate" in found.output and "train.learning_rate" in found.output
    assert (digits_project.paths.reports / "lr_find.png").stat().st_size > 1000

    off = dlw("augment-preview", *p)
    assert off.exit_code == 2 and "nothing to preview" in off.output
    digits_project.update_config({"augment.flip": 0.5, "augment.rotation": 15})
    shown = dlw("augment-preview", *p, "--n", "4")
    assert shown.exit_code == 0, shown.output
    assert (digits_project.paths.reports / "augment_preview.png").stat().st_size > 500
    bad = dlw("lr-find", *p, "--start", "1", "--end", "0.1")
    assert bad.exit_code == 2


def test_status_offers_resume_and_train_resume_finishes_the_run(
    split_project: Project, monkeypatch
):
    digits_project = split_project  # define, ingest and split recorded in the ledger
    p = ["-p", str(digits_project.root)]
    digits_project.update_config({"train.epochs": 3, "train.early_stopping_patience": 5})
    original = tracking.Tracker.on_epoch_end

    def crash(self, state):
        if state.epoch == 2:
            raise RuntimeError("power cut")  # after epoch 2's checkpoint
        original(self, state)

    monkeypatch.setattr(tracking.Tracker, "on_epoch_end", crash)
    failed = runner.invoke(app, ["train", *p])
    assert failed.exit_code != 0
    monkeypatch.setattr(tracking.Tracker, "on_epoch_end", original)
    status = dlw("status", *p)
    assert "dlw train --resume" in status.output and "after epoch 2" in status.output

    resumed = dlw("train", *p, "--resume")
    assert resumed.exit_code == 0, resumed.output
    record = Project.load(digits_project.root).ledger.latest("train")
    assert record.summary["resumed_at_epoch"] == 2 and record.summary["epochs_run"] == 3
    nothing = dlw("train", *p, "--resume")
    assert nothing.exit_code == 2 and "nothing to resume" in nothing.output


def test_devices_must_divide_the_global_batch(digits_project: Project):
    digits_project.update_config({"train.batch_size": 33})
    refused = dlw("train", "-p", str(digits_project.root), "--devices", "2")
    assert refused.exit_code == 2 and "divide evenly" in refused.output
    assert dlw("train", "-p", str(digits_project.root), "--devices", "0").exit_code == 2
    alone = dlw("train", "-p", str(digits_project.root), "--nnodes", "2")  # where do nodes meet?
    assert alone.exit_code == 2 and "--rdzv-endpoint" in alone.output


def test_models_lists_every_network_with_its_task_size_and_weights():
    from dlworkflow.models import list_models

    listed = dlw("models")
    assert listed.exit_code == 0
    cards = list_models()
    assert {c.name for c in cards} >= {
        "small_cnn",
        "resnet_small",
        "mlp",
        "efficientnet_lite0",
        "minilm_classifier",
        "bilstm",
        "transformer",
    }
    for card in cards:  # full names (never cut) and exact parameter counts
        assert card.name in listed.output and f"{card.parameters:,}" in listed.output
    assert "ImageNet" in listed.output and "tabular" in listed.output


def test_train_budget_stops_after_the_epoch_that_reaches_it_and_says_so(split_project: Project):
    """A budget of 6 ms: the first epoch on real digits takes longer, so the run stops after
    it, keeps its weights, and the result, the ledger and the table say why; `--budget`
    reaches the run; with no budget set a CPU run gets 10 minutes."""
    from dlworkflow.train.step import TrainResult

    p = ["-p", str(split_project.root)]
    split_project.update_config({"train.epochs": 4, "train.early_stopping_patience": 10})
    done = dlw("train", *p, "--budget", "0.01")
    assert done.exit_code == 0, done.output
    assert Project.load(split_project.root).ledger.latest("train").summary["budget_minutes"] == 0.01

    split_project.update_config({"train.budget_minutes": 0.0001})
    cut = Project.load(split_project.root).train(progress=False)
    assert isinstance(cut, TrainResult) and cut.epochs_run == 1 and cut.stopped_for_budget
    assert "stopped at the 0.0001-min budget" in dict(cut.rows())["epochs"]
    record = Project.load(split_project.root).ledger.latest("train")
    assert record.summary["epochs_run"] == 1 and record.summary["stopped_for_budget"] is True

    split_project.update_config({"train.budget_minutes": None})
    again = Project.load(split_project.root).train(epochs=2, progress=False)
    assert again.epochs_run == 2 and not again.stopped_for_budget
    assert again.budget_minutes == 10.0  # train.budget_minutes null on a CPU


def test_retrain_hands_its_budget_to_the_challengers_training(split_project: Project, monkeypatch):
    """`dlw retrain --budget MIN` reaches the challenger's `train` step (the stages
    themselves are tested in tests/monitor)."""
    from dlworkflow.monitor import retrain as retrain_mod

    seen: dict[str, object] = {}

    def fake_train(self) -> None:  # the retrain's train stage, recording its options
        seen["budget"] = self.budget
        raise RuntimeError("stop here")

    monkeypatch.setattr(retrain_mod._Retrain, "run", fake_train)
    folder = split_project.root / "fresh"
    folder.mkdir()
    result = runner.invoke(
        app, ["retrain", "-p", str(split_project.root), "--data", str(folder), "--budget", "2.5"]
    )
    assert isinstance(result.exception, RuntimeError) and seen == {"budget": 2.5}
