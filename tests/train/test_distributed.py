"""`dlw train --devices N [--nnodes M]`: data-parallel training, gloo on CPU, 2 processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dlworkflow.deploy.serve.loadgen import free_port
from dlworkflow.errors import TrainError
from dlworkflow.project import Project
from dlworkflow.train import distributed
from dlworkflow.train.distributed import Nodes, Shard
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
            "train.epochs": 2,
            "train.batch_size": 64,
        }
    )
    project.ingest("builtin:digits", progress=False)
    project.split()
    return root


def test_two_processes_on_one_or_two_nodes_reach_the_one_process_result(digits_project):
    """Without dropout or batch norm, 2 ranks with the global batch cut in two compute the
    same gradients as one process: the same weights up to float summation order; and
    2 nodes x 1 process (torchrun's c10d rendezvous on localhost, one node through the CLI,
    one through the Python API, at once) train exactly as 1 node x 2 processes."""
    one = Project.load(digits_project).train(progress=False)
    two = Project.load(digits_project).train(progress=False, devices=2)
    assert two.devices == 2 and one.devices == 1
    assert two.ledger_run_id == one.ledger_run_id + 1  # rank 1 wrote nothing to the ledger
    assert two.epochs_run == one.epochs_run == 2
    for a, b in zip(one.history, two.history):
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-4
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-4
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 1 / 270  # at most one image
    w1, w2 = load_file(one.weights), load_file(two.weights)
    for name, p1 in w1.items():
        assert torch.allclose(p1, w2[name], atol=1e-4), name

    endpoint = f"127.0.0.1:{free_port()}"
    flags = ["--nnodes", "2", "--rdzv-endpoint", endpoint, "--rdzv-id", "test-2x1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PET_")}
    env["COLUMNS"] = "400"  # the result table unwrapped
    dlw = Path(sys.executable).with_name("dlw")
    other = subprocess.Popen(
        [str(dlw), "train", "-p", str(digits_project), *flags, "--node-rank", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        nodes = Project.load(digits_project).train(
            progress=False, nnodes=2, node_rank=0, rdzv_endpoint=endpoint, rdzv_id="test-2x1"
        )
        out, _ = other.communicate(timeout=120)
    finally:
        other.kill()
    assert other.returncode == 0, out[-3000:]
    assert nodes.devices == 2 and nodes.ledger_run_id == two.ledger_run_id + 1
    assert f"run-{nodes.ledger_run_id}" in out  # node 1 reports rank 0's run too
    w3 = load_file(nodes.weights)
    for name, p2 in w2.items():
        assert torch.allclose(p2, w3[name], atol=1e-4), name
    for a, b in zip(two.history, nodes.history):
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-5 and a["val_accuracy"] == b["val_accuracy"]
    record = Project.load(digits_project).ledger.latest("train")
    assert record.id == nodes.ledger_run_id and record.summary["devices"] == 2


def test_a_batch_that_does_not_divide_between_devices_is_refused(digits_project, tmp_path):
    project = Project.load(digits_project)
    project.update_config({"train.batch_size": 63})
    try:
        with pytest.raises(TrainError, match="divide evenly"):
            project.train(progress=False, devices=2)
    finally:
        project.update_config({"train.batch_size": 64})


def test_node_flags_become_torchruns_rendezvous_and_bad_ones_are_refused():
    assert Nodes().torchrun_args() == ["--standalone"]
    args = Nodes(nnodes=2, node_rank=1, rdzv_endpoint="n1:29400", rdzv_id="x").torchrun_args()
    assert "--rdzv-backend=c10d" in args and "--rdzv-endpoint=n1:29400" in args
    assert "--nnodes=2" in args and "--rdzv-id=x" in args
    distributed.check_nodes(Nodes(nnodes=2, node_rank=1, rdzv_endpoint="node001"))
    for bad in (
        Nodes(nnodes=2, node_rank=2, rdzv_endpoint="h:1"),
        Nodes(nnodes=2),
        Nodes(nnodes=2, rdzv_endpoint="h:port"),
        Nodes(nnodes=2, rdzv_endpoint=":29400"),
    ):
        with pytest.raises(TrainError):
            distributed.check_nodes(bad)


def test_sync_batchnorm_goes_in_and_comes_out_with_the_same_weights():
    """Under DDP on GPUs, batch norms become SyncBatchNorm; after training the plain classes
    come back holding the trained tensors, so saving and export see the model they know."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(),
        torch.nn.LazyLinear(3),
    )
    net.add_module("bn1d", torch.nn.BatchNorm1d(3))
    net(torch.randn(4, 1, 6, 6))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    swapped = distributed.to_sync_batchnorm(net)
    assert [type(m) for m in (net[1], net.bn1d)] == [torch.nn.SyncBatchNorm] * 2
    assert net.state_dict().keys() == before.keys()
    with torch.no_grad():
        net[1].weight.add_(1.0)  # "training" changes the shared tensors
    distributed.from_sync_batchnorm(swapped)
    assert type(net[1]) is torch.nn.BatchNorm2d and type(net.bn1d) is torch.nn.BatchNorm1d
    assert torch.equal(net[1].weight, before["1.weight"] + 1.0)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in net.modules())
    assert distributed.use_sync_batchnorm(True, None, torch.device("cpu")) is False
    assert distributed.use_sync_batchnorm(True, Shard(0, 2), torch.device("cpu")) is False
    assert distributed.use_sync_batchnorm(True, Shard(0, 2), torch.device("cuda", 0)) is True
