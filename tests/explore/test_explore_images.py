"""Step 3 on real digit images with planted problems: duplicates with conflicting labels, a
near duplicate, a blank image, flipped labels and a test/train duplicate after the split."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import digit_image, make_digits_folder, write_png
from dlworkflow.explore import ExploreResult, explore
from dlworkflow.project import Project
from opening import opening


def _report(result: ExploreResult) -> str:
    return Path(result.report).read_text(encoding="utf-8")


def _section(text: str, anchor: str) -> str:
    start = text.index(f"<section id='{anchor}'>")
    return text[start : text.index("</section>", start)]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Project, ExploreResult]:
    root = tmp_path_factory.mktemp("planted")
    folder = make_digits_folder(root / "images", n_per_class=20, classes=(0, 1, 2))
    shutil.copy(folder / "0" / "d0-000.png", folder / "1" / "copy-of-d0-000.png")  # exact
    near = np.clip(digit_image(2, 0).astype(int) + 25, 0, 255).astype(np.uint8)  # brighter
    write_png(folder / "0" / "near-d2-000.png", near)
    write_png(folder / "2" / "blank.png", np.full((16, 16), 128, dtype=np.uint8))
    project = Project.init(root / "proj")
    project.update_config({"explore.backbone": "pixels"})
    project.ingest(str(folder), progress=False)
    return project, explore(project, progress=False)


def test_report_is_one_self_contained_file(planted):
    project, result = planted
    text = _report(result)
    assert Path(result.report) == project.paths.reports / "eda.html"
    assert not re.search(r"""(src|href)\s*=\s*['"]?\s*https?://""", text)
    assert "<script" not in text and "<link" not in text
    assert "data:image/png;base64" in text
    order = [
        text.index(f"<section id='{a}'>")
        for a in (
            "trust",
            "overview",
            "classes",
            "images",
            "duplicates",
            "map",
            "label-issues",
            "leakage",
        )
    ]
    assert order == sorted(order)  # the trust summary first, then the sections in order
    tone, (trust, what, step) = opening(text)  # planted conflicting copies: a high warning
    assert tone == "bad" and trust.startswith(f"{len(result.warnings)} warnings (")
    assert what.startswith(f"{result.n_samples:,} samples (image classification), 3 classes")
    assert step.startswith("Before `dlw split`: ")


def test_planted_duplicates_are_cross_class_conflicts(planted):
    _, result = planted
    dups = _section(_report(result), "duplicates")
    exact, near = dups.split("Near duplicates", 1)
    assert "copy-of-d0-000.png" in exact and "0/d0-000.png" in exact
    assert "near-d2-000.png" in near and "2/d2-000.png" in near
    assert "CONFLICT" in exact and "CONFLICT" in near
    assert result.exact_conflicting == 1 and result.near_conflicting >= 1


def test_blank_image_is_an_outlier(planted):
    _, result = planted
    images = _section(_report(result), "images")
    outliers = images.split("Blank images", 1)[1].split("Saturated images", 1)[0]
    assert "2/blank.png" in outliers
    assert result.n_outliers >= 1


def test_trust_summary_ranks_conflicting_duplicates_high(planted):
    project, result = planted
    first = result.warnings[0]
    assert first.severity == "high" and "conflicting labels" in first.text
    assert "classes 0 and 1" in " ".join(w.text for w in result.warnings)
    severities = [w.severity for w in result.warnings]
    assert severities == sorted(severities, key=("high", "medium", "low").index)
    trust = _section(_report(result), "trust")
    assert "HIGH" in trust and "exact duplicate with conflicting labels" in trust
    record = project.ledger.latest("explore")
    assert record.status == "done"
    assert record.outputs["report"] == result.report
    assert record.outputs["hash"] and "high)" in record.summary["headline"]
    assert record.summary["warnings"][0].startswith("[high]")
    labels = [label for label, _ in result.rows()]
    assert {"report", "samples", "exact duplicates", "label-issue candidates"} <= set(labels)
    assert "<h3>" in result._repr_html_() and "HIGH" in result._repr_html_()


def test_flipped_labels_are_label_issue_candidates(tmp_path):
    folder = make_digits_folder(tmp_path / "images", n_per_class=40, classes=range(10))
    rng = np.random.default_rng(0)
    files = sorted(folder.rglob("*.png"))
    flipped = set()
    for path in rng.choice(files, size=20, replace=False):  # 5% of 400
        label = int(path.parent.name)
        target = folder / str((label + 1 + rng.integers(0, 9)) % 10) / path.name
        path.rename(target)
        flipped.add(target.relative_to(folder).as_posix())
    project = Project.init(tmp_path / "proj")
    project.update_config({"explore.backbone": "pixels"})
    project.ingest(str(folder), progress=False)
    result = explore(project, progress=False)
    issues = _section(_report(result), "label-issues")
    found = {f for f in flipped if f in issues}
    assert len(found) >= 0.6 * len(flipped), (len(found), result.label_issues)
    assert result.label_issues <= 3 * len(flipped)  # mostly the flipped ones


def test_leakage_reports_a_test_copy_of_a_train_sample(tmp_path):
    """The split keeps duplicates in one split, so the leak is planted in the assignment
    afterwards (as a split made by an older tool, or edited by hand, would have it)."""
    from dlworkflow.store import read_assignments, read_split_info, write_split

    folder = make_digits_folder(tmp_path / "images", n_per_class=20, classes=(0, 1))
    for k in range(3):
        shutil.copy(folder / "0" / "d0-000.png", folder / "0" / f"dup-{k}.png")
    project = Project.init(tmp_path / "proj")
    project.update_config(
        {
            "explore.backbone": "pixels",
            "explore.label_issues": False,
            "split.duplicates": "accept",
            "split.duplicates_reason": "planted for a test of explore",
        }
    )
    project.ingest(str(folder), progress=False)
    project.split()
    table = read_assignments(project)
    copies = table["sample_id"].str.contains("dup-|d0-000", regex=True)
    first = table.index[copies][0]
    table.loc[copies, "split"] = "train"
    table.loc[first, "split"] = "test"
    write_split(project, table, read_split_info(project))
    result = explore(project, progress=False)
    leakage = _section(_report(result), "leakage")
    assert "train / test" in leakage and table.loc[first, "sample_id"] in leakage
    high = [w for w in result.warnings if w.severity == "high"]
    assert any("test sample" in w.text and "duplicate train/val" in w.text for w in high)
    assert project.ledger.latest("explore").inputs["split"] == project.upstream_hash("split")


def test_an_image_damaged_after_ingest_is_skipped_not_fatal(tmp_path):
    """Default settings (backbone auto: pretrained features when installed, else pixels)."""
    folder = make_digits_folder(tmp_path / "images", n_per_class=12, classes=(0, 1, 2))
    project = Project.init(tmp_path / "proj")
    project.ingest(str(folder), progress=False)
    (folder / "1" / "d1-003.png").write_bytes(b"not a png any more")
    result = explore(project, progress=False)
    text = _report(result)
    assert "1/d1-003.png" in _section(text, "overview")  # listed as unreadable
    assert any("could not be read" in w.text for w in result.warnings)
    assert "pretrained" in _section(text, "map") or "raw pixels used" in _section(text, "map")
    assert project.ledger.latest("explore").status == "done"


def test_one_image_size_is_a_sentence_not_three_one_bar_histograms(planted):
    """Every planted image is 16x16 gray: said once, and no width/height/aspect figure."""
    from dlworkflow.store import read_manifest

    project, result = planted
    images = _section(_report(result), "images")
    n = len(read_manifest(project))
    assert f"All {n:,} images are 16×16, mode L." in images
    for name in ("width", "height", "aspect ratio"):
        assert f"alt='{name} distribution'" not in images
    assert "alt='brightness distribution'" in images  # a property that varies is drawn


def test_a_distribution_is_a_sentence_a_table_or_a_histogram_by_its_distinct_values():
    from sklearn.datasets import load_digits

    from dlworkflow.explore.distributions import distribution, image_sizes

    pixels = load_digits().images.reshape(len(load_digits().images), -1)
    ink = (pixels > 0).sum(axis=1).astype(float)  # inked pixels per real digit: many values
    drawn = distribution(ink, title="ink", xlabel="pixels", noun="digits")
    assert len(drawn.figures) == 1 and not drawn.text
    two = distribution((ink > np.median(ink)).astype(float), title="x", xlabel="", noun="digits")
    assert not two.figures and "<table" in two.text[0]
    assert f"{int((ink > np.median(ink)).sum()):,}" in two.text[0]  # the counts
    one = distribution(np.full(5, 28.0), title="width", xlabel="", noun="images", unit=" px")
    assert not one.figures and one.text[0] == "<p>All 5 images have width 28 px.</p>"
    sizes = image_sizes(np.array([28.0, 28.0, np.nan]), np.array([28.0, 28.0, 20.0]), {"L": 3})
    assert "All 2 images with a known size are 28×28, mode L." in sizes.text[0]
