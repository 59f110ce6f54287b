"""The report file: every section, in order, trust summary first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dlworkflow.explore import sections_core as core
from dlworkflow.explore import sections_more as more
from dlworkflow.explore.pixels import pick_per_class
from dlworkflow.explore.render import page
from dlworkflow.explore.targets import groups, target_kind
from dlworkflow.style import must_know

if TYPE_CHECKING:
    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.explore.samples import SampleView
    from dlworkflow.explore.trust import Warning


def render_report(
    ev: Evidence,
    warnings: list[Warning],
    view: SampleView,
    *,
    name: str,
    grid_per_class: int,
    distance: int,
    seed: int,
    exclude_ids: set[str],
) -> str:
    sections = [
        core.trust_section(ev, warnings),
        core.overview_section(ev),
        target_kind(ev.task).section(ev),
    ]
    if ev.images is not None:
        sections.append(core.images_section(ev, view, _grid(ev, grid_per_class, seed, exclude_ids)))
    if ev.series is not None:
        from dlworkflow.explore.series_view import series_section

        sections.append(series_section(ev))
    if ev.audio is not None:
        from dlworkflow.explore.audio_view import audio_section

        sections.append(audio_section(ev))
    sections.append(core.duplicates_section(ev, view, distance=distance))
    sections += [more.map_section(ev), more.label_issues_section(ev, view)]
    if ev.text is not None:
        sections.append(more.text_section(ev))
    if ev.tabular is not None:
        sections.append(more.tabular_section(ev))
    sections.append(more.leakage_section(ev, view))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = (
        f"Step 3 of the workflow: exploratory data analysis of {ev.overview.n_samples:,} "
        f"samples ({ev.task}), dataset version {ev.overview.dataset_version[:12]}, "
        f"made {stamp} by `dlw explore`."
    )
    return page(f"Data exploration: {name}", subtitle, sections, opening=opening(ev, warnings))


def opening(ev: Evidence, warnings: list[Warning]) -> str:
    """The three things to know, first: can the data be trusted, what it is, what to do next."""
    counts = {s: sum(w.severity == s for w in warnings) for s in ("high", "medium", "low")}
    first = warnings[0] if warnings else None  # warnings come most severe first
    trust = (
        f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''} ({counts['high']} high, "
        f"{counts['medium']} medium, {counts['low']} low); the first: {first.text}."
        if first
        else "No warnings: nothing found that needs fixing before the split."
    )
    ov = ev.overview
    what = f"{ov.n_samples:,} samples ({ev.task.replace('-', ' ')})"
    if ev.target is None and ov.class_counts:  # classification: classes and balance
        what += f", {len(ov.classes)} classes, largest / smallest class {ov.imbalance_ratio:.2f}"
    if ov.n_quarantined:
        what += f"; {ov.n_quarantined:,} files quarantined (section 2 lists why)"
    if first is not None and first.severity == "high":
        step = f"Before `dlw split`: {first.action}."
    elif first is not None:
        step = f"Consider: {first.action}; then `dlw split` seals the test set."
    else:
        step = "Next: `dlw split` seals the test set."
    tone = "bad" if counts["high"] else "warn" if counts["medium"] else "good"
    return must_know([trust, what + ".", step], tone=tone)


def _grid(ev: Evidence, k: int, seed: int, exclude_ids: set[str]) -> dict[str, list[str]]:
    """class (value range, rarest label) -> up to k sample ids (never sealed test samples), a
    fixed random choice."""
    import pandas as pd

    pool = ev.manifest
    if exclude_ids:
        pool = pool[~pool["sample_id"].astype(str).isin(exclude_ids)]
    picks = pick_per_class(pd.Series(groups(ev.task, pool["label"]), dtype=str), k=k, seed=seed)
    ids = pool["sample_id"].astype(str).to_numpy()
    return {label: ids[rows].tolist() for label, rows in picks.items()}
