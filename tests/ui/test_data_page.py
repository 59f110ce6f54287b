"""The Data pages on the UI tests' digits project (ui_root: split, explored, so the explore
records exist): the EDA summary links the report's own sections and shows the run's figures;
the samples of a class page through exactly that class's train and validation rows; the
duplicate pairs and the map show the records' ids and never a sealed one; a test-set id, an
unknown id or a path in place of an id gets 404 from the sample and image routes; the
quarantine lists what a real ingest set aside, with its reason."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import quote, unquote

import pandas as pd
import pytest
from pagekit import logged_in, text

from dlworkflow.explore.records import DUPLICATE_PAIRS, LABEL_ISSUES, MAP, records_dir
from dlworkflow.project import Project
from dlworkflow.store import read_assignments, read_manifest
from dlworkflow.ui.data_routes import SAMPLES_PAGE
from modality_data import helpers


def _split(root: Path) -> dict[str, str]:
    table = read_assignments(Project(root))
    return dict(zip(table["sample_id"].astype(str), table["split"].astype(str)))


def _record(root: Path, name: str) -> pd.DataFrame:
    ids = {c: str for c in ("sample_id", "sample_id_a", "sample_id_b", "label")}
    return pd.read_csv(records_dir(Project(root).paths.reports) / name, dtype=ids)


def _linked_ids(page: str) -> list[str]:
    return [unquote(s) for s in re.findall(r"/data/sample\?id=([^'\"&]+)", page)]


@pytest.fixture(scope="module")
def web(ui_root):
    """One logged-in client for the module's read-only pages (the app built once)."""
    from fastapi.testclient import TestClient
    from uikit import TOKEN

    from dlworkflow.ui import create_app

    c = TestClient(create_app(ui_root, token=TOKEN), base_url="http://127.0.0.1")
    assert c.get("/", params={"token": TOKEN}).status_code == 200
    return c


def test_summary_links_the_report_sections_and_shows_the_records(web, ui_root):
    page = web.get("/data")
    assert page.status_code == 200
    report = (ui_root / "reports" / "eda.html").read_text(encoding="utf-8")
    anchors = re.findall(r"<section id='([\w-]+)'>", report)
    assert {"trust", "overview", "classes", "map", "label-issues"} <= set(anchors)
    for anchor in anchors:
        assert f'href="/reports/eda.html#{anchor}"' in page.text
    summary = Project(ui_root).ledger.latest("explore").summary
    shown = text(page.text)
    assert f"samples explored {summary['n_samples']:,}" in shown
    points = len(_record(ui_root, MAP))
    assert re.search(rf'id="count-points">{points}<', page.text)
    issues = len(_record(ui_root, LABEL_ISSUES))
    assert re.search(rf'id="count-issues">{issues}<', page.text)
    assert 'href="/data"' in page.text and ">Data</a>" in page.text  # the nav link


