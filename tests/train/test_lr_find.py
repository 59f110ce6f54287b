"""`lr_find`: the learning-rate range test on the train split of a project of real digits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlworkflow.errors import TrainError
from dlworkflow.project import Project
from dlworkflow.train.data import TensorData
from dlworkflow.train.lr_find import LRFindResult, lr_find, lr_range_test, suggest
from dlworkflow.train.trainer import LoopConfig


def test_lr_find_suggests_a_rate_writes_the_plot_and_changes_nothing(
    digits_project: Project, snapshot
):
    project = digits_project
    before = snapshot(project.paths.state)
    ledger = [(r.id, r.status) for r in project.ledger.history()]
    result = lr_find(project, start=1e-5, end=10, steps=40, progress=False)

    assert isinstance(result, LRFindResult)
    assert 1e-5 <= result.suggestion <= 10
    assert result.method in ("steepest descent", "lowest loss / 10")
    assert 5 <= result.steps_run <= 40 and len(result.lrs) == result.steps_run
    assert result.lrs[0] == pytest.approx(1e-5)
    assert all(b > a for a, b in zip(result.lrs, result.lrs[1:]))  # exponential sweep
    png = project.paths.reports / "lr_find.png"
    assert str(png) == result.plot and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = result._repr_html_()
    assert "data:image/png;base64," in html and "suggested learning rate" in html
    # not a workflow step: no ledger record, no test-set read, nothing else written but caches
    assert [(r.id, r.status) for r in project.ledger.history()] == ledger
    assert project.ledger.test_reads() == []
    after = snapshot(project.paths.state)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert all(k.startswith("cache/") for k in changed), changed


def test_range_test_restores_the_weights_and_stops_when_the_loss_diverges():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (256, 1, 4, 4), dtype=torch.uint8)
    y = (x.float().mean((1, 2, 3)) > 127).long()
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = LoopConfig(epochs=1, batch_size=16, optimizer="sgd", device="cpu")
    lrs, raw, smooth, diverged = lr_range_test(
        model, TensorData(x, y, [0.5], [0.29]), cfg, start=1e-4, end=1e4, steps=80
    )
    assert diverged and len(lrs) < 80  # 1e4 with SGD blows up long before the end
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # BatchNorm buffers included


def test_suggestion_is_the_steepest_descent():
    lrs = [10 ** (-6 + i / 4) for i in range(25)]
    # flat, then falling fastest around lrs[12], lowest at lrs[18], then rising
    losses = [2.0] * 8 + [
        1.9,
        1.7,
        1.4,
        1.0,
        0.7,
        0.55,
        0.5,
        0.48,
        0.47,
        0.46,
        0.45,
        0.6,
        0.9,
        1.5,
        2.0,
        3.0,
        5.0,
    ]
    lr, method, lowest = suggest(lrs, losses)
    assert method == "steepest descent" and lowest == lrs[18]
    assert lrs[10] <= lr <= lrs[12]
    lr, method, _ = suggest(lrs[:4], [1.0, 0.9, 1.2, 2.0])
    assert method == "lowest loss / 10" and lr == pytest.approx(max(lrs[1] / 10, lrs[0]))


def test_bad_range_is_refused(digits_project: Project):
    with pytest.raises(TrainError, match="not a range"):
        lr_find(digits_project, start=1.0, end=0.1, progress=False)
