"""Everything explore found, in one place: the report and the trust summary read from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from dlworkflow.explore.audio_view import AudioEvidence
    from dlworkflow.explore.duplicates import Duplicates
    from dlworkflow.explore.image_quality import ImageEvidence
    from dlworkflow.explore.label_issues import LabelIssues
    from dlworkflow.explore.leakage import Leakage
    from dlworkflow.explore.overview import Overview
    from dlworkflow.explore.series_view import SeriesEvidence
    from dlworkflow.explore.tabular import TabularEvidence
    from dlworkflow.explore.text import TextEvidence


@dataclass
class MapEvidence:
    xy: np.ndarray
    labels: np.ndarray
    method: str
    variance: list[float]
    sample: pd.DataFrame  # the rows mapped (positions match xy), with a `_row` column
    marked: np.ndarray | None = None  # label-issue candidates among the rows mapped
    values: np.ndarray | None = None  # regression: the target of each point (colours)
    n_cached: int = 0  # rows whose features came from the embedding cache


@dataclass
class Evidence:
    task: str
    manifest: pd.DataFrame
    overview: Overview
    exact: Duplicates
    near: Duplicates | None = None
    images: ImageEvidence | None = None
    text: TextEvidence | None = None
    tabular: TabularEvidence | None = None
    series: SeriesEvidence | None = None  # sequence tasks
    audio: AudioEvidence | None = None  # audio tasks
    map: MapEvidence | None = None
    label_issues: LabelIssues | None = None
    leakage: Leakage | None = None
    target: Any = None  # the target kind's evidence (targets.py); None for classification
    notes: dict[str, list[str]] = field(default_factory=dict)  # section -> notes
    unreadable: dict[str, str] = field(default_factory=dict)  # sample_id -> reason
    test_ids: set[str] = field(default_factory=set)  # sealed test samples (membership only)

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)
