"""Issue 14, item 9: de-identification persists. `--deidentify` is stored in the config
(privacy.deidentify) and applies to every later ingest, data.additions (`dlw retrain --data`)
included; scrubbed copies are named by a hash of the source path (two data.csv files cannot
overwrite each other); privacy.accept_findings_reason holds only for the dataset version it
was given for (privacy.accept_findings_version)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, PngImagePlugin

from dlworkflow.data.deid import deidentify_file
from dlworkflow.project import Project
from dlworkflow.store import read_manifest
from dlworkflow.store.privacy import PrivacyError, check_privacy_gate, read_privacy
from modality_data import helpers

digit_image = helpers("conftest.py").digit_image


def authored_png(path: Path, label: int, k: int) -> Path:
    """A real digit whose PNG carries its author's name (a finding the scrub removes)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(digit_image(label, k)).save(path, pnginfo=info)
    return path


def table(folder: Path, start: int, n: int = 12) -> Path:
    """A tabular table named data.csv with an e-mail column (a finding) and real features."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "x1": float(start + i),
            "x2": float((start + i) % 7),
            "email": f"patient{start + i}@example.org",
            "label": "ab"[i % 2],
        }
        for i in range(n)
    ]
    pd.DataFrame(rows).to_csv(folder / "data.csv", index=False)
    return folder / "data.csv"


# ---- --deidentify is stored and applies to later ingests -------------------------------------
def test_deidentify_is_stored_and_applies_to_every_later_ingest(project, digits_folder):
    folder = digits_folder(4)
    authored_png(folder / "1" / "signed.png", 1, 9)
    project.ingest(str(folder), deidentify=True, progress=False)
    assert project.config.privacy.deidentify is True
    assert "deidentify: true" in project.paths.config.read_text()
    project.ingest(progress=False)  # a plain `dlw ingest`, no flag
    assert read_privacy(project)["mode"] == "deidentified"
    assert read_privacy(project)["remaining"] == 0
    row = read_manifest(project).set_index("sample_id").loc["1/signed.png"]
    assert Path(row["path"]).parent == project.paths.state / "deid"
    assert project.ledger.latest("ingest").summary["deidentified"] is True


def test_additions_of_retrain_are_deidentified_too(project, digits_folder, tmp_path):
    project.ingest(str(digits_folder(4)), deidentify=True, progress=False)
    fresh = tmp_path / "fresh"
    for label in (0, 1, 2):
        authored_png(fresh / str(label) / f"new-{label}.png", label, 12)
    # what `dlw retrain --data fresh` does: record the addition, then run the ingest step
    project.update_config({"data.additions": [str(fresh)]})
    result = project.run_step("ingest", progress=False)
    assert result.additions[0]["n_samples"] == 3
    privacy = read_privacy(project)
    assert privacy["mode"] == "deidentified" and privacy["remaining"] == 0
    manifest = read_manifest(project).set_index("sample_id")
    for label in (0, 1, 2):
        path = Path(manifest.loc[f"add1/{label}/new-{label}.png", "path"])
        assert path.parent == project.paths.state / "deid"
        assert "Author" not in Image.open(path).info


# ---- scrubbed copies are named by a hash of the source path ----------------------------------
def test_two_tables_named_data_csv_keep_their_own_scrubbed_copies(tmp_path):
    project = Project.init(tmp_path / "p", task="tabular-classification")
    main, addition = table(tmp_path / "a", 0), table(tmp_path / "b", 100)
    project.update_config({"data.additions": [str(addition)]})
    project.ingest(str(main), deidentify=True, progress=False)
    manifest = read_manifest(project).set_index("sample_id")
    assert len(manifest) == 24
    # ids as without --deidentify: the original table's name and row
    assert manifest.loc["data.csv:row 1", "f:x1"] == 0.0
    assert manifest.loc["add1/data.csv:row 1", "f:x1"] == 100.0
    assert "f:email" not in manifest.columns  # scrubbed (dropped)
    copies = sorted(p.name for p in (project.paths.state / "deid").glob("*.parquet"))
    assert len(copies) == 2 and all("data" not in name for name in copies)


def test_image_copies_of_same_named_files_do_not_overwrite_each_other(tmp_path):
    a = authored_png(tmp_path / "a" / "scan.png", 1, 1)
    b = authored_png(tmp_path / "b" / "scan.png", 2, 2)
    copy_a, _ = deidentify_file(a, tmp_path / "deid", "scan.png")
    copy_b, _ = deidentify_file(b, tmp_path / "deid", "scan.png")
    assert copy_a != copy_b and copy_a.is_file() and copy_b.is_file()
    assert copy_a.name.startswith("deid-") and "scan" not in copy_a.name


# ---- an accepted reason belongs to one dataset version ---------------------------------------
@pytest.fixture
def pii_table_project(tmp_path: Path) -> Project:
    project = Project.init(tmp_path / "p", task="tabular-classification")
    project.update_config({"problem.data_sensitivity": "pii"})
    project.ingest(str(table(tmp_path / "a", 0)), progress=False)  # scan-only: findings remain
    assert read_privacy(project)["remaining"] >= 1
    return project


def test_a_reason_without_its_dataset_version_is_refused(pii_table_project: Project):
    project = pii_table_project
    version = project.upstream_hash("ingest")
    project.update_config({"privacy.accept_findings_reason": "synthetic addresses only"})
    with pytest.raises(PrivacyError, match="dataset version") as err:
        check_privacy_gate(project)
    assert f"privacy.accept_findings_version: {version}" in err.value.fix
    project.update_config({"privacy.accept_findings_version": version})
    assert check_privacy_gate(project) == "synthetic addresses only"


def test_a_new_dataset_version_needs_a_new_decision(pii_table_project: Project, tmp_path):
    project = pii_table_project
    old = project.upstream_hash("ingest")
    project.update_config(
        {
            "privacy.accept_findings_reason": "synthetic addresses only",
            "privacy.accept_findings_version": old,
        }
    )
    assert check_privacy_gate(project) == "synthetic addresses only"
    project.ingest(str(table(tmp_path / "c", 50, n=14)), progress=False)  # new data
    with pytest.raises(PrivacyError, match="new dataset version needs a new decision") as err:
        check_privacy_gate(project)
    assert old[:12] in str(err.value)
    assert f"privacy.accept_findings_version: {project.upstream_hash('ingest')}" in err.value.fix


def test_ingest_can_record_the_decision_for_its_own_version(tmp_path):
    project = Project.init(tmp_path / "p", task="tabular-classification")
    project.update_config({"problem.data_sensitivity": "pii"})
    result = project.ingest(
        str(table(tmp_path / "a", 0)), accept_findings="synthetic addresses only", progress=False
    )
    privacy = project.config.privacy
    assert privacy.accept_findings_reason == "synthetic addresses only"
    assert privacy.accept_findings_version == result.dataset_version
    assert check_privacy_gate(project) == "synthetic addresses only"
    assert result.dataset_version in result.privacy  # the version the decision is tied to


def test_deidentify_keeps_the_sample_ids_of_an_image_table(tmp_path, project):
    folder = tmp_path / "imgs"
    rows = []
    for k in range(8):
        authored_png(folder / "img" / f"{k}.png", k % 2, k)
        rows.append({"path": f"img/{k}.png", "label": "ab"[k % 2], "email": f"p{k}@example.org"})
    pd.DataFrame(rows).to_csv(folder / "samples.csv", index=False)
    project.ingest(str(folder / "samples.csv"), progress=False)
    plain = set(read_manifest(project)["sample_id"])
    project.ingest(deidentify=True, progress=False)
    manifest = read_manifest(project)
    assert set(manifest["sample_id"]) == plain == {f"img/{k}.png" for k in range(8)}
    assert all(Path(p).parent == project.paths.state / "deid" for p in manifest["path"])
    assert read_privacy(project)["remaining"] == 0


def test_the_cli_option_accept_findings_records_the_decision(tmp_path):
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    project = Project.init(tmp_path / "p", task="tabular-classification")
    project.update_config({"problem.data_sensitivity": "pii"})
    source = str(table(tmp_path / "a", 0))
    out = CliRunner().invoke(
        app, ["ingest", source, "--project", str(project.root), "--accept-findings", "synthetic"]
    )
    assert out.exit_code == 0, out.output
    privacy = Project(project.root).config.privacy
    assert privacy.accept_findings_reason == "synthetic"
    assert privacy.accept_findings_version == project.upstream_hash("ingest")
