"""The evaluation page on a real evaluated (and, for the verdict, tested) digits project: the
confusion matrix dlw evaluate recorded, each cell linking to exactly its validation samples
(checked against the exported ONNX model's own predictions on the image files), thumbnails
served only for listed samples, and the test verdict with every read of the sealed test set."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
from pagekit import logged_in, rows, text

from dlworkflow.project import Project
from dlworkflow.runtime import versions as V
from dlworkflow.runtime.bundle import load_bundle
from dlworkflow.store import load_split


def _matrix(page: str) -> dict[tuple[int, int], tuple[int, str | None]]:
    """(true, predicted) -> (count shown, the cell's link or None)."""
    cells = {}
    for cell in re.findall(
        r'<td class="num cell[^"]*" data-true="(\d+)" data-predicted="(\d+)">(.*?)</td>', page
    ):
        i, j, inner = int(cell[0]), int(cell[1]), cell[2]
        link = re.search(r'href="([^"]+)"', inner)
        cells[(i, j)] = (int(text(inner)), html.unescape(link.group(1)) if link else None)
    return cells


def test_the_confusion_matrix_is_the_recorded_one_and_sums_to_the_validation_size(client, ui_root):
    import json

    project = Project.load(ui_root)
    recorded = json.loads((ui_root / "reports/evaluate/val/metrics.json").read_text())
    page = logged_in(client).get("/evaluation").text
    cells = _matrix(page)
    classes = recorded["classes"]
    assert len(cells) == len(classes) ** 2
    assert sum(count for count, _ in cells.values()) == len(load_split(project, "val"))
    accuracy = sum(cells[(i, i)][0] for i in range(len(classes))) / len(load_split(project, "val"))
    assert abs(accuracy - recorded["metrics"]["accuracy"]["value"]) < 1e-9
    # empty cells link nowhere, the others to their cell page
    for (i, j), (count, link) in cells.items():
        assert (link is not None) == (count > 0)
        if link:
            assert link == f"/evaluation/val/cell?true={i}&predicted={j}"


def test_a_cells_page_lists_exactly_its_samples_as_the_exported_model_predicts_them(
    client, ui_root
):
    project = Project.load(ui_root)
    val = load_split(project, "val")
    bundle = load_bundle(V.version_folder(ui_root, 1))  # ONNX, parity-checked at export
    images = [Path(p).read_bytes() for p in val["path"]]
    predicted = bundle.predict_logits(bundle.prepare_images(images)).argmax(axis=1)
    classes = [str(c) for c in bundle.metadata["classes"]]
    truth = np.array([classes.index(str(label)) for label in val["label"]])
    c = logged_in(client)
    cells = _matrix(c.get("/evaluation").text)
    seen: list[str] = []
    for (i, j), (count, link) in cells.items():
        if not link:
            continue
        page = c.get(link).text
        listed = [text(r).split()[1] for r in rows(page, "sample")]
        expected = set(val["sample_id"][(truth == i) & (predicted == j)])
        assert len(listed) == count and set(listed) == expected, (i, j)
        seen += listed
    assert sorted(seen) == sorted(val["sample_id"])  # every sample in exactly one cell


def test_a_listed_samples_thumbnail_is_its_image_and_nothing_else_is_served(client, ui_root):
    project = Project.load(ui_root)
    val = load_split(project, "val")
    train = load_split(project, "train")
    c = logged_in(client)
    sample = val.iloc[0]
    image = c.get(f"/evaluation/val/image/{sample['sample_id']}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == Path(sample["path"]).read_bytes()
    assert c.get(f"/evaluation/val/image/{train.iloc[0]['sample_id']}").status_code == 404
    assert c.get("/evaluation/val/image/..%2F..%2Fdlworkflow.yaml").status_code == 404
    assert c.get(f"/evaluation/test/image/{sample['sample_id']}").status_code == 404
    assert c.get("/evaluation/test/cell?true=0&predicted=0").status_code == 404


def test_the_cell_pages_are_paged(client, ui_root, monkeypatch):
    from dlworkflow.ui import cells

    monkeypatch.setattr(cells, "PAGE_SIZE", 2)
    c = logged_in(client)
    counts = _matrix(c.get("/evaluation").text)
    (i, j), (count, link) = max(counts.items(), key=lambda kv: kv[1][0])
    assert count > 2
    listed = []
    for number in range(1, (count + 1) // 2 + 1):
        page = c.get(f"{link}&page={number}").text
        listed += [text(r).split()[1] for r in rows(page, "sample")]
        assert ('rel="next"' in page) == (number * 2 < count)
    assert len(listed) == len(set(listed)) == count


def test_calibration_baselines_and_figures_are_shown_as_recorded(client, ui_root):
    import json

    metrics = json.loads((ui_root / "reports/evaluate/val/metrics.json").read_text())
    c = logged_in(client)
    page = c.get("/evaluation").text
    shown = text(page)
    assert f"ece {metrics['calibration']['ece']:.4g}" in shown
    network = metrics["baselines"]["network"]["value"]
    assert any(f"network {network:.4g}" in text(r) for r in rows(page, "baseline")), (
        "the network's baseline row"
    )
    for name, path in metrics["figures"].items():
        relative = path.removeprefix("reports/")
        assert f'<img src="/reports/{relative}"' in page, name
        assert c.get(f"/reports/{relative}").content == (ui_root / path).read_bytes()


def test_the_test_split_shows_the_verdict_and_every_read_never_its_samples(client, tested_root):
    project = Project.load(tested_root)
    test = project.ledger.latest("test")
    reads = project.ledger.test_reads()
    verdicts = {r.id: r.outputs["verdict"] for r in project.ledger.history("test")}
    assert len(reads) == 2 and set(verdicts) == {r.run_id for r in reads}
    page = logged_in(client, tested_root).get("/evaluation?split=test").text
    assert f'<p class="verdict verdict-{test.outputs["verdict"]}"' in page
    assert test.summary["headline"] in text(page)
    read_rows = [text(r) for r in rows(page, "read")]
    assert len(read_rows) == 2
    for row, read in zip(read_rows, reversed(reads), strict=True):
        assert row.startswith(f" {read.id} {read.at} {read.run_id} ")
        assert f"test: {verdicts[read.run_id]}" in row
    assert "read 2 times" in text(page)
    assert "/evaluation/test/cell" not in page  # counts only


def test_without_an_evaluation_the_page_says_which_command_to_run(client, ui_root, tmp_path):
    from conftest import copy_project

    root = copy_project(ui_root, tmp_path / "proj")
    (root / "reports/evaluate/val/metrics.json").unlink()
    page = text(logged_in(client, root).get("/evaluation").text)
    assert "Nothing recorded for the validation split yet: run dlw evaluate --split val" in page
    assert "Not tested yet" in page


def test_the_slices_are_shown_as_evaluate_recorded_them(client, ui_root, tmp_path):
    from conftest import copy_project

    project = Project.load(copy_project(ui_root, tmp_path / "proj"))
    project.update_config({"evaluate.slices": ["bytes"]})  # the file size, by quartile
    recorded = project.evaluate().report["slices"]
    assert [e["column"] for e in recorded] == ["bytes"]
    page = logged_in(client, project.root).get("/evaluation").text
    assert "<h3>bytes</h3>" in page
    shown = [text(r) for r in rows(page, "slice")]
    assert len(shown) == len(recorded[0]["slices"]) == 4
    for row, s in zip(shown, recorded[0]["slices"], strict=True):
        assert row.startswith(f" {s['value']} {s['n']} {s['metric']:.4g} ")
        assert (s["note"] or "") in row
    assert sum(s["n"] for s in recorded[0]["slices"]) == len(load_split(project, "val"))


def test_a_matrix_the_current_model_does_not_give_lists_no_samples(client, ui_root, tmp_path):
    """metrics.json out of step with the trained model (here: its matrix edited, as a model
    retrained after `dlw evaluate` would leave it): the cell page says to evaluate again."""
    import json

    from conftest import copy_project

    root = copy_project(ui_root, tmp_path / "proj")
    path = root / "reports/evaluate/val/metrics.json"
    metrics = json.loads(path.read_text())
    row = metrics["confusion"][0]
    j = next(k for k, count in enumerate(row) if count)
    row[j], row[(j + 1) % len(row)] = row[(j + 1) % len(row)] + 1, row[j] - 1
    path.write_text(json.dumps(metrics))
    page = logged_in(client, root).get(f"/evaluation/val/cell?true=0&predicted={j}")
    assert page.status_code == 200
    assert "run `dlw evaluate --split val` again" in html.unescape(page.text)
    assert rows(page.text, "sample") == []