def test_samples_of_a_class_page_through_its_train_and_val_rows(web, ui_root):
    split = _split(ui_root)
    manifest = read_manifest(Project(ui_root))
    label = manifest["label"].astype(str).value_counts().index[0]
    expected = [
        s
        for s, lab in zip(manifest["sample_id"].astype(str), manifest["label"].astype(str))
        if lab == label and split.get(s) in ("train", "val")
    ]
    size = 10
    pages = -(-len(expected) // size)
    assert pages >= 3
    seen: list[str] = []
    for number in range(1, pages + 1):
        page = web.get("/data/samples", params={"class": label, "page": number, "size": size})
        assert page.status_code == 200
        seen += re.findall(r'<li class="sample" data-sample-id="([^"]+)"', page.text)
        has_next = (
            f'rel="next" href="/data/samples?class={label}&amp;size=10&amp;page={number + 1}"'
        )
        assert (has_next in page.text) == (number < pages)
    assert seen == expected  # every train/val sample of the class once, in manifest order
    one = web.get("/data/samples", params={"class": label})
    assert len(re.findall(r'<li class="sample"', one.text)) == min(SAMPLES_PAGE, len(expected))
    beyond = {"class": label, "page": pages + 1, "size": size}
    assert web.get("/data/samples", params=beyond).status_code == 404
    assert web.get("/data/samples", params={"class": "no-such-class"}).status_code == 404


def test_sample_and_image_routes_serve_only_listed_unsealed_samples(web, ui_root):
    split = _split(ui_root)
    manifest = read_manifest(Project(ui_root))
    path_of = dict(zip(manifest["sample_id"].astype(str), manifest["path"].astype(str)))
    train = next(s for s, sp in split.items() if sp == "train")
    test = next(s for s, sp in split.items() if sp == "test")
    image = web.get("/data/image", params={"id": train})
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == Path(path_of[train]).read_bytes()
    assert web.get("/data/sample", params={"id": train}).status_code == 200
    refused = [
        test,  # sealed
        "no-such-sample",
        "../../../../etc/passwd",
        path_of[train],  # a path, not an id
        "..%2F..%2Fdlworkflow.yaml",
    ]
    for bad in refused:
        assert web.get("/data/image", params={"id": bad}).status_code == 404, bad
        assert web.get("/data/sample", params={"id": bad}).status_code == 404, bad
    assert web.get("/data/image?id=" + quote(test, safe="")).status_code == 404


def test_duplicates_page_on_a_project_without_pairs_says_so(web, ui_root):
    assert _record(ui_root, DUPLICATE_PAIRS).empty  # sklearn digits: no copies
    page = web.get("/data/duplicates")
    assert page.status_code == 200 and 'id="duplicates-empty"' in page.text
    assert web.get("/data/duplicates", params={"kind": "other"}).status_code == 404


def test_map_draws_every_recorded_point_as_a_link_with_its_thumbnail_on_hover(web, ui_root):
    points = _record(ui_root, MAP)
    page = web.get("/data/map")
    assert page.status_code == 200
    assert "<svg id='embedding-map'" in page.text
    linked = _linked_ids(page.text.split("<svg id='embedding-map'", 1)[1].split("</svg>", 1)[0])
    assert sorted(linked) == sorted(points["sample_id"])
    assert page.text.count("<a class='pt cand'") == int(points["candidate"].sum())
    assert page.text.count("--t:url('/data/image?id=") == len(points)  # hover only: no <img>
    assert not {s for s, sp in _split(ui_root).items() if sp == "test"} & set(linked)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A real ingest and explore of digit images with a copy filed under another class and a
    file that is not an image (quarantined)."""
    make_digits_folder = helpers("conftest.py").make_digits_folder
    root = tmp_path_factory.mktemp("data-page")
    folder = make_digits_folder(root / "images", n_per_class=8, classes=(0, 1, 2))
    shutil.copy(folder / "0" / "d0-000.png", folder / "1" / "copy-of-d0-000.png")
    (folder / "1" / "broken.png").write_bytes(b"this is not a png")
    project = Project.init(root / "proj")
    project.update_config({"explore.backbone": "pixels"})
    project.ingest(str(folder), progress=False)
    return project.root


def test_duplicate_pairs_side_by_side_with_the_conflict(client, planted):
    web = logged_in(client, planted)
    summary = web.get("/data")
    assert "run <code>dlw explore</code>" in summary.text  # not explored yet
    assert web.get("/data/map").status_code == 200
    assert 'id="map-empty"' in web.get("/data/map").text
    Project(planted).explore(progress=False)
    pairs = _record(planted, DUPLICATE_PAIRS)
    exact = pairs[pairs["kind"] == "exact"].iloc[0]
    assert {exact["sample_id_a"], exact["sample_id_b"]} == {"0/d0-000.png", "1/copy-of-d0-000.png"}
    page = web.get("/data/duplicates", params={"kind": "exact"})
    shown = re.findall(
        r'<li class="pair conflicting" data-kind="exact">(.*?)</li>', page.text, re.S
    )
    assert len(shown) == 1 and "CONFLICT" in shown[0]
    a, b = shown[0].split('class="side side-b"')
    assert exact["sample_id_a"] in _linked_ids(a) and exact["sample_id_b"] in _linked_ids(b)
    assert "<img" in a and "<img" in b  # both thumbnails
    assert re.search(r'id="count-exact">1<', web.get("/data").text)
    sample = web.get("/data/sample", params={"id": "1/copy-of-d0-000.png"})
    assert "exact duplicate of" in sample.text and "0/d0-000.png" in sample.text


def test_quarantine_lists_what_a_real_ingest_set_aside(client, planted):
    web = logged_in(client, planted)
    page = web.get("/data/quarantine")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="quarantined">.*?</tr>', page.text, flags=re.S)
    assert len(rows) == 1 and "broken.png" in rows[0]
    reason = re.search(r'<td class="reason">([^<]+)</td>', rows[0])
    assert reason is not None and reason.group(1).strip()
    assert re.search(r'id="count-quarantined">1<', web.get("/data").text)


def test_a_map_past_max_points_draws_every_candidate_and_the_same_choice(monkeypatch):
    import numpy as np

    from dlworkflow.ui import data_map

    monkeypatch.setattr(data_map, "MAX_POINTS", 100)
    candidate = np.zeros(1000, dtype=bool)
    candidate[::50] = True
    rows = data_map.drawn(candidate)
    assert len(rows) == len(set(rows)) == 100
    assert set(np.flatnonzero(candidate).tolist()) <= set(rows)
    assert rows == data_map.drawn(candidate)  # a reload draws the same points
    assert data_map.drawn(candidate[:80]) == list(range(80))
