"""`dlw explain` on real data: a table (scikit-learn's breast cancer, two real features and a
column of pure noise; a one-epoch MLP) through the command, and token attributions of real
Rotten Tomatoes snippets with a small transformer (no training: integrated gradients must add
up to the change of the logit whatever the weights).
The image case (Grad-CAM on digits) is tested with its page: tests/ui/test_explanations_page.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.errors import DlwError
from dlworkflow.project import Project

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "json-output.md"
FEATURES = {"noise", "mean radius", "worst concave points"}
SPLITS = ("val", "train")


def documented(command: str) -> set[str]:
    """The top-level keys of `dlw COMMAND --json` in the JSON reference (its first table)."""
    section = DOC.read_text(encoding="utf-8").split(f"## `dlw {command} --json`")[1]
    table = next(block for block in section.split("\n\n") if block.startswith("| key |"))
    firsts = [row.split("|")[1] for row in table.splitlines()[2:]]
    return {key for cell in firsts for key in re.findall(r"`([a-z0-9_]+)`", cell)}


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Project:
    from dlworkflow.datasets.breast_cancer import load_table

    folder = tmp_path_factory.mktemp("explain")
    data = load_table()[["mean radius", "worst concave points", "label"]]
    data.insert(0, "noise", np.random.default_rng(0).normal(size=len(data)))
    data.to_parquet(folder / "cancer.parquet", index=False)
    project = Project.init(folder / "table", task="tabular-classification")
    project.update_config(
        {
            "train.threads": 2,
            "train.epochs": 1,
            "model.name": "mlp",
            "model.params": {"hidden": [16]},
            "train.learning_rate": 0.01,
            "evaluate.bootstrap_samples": 200,
        }
    )
    project.ingest(str(folder / "cancer.parquet"))
    project.split()
    project.train(progress=False)
    return project


def test_tables_rank_real_features_above_noise_and_attribute_each_row(table: Project):
    import torch

    from dlworkflow.models import encode_table
    from dlworkflow.models.predict import label_indices, load_model, predict_proba
    from dlworkflow.store import load_split

    result = table.explain(n=3)
    index = json.loads(Path(result.index).read_text())
    imp = index["importance"]
    assert {e["name"] for e in imp["features"]} == FEATURES and imp["n"] == index["n_samples"]
    drop = {e["name"]: e["drop"] for e in imp["features"]}
    assert drop["mean radius"] > drop["noise"] and drop["worst concave points"] > drop["noise"]
    assert (table.root / imp["figure"]).is_file()
    # the counts: the split's mistakes and correct predictions, at most 3 of each
    model, meta = load_model(table)
    rows = load_split(table, "val")
    proba = predict_proba(table, model, meta, rows)
    y = label_indices(rows, meta["classes"])
    wrong = int((proba.argmax(1) != y).sum())
    assert index["n_mistakes"] == min(3, wrong) and index["n_correct"] == min(3, len(y) - wrong)
    kinds = [i["kind"] for i in index["items"]]
    assert kinds == ["mistake"] * index["n_mistakes"] + ["correct"] * index["n_correct"]
    # per-row integrated gradients add up to logit(row) - logit(train means) of the prediction
    by_id = rows.set_index("sample_id")
    for item in index["items"]:
        assert (item["kind"] == "mistake") == (item["true"] != item["predicted"])
        assert (table.root / item["figure"]).is_file()
        assert {a["feature"] for a in item["attributions"]} == FEATURES
        x = torch.from_numpy(encode_table(by_id.loc[[item["sample_id"]]], meta["preprocessing"]))
        k = meta["classes"].index(item["predicted"])
        with torch.no_grad():
            change = float(model(x)[0, k] - model(torch.zeros_like(x))[0, k])
        total = sum(a["attribution"] for a in item["attributions"])
        assert total == pytest.approx(change, abs=0.02 + 0.02 * abs(change))
    html = result._repr_html_()  # a notebook shows the table and each figure
    assert html.count("data:image/png;base64,") == len(index["items"]) + 1  # + importance
    assert "permutation importance" in html
    record = table.ledger.latest("explain")
    assert record.status == "done" and record.outputs["seconds"] > 0
    assert record.outputs["n_mistakes"] == index["n_mistakes"]


def test_the_json_output_and_the_sealed_test_set(table: Project):
    reads = len(table.ledger.test_reads())
    out = CliRunner().invoke(
        app, ["explain", "-p", str(table.root), "--split", "train", "--n", "2", "--json"]
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert set(doc) == documented("explain")
    assert doc["split"] == "train" and doc["n_correct"] == 2
    assert doc["index"].endswith("reports/explain/train/explanations.json")
    for split, n in (("test", 2), ("val", 0)):
        with pytest.raises(DlwError) as refused:
            table.explain(split, n=n)
        assert ("dlw test" in str(refused.value)) == (split == "test")
    assert len(table.ledger.test_reads()) == reads  # never read


def test_the_report_section_shows_the_figures_or_the_command(table: Project, tmp_path: Path):
    from dlworkflow.report.explain_section import explanations

    table.explain(n=2)
    folder = table.root / "reports/explain"
    items = [json.loads((folder / s / "explanations.json").read_text())["items"] for s in SPLITS]
    section = explanations(SimpleNamespace(root=table.root, trained=None))
    figures = sum(len(i) + 1 for i in items if i)  # each split's items and importance bars
    assert section.body.count("<figure>") == figures
    assert section.body.count("data:image/png;base64,") == figures
    assert "On validation" in section.body and "On train" in section.body  # the CLI's run
    assert "mean radius" in section.body and "no-explanations" not in section.body
    empty = explanations(SimpleNamespace(root=tmp_path, trained=None))
    assert "no-explanations" in empty.body and "dlw explain" in empty.body


def test_tokens_of_real_reviews_add_up_to_the_change_of_the_logit(tmp_path: Path):
    import torch

    from dlworkflow.datasets.rotten_tomatoes import load_reviews
    from dlworkflow.evaluate.explain_text import explain_texts, token_scores
    from dlworkflow.models import create_model, tokenize
    from dlworkflow.preprocess.text import UNK_ID, VOCAB_SIZE

    texts = load_reviews()["text"].head(2).tolist()
    torch.manual_seed(0)
    # the transformer only: minilm_classifier (same embedding lookup, found by the same
    # search) takes ~10 s to load and explain here, over this suite's budget
    params = {"max_len": 32, "d_model": 32, "heads": 2, "ff_dim": 64}
    model = create_model("transformer", num_classes=2, vocab_size=VOCAB_SIZE, **params).eval()
    for text in texts:
        ids = torch.from_numpy(tokenize([text], 32))
        scores, method = token_scores(model, ids, 1)
        assert method.startswith("layer integrated gradients on the word embedding")
        special = (ids[0] == 101) | (ids[0] == 102)
        base = torch.where(special, ids[0], UNK_ID)[None]
        with torch.no_grad():
            change = float(model(ids)[0, 1] - model(base)[0, 1])
        assert scores[special.numpy()] == pytest.approx(0.0, abs=1e-6)  # unchanged tokens
        assert scores.sum() == pytest.approx(change, abs=0.05 * abs(change) + 0.01)
    rows = pd.DataFrame({"sample_id": ["a", "b"], "text": texts[:2]})
    items = [
        {"row": i, "sample_id": s, "true": "fresh", "predicted": "rotten", "confidence": 0.6}
        for i, s in enumerate(rows["sample_id"])
    ]
    for item in items:
        item["kind"] = "mistake"
    meta = {"classes": ["fresh", "rotten"], "preprocessing": {"max_len": 32}}
    project = SimpleNamespace(root=tmp_path)
    info = explain_texts(project, model, meta, rows, items, tmp_path, split="val")
    assert info["method"].startswith("layer integrated gradients")
    for item, text in zip(items, texts):
        ids = tokenize([text], 32)[0]
        assert len(item["tokens"]) == int((ids > 102).sum())  # each real token, in order
        assert (tmp_path / item["figure"]).is_file()
