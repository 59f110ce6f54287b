"""The Data judges from the records ingest and export now write: the feature schema (inferred,
then checked), the data requirements (met or not, with the fix) and the feature cost."""

from __future__ import annotations

from PIL import Image

from dlworkflow.report.audit.evidence import Evidence
from dlworkflow.report.audit.judges_data import (
    feature_cost,
    feature_requirements,
    feature_schema,
    input_invariants_hold,
)
from modality_data import mixed_cancer_table
from modality_data import trained_project as trained


def test_feature_schema_cites_the_inference_then_the_check(project, digits_folder, real_digit):
    folder = digits_folder(4)
    project.ingest(str(folder), progress=False)
    first = feature_schema(Evidence(project))
    assert first.points == 1.0
    assert "inferred the feature schema (3 classes; images 16x16" in first.evidence
    Image.fromarray(real_digit(1, 70)).resize((24, 24)).save(folder / "1" / "big.png")
    (folder / "4").mkdir()
    Image.fromarray(real_digit(4, 71)).save(folder / "4" / "four.png")
    project.ingest(str(folder), progress=False)
    checked = feature_schema(Evidence(project))
    assert checked.points == 1.0
    assert "checked 14 samples against the feature schema" in checked.evidence
    assert "1 quarantined for a hard breach (label '4' not in the schema: 1)" in checked.evidence
    assert "1 kept outside a soft expectation (width outside [16, 16]: 1" in checked.evidence


def test_feature_requirements_met_and_not_met(project, digits_folder):
    folder = digits_folder(4)
    project.update_config({"data.requirements.min_samples_per_class": 4})
    project.ingest(str(folder), progress=False)
    met = feature_requirements(Evidence(project))
    assert met.points == 1.0 and not met.failed
    assert "min_samples_per_class 4 (>= 4: ok)" in met.evidence
    assert "max_imbalance 1 (<= 100: ok)" in met.evidence
    assert "allowed_sources: any" in met.evidence
    project.update_config({"data.requirements.min_samples_per_class": 5})
    project.ingest(str(folder), progress=False)
    unmet = feature_requirements(Evidence(project))
    assert unmet.points == 0.0 and unmet.failed
    assert "not met: min_samples_per_class: the class '0' has 4 samples" in unmet.evidence
    assert "`dlw ingest`" in unmet.next_step


def test_tabular_export_records_the_cost_of_each_feature(tmp_path):
    source, table = mixed_cancer_table(tmp_path)
    project = trained(
        tmp_path / "table",
        task="tabular-classification",
        source=source,
        config={"model.name": "mlp", "model.params": {"hidden": [8]}},
    )
    ev = Evidence(project)
    missing = feature_cost(ev)
    assert missing.points == 0 and missing.next_step.startswith("`dlw export`")
    project.export(force=True, reason="feature cost test")
    ev = Evidence(project)
    cost = ev.release["feature_cost"]
    features = cost["features"]
    assert set(features) == {c for c in table.columns if c != "label"}
    assert abs(sum(f["share"] for f in features.values()) - 1.0) < 0.01
    assert cost["per_sample_ms"] > 0 and cost["n"] > 0
    judged = feature_cost(ev)
    assert judged.points == 1.0
    assert f"encode the row: {cost['per_sample_ms']:.3f} ms per sample" in judged.evidence
    assert "31 features, the costliest" in judged.evidence
    assert ev.release["schema"]["features"]["size band"]["type"] == "category"
    invariants = input_invariants_hold(ev)
    assert "carries the feature schema of its data" in invariants.evidence
