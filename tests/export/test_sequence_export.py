"""Series models through the one export path (onnx_export.to_onnx): one input "input" float32
(batch, channels, length) with NaN after each series' end, batch and length dynamic; the
runtime bundle prepares JSON series into it. Real data: GunPoint's test series."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dlworkflow.models.onnx_export import OnnxExportError, to_onnx
from dlworkflow.runtime.bundle import InputError, load_bundle
from dlworkflow.runtime.spec import example_input, input_spec
from dlworkflow.store.series import nan_padded
from modality_data import helpers

kit = helpers("serve/signalkit.py")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("series-export")
    model = kit.series_model()
    folder = kit.export_signal_model(
        root, model, modality="sequence", classes=kit.GUNPOINT_CLASSES, preprocessing={"max_gap": 3}
    )
    return model, load_bundle(folder, threads=1)


def test_the_export_takes_one_nan_padded_input_of_any_length(exported):
    model, bundle = exported
    session = bundle.session
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("input", ["batch", 1, "length"])]
    assert [o.name for o in session.get_outputs()] == ["logits", "features"]
    series, _ = kit.gunpoint()
    full = nan_padded(series)  # 150 steps each
    assert np.abs(bundle.predict_proba(full) - kit.torch_probabilities(model, full)).max() < 1e-4
    # ragged: three lengths, none of them traced, NaN after each end
    cut = [series[0][:, :60], series[1][:, :97], series[2]]
    ragged = nan_padded(cut)
    onnx_p = bundle.predict_proba(ragged)
    assert np.abs(onnx_p - kit.torch_probabilities(model, ragged)).max() < 1e-4
    for i, one in enumerate(cut):  # padding never changes a series' prediction
        alone = bundle.predict_proba(nan_padded([one]))
        assert np.abs(alone[0] - onnx_p[i]).max() < 1e-5


def test_prepare_series_reads_json_lists_as_training_reads_arrays(exported):
    model, bundle = exported
    series, _ = kit.gunpoint()
    values = [series[3][0].tolist(), [series[4][0, :80].tolist()]]  # flat, and channel lists
    x = bundle.prepare_series(values)
    assert x.shape == (2, 1, 150) and np.isnan(x[1, 0, 80:]).all()
    assert np.array_equal(x[0], series[3])
    # trailing nulls are padding; a short inner gap is filled as ingest fills it
    gappy = series[5][0].tolist()
    gappy[40:43] = [None, None, None]
    filled = bundle.prepare_series([gappy + [None] * 7])
    assert filled.shape == (1, 1, 150)
    expected = np.interp([40, 41, 42], [39, 43], [series[5][0, 39], series[5][0, 43]])
    assert np.allclose(filled[0, 0, 40:43], expected, atol=1e-6)
    probs = bundle.predict_proba(filled)
    assert np.abs(probs - kit.torch_probabilities(model, filled)).max() < 1e-4


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([[1.0, 2.0], [3.0, 4.0]], "channels"),  # two channels for a one-channel model
        ([], "empty"),
        ([None, None], "empty"),  # all padding
        ([1.0, "2.0", 3.0], "structure"),
        ([1.0, True, 3.0], "structure"),
        ([1.0, None, None, None, None, 2.0], "gap"),  # 4 missing steps > max_gap 3
        ([None, 1.0, 2.0], "gap"),  # missing at the start: cannot be interpolated
        ([1.0, 1e39, 2.0], "value"),  # beyond float32
        ("1,2,3", "structure"),
    ],
)
def test_prepare_series_refuses_with_the_reason(exported, value, problem):
    _, bundle = exported
    with pytest.raises(InputError) as caught:
        bundle.prepare_series([[0.0, 1.0, 2.0], value])
    assert caught.value.context["index"] == 1
    assert caught.value.context["problem"] == problem


class FrozenLength(nn.Module):
    """A series 'model' whose trace freezes the length (a Python int of x.shape[2])."""

    def __init__(self) -> None:
        super().__init__()
        self.preprocessing = {"modality": "sequence", "channels": 1}
        self.linear = nn.Linear(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = float(int(x.shape[2]))  # a constant in the trace
        return self.linear(torch.nan_to_num(x).sum(dim=2) / steps)


def test_the_length_check_catches_a_frozen_length(tmp_path):
    path = tmp_path / "model.onnx"
    with pytest.raises(OnnxExportError, match="length"):
        to_onnx(FrozenLength(), path, example=torch.zeros(2, 1, 32))
    assert not path.exists()


def test_spec_of_series_and_audio_models():
    spec, prep = input_spec({"modality": "sequence", "preprocessing": {"channels": 3}})
    assert spec == {"name": "input", "dtype": "float32", "shape": ["batch", 3, "length"]}
    assert prep["modality"] == "sequence" and prep["channels"] == 3
    assert example_input({"modality": "sequence", "preprocessing": {"channels": 3}}).shape == (
        2,
        3,
        32,
    )
    meta = {"modality": "audio", "preprocessing": {"sample_rate": 8000, "duration": 1.5}}
    spec, prep = input_spec(meta)
    assert spec["shape"] == ["batch", "samples"]
    assert prep["sample_rate"] == 8000 and prep["policy"] == "fixed" and "max_bytes" in prep
    assert example_input(meta, n=1).shape == (1, 12000)


def test_the_runtime_path_imports_no_torch(exported):
    _, bundle = exported
    out = kit.runs_without_torch(bundle.folder, "bundle.prepare_series([[1.0, None, 2.5, 3.0]])")
    assert out.splitlines()[-2] in kit.GUNPOINT_CLASSES
    assert out.splitlines()[-1] == "torch imported: False"


def test_dlw_predict_reads_series_files_and_reports_bad_ones(exported, tmp_path):
    import json

    import pandas as pd

    from dlworkflow.deploy.export.predict import predict_files

    model, bundle = exported
    series, _ = kit.gunpoint()
    good_npy, good_json = tmp_path / "a.npy", tmp_path / "b.json"
    np.save(good_npy, series[0])
    good_json.write_text(json.dumps(series[1][0, :100].tolist()))
    gap, broken = tmp_path / "gap.json", tmp_path / "broken.json"
    gap.write_text(json.dumps([1.0] + [None] * 5 + [2.0, 3.0]))
    broken.write_text("[1.0, 2.0,")
    out = tmp_path / "predictions.csv"
    result = predict_files(
        bundle.folder.parent.parent,
        [tmp_path],
        out=out,  # the folder: .npy and .json
    )
    assert (result.n_predicted, result.n_errors) == (2, 2)
    rows = pd.read_csv(out).set_index("path")
    assert "missing steps" in rows.loc[str(gap), "error"]
    assert "not a series file" in rows.loc[str(broken), "error"]
    expected = kit.torch_probabilities(model, nan_padded([series[0], series[1][:, :100]]))
    got = rows.loc[[str(good_npy), str(good_json)], ["p_1", "p_2"]].to_numpy(dtype=float)
    assert np.abs(got - expected).max() < 1e-5


def test_dlw_test_reads_stored_series_of_any_length_in_row_order(tmp_path):
    """models.predict (what `dlw test` and the parity check run): the rows' stored series,
    batched in order of length and cut to each batch's longest, come back in row order with
    the logits of the whole NaN-padded set. Real data: JapaneseVowels (7 to 29 steps)."""
    from types import SimpleNamespace

    import pandas as pd

    from dlworkflow.datasets.ucr import load_ucr
    from dlworkflow.models.predict import predict_logits
    from dlworkflow.models.series_nets import channel_stats, resnet1d
    from dlworkflow.store.series import write_series

    series = [np.asarray(s, dtype=np.float32) for s in load_ucr("JapaneseVowels")[1].series[:40]]
    assert len({s.shape[1] for s in series}) > 5
    stored = [write_series(tmp_path / "state", s) for s in series]
    rows = pd.DataFrame(
        {"path": [str(p) for p, _ in stored], "content_hash": [h for _, h in stored]}
    )
    project = SimpleNamespace(paths=SimpleNamespace(cache=tmp_path / "cache"))
    torch.manual_seed(0)
    model = resnet1d(channels=12, num_classes=9, widths=(8, 16, 16))
    model.set_normalization(*channel_stats(series))
    model.eval()
    meta = {"modality": "sequence", "preprocessing": {"channels": 12}}
    got = predict_logits(project, model, meta, rows, batch_size=7)  # type: ignore[arg-type]
    with torch.no_grad():
        expected = model(torch.from_numpy(nan_padded(series))).numpy()
    assert got.shape == (40, 9)
    assert np.abs(got - expected).max() < 1e-4
