"""The feature schema: inferred by the first ingest, checked by every later one (hard breaches
quarantined with the reason, soft ones counted), re-inferred with --accept-schema."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from dlworkflow.data.schema import SchemaBuilder, read_schema
from dlworkflow.project import Project
from dlworkflow.store import read_manifest, read_quarantine
from dlworkflow.tasks import task_of
from modality_data import mixed_cancer_table


def test_first_ingest_infers_the_image_schema(project, digits_folder):
    result = project.ingest(str(digits_folder(4)), progress=False)
    schema = read_schema(project)
    assert schema is not None and schema["inferred_from"] == result.dataset_version
    assert schema["image"]["width"] == {"min": 16, "max": 16}
    assert schema["image"]["modes"] == {"L": 12}
    assert schema["image"]["channels"] == ["gray"]
    assert schema["image"]["formats"] == {"png": 12}
    assert schema["target"] == {"type": "classes", "values": ["0", "1", "2"]}
    record = project.ledger.latest("ingest").summary["schema"]
    assert record["mode"] == "inferred" and record["inferred_from"] == result.dataset_version
    assert "3 classes" in record["summary"] and "16x16" in record["summary"]
    assert "schema" in dict(result.rows())


def test_later_ingest_quarantines_hard_breaches_and_counts_soft_ones(
    project, digits_folder, real_digit, sha256_of
):
    folder = digits_folder(4)
    project.ingest(str(folder), progress=False)
    gray = real_digit(0, 60)
    colour = folder / "0" / "colour.png"
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(colour)  # RGB: a kind never seen
    Image.fromarray(real_digit(1, 61)).resize((20, 20)).save(folder / "1" / "big.png")
    (folder / "5").mkdir()
    Image.fromarray(real_digit(5, 62)).save(folder / "5" / "five.png")  # a class never seen
    before = sha256_of(colour)

    result = project.ingest(str(folder), progress=False)

    quarantine = read_quarantine(project).set_index("sample_id")["reason"]
    assert "colour image (mode RGB) not in the schema" in quarantine["0/colour.png"]
    assert "label '5' not in the schema" in quarantine["5/five.png"]
    assert "--accept-schema" in quarantine["5/five.png"]
    assert "1/big.png" in set(read_manifest(project)["sample_id"])  # soft: kept
    record = project.ledger.latest("ingest").summary["schema"]
    assert record["mode"] == "checked"
    assert (record["checked"], record["quarantined"]) == (15, 2)
    assert record["differences"] == {"width outside [16, 16]": 1, "height outside [16, 16]": 1}
    assert result.n_quarantined == 2 and "2 quarantined" in result.schema
    assert sha256_of(colour) == before  # the original is only read
    assert read_schema(project)["image"]["channels"] == ["gray"]  # the schema stays


def test_accept_schema_infers_it_anew(project, digits_folder, real_digit):
    folder = digits_folder(4)
    project.ingest(str(folder), progress=False)
    gray = real_digit(0, 60)
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(folder / "0" / "colour.png")
    result = project.ingest(str(folder), accept_schema=True, progress=False)
    assert result.n_quarantined == 0
    schema = read_schema(project)
    assert schema["image"]["channels"] == ["colour", "gray"]
    assert schema["inferred_from"] == result.dataset_version
    assert "--accept-schema" in project.ledger.latest("ingest").summary["schema"]["why"]


def test_table_schema_types_ranges_categories_and_missing(tmp_path):
    source, table = mixed_cancer_table(tmp_path)
    project = Project.init(tmp_path / "proj", task="tabular-classification")
    project.ingest(str(source), progress=False)
    features = read_schema(project)["features"]
    radius = features["mean radius"]
    assert radius["type"] == "number"
    assert (
        radius["min"] == table["mean radius"].min() and radius["max"] == table["mean radius"].max()
    )
    assert features["mean texture"]["missing"] is True and radius["missing"] is False
    assert features["size band"] == {
        "type": "category",
        "values": ["huge", "large", "medium", "small"],
        "missing": True,
    }

    changed = table.copy()
    changed.loc[0, "size band"] = "gigantic"  # a category never seen: quarantined
    changed.loc[1, "mean radius"] = 1e6  # out of range: kept, counted
    changed.to_parquet(source, index=False)
    project.ingest(str(source), progress=False)
    quarantine = read_quarantine(project)
    assert len(quarantine) == 1
    assert "value 'gigantic' of column 'size band' never seen" in quarantine["reason"][0]
    record = project.ledger.latest("ingest").summary["schema"]
    assert record["differences"] == {f"mean radius outside [{radius['min']}, {radius['max']}]": 1}


def test_a_table_with_other_columns_is_refused_with_the_fix(tmp_path):
    source, table = mixed_cancer_table(tmp_path)
    project = Project.init(tmp_path / "proj", task="tabular-classification")
    project.ingest(str(source), progress=False)
    table.drop(columns=["mean area"]).to_parquet(source, index=False)
    import pytest

    from dlworkflow.errors import DataError

    with pytest.raises(DataError) as err:
        project.ingest(str(source), progress=False)
    assert "mean area" in err.value.received and "--accept-schema" in err.value.fix


def test_inference_is_cheap_on_5000_image_rows():
    rows = [
        {"label": str(i % 10), "width": 28, "height": 28, "mode": "L", "path": f"x/{i}.png"}
        for i in range(5000)
    ]
    builder = SchemaBuilder(task_of("image-classification"), {})
    start = time.perf_counter()
    for row in rows:
        builder.observe(row)
    schema = builder.schema(source="s", version="v" * 64, n=5000, classes=list("0123456789"))
    assert time.perf_counter() - start < 0.5
    assert schema["image"]["modes"] == {"L": 5000}
