"""Overview evidence: samples, classes, dataset version, class balance and the quarantine."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

QUARANTINE_SHOWN = 50  # quarantined samples listed in the report


@dataclass
class Overview:
    n_samples: int
    classes: list[str]
    class_counts: dict[str, int]
    dataset_version: str
    source: str
    task: str
    n_groups: int
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    quarantine_rows: list[dict[str, str]] = field(default_factory=list)
    n_quarantined: int = 0
    privacy: dict[str, Any] | None = None

    @property
    def imbalance_ratio(self) -> float:
        counts = [c for c in self.class_counts.values() if c > 0]
        return max(counts) / min(counts) if counts else float("nan")

    @property
    def smallest_class(self) -> tuple[str, int]:
        label = min(self.class_counts, key=lambda k: self.class_counts[k])
        return label, self.class_counts[label]


def overview(manifest: pd.DataFrame, quarantine: pd.DataFrame, *, info: Any, task: str) -> Overview:
    counts = manifest["label"].astype(str).value_counts()
    order = sorted(counts.index, key=_natural)
    reasons = Counter(reason_kind(str(r)) for r in quarantine["reason"].tolist())
    rows = [
        {str(k): "" if _missing(v) else str(v) for k, v in r.items()}
        for r in quarantine.head(QUARANTINE_SHOWN).to_dict("records")
    ]
    return Overview(
        n_samples=len(manifest),
        classes=order,
        class_counts={k: int(counts[k]) for k in order},
        dataset_version=str(getattr(info, "version", "") or ""),
        source=str(getattr(info, "source", "") or ""),
        task=task,
        n_groups=int(manifest["group"].nunique()) if "group" in manifest else 0,
        quarantine_reasons=dict(reasons.most_common()),
        quarantine_rows=rows,
        n_quarantined=len(quarantine),
    )


def reason_kind(reason: str) -> str:
    """A reason without its details (line numbers, values after a colon), for counting."""
    text = reason.split(": ", 1)[1] if reason.startswith("line ") else reason
    return text.split(":")[0].split(" (")[0].strip() or "unknown"


def _missing(value: Any) -> bool:
    try:
        return value is None or value != value  # None, NaN, pd.NA
    except (TypeError, ValueError):
        return False


def _natural(text: str) -> tuple[int, Any]:
    return (0, int(text)) if text.isdigit() else (1, text)


def read_privacy(path: Any) -> dict[str, Any] | None:
    """The privacy scan's counts (`.dlw/privacy.json`), if a scan was made."""
    from dlworkflow.fileio import read_json

    try:
        raw = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    return {k: v for k, v in raw.items() if isinstance(v, (int, float, str, dict)) and k != "log"}
