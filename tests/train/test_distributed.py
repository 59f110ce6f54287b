"""`dlw train --devices N`: data-parallel training, gloo on CPU, 2 processes."""

from __future__ import annotations

import pytest
import torch

from dlworkflow.errors import TrainError
from dlworkflow.models import load_trained
from dlworkflow.project import Project
from dlworkflow.train.distributed import Shard
from dlworkflow.train.trainer import global_batches


def test_each_global_batch_is_cut_into_one_slice_per_rank():
    order = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    shards = [Shard(rank=r, world=2) for r in range(2)]
    (a, sizes_a), (b, sizes_b) = (s.local_order(order, 16) for s in shards)
    assert sizes_a == sizes_b == [16] * 6 + [7]
    # batch j of rank 0 then of rank 1 is global batch j, in order
    rebuilt = torch.cat([torch.cat([a[i : i + 8], b[i : i + 8]]) for i in range(0, 56, 8)])
    assert torch.equal(rebuilt, order[:103])
    assert len(a) == 52 and len(b) == 51  # the last batch of 7: 4 + 3
    assert global_batches(103, 16, shards[0]) == 7
    # a last batch smaller than the world is skipped by every rank alike
    (c, sizes_c), (d, _) = (Shard(rank=r, world=4).local_order(order[:97], 16) for r in (0, 3))
    assert sizes_c == [16] * 6 and len(c) == len(d) == 24
    assert global_batches(97, 16, Shard(rank=0, world=4)) == 6
    assert global_batches(97, 16, None) == 7


@pytest.fixture(scope="module")
def digits_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp") / "proj"
    project = Project.init(root)
    project.define(metric="accuracy", target=0.9)
    project.update_config(
        {
            "model.name": "mlp",
            "model.params": {"dropout": 0.0},
            "train.epochs": 3,
            "train.batch_size": 64,
        }
    )
    project.ingest("builtin:digits", progress=False)
    project.split()
    return root


def test_two_processes_reach_the_one_process_result(digits_project):
    """Without dropout or batch norm, 2 ranks with the global batch cut in two compute the
    same gradients as one process: the same weights up to float summation order."""
    one = Project.load(digits_project).train(progress=False)
    two = Project.load(digits_project).train(progress=False, devices=2)
    assert two.devices == 2 and one.devices == 1
    assert two.ledger_run_id == one.ledger_run_id + 1  # rank 1 wrote nothing to the ledger
    assert two.epochs_run == one.epochs_run == 3
    for a, b in zip(one.history, two.history):
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-4
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-4
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 1 / 270  # at most one image
    w1, _ = load_trained(one.folder)
    w2, _ = load_trained(two.folder)
    for (name, p1), p2 in zip(w1.state_dict().items(), w2.state_dict().values()):
        assert torch.allclose(p1, p2, atol=1e-4), name
    record = Project.load(digits_project).ledger.latest("train")
    assert record.id == two.ledger_run_id and record.summary["devices"] == 2


def test_a_batch_that_does_not_divide_between_devices_is_refused(digits_project, tmp_path):
    project = Project.load(digits_project)
    project.update_config({"train.batch_size": 63})
    try:
        with pytest.raises(TrainError, match="divide evenly"):
            project.train(progress=False, devices=2)
    finally:
        project.update_config({"train.batch_size": 64})
