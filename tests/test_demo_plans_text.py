"""The text and table classification demos (dlworkflow/demo_plans_text.py): their data parts
are real, disjoint and complete, and whole films stay in one part. The demos' runs are timed
by bench/demo_steps.py --task text-classification / tabular-classification (2 and 1 minute)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dlworkflow.demo_plans import demo_plan, demo_tasks


def _parts(task: str, root: Path) -> list[pd.DataFrame]:
    plan = demo_plan(task)
    assert plan.write_later is not None and plan.write_labels is not None
    files = [Path(plan.write_source(root)), plan.write_incoming(root), plan.write_later(root)]
    labels = pd.read_csv(plan.write_labels(files[1]))
    first = pd.read_parquet(files[1])
    assert labels["id"].iloc[0] == f"{files[1].name}:row 1"  # as `dlw monitor --inputs` names it
    assert labels["label"].tolist() == first["label"].astype(str).tolist()
    return [pd.read_parquet(f) for f in files]


def test_text_and_table_demos_hold_back_real_disjoint_parts(tmp_path: Path):
    assert {"text-classification", "tabular-classification"} <= set(demo_tasks())

    source, incoming, later = _parts("text-classification", tmp_path / "text")
    films = [set(part["movie"]) for part in (source, incoming, later)]
    assert not (films[0] & films[1] or films[0] & films[2] or films[1] & films[2])
    assert (len(films[0]), len(films[1]), len(films[2])) == (60, 8, 7)
    assert 1_200 < len(source) < 1_600 and min(len(incoming), len(later)) >= 100  # monitorable
    assert set(source["label"]) == {"fresh", "rotten"}
    settings = demo_plan("text-classification").settings
    assert settings["model.transfer"] == "frozen" and settings["data.group_column"] == "movie"

    parts = _parts("tabular-classification", tmp_path / "table")
    assert [len(p) for p in parts] == [456, 57, 56]  # every fifth of the 569 tumours held back
    rows = pd.concat(parts).drop(columns="label")
    assert not rows.duplicated().any()  # no tumour in two parts
    assert len(parts[0].columns) == 31  # the 30 measurements and the label
