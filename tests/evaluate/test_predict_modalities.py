"""`predict_proba` transforms text and table rows exactly as training did, from model.json
alone: its probabilities equal the trained model's on the training data path's tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlworkflow.models import TableInputError
from dlworkflow.models.predict import load_model, predict_proba
from dlworkflow.project import Project
from dlworkflow.store import load_split, read_split_info
from dlworkflow.train.tensors import load_train_val
from modality_data import TINY_TRANSFORMER, mixed_cancer_table, review_sample
from modality_data import trained_project as trained


def reference_proba(project: Project, model, preprocessing: dict) -> np.ndarray:
    """Probabilities on val through the TRAINING data path (train/tensors.py)."""
    data = load_train_val(project, read_split_info(project).classes, preprocessing=preprocessing)
    with torch.inference_mode():
        return torch.softmax(model(data.x_val), dim=1).numpy()


def test_text_rows_are_tokenized_as_in_training(tmp_path):
    source = review_sample(tmp_path, 240, seed=1)
    project = trained(
        tmp_path / "text", task="text-classification", source=source, config=TINY_TRANSFORMER
    )
    model, meta = load_model(project)
    assert meta["preprocessing"]["max_len"] == 24
    rows = load_split(project, "val")
    proba = predict_proba(project, model, meta, rows, batch_size=7)  # length-sorted batches
    assert proba.shape == (len(rows), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        proba, reference_proba(project, model, meta["preprocessing"]), atol=1e-5
    )
    # row order is kept: one row alone gets the probabilities it got in the batch
    one = predict_proba(project, model, meta, rows.iloc[[5]])
    np.testing.assert_allclose(one[0], proba[5], atol=1e-5)


def test_table_rows_are_encoded_with_the_train_statistics(tmp_path):
    """Breast cancer with a string feature added (a size band of the real mean radius) and
    missing values, so standardising, imputing and one-hot encoding are all exercised."""
    source, table = mixed_cancer_table(tmp_path)
    project = trained(
        tmp_path / "table",
        task="tabular-classification",
        source=source,
        config={"model.name": "mlp", "model.params": {"hidden": [32]}},
    )
    model, meta = load_model(project)
    prep = meta["preprocessing"]
    bands = load_split(project, "train")["f:size band"].value_counts()
    assert prep["categories"]["size band"] == bands.index.tolist()  # most frequent first
    assert set(bands.index) == {"small", "medium", "large", "huge"}
    assert meta["n_features"] == 30 + 4 + 1

    rows = load_split(project, "val")
    proba = predict_proba(project, model, meta, rows)
    np.testing.assert_allclose(proba, reference_proba(project, model, prep), atol=1e-6)
    with pytest.raises(TableInputError, match="size band"):
        predict_proba(project, model, meta, rows.drop(columns=["f:size band"]))
