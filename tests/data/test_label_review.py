"""Label review (Project.review_label, `dlw review-label`) and how the next `dlw ingest` applies
it. The round trip runs on a real project with planted label errors (label_review_data.py):
explore's own candidates, two relabelled and one excluded, ingest, and the dataset version, the
manifest, the quarantine, the originals, the split and the test seal are checked. Refusals,
the sealed test set and the CLI on a real ingested and split project (3 x 20 real digits)
with candidates written in explore's format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.errors import DataError, SealedTestSetError, SplitError
from dlworkflow.store import load_split, read_assignments, read_manifest, read_quarantine
from dlworkflow.store.splits import read_split_info
from label_review_data import PLANTED_PREFIX, planted_project

COLUMNS = ["sample_id", "decision", "label", "given", "suggested", "decided_at"]


def write_candidates(project, ids: list[str], suggested: dict[str, str]) -> Path:
    """reports/explore/records/label_issues.csv in the format `dlw explore` writes
    (dlworkflow/explore/records.py): the most confident first."""
    labels = dict(zip(read_manifest(project)["sample_id"], read_manifest(project)["label"]))
    rows = [
        {
            "sample_id": sid,
            "given": labels[sid],
            "suggested": suggested[sid],
            "confidence": round(0.95 - k * 0.05, 6),
            "given_probability": 0.02,
        }
        for k, sid in enumerate(ids)
    ]
    path = project.paths.reports / "explore" / "records" / "label_issues.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def split_ids(project, split: str) -> list[str]:
    table = read_assignments(project)
    return sorted(table.loc[table["split"] == split, "sample_id"].astype(str))


def other_class(label: str) -> str:
    return {"0": "1", "1": "2", "2": "0"}[label]


def test_relabel_two_exclude_one_then_ingest_makes_a_new_version(tmp_path, snapshot):
    """The round trip on explore's own candidates: planted real label errors are found,
    two candidates relabelled to the suggested label and one excluded, then `dlw ingest`."""
    project = planted_project(tmp_path)
    source = Path(project.config.data.source)
    originals = snapshot(source)
    before = read_manifest(project)
    labels = dict(zip(before["sample_id"], before["label"]))
    version = project.ledger.latest("ingest").outputs["hash"]
    seal = read_split_info(project).seal_hash
    listed = project.label_candidates()
    suggested = {v.sample_id: v.suggested for v in listed.candidates}
    planted = [sid for sid in suggested if sid.startswith(PLANTED_PREFIX)]
    others = [sid for sid in suggested if not sid.startswith(PLANTED_PREFIX)]
    assert len(planted) >= 2 and others  # explore found planted errors (real 0s labelled 1)
    assert listed.n_unreviewed == len(suggested)
    (a, b), c = planted[:2], others[0]  # relabel the planted two, exclude another candidate
    d = next(sid for sid in before["sample_id"] if sid not in (a, b, c))  # not reviewed
    new_a, new_b = suggested[a], suggested[b]
    assert (new_a, new_b) == ("0", "0") and labels[a] == labels[b] == "1"

    first = project.review_label(a, "relabel", new_a)
    project.review_label(b, "relabel", new_b)
    project.review_label(c, "exclude")
    assert (first.given, first.suggested, first.label) == (labels[a], new_a, new_a)
    html = first._repr_html_()
    assert a in html and "next `dlw ingest`" in html
    with (project.root / "labels" / "review.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == COLUMNS
    assert [(r["sample_id"], r["decision"], r["label"]) for r in rows] == [
        (a, "relabel", new_a),
        (b, "relabel", new_b),
        (c, "exclude", ""),
    ]
    assert rows[2]["decided_at"].endswith("+00:00") and rows[0]["given"] == labels[a]
    runs = project.ledger.history("label_review")
    assert [(r.status, r.summary["sample"], r.summary["decision"]) for r in runs] == [
        ("done", a, "relabel"),
        ("done", b, "relabel"),
        ("done", c, "exclude"),
    ]
    listed = project.label_candidates()
    assert (listed.n_unreviewed, listed.n_pending) == (len(suggested) - 3, 3)
    assert read_manifest(project).equals(before)  # nothing changes before the ingest

    result = project.ingest(progress=False)
    assert result.changed and result.dataset_version != version
    assert result.label_review.startswith("3 of 3 decision(s) applied: 2 relabelled, 1 excluded")
    recorded = project.ledger.latest("ingest").summary["label_review"]
    assert (recorded["relabelled"], recorded["excluded"], recorded["rows"]) == (2, 1, 3)
    after = read_manifest(project).set_index("sample_id")
    assert (after.loc[a, "label"], after.loc[a, "label_given"]) == (new_a, labels[a])
    assert (after.loc[b, "label"], after.loc[b, "label_given"]) == (new_b, labels[b])
    assert after.loc[d, "label"] == labels[d] and pd.isna(after.loc[d, "label_given"])
    assert c not in after.index and len(after) == len(before) - 1
    quarantined = read_quarantine(project).set_index("sample_id")
    assert quarantined.loc[c, "reason"] == f"excluded in label review {rows[2]['decided_at'][:10]}"
    assert quarantined.loc[c, "label"] == labels[c]
    assert snapshot(source) == originals  # the original files: same bytes, untouched
    listed = project.label_candidates()
    assert listed.n_pending == 0
    assert {v.sample_id for v in listed.candidates if v.applied} == {a, b, c}

    with pytest.raises(SplitError):  # the split describes the old version: train refuses it
        load_split(project, "train")
    project.split()
    assert read_split_info(project).seal_hash == seal  # the sealed test set is as it was
    used = pd.concat([load_split(project, "train"), load_split(project, "val")])
    assert c not in set(used["sample_id"])
    assert used.set_index("sample_id").loc[a, "label"] == new_a

    for sid in (a, b, c):  # the last decision wins: keeping every label restores the version
        project.review_label(sid, "keep")
    restored = project.ingest(progress=False)
    assert restored.dataset_version == version and restored.n_quarantined == 0


def test_refused_decisions_record_nothing(split_project):
    project = split_project
    train, test = split_ids(project, "train"), split_ids(project, "test")
    write_candidates(project, [test[0], train[0]], {test[0]: "2", train[0]: "2"})
    listed = project.label_candidates()  # a test candidate (an explore before the split)
    assert [c.sample_id for c in listed.candidates] == [train[0]] and listed.n_sealed == 1
    bad = [
        ((test[0], "keep"), SealedTestSetError, "sealed test set"),
        (("no/such.png", "keep"), DataError, "No sample 'no/such.png'"),
        ((train[0], "maybe"), DataError, "Unknown label-review decision"),
        ((train[0], "relabel"), DataError, "one of the project's classes"),
        ((train[0], "relabel", "7"), DataError, "one of the project's classes"),
        ((train[0], "exclude", "1"), DataError, "Only a relabel takes a label"),
    ]
    for args, error, words in bad:
        with pytest.raises(error, match=words):
            project.review_label(*args)
    assert not (project.root / "labels" / "review.csv").exists()
    assert project.ledger.history("label_review") == []
    assert project.label_candidates().n_unreviewed == 1


def test_cli_review_label_and_list(split_project):
    project = split_project
    sid = split_ids(project, "val")[0]
    label = read_manifest(project).set_index("sample_id").loc[sid, "label"]
    write_candidates(project, [sid], {sid: other_class(label)})
    runner = CliRunner()
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    done = runner.invoke(
        app,
        ["review-label", sid, "relabel", "--label", other_class(label), "-p", str(project.root)],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert f"relabel '{label}' -> '{other_class(label)}'" in done.output
    listed = runner.invoke(app, ["review-label", "--list", "-p", str(project.root), "--json"])
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.stdout)
    assert doc["n_unreviewed"] == 0 and doc["n_pending"] == 1
    [candidate] = doc["candidates"]
    assert (candidate["sample_id"], candidate["decision"], candidate["label"]) == (
        sid,
        "relabel",
        other_class(label),
    )
    assert "<table>" in project.label_candidates()._repr_html_()
    refused = runner.invoke(
        app, ["review-label", split_ids(project, "test")[0], "exclude", "-p", str(project.root)]
    )
    assert refused.exit_code == 2 and "sealed test set" in refused.output
    missing = runner.invoke(app, ["review-label", sid, "-p", str(project.root)])
    assert missing.exit_code == 2 and "Give a sample id and a decision" in missing.output


def test_a_decision_on_a_sample_sealed_since_is_not_applied(split_project):
    """A decision made before the split put the sample in the test set: the ingest leaves
    the sealed sample as it is and says so."""
    project = split_project
    sid = split_ids(project, "train")[0]
    label = read_manifest(project).set_index("sample_id").loc[sid, "label"]
    project.review_label(sid, "relabel", other_class(label))
    path = project.paths.split_dir / "assignments.parquet"
    table = pd.read_parquet(path)
    table.loc[table["sample_id"] == sid, "split"] = "test"  # as a later split could have
    table.to_parquet(path, index=False)
    result = project.ingest(progress=False)
    assert not result.changed
    assert "0 of 1 decision(s) applied" in result.label_review
    assert "1 not applied (sealed test samples)" in result.label_review
    assert read_manifest(project).set_index("sample_id").loc[sid, "label"] == label
