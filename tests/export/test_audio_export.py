"""Audio models through the one export path (onnx_export.to_onnx): input "input" float32
(batch, samples), samples dynamic, the log-mel front end inside the graph. Parity on real
sonic-pi clips at two durations, and the ONNX front end against the training front end."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from dlworkflow.models.onnx_export import OPSET
from dlworkflow.runtime.bundle import InputError, load_bundle
from dlworkflow.store.clips import ClipSettings, decode_clip
from modality_data import helpers

kit = helpers("serve/signalkit.py")
CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio-export")
    model = kit.audio_model()
    settings = ClipSettings(duration=1.0)
    folder = kit.export_signal_model(
        root, model, modality="audio", classes=CLASSES, preprocessing=settings.as_dict()
    )
    return model, load_bundle(folder, threads=1), settings


def test_the_export_takes_any_clip_length(exported):
    model, bundle, _ = exported
    assert [(i.name, i.shape) for i in bundle.session.get_inputs()] == [
        ("input", ["batch", "samples"])
    ]
    paths = [p for p, _ in kit.sonic_clips()]
    for duration in (1.0, 1.7):  # the training path: store.clips at each duration
        x = np.stack([decode_clip(p, ClipSettings(duration=duration)) for p in paths])
        assert x.shape[1] == round(duration * 16000)
        gap = np.abs(bundle.predict_proba(x) - kit.torch_probabilities(model, x)).max()
        assert gap < 1e-4


def test_prepare_clips_decodes_uploads_as_training_decodes_files(exported):
    model, bundle, settings = exported
    paths = [p for p, _ in kit.sonic_clips()]
    x = bundle.prepare_clips([p.read_bytes() for p in paths])
    expected = np.stack([decode_clip(p, settings) for p in paths])
    assert x.shape == (len(paths), settings.samples)
    assert np.array_equal(x, expected)
    gap = np.abs(bundle.predict_proba(x) - kit.torch_probabilities(model, expected)).max()
    assert gap < 1e-4


def test_prepare_clips_refuses_with_the_reason(exported):
    _, bundle, _ = exported
    good = kit.sonic_clips()[0][0].read_bytes()
    with pytest.raises(InputError) as caught:
        bundle.prepare_clips([good, b"this is plain text, not audio"])
    assert caught.value.context["index"] == 1
    assert "not a WAV, FLAC or OGG file" in caught.value.context["reason"]
    with pytest.raises(InputError, match="bytes"):
        bundle.prepare_clips([good, "a string"])


class _Front(nn.Module):
    def __init__(self, front: nn.Module) -> None:
        super().__init__()
        self.front = front

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.front(x)


def test_the_onnx_front_end_matches_the_training_front_end(tmp_path):
    """The log-mel front end as the export writes it (a DFT convolution, traced at opset
    OPSET) against the one training runs (torch.stft), on real clips at two durations."""
    import onnxruntime as ort

    front = kit.audio_model().front
    path = tmp_path / "front.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Front(front).eval(),
            (torch.zeros(2, 16000),),
            str(path),
            input_names=["input"],
            output_names=["spec"],
            dynamic_axes={"input": {0: "batch", 1: "samples"}, "spec": {0: "batch", 3: "frames"}},
            opset_version=OPSET,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    paths = [p for p, _ in kit.sonic_clips()]
    for duration in (1.0, 1.7):
        x = np.stack([decode_clip(p, ClipSettings(duration=duration)) for p in paths])
        with torch.no_grad():
            trained = front(torch.from_numpy(x)).numpy()  # eager: torch.stft
        exported = session.run(None, {"input": x})[0]
        assert exported.shape == trained.shape == (len(paths), 1, 64, front.frames(x.shape[1]))
        assert np.abs(exported - trained).max() < 0.01  # dB
        assert trained.max() - trained.min() > 40  # real clips, not silence


def test_the_runtime_path_imports_no_torch(exported):
    _, bundle, _ = exported
    clip = kit.sonic_clips()[0][0]
    out = kit.runs_without_torch(
        bundle.folder, f"bundle.prepare_clips([open({str(clip)!r}, 'rb').read()])"
    )
    assert out.splitlines()[-2] in CLASSES
    assert out.splitlines()[-1] == "torch imported: False"
