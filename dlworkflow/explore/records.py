"""Machine-readable records of what explore found, for `dlw ui` and for scripts: CSV tables in
reports/explore/records/, written atomically by every `dlw explore`.

- label_issues.csv: sample_id, given, suggested, confidence, given_probability; every
  label-issue candidate, the most confident first.
- duplicate_pairs.csv: kind (exact | near), group, sample_id_a, sample_id_b, label_a, label_b,
  distance, conflicting; an exact group of k copies gives k - 1 pairs (its first sample with
  each other one); `distance` is the near pair's Hamming distance of perceptual hashes (images)
  or RMS gap of fingerprints (series, clips), 0 for exact copies and equal normalised texts;
  `conflicting`: the two labels differ.
- map.csv: sample_id, label, x, y, candidate; the 2-D map's points (candidate: a label-issue
  candidate).

A table is written only when explore found that evidence for the task (no map for too few
samples, no label issues for multi-label tasks or with explore.label_issues off); a table left
from an earlier explore that no longer has that evidence is removed. Sealed samples (the test
set, retrain's fresh slices) never appear, even after `dlw explore --include-test`: the records
feed pages that must not show them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlworkflow.fileio import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.explore.evidence import Evidence

RECORDS_DIR = Path("explore") / "records"  # under the project's reports folder
LABEL_ISSUES = "label_issues.csv"
DUPLICATE_PAIRS = "duplicate_pairs.csv"
MAP = "map.csv"

LABEL_ISSUE_COLUMNS = ["sample_id", "given", "suggested", "confidence", "given_probability"]
PAIR_COLUMNS = [
    "kind",
    "group",
    "sample_id_a",
    "sample_id_b",
    "label_a",
    "label_b",
    "distance",
    "conflicting",
]
MAP_COLUMNS = ["sample_id", "label", "x", "y", "candidate"]


def records_dir(reports: Path) -> Path:
    """The records folder of a project whose reports folder is `reports`."""
    return Path(reports) / RECORDS_DIR


def write_records(reports: Path, ev: Evidence) -> list[str]:
    """Write (or remove) the three tables; returns the names written."""
    folder = records_dir(reports)
    tables = {
        LABEL_ISSUES: label_issue_table(ev),
        DUPLICATE_PAIRS: duplicate_pair_table(ev),
        MAP: map_table(ev),
    }
    written = []
    for name, table in tables.items():
        path = folder / name
        if table is None:
            path.unlink(missing_ok=True)
            continue
        atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))
        written.append(name)
    return written


def label_issue_table(ev: Evidence) -> pd.DataFrame | None:
    """The candidates with their sample ids: a candidate's `position` is a row of the map's
    subsample (ev.map.sample), not of the manifest."""
    import pandas as pd

    li, mp = ev.label_issues, ev.map
    if li is None or mp is None:
        return None
    ids = mp.sample["sample_id"].astype(str).to_numpy()
    rows = [
        {
            "sample_id": str(ids[c.position]),
            "given": c.given,
            "suggested": c.suggested,
            "confidence": c.confidence,
            "given_probability": c.given_probability,
        }
        for c in li.candidates
        if str(ids[c.position]) not in ev.test_ids
    ]
    table = pd.DataFrame(rows, columns=LABEL_ISSUE_COLUMNS)
    return table.sort_values(
        ["confidence", "given_probability", "sample_id"],
        ascending=[False, True, True],
        kind="stable",
    ).reset_index(drop=True)


def duplicate_pair_table(ev: Evidence) -> pd.DataFrame:
    """Exact then near pairs, in the evidence's order (conflicting groups first)."""
    import pandas as pd

    rows = []
    for found in (ev.exact, ev.near):
        if found is None:
            continue
        for number, group in enumerate(found.groups, start=1):
            first, label = group.sample_ids[0], group.labels[0]
            distance = group.gap if group.gap is not None else float(group.distance)
            for other, other_label in zip(group.sample_ids[1:], group.labels[1:]):
                if first in ev.test_ids or other in ev.test_ids:
                    continue
                rows.append(
                    {
                        "kind": found.kind,
                        "group": number,
                        "sample_id_a": first,
                        "sample_id_b": other,
                        "label_a": label,
                        "label_b": other_label,
                        "distance": distance,
                        "conflicting": label != other_label,
                    }
                )
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def map_table(ev: Evidence) -> pd.DataFrame | None:
    import numpy as np
    import pandas as pd

    mp = ev.map
    if mp is None:
        return None
    ids = mp.sample["sample_id"].astype(str).to_numpy()
    marked = mp.marked if mp.marked is not None else np.zeros(len(ids), dtype=bool)
    table = pd.DataFrame(
        {
            "sample_id": ids,
            "label": mp.sample["label"].astype(str).to_numpy(),
            "x": mp.xy[:, 0],
            "y": mp.xy[:, 1],
            "candidate": marked.astype(bool),
        },
        columns=MAP_COLUMNS,
    )
    return table[~table["sample_id"].isin(ev.test_ids)].reset_index(drop=True)
