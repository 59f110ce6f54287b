"""The Labels page on a copy of the UI tests' digits project, with 30 label-issue candidates of
its train and validation samples written as `dlw explore` records them
(reports/explore/records/label_issues.csv): the candidates 25 a page with their thumbnails
(the manifest's files), the forms' CSRF check, a decision recorded through
Project.review_label (labels/review.csv and the ledger) and shown after the 303, refusals shown
with the method's message, and the overview's count of unreviewed candidates."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from pagekit import logged_in, rows, text

from dlworkflow.project import Project
from dlworkflow.store import read_assignments, read_manifest

N_CANDIDATES = 30


@pytest.fixture
def labels_root(ui_root: Path, tmp_path: Path) -> Path:
    root = shutil.copytree(ui_root, tmp_path / "proj", ignore=shutil.ignore_patterns("mlartifacts"))
    (Project(root).paths.reports / "explore" / "records" / "label_issues.csv").unlink(
        missing_ok=True
    )
    return root


def candidates(root: Path) -> pd.DataFrame:
    project = Project(root)
    split = read_assignments(project).set_index("sample_id")["split"]
    manifest = read_manifest(project)
    open_rows = manifest[manifest["sample_id"].map(split).isin(["train", "val"])]
    chosen = open_rows.iloc[:N_CANDIDATES]
    table = pd.DataFrame(
        {
            "sample_id": chosen["sample_id"].astype(str),
            "given": chosen["label"].astype(str),
            "suggested": [str((int(v) + 1) % 10) for v in chosen["label"]],
            "confidence": [0.99 - k * 0.01 for k in range(len(chosen))],
            "given_probability": 0.01,
        }
    )
    path = project.paths.reports / "explore" / "records" / "label_issues.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table.merge(manifest[["sample_id", "path"]], on="sample_id")


def forms(page: str) -> dict[str, dict[str, str]]:
    """sample id -> the hidden fields and the preselected label of its review form."""
    out = {}
    for form in re.findall(r'<form class="review" id="review-[^"]*".*?</form>', page, flags=re.S):
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
        selected = re.findall(r'<option value="([^"]*)" selected>', form)
        fields["selected"] = selected[0] if selected else ""
        fields["buttons"] = ",".join(re.findall(r'name="decision" value="([a-z]+)"', form))
        out[fields["sample_id"]] = fields
    return out


def test_candidates_paged_with_thumbnails_and_the_overview_count(client, labels_root):
    c = logged_in(client, labels_root)
    empty = c.get("/labels")
    assert empty.status_code == 200 and "No label-issue candidates recorded" in text(empty.text)
    assert 'id="label-review"' not in c.get("/").text
    table = candidates(labels_root)

    first, second = c.get("/labels").text, c.get("/labels", params={"page": 2}).text
    shown = [forms(first), forms(second)]
    assert [len(rows(first, "candidate")), len(rows(second, "candidate"))] == [25, 5]
    assert list(shown[0]) + list(shown[1]) == table["sample_id"].tolist()  # most confident first
    assert "Decisions apply at the next dlw ingest" in text(first)
    assert '<a href="/labels" aria-current="page">Labels</a>' in first
    row = next(iter(table.itertuples()))
    fields = shown[0][row.sample_id]
    assert (fields["selected"], fields["buttons"], fields["page"]) == (
        row.suggested,
        "keep,relabel,exclude",
        "1",
    )
    assert f"{row.confidence:.3f}" in text(rows(first, "candidate")[0])
    image = c.get(f"/labels/image/{row.sample_id}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == Path(row.path).read_bytes()
    project = Project(labels_root)
    assignments = read_assignments(project)
    sealed = assignments.loc[assignments["split"] == "test", "sample_id"].iloc[0]
    assert c.get(f"/labels/image/{sealed}").status_code == 404  # never a test sample
    assert c.get("/labels/image/../../dlworkflow.yaml").status_code == 404
    overview = c.get("/").text
    assert f"{N_CANDIDATES} of {N_CANDIDATES} label-issue candidate(s) unreviewed" in text(overview)
    assert '<a href="/labels">' in overview


def test_decisions_post_with_csrf_and_show_on_the_page(client, labels_root):
    table = candidates(labels_root)
    c = logged_in(client, labels_root)
    page = c.get("/labels", params={"page": 2}).text
    form = forms(page)
    a, b, d = table["sample_id"].iloc[[25, 26, 27]]
    review = Path(labels_root) / "labels" / "review.csv"

    forged = {"sample_id": a, "decision": "exclude", "page": "2"}
    refused = c.post("/labels/review", data=forged, follow_redirects=False)
    assert refused.status_code == 403 and not review.exists()
    wrong = c.post("/labels/review", data={**forged, "csrf": "0" * 64}, follow_redirects=False)
    assert wrong.status_code == 403 and not review.exists()

    token = form[a]["csrf"]
    posts = [
        {"sample_id": a, "decision": "relabel", "label": form[a]["selected"]},
        {"sample_id": b, "decision": "exclude", "label": form[b]["selected"]},
        {"sample_id": d, "decision": "keep", "label": form[d]["selected"]},
    ]
    for data in posts:
        done = c.post(
            "/labels/review", data={**data, "csrf": token, "page": "2"}, follow_redirects=False
        )
        assert (done.status_code, done.headers["location"]) == (303, "/labels?page=2")
    with review.open(newline="") as handle:
        written = [(r["sample_id"], r["decision"], r["label"]) for r in csv.DictReader(handle)]
    assert written == [(a, "relabel", form[a]["selected"]), (b, "exclude", ""), (d, "keep", "")]
    runs = Project(labels_root).ledger.history("label_review")
    assert [r.summary["decision"] for r in runs] == ["relabel", "exclude", "keep"]

    after = c.get("/labels", params={"page": 2}).text
    by_id = {
        re.search(r'data-sample-id="([^"]+)"', r).group(1): r for r in rows(after, "candidate")
    }
    assert 'data-decision="relabel"' in by_id[a] and f"relabel → {form[a]['selected']}" in text(
        by_id[a]
    )
    assert 'data-decision="exclude"' in by_id[b] and "next ingest" in text(by_id[b])
    assert "3 decision(s) wait for it" in text(after)
    assert f"{N_CANDIDATES - 3} of {N_CANDIDATES} label-issue candidate(s) unreviewed" in text(
        c.get("/").text
    )

    bad = c.post(
        "/labels/review",
        data={"sample_id": a, "decision": "relabel", "label": "ten", "csrf": token, "page": "2"},
    )
    assert bad.status_code == 409 and "one of the project's classes" in text(bad.text)
    assignments = read_assignments(Project(labels_root))
    sealed = assignments.loc[assignments["split"] == "test", "sample_id"].iloc[0]
    test_sample = c.post(
        "/labels/review", data={"sample_id": sealed, "decision": "keep", "csrf": token}
    )
    assert test_sample.status_code == 409 and "sealed test set" in text(test_sample.text)
    assert len(Project(labels_root).ledger.history("label_review")) == 3


def test_the_candidates_explore_recorded_are_listed(client, ui_root):
    """ui_root's own `dlw explore` wrote label_issues.csv (dlworkflow/explore/records.py):
    the page lists exactly its rows, in its order, and no sealed sample."""
    recorded = pd.read_csv(
        Project(ui_root).paths.reports / "explore" / "records" / "label_issues.csv",
        dtype={"sample_id": str, "given": str, "suggested": str},
    )
    c = logged_in(client, ui_root)
    page = c.get("/labels").text
    listed = list(forms(page))
    assert listed == recorded["sample_id"].tolist()[:25]
    assignments = read_assignments(Project(ui_root))
    assert set(assignments.loc[assignments["split"] == "test", "sample_id"]).isdisjoint(listed)
    n = len(recorded)
    if n:
        first = text(rows(page, "candidate")[0])
        assert recorded["given"].iloc[0] in first and recorded["suggested"].iloc[0] in first
        assert f"{n} of {n} label-issue candidate(s) unreviewed" in text(c.get("/").text)
    else:
        assert "found no label-issue candidates" in text(page)
        assert "explore found no label-issue candidates" in text(c.get("/").text)


@pytest.mark.parametrize("task", ["text-classification", "tabular-classification"])
def test_a_text_or_a_row_is_shown_for_its_candidate(tmp_path, task):
    from fastapi.testclient import TestClient
    from uikit import TOKEN

    from dlworkflow.ui import create_app
    from modality_data import mixed_cancer_table, review_sample

    if task == "text-classification":
        source = review_sample(tmp_path, 60, seed=4)
    else:
        source, _ = mixed_cancer_table(tmp_path, missing=False)
    project = Project.init(tmp_path / "proj", task=task)
    project.ingest(str(source), progress=False)
    manifest = read_manifest(project)
    chosen = manifest.iloc[:3]
    path = project.paths.reports / "explore" / "records" / "label_issues.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame(
        {
            "sample_id": chosen["sample_id"],
            "given": chosen["label"],
            "suggested": chosen["label"],
            "confidence": [0.9, 0.8, 0.7],
            "given_probability": 0.1,
        }
    ).to_csv(path, index=False)
    app = create_app(project.root, token=TOKEN)
    page = logged_in(lambda _: TestClient(app, base_url="http://127.0.0.1")).get("/labels").text
    shown = [text(r) for r in rows(page, "candidate")]
    assert len(shown) == 3 and 'class="thumb"' not in page
    first = chosen.iloc[0]
    if task == "text-classification":
        assert " ".join(str(first["text"]).split())[:60] in shown[0]
    else:
        assert f"mean radius={first['f:mean radius']}, mean texture=" in shown[0]
        assert "…" in shown[0]  # 31 features: the row is cut to 240 characters
