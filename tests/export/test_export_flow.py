"""`dlw export` on a trained digits model, in workflow order: refused untested, forced with a
reason (recorded), refused after a FAIL, exported after a PASS (champion, parity, metadata,
dynamic batch), then promote / rollback and `dlw predict` on real PNGs with a corrupt file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.deploy.export import ExportRefusedError, current_verdict, export
from dlworkflow.errors import DlwError
from dlworkflow.runtime import versions as V
from dlworkflow.runtime.bundle import InputError, load_bundle

METADATA_KEYS = {
    "format",
    "version",
    "model",
    "task",
    "modality",
    "classes",
    "input",
    "preprocessing",
    "metric",
    "verdict",
    "test_value",
    "forced",
    "parity",
    "dataset_version",
    "config_hash",
    "commit",
    "created",
}


def dlw(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_untested_model_is_refused(digits):
    assert current_verdict(digits)[0] == "UNTESTED"
    refused = dlw("export", "-p", digits.root)
    assert refused.exit_code == 3 and "never tested" in refused.output
    assert dlw("export", "-p", digits.root, "--reason", "x").exit_code == 2
    assert dlw("export", "-p", digits.root, "--force").exit_code == 2  # no reason
    with pytest.raises(ExportRefusedError, match="never tested"):
        digits.export()
    with pytest.raises(DlwError, match="needs a reason"):
        digits.export(force=True, reason="  ")
    assert V.versions(digits.root) == []
    assert not any(p.name.startswith(".v") for p in V.models_dir(digits.root).glob("*"))


def test_forced_export_records_the_reason_and_is_not_champion(digits):
    result = digits.export(force=True, reason="demo for the ward meeting")
    meta = json.loads((result.folder / "metadata.json").read_text())
    assert meta["verdict"] == "UNTESTED"
    assert meta["forced"]["reason"] == "demo for the ward meeting" and meta["forced"]["by"]
    assert V.champion(digits.root) is None  # a forced export is never served on its own
    record = digits.ledger.latest("export")
    assert record.outputs["forced"]["reason"] == "demo for the ward meeting"
    assert record.outputs["version"] == result.version == 1


def test_failed_model_is_refused(digits):
    digits.update_config({"problem.target": 1.0})  # 4 epochs of a tiny CNN: below 100%
    assert not digits.test().verdict.passed
    assert current_verdict(digits)[0] == "FAIL"
    with pytest.raises(ExportRefusedError, match="failed the test"):
        export(digits)
    assert [m["version"] for m in V.versions(digits.root)] == [1]


def test_passing_model_exports_with_parity_and_complete_metadata(digits):
    digits.update_config({"problem.target": 0.5})
    assert digits.test().verdict.passed
    result = digits.export()
    assert result.version == 2 and V.champion(digits.root) == 2
    meta = json.loads((result.folder / "metadata.json").read_text())
    assert set(meta) >= METADATA_KEYS
    assert meta["verdict"] == "PASS" and meta["forced"] is None
    assert meta["model"] == "small_cnn" and meta["modality"] == "image"
    assert meta["classes"] == [str(i) for i in range(10)]
    assert meta["input"] == {"name": "input", "dtype": "float32", "shape": ["batch", 1, 16, 16]}
    assert meta["preprocessing"]["size"] == [16, 16] and len(meta["preprocessing"]["mean"]) == 1
    assert meta["metric"] == "accuracy" and meta["test_value"] >= 0.5
    assert len(meta["config_hash"]) == 64 and meta["dataset_version"]
    parity = meta["parity"]
    assert parity["n"] == 60 and parity["agreement"] == 1.0
    assert parity["max_abs_diff"] <= 1e-4
    assert {p.name for p in result.folder.iterdir()} == {
        "model.onnx",
        "weights.safetensors",
        "metadata.json",
    }


def test_onnx_model_takes_any_batch_size(digits):
    folder = V.champion_folder(digits.root)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["logits", "features"]
    rng = np.random.default_rng(0)
    for batch in (1, 7):
        x = rng.normal(size=(batch, 1, 16, 16)).astype(np.float32)
        logits, features = session.run(["logits", "features"], {"input": x})
        assert logits.shape == (batch, 10) and features.shape[0] == batch
        # the features are the ones the head reads: logits = features @ W^T + b
        from safetensors.numpy import load_file

        weights = load_file(str(folder / "weights.safetensors"))
        w, b = weights["head.weight"], weights["head.bias"]
        np.testing.assert_allclose(features @ w.T + b, logits, atol=1e-4)


def test_bundle_matches_the_trained_model_on_real_images(digits):
    from dlworkflow.models.predict import load_model, predict_proba
    from dlworkflow.store import load_split

    bundle = load_bundle(V.champion_folder(digits.root), threads=1)
    rows = load_split(digits, "train").iloc[:7]
    x = bundle.prepare_images([Path(p).read_bytes() for p in rows["path"]])
    assert x.shape == (7, 1, 16, 16) and x.dtype == np.float32
    model, meta = load_model(digits)
    np.testing.assert_allclose(
        bundle.predict_proba(x), predict_proba(digits, model, meta, rows), atol=1e-5
    )
    with pytest.raises(InputError) as err:
        bundle.prepare_images([Path(rows["path"].iloc[0]).read_bytes(), b"not an image"])
    assert err.value.context["index"] == 1
    with pytest.raises(InputError):
        bundle.prepare_texts(["this is an image model"])
    with pytest.raises(InputError, match="too many pixels") as err:  # before any decoding
        bundle.prepare_images([png_header(100_000, 100_000)])
    assert err.value.context["index"] == 0


def png_header(width: int, height: int) -> bytes:
    """A small, valid PNG whose header claims width x height (a decompression-bomb shape)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )


