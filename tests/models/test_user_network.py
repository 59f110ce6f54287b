"""Bring your own network (dlworkflow/models/user.py, model_refs.py): model.name "nets:factory"
with nets.py next to dlworkflow.yaml, on real digit images (conftest.py): trained, tested,
exported to ONNX and served by the runtime; editing its source makes train stale; a plug-in's
entry point; clear errors for a missing module or factory, a factory that returns no module, a
wrong output shape and a layer ONNX cannot express (named before any training)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.model_refs import FactoryError
from dlworkflow.models import MODELS

NETS = '''
import torch
from torch import nn


def tiny(num_outputs, input_spec, width=8):
    """A two-layer CNN of the user's own."""
    c, (h, w) = input_spec.in_channels, input_spec.image_size
    net = nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(width * (h // 2) * (w // 2), num_outputs))
    return net


def not_a_module(num_outputs, input_spec):
    return "a string"


def wrong_shape(num_outputs, input_spec):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs + 1))


class MatrixExp(nn.Module):
    def forward(self, x):
        return torch.linalg.matrix_exp(x[..., :2, :2]).flatten(1)


def unexportable(num_outputs, input_spec):
    return nn.Sequential(MatrixExp(), nn.Linear(input_spec.in_channels * 4, num_outputs))
'''


@pytest.fixture
def nets_project(split_project):
    (split_project.root / "nets.py").write_text(textwrap.dedent(NETS), encoding="utf-8")
    sys.modules.pop("nets", None)  # another test's nets.py must not be reused
    split_project.update_config(
        {
            "model.name": "nets:tiny",
            "model.params": {"width": 6},
            "train.epochs": 3,
            "train.learning_rate": 0.01,
            "problem.target": 0.5,
        }
    )
    yield split_project
    sys.modules.pop("nets", None)


def test_a_users_network_goes_through_train_test_and_export(nets_project):
    from dlworkflow.runtime.bundle import load_bundle

    project = nets_project
    trained = project.train(progress=False)
    assert trained.model == "nets:tiny" and trained.best_metric > 0.5
    run = project.ledger.latest("train")
    assert len(run.inputs["model_source"]) == 64  # sha256 of nets.py
    assert project.status().state_of("train") == "done"
    assert project.test().verdict.passed
    exported = project.export()
    assert exported.parity  # the ONNX model agrees with the trained network
    bundle = load_bundle(exported.folder)
    proba = bundle.predict_proba(bundle.prepare_images(_pngs(project)))
    assert proba.shape == (4, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-4)
    # editing the factory's source makes train stale
    nets = project.root / "nets.py"
    nets.write_text(nets.read_text() + "\n# wider next time\n", encoding="utf-8")
    assert project.status().state_of("train") == "stale"


def _pngs(project) -> list[bytes]:
    from dlworkflow.store.manifest import read_manifest

    return [Path(p).read_bytes() for p in read_manifest(project)["path"].head(4)]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nosuchmodule:tiny", "No module 'nosuchmodule'"),
        ("nets:nosuchfactory", "has no 'nosuchfactory'"),
        ("nets:not_a_module", "returned a str, not a network"),
        ("nets:wrong_shape", "output has the wrong shape"),
        ("nets:unexportable", "layer '0' (MatrixExp) fails"),
    ],
)
def test_a_broken_factory_is_refused_before_training_with_the_fix(nets_project, name, message):
    nets_project.update_config({"model.name": name, "model.params": {}})
    with pytest.raises(FactoryError) as err:
        nets_project.train(progress=False)
    assert message in str(err.value), str(err.value)
    assert err.value.fix
    run = nets_project.ledger.latest("train", status=None)
    assert run.status == "failed" and "checkpoint_epoch" not in run.summary  # no epoch ran


def test_a_plugin_registers_networks_through_an_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "plugnets.py").parent.mkdir(parents=True)
    (site / "plugnets.py").write_text(textwrap.dedent(NETS), encoding="utf-8")
    info = site / "plugnets-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugnets\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dlworkflow.models]\nplug_tiny = plugnets:tiny\n")
    monkeypatch.syspath_prepend(str(site))
    assert "plug_tiny" in MODELS.names()
    entry = MODELS.get("plug_tiny")
    assert entry.defaults() == {"width": 8}
    from dlworkflow.models import create_model

    model = create_model("plug_tiny", num_classes=3, in_channels=1, image_size=(16, 16), width=4)
    assert model.dlw_spec["name"] == "plug_tiny"
    assert tuple(model(__import__("torch").zeros(2, 1, 16, 16)).shape) == (2, 3)
    with pytest.raises(Exception, match="has no parameter 'depth'"):
        create_model("plug_tiny", num_classes=3, in_channels=1, image_size=(16, 16), depth=2)
    assert Path(sys.modules["plugnets"].__file__).parent == site


def test_the_python_api_trains_a_network_object_and_tests_it_in_the_same_process(split_project):
    import torch
    from torch import nn

    from dlworkflow.models import live

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 32), nn.ReLU(), nn.Linear(32, 3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    split_project.update_config(
        {"train.epochs": 3, "train.learning_rate": 0.01, "problem.target": 0.5}
    )
    trained = split_project.train(model=net, progress=False)
    assert trained.model.startswith("live:torch.nn.modules.container.Sequential#")
    assert trained.best_metric > 0.5
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # a copy
    assert split_project.test().verdict.passed  # reloaded from the object kept in-process
    status = split_project.status()
    assert status.state_of("train") == "stale"  # dlworkflow.yaml does not describe it
    with pytest.raises(FactoryError, match="another Python process"):
        live.build("live:mymodule.Net#999", num_classes=3)
    with pytest.raises(FactoryError, match="takes a torch.nn.Module"):
        split_project.train(model="small_cnn", progress=False)


def test_a_factory_with_pretrained_weights_is_fine_tuned_with_its_head(nets_project):
    nets = nets_project.root / "nets.py"
    nets.write_text(
        nets.read_text()
        + textwrap.dedent('''

        class WithHead(nn.Module):
            def __init__(self, body, head):
                super().__init__()
                self.body, self.head = body, head

            def forward(self, x):
                return self.head(self.body(x))


        def pretrained_tiny(num_outputs, input_spec, width=8, pretrained=True):
            """tiny, with weights of its own when pretrained (here: a fixed seed)."""
            if pretrained:
                torch.manual_seed(123)
            net = tiny(num_outputs, input_spec, width)
            return WithHead(net[:-1], net[-1])
    '''),
        encoding="utf-8",
    )
    sys.modules.pop("nets", None)
    nets_project.update_config(
        {"model.name": "nets:pretrained_tiny", "model.params": {}, "model.transfer": "finetune"}
    )
    result = nets_project.train(progress=False)
    run = nets_project.ledger.latest("train")
    assert run.summary["transfer"]["strategy"] == "finetune"
    assert result.best_metric > 0.5
    nets_project.update_config({"model.transfer": "frozen"})
    from dlworkflow.train import strategies

    chosen = strategies.choose(nets_project)
    assert chosen.name == "finetune" and "no features() to cache" in chosen.reason


def test_a_factory_network_trains_data_parallel_as_in_one_process(nets_project):
    """--devices 2 with the user's factory: every rank builds the network from nets.py and
    the two processes reach the one-process weights (the tiny CNN has no dropout or batch
    norm, so the gradients are the same up to summation order)."""
    import torch

    from dlworkflow.models.saving import load_trained

    one = nets_project.train(progress=False)
    two = nets_project.train(progress=False, devices=2)
    assert two.devices == 2 and two.epochs_run == one.epochs_run == 3
    w1, _ = load_trained(one.folder)
    w2, _ = load_trained(two.folder)
    for (name, p1), p2 in zip(w1.state_dict().items(), w2.state_dict().values()):
        assert torch.allclose(p1, p2, atol=1e-4), name
