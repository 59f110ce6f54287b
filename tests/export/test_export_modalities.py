"""Export and `dlw predict` for a text model (transformer, real movie reviews) and a tabular
model (mlp, real breast-cancer table with a string feature and missing values): the runtime's
own tokenizer / table encoding must reproduce training (parity on validation)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from dlworkflow.runtime import versions as V
from dlworkflow.runtime.bundle import InputError, load_bundle
from modality_data import TINY_TRANSFORMER, mixed_cancer_table, review_sample
from modality_data import trained_project as trained


def test_text_model_export_parity_and_predict(tmp_path):
    source = review_sample(tmp_path, 200, seed=2)
    project = trained(
        tmp_path / "text", task="text-classification", source=source, config=TINY_TRANSFORMER
    )
    result = project.export(force=True, reason="text export test")
    meta = json.loads((result.folder / "metadata.json").read_text())
    assert meta["input"] == {"name": "input", "dtype": "int64", "shape": ["batch", 24]}
    assert meta["preprocessing"]["max_len"] == 24
    assert meta["parity"]["agreement"] == 1.0 and meta["parity"]["max_abs_diff"] <= 1e-4

    bundle = load_bundle(result.folder)
    ids = bundle.prepare_texts(["a moving, funny film", "", "dull " * 100])
    assert ids.shape == (3, 24) and ids.dtype == np.int64
    assert bundle.predict_proba(ids).shape == (3, 2)
    with pytest.raises(InputError):
        bundle.prepare_texts(["fine", 3])

    rows = tmp_path / "new_reviews.csv"
    pd.DataFrame({"text": ["a moving, funny film", "", "tedious and far too long"]}).to_csv(
        rows, index=False
    )
    out = tmp_path / "p.csv"
    project.promote(result.version)
    project.predict([rows], out=out)
    lines = list(csv.DictReader(out.open()))
    assert [line["path"] for line in lines] == [f"{rows}:{i}" for i in (2, 3, 4)]
    assert all(line["label"] in bundle.classes and not line["error"] for line in lines)


def test_tabular_model_export_parity_and_predict(tmp_path):
    source, table = mixed_cancer_table(tmp_path)
    project = trained(
        tmp_path / "table",
        task="tabular-classification",
        source=source,
        config={"model.name": "mlp", "model.params": {"hidden": [32]}},
    )
    result = project.export(force=True, reason="tabular export test")
    meta = json.loads((result.folder / "metadata.json").read_text())
    assert meta["input"]["shape"] == ["batch", 30 + 4 + 1]
    assert meta["parity"]["agreement"] == 1.0 and meta["parity"]["max_abs_diff"] <= 1e-4

    features = [c for c in table.columns if c != "label"]
    new = table[features].iloc[:4].copy()
    good = tmp_path / "rows.csv"
    new.to_csv(good, index=False)
    broken = tmp_path / "broken.csv"
    new.drop(columns=["size band"]).to_csv(broken, index=False)
    out = tmp_path / "p.csv"
    predicted = project.predict(
        [good, broken, tmp_path / "missing.csv"], out=out, version=result.version
    )
    assert (predicted.n_predicted, predicted.n_errors) == (4, 2)
    lines = list(csv.DictReader(out.open()))
    assert all(not line["error"] for line in lines[:4])
    assert "size band" in lines[4]["error"] and lines[5]["error"] == "file not found"
    assert V.champion(project.root) is None  # forced exports are not served on their own
