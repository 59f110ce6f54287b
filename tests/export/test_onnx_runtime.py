"""to_onnx for the registered architectures (dynamic batch, same logits as PyTorch), a clear
error for a model ONNX cannot express, a runtime that never imports torch, and load_bundle's
checks of a damaged export."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from dlworkflow.models import create_model
from dlworkflow.models.onnx_export import OnnxExportError, to_onnx
from dlworkflow.preprocess import tokenize
from dlworkflow.runtime.bundle import BundleError, InputError, load_bundle


def same_logits(model, path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = session.run(["logits"], {"input": x})[0]
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max())


@pytest.mark.parametrize(
    "name,inputs,shape",
    [
        ("small_cnn", {"in_channels": 1, "image_size": (28, 28)}, (1, 28, 28)),  # 7x7 -> 2x2 pool
        ("small_cnn", {"in_channels": 3, "image_size": (30, 30)}, (3, 30, 30)),
        ("resnet_small", {"in_channels": 1, "image_size": (28, 28)}, (1, 28, 28)),
        ("mlp", {"n_features": 9}, (9,)),
    ],
)
def test_registered_models_export_with_a_dynamic_batch(tmp_path, name, inputs, shape):
    torch.manual_seed(0)
    model = create_model(name, num_classes=4, **inputs).eval()
    path = to_onnx(model, tmp_path / f"{name}.onnx", example=np.zeros((2, *shape), np.float32))
    rng = np.random.default_rng(1)
    for batch in (1, 7):
        assert same_logits(model, path, rng.normal(size=(batch, *shape)).astype(np.float32)) < 1e-4


class ResizeAndPool(torch.nn.Module):
    """The two fixed-size linear image ops ONNX lacks: antialiased bilinear resize and
    adaptive average pooling to a size that does not divide the input."""

    def __init__(self, resize: tuple[int, int], pool: tuple[int, int]) -> None:
        super().__init__()
        self.resize, self.pool = resize, pool

    def forward(self, x):
        x = torch.nn.functional.interpolate(
            x.expand(-1, 3, -1, -1),
            size=self.resize,
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        return torch.nn.functional.adaptive_avg_pool2d(x, self.pool).flatten(1)


@pytest.mark.parametrize(
    "size,resize,pool",
    [
        ((16, 16), (32, 32), (3, 3)),  # upsampling
        ((16, 20), (48, 40), (5, 7)),  # non-square
        ((64, 64), (24, 24), (5, 5)),  # downsampling: the antialias filter matters
    ],
)
def test_antialiased_resize_and_adaptive_pooling_export_exactly(tmp_path, size, resize, pool):
    model = ResizeAndPool(resize, pool)
    path = to_onnx(model, tmp_path / "ops.onnx", example=np.zeros((2, 1, *size), np.float32))
    x = np.random.default_rng(2).normal(size=(7, 1, *size)).astype(np.float32)
    assert same_logits(model, path, x) < 1e-5
    assert same_logits(model, path, x[:1]) < 1e-5


def test_efficientnet_lite0_with_its_antialiased_resize_exports(tmp_path):
    """Pretrained EfficientNet-Lite0 resizes 16x16 grey digits to input_size inside the model
    (antialiased bilinear): the export must compute the same logits."""
    from dlworkflow.models import BackboneUnavailableError

    try:
        model = create_model(
            "efficientnet_lite0", num_classes=3, in_channels=1, image_size=(16, 16), input_size=48
        ).eval()
    except BackboneUnavailableError:
        pytest.skip("the EfficientNet-Lite0 weights package is not installed")
    path = to_onnx(model, tmp_path / "eff.onnx", example=np.zeros((2, 1, 16, 16), np.float32))
    x = np.random.default_rng(0).normal(size=(7, 1, 16, 16)).astype(np.float32)
    with torch.no_grad():
        features = model.features(torch.from_numpy(x)).numpy()
    assert features.std(0).mean() > 1e-2  # the input matters: the comparison means something
    assert same_logits(model, path, x) < 1e-4
    assert same_logits(model, path, x[:1]) < 1e-4


def test_text_model_takes_padded_ids_of_any_batch(tmp_path):
    torch.manual_seed(0)
    model = create_model(
        "bilstm", num_classes=2, vocab_size=30522, embed_dim=16, hidden=16, max_len=20
    ).eval()
    path = to_onnx(model, tmp_path / "bilstm.onnx", example=np.zeros((2, 20), np.int64))
    texts = [
        "a fine film",
        "dull",
        "the plot is thin but the acting is superb",
        "ok",
        "",
        "never again",
        "what a ride",
    ]
    ids = tokenize(texts, 20)
    padded = np.pad(ids, ((0, 0), (0, 20 - ids.shape[1])))
    assert same_logits(model, path, padded) < 1e-5
    assert same_logits(model, path, padded[:1]) < 1e-5


def test_a_model_onnx_cannot_express_fails_clearly(tmp_path):
    class Spectral(torch.nn.Module):
        def forward(self, x):
            return torch.linalg.svdvals(x.view(x.shape[0], 4, 4))[:, :2]

    with pytest.raises(OnnxExportError, match="cannot be exported to ONNX") as err:
        to_onnx(Spectral(), tmp_path / "bad.onnx", example=np.zeros((2, 16), np.float32))
    assert err.value.fix and not (tmp_path / "bad.onnx").exists()


def test_runtime_never_imports_torch():
    code = (
        "import sys, dlworkflow.runtime.bundle, dlworkflow.runtime.versions, "
        "dlworkflow.preprocess; assert 'torch' not in sys.modules, 'torch imported'"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_load_bundle_checks_the_export(tmp_path):
    from dlworkflow.fileio import sha256_file

    model = create_model("mlp", num_classes=2, n_features=3).eval()
    folder = tmp_path / "v1"
    to_onnx(model, folder / "model.onnx", example=np.zeros((2, 3), np.float32))
    prep = {
        "modality": "tabular",
        "features": ["a", "b", "c"],
        "numeric": ["a", "b", "c"],
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "categories": {},
    }
    meta = {
        "format": 1,
        "version": 1,
        "model": "mlp",
        "modality": "tabular",
        "classes": ["no", "yes"],
        "preprocessing": prep,
        "input": {"name": "input", "dtype": "float32", "shape": ["batch", 3]},
        "files": {"model.onnx": sha256_file(folder / "model.onnx")},
    }
    (folder / "metadata.json").write_text(json.dumps(meta))
    bundle = load_bundle(folder, threads=1)
    x = bundle.prepare_rows([{"a": 1, "b": None, "c": "2.5"}, {"a": -1, "b": 0, "c": 0}])
    np.testing.assert_allclose(x, [[1, 0, 2.5], [-1, 0, 0]])
    proba = bundle.predict_proba(x)
    assert proba.shape == (2, 2) and np.allclose(proba.sum(1), 1, atol=1e-6)
    for bad in ([{"a": 1, "b": 2}], [[1, 2, 3]], [{"a": [1], "b": 2, "c": 3}]):
        with pytest.raises(InputError):
            bundle.prepare_rows(bad)
    with pytest.raises(InputError, match="shape"):
        bundle.predict_proba(np.zeros((2, 4), np.float32))
    with pytest.raises(InputError, match="image"):
        bundle.prepare_images([b"\x89PNG"])

    with open(folder / "model.onnx", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(BundleError, match="does not match the hash"):
        load_bundle(folder)
    with pytest.raises(BundleError, match="not a complete exported model"):
        load_bundle(tmp_path / "v9")
