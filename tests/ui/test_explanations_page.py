"""`dlw explain` on the UI tests' digits project (a copy of ui_root: real sklearn digits, a
one-epoch small_cnn) and the /explanations page that shows it: Grad-CAM's mass lies on the
digits' strokes more than on the background, the index lists the split's confident mistakes
and seeded random correct predictions, and the page shows each figure with its labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pagekit import logged_in, text

from dlworkflow.project import Project

N = 8


@pytest.fixture(scope="module")
def explained(ui_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    from conftest import copy_project

    project = Project.load(copy_project(ui_root, tmp_path_factory.mktemp("ui-explain") / "proj"))
    project.explain()
    return project


def test_grad_cam_lies_on_the_strokes_of_the_digits(explained: Project):
    import torch

    from dlworkflow.evaluate.explain_image import image_batch, last_conv, saliency
    from dlworkflow.models.predict import label_indices, load_model
    from dlworkflow.store import load_split

    model, meta = load_model(explained)
    rows = load_split(explained, "val")
    x, pixels = image_batch(explained, meta, rows)
    with torch.no_grad():
        predicted = model.eval()(x).argmax(1).numpy()
    right = predicted == label_indices(rows, meta["classes"])
    assert right.sum() >= 10 and last_conv(model)[0] == "body.1.0"
    maps, method = saliency(model, x[right], predicted[right].tolist())
    assert method.startswith("Grad-CAM") and maps.shape == (right.sum(), 16, 16)
    strokes = pixels[right, 0] > 127  # the ink of each digit
    inside = np.array([m[s].mean() for m, s in zip(maps, strokes)])
    outside = np.array([m[~s].mean() for m, s in zip(maps, strokes)])
    assert inside.mean() > 1.3 * outside.mean()  # measured 1.66 with this model
    assert (inside > outside).mean() > 0.5


def test_the_index_lists_the_confident_mistakes_and_random_correct_ones(explained: Project):
    from dlworkflow.models.predict import label_indices, load_model, predict_proba
    from dlworkflow.store import load_split

    index = json.loads((explained.root / "reports/explain/val/explanations.json").read_text())
    metrics = json.loads((explained.root / "reports/evaluate/val/metrics.json").read_text())
    right = int(np.trace(np.array(metrics["confusion"])))
    assert index["n_samples"] == metrics["n"] == 60
    assert index["n_mistakes"] == min(N, metrics["n"] - right)
    assert index["n_correct"] == min(N, right)
    items = index["items"]
    mistakes = [i for i in items if i["kind"] == "mistake"]
    assert [m["confidence"] for m in mistakes] == sorted(
        (m["confidence"] for m in mistakes), reverse=True
    )
    model, meta = load_model(explained)
    rows = load_split(explained, "val")
    proba = predict_proba(explained, model, meta, rows)
    wrong = proba.argmax(1) != label_indices(rows, meta["classes"])
    shown = {m["sample_id"] for m in mistakes}
    left = [c for c, w, s in zip(proba.max(1), wrong, rows["sample_id"]) if w and s not in shown]
    assert max(left, default=0.0) <= min(m["confidence"] for m in mistakes) + 1e-6
    for item in items:
        assert (item["true"] == item["predicted"]) == (item["kind"] == "correct")
        assert (explained.root / item["figure"]).is_file()
    assert index["method"] == "Grad-CAM on the last convolution (body.1.0)"
    again = explained.explain()  # seeded: the same correct predictions again
    assert [i["sample_id"] for i in again.items] == [i["sample_id"] for i in items]
    assert explained.ledger.latest("explain").outputs["n_correct"] == index["n_correct"]


def test_the_page_shows_each_figure_with_its_labels(client, explained: Project):
    index = json.loads((explained.root / "reports/explain/val/explanations.json").read_text())
    c = logged_in(client, explained.root)
    page = c.get("/explanations").text
    figures = re.findall(r'<figure class="explanation" data-kind="(\w+)".*?</figure>', page, re.S)
    assert figures == [i["kind"] for i in index["items"]]
    blocks = re.findall(r'<figure class="explanation".*?</figure>', page, re.S)
    for item, block in zip(index["items"], blocks, strict=True):
        src = re.search(r'<img src="([^"]+)"', block).group(1)
        assert src == "/" + item["figure"]
        served = c.get(src)
        assert served.status_code == 200 and served.content.startswith(b"\x89PNG")
        caption = text(block).strip()  # text() puts a space where each tag was
        said = f"true {item['true']} , predicted {item['predicted']} , confidence"
        assert f"{item['sample_id']}: {said} {item['confidence']:.4g}" == caption
    assert "Grad-CAM on the last convolution" in text(page)
    nav = page.split("<nav>")[1].split("</nav>")[0]
    assert 'href="/explanations" aria-current="page"' in nav
    assert c.get("/explanations", params={"split": "test"}).status_code == 404
    step7 = c.get("/").text.split('id="step-7"')[1].split("</tr>")[0]  # the ledger's record
    assert 'href="/reports/explain/val/explanations.json"' in step7


def test_without_explanations_the_page_names_the_command(client, ui_root: Path):
    assert client().get("/explanations").status_code == 401  # behind the token gate
    page = logged_in(client).get("/explanations", params={"split": "train"}).text
    assert 'id="no-explanations"' in page and "dlw explain --split train" in text(page)
