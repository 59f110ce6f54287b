"""`model.transfer: auto` that knows the machine (train/estimate.py): candidates timed on the
real pretrained EfficientNet-Lite0 (32 px, CPU), auto's fallback to frozen features when
gradual fine-tuning does not fit the budget, and an explicit strategy obeyed with its
estimate."""

from __future__ import annotations

from pathlib import Path

import torch

from dlworkflow.store import read_split_info
from dlworkflow.train import estimate, strategies
from dlworkflow.train.step import _build
from dlworkflow.train.trainer import LoopConfig
from modality_data import helpers

build_digits_project = helpers("train/conftest.py").build_digits_project

LITE = {
    "model.name": "efficientnet_lite0",
    "model.params": {"input_size": 32},
    "train.epochs": 30,
    "train.batch_size": 32,
    "train.threads": 1,  # a loaded machine: 2 threads on 2 busy cores crawl
}


def test_auto_falls_back_to_frozen_when_it_must_and_an_explicit_transfer_is_obeyed(
    tmp_path: Path, monkeypatch
):
    project = build_digits_project(tmp_path, n=200, config=LITE)
    monkeypatch.setattr(strategies, "AUTO_FROZEN_BELOW", 10)  # the rule prefers gradual
    result = project.train(progress=False, budget_minutes=0.01)

    transfer = result.transfer
    assert transfer.startswith("frozen: gradual fine-tuning ≈ "), transfer
    assert "> budget 0.01 min on " in transfer and "CPU core" in transfer
    assert "using frozen features (≈ " in transfer
    assert "set train.budget_minutes or model.transfer to change" in transfer
    assert ">= 10: enough to adapt the backbone" in transfer  # the rule's first choice
    recorded = project.ledger.latest("train").summary["transfer"]
    timed = recorded["estimate"]
    assert recorded["strategy"] == "frozen"
    assert timed["first_choice"] == "gradual" and timed["chosen"] == "frozen"
    assert timed["budget_minutes"] == 0.01
    assert timed["seconds"]["gradual"] > 0.6 > 0 < timed["seconds"]["frozen"]
    assert timed["seconds"]["frozen"] < timed["seconds"]["gradual"]
    assert timed["timing_seconds"] > 0  # recorded (seconds on an idle CPU, load-bound)

    # the features are cached now: frozen's estimate says so and drops the feature pass
    loop = LoopConfig(epochs=30, batch_size=32, device="cpu", budget_minutes=1000.0)
    said: list[str] = []
    _, first, model, data = _build(project, read_split_info(project), None, progress=False)
    rng = torch.get_rng_state()
    kept = estimate.settle(first, project, model, data, loop, say=said.append)
    assert torch.equal(torch.get_rng_state(), rng)  # the run after the timing draws the same
    assert kept.name == "gradual" and kept.estimate["fits"]  # a large budget: auto's choice
    assert kept.estimate["features_cached"] is True
    assert said == [f"transfer: {kept.estimate['message']}"]
    assert "using it (auto)" in said[0] and "frozen features ≈ " in said[0]

    # an explicit transfer is obeyed, over the budget too, with its estimate (one project
    # for both: the suite's time)
    project.update_config({"model.transfer": "gradual"})
    loop = LoopConfig(epochs=30, batch_size=32, device="cpu", budget_minutes=0.001)
    _, chosen, model, data = _build(
        project, read_split_info(project), None, progress=False, timing=(loop, None)
    )
    assert chosen.name == "gradual"
    assert "model.transfer: gradual is obeyed" in chosen.reason
    assert chosen.estimate is not None and not chosen.estimate["fits"]
    assert set(chosen.estimate["seconds"]) == {"gradual"}  # only the obeyed one is timed
    assert chosen.summary()["estimate"] == chosen.estimate
    assert chosen.params()["transfer.estimate_s"] == chosen.estimate["seconds"]["gradual"]

    project.update_config({"model.transfer": "scratch"})  # nothing to compare: not timed
    _, scratch, *_ = _build(
        project, read_split_info(project), None, progress=False, timing=(loop, None)
    )
    assert scratch.name == "scratch" and scratch.estimate is None