def test_promote_and_rollback_move_the_pointer(digits):
    third = digits.export()  # the same PASS model again: a new version, the new champion
    assert third.version == 3 and V.champion(digits.root) == 3
    assert json.loads(V.pointer_path(digits.root).read_text())["previous"] == [2]
    assert digits.rollback().champion == 2
    with pytest.raises(V.VersionError, match="nothing to roll back"):
        digits.rollback()
    promoted = dlw("promote", "1", "-p", digits.root)  # the forced version, explicitly
    assert promoted.exit_code == 0 and "champion is now v1" in promoted.output
    assert V.champion(digits.root) == 1
    assert V.champion_folder(digits.root) == V.version_folder(digits.root, 1)
    assert json.loads(V.pointer_path(digits.root).read_text())["previous"] == [2]
    with pytest.raises(V.VersionError, match="no exported model version 9"):
        digits.promote(9)
    assert digits.rollback().champion == 2 and V.champion(digits.root) == 2


def test_predict_writes_a_csv_with_an_error_row_for_a_corrupt_file(digits, tmp_path):
    from dlworkflow.store import ImageDecodeError, decode_image, load_split

    rows = load_split(digits, "val").iloc[:5]
    corrupt = tmp_path / "corrupt.png"
    data = Path(rows["path"].iloc[0]).read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])  # a truncated PNG
    out = tmp_path / "predictions.csv"
    result = digits.predict([*rows["path"], str(corrupt)], out=out)
    assert (result.n_predicted, result.n_errors, result.version) == (5, 1, 2)
    lines = list(csv.DictReader(out.open()))
    assert [line["path"] for line in lines] == [*rows["path"], str(corrupt)]
    good, bad = lines[:5], lines[5]
    for line in good:
        probs = np.array([float(line[f"p_{c}"]) for c in range(10)])
        assert abs(probs.sum() - 1) < 1e-4 and line["label"] == str(probs.argmax())
        assert float(line["confidence"]) == pytest.approx(probs.max(), abs=1e-6)
        assert line["error"] == ""
    assert bad["label"] == "" and bad["error"]
    cli = dlw(
        "predict",
        rows["path"].iloc[0],
        str(corrupt),
        "--version",
        "1",
        "--out",
        tmp_path / "v1.csv",
        "-p",
        digits.root,
    )
    assert cli.exit_code == 0 and len(list(csv.DictReader((tmp_path / "v1.csv").open()))) == 2
    with pytest.raises(ImageDecodeError) as err:  # the reason ingest would quarantine it with
        decode_image(corrupt, max_pixels=10**8)
    assert bad["error"] == err.value.reason
