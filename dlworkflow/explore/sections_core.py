"""Report sections 1-5: trust summary, overview, classes, images, duplicates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlworkflow.explore import figures as fig
from dlworkflow.explore.distributions import distribution, image_sizes
from dlworkflow.explore.duplicates import SHOWN_GROUPS, Duplicates
from dlworkflow.explore.image_quality import (
    BLANK_CONTRAST,
    SATURATED_FRACTION,
    SHOWN_OUTLIERS,
)
from dlworkflow.explore.render import (
    Raw,
    esc,
    figure,
    figures,
    fmt,
    heading,
    notes,
    para,
    section,
    table,
    tiles,
)
from dlworkflow.explore.targets import target_kind
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.explore.samples import SampleView
    from dlworkflow.explore.trust import Warning


def key_numbers(ev: Evidence) -> list[tuple[str, str]]:
    ov = ev.overview
    rows = [
        ("samples", fmt(ov.n_samples)),
        *target_kind(ev.task).key_numbers(ev),
        ("exact duplicates", _dup_phrase(ev.exact)),
    ]
    if ev.near is not None:
        rows.append(("near duplicates", _dup_phrase(ev.near)))
    if ev.images is not None:
        rows.append(
            ("outliers", f"{len(ev.images.blank)} blank, {len(ev.images.saturated)} saturated")
        )
    if ev.label_issues is not None:
        li = ev.label_issues
        rows.append(
            (
                "label-issue candidates",
                f"{len(li.candidates)} of {li.n_checked:,} checked ({li.rate:.1%})",
            )
        )
    if ov.n_quarantined:
        rows.append(("quarantined", fmt(ov.n_quarantined)))
    return rows


def _dup_phrase(d: Duplicates) -> str:
    unit = "groups" if d.kind == "exact" else "pairs"
    return f"{d.n_groups:,} {unit} ({d.n_conflicting:,} with conflicting labels)"


def warning_list(warnings: list[Warning]) -> Raw:
    if not warnings:
        return Raw("<p class='ok'>No warnings: nothing found that should stop you.</p>")
    items = "".join(
        f"<li><span class='sev {w.severity}'>{w.severity.upper()}</span>{esc(w.text)} "
        f"<span class='action'>— {esc(w.action)}</span> "
        f"<a href='#{esc(w.section)}'>evidence</a></li>"
        for w in warnings
    )
    return Raw(f"<ol class='warnings'>{items}</ol>")


def trust_section(ev: Evidence, warnings: list[Warning]) -> Raw:
    counts = {s: sum(w.severity == s for w in warnings) for s in ("high", "medium", "low")}
    lead = (
        f"{len(warnings)} warnings: {counts['high']} high, {counts['medium']} medium, "
        f"{counts['low']} low. Fix the high ones before `dlw split` and training."
    )
    parts = [
        para(lead),
        warning_list(warnings),
        heading("Key numbers"),
        table([], key_numbers(ev), cls="numbers"),
    ]
    privacy = ev.overview.privacy
    if privacy:
        parts += [
            heading("Privacy scan"),
            table(["item", "value"], [(k, v) for k, v in privacy.items()]),
        ]
    return section("trust", "1. Trust summary", *parts)


def overview_section(ev: Evidence) -> Raw:
    ov = ev.overview
    kind = target_kind(ev.task)
    count = (
        ("classes", fmt(len(ov.classes)))
        if kind.group_word == "class"
        else ("distinct targets", fmt(len(ov.classes)))
    )
    rows = [
        ("task", ov.task),
        ("source", ov.source),
        ("dataset version", ov.dataset_version[:16]),
        ("samples", fmt(ov.n_samples)),
        *([] if task_of(ev.task).dense else [count]),  # dense labels: all distinct, no count
        ("groups", fmt(ov.n_groups)),
        ("quarantined", fmt(ov.n_quarantined)),
    ]
    parts = [table([], rows, cls="numbers")]
    if ov.quarantine_reasons:
        parts += [
            heading("Quarantine by reason"),
            table(["reason", "samples"], list(ov.quarantine_reasons.items())),
            heading(f"Quarantined samples (first {len(ov.quarantine_rows)} of {ov.n_quarantined})"),
            table(
                ["sample", "label", "reason"],
                [
                    (r.get("sample_id", ""), r.get("label", ""), r.get("reason", ""))
                    for r in ov.quarantine_rows
                ],
            ),
        ]
    if ev.unreadable:
        shown = list(ev.unreadable.items())[:SHOWN_OUTLIERS]
        parts += [
            heading(f"Samples that could not be read now ({len(ev.unreadable)}, skipped)"),
            table(["sample", "reason"], shown),
        ]
    parts.append(notes(ev.notes.get("overview")))
    return section("overview", "2. Overview", *parts)


def classes_section(ev: Evidence) -> Raw:
    ov = ev.overview
    names, values = list(ov.class_counts), list(ov.class_counts.values())
    smallest = min(values) if values else 0
    uneven = bool(values) and smallest < max(values)
    chart = fig.bar_chart(
        names,
        values,
        title="samples per class",
        highlight=[uneven and v == smallest for v in values],
    )
    total = max(sum(values), 1)
    rows = [(k, fmt(v), f"{v / total:.1%}") for k, v in ov.class_counts.items()]
    return section(
        "classes",
        "3. Classes",
        para(
            f"Imbalance ratio (largest / smallest class): "
            f"{ov.imbalance_ratio:.2f}." + (" Smallest class in red." if uneven else "")
        ),
        figure(chart, "class counts"),
        table(["class", "samples", "share"], rows),
    )


def images_section(ev: Evidence, view: SampleView, grid: dict[str, list[str]]) -> Raw:
    im = ev.images
    assert im is not None
    shown = image_sizes(im.widths, im.heights, im.modes)
    if im.brightness is not None:
        shown += distribution(
            im.brightness, title="brightness", xlabel="mean gray 0-255", noun="images"
        )
    if im.contrast is not None:
        shown += distribution(
            im.contrast,
            title="contrast",
            xlabel="std of gray 0-255",
            noun="images",
            mark=BLANK_CONTRAST,
        )
    parts = [*shown.text, figures(*shown.figures)]
    parts += _outliers(im.blank, f"Blank images (contrast < {BLANK_CONTRAST})", view)
    parts += _outliers(
        im.saturated,
        f"Saturated images (> {SATURATED_FRACTION:.0%} of pixels "
        "dark or bright, unusual for the class)",
        view,
    )
    word = target_kind(ev.task).group_word
    parts.append(heading(f"Samples per {word} (a fixed random choice)"))
    targets = dict(zip(ev.manifest["sample_id"].astype(str), ev.manifest["label"].astype(str)))
    for label, ids in grid.items():
        parts += [
            para(f"{word} {label}"),
            tiles(view.tile(s, targets.get(s, label) if word != "class" else label) for s in ids),
        ]
    parts.append(notes(ev.notes.get("images")))
    return section("images", "4. Images", *parts)


def _outliers(found: list, title: str, view: SampleView) -> list[Raw]:
    if not found:
        return [heading(title), para("none found")]
    shown = found[:SHOWN_OUTLIERS]
    more = f" (first {len(shown)} of {len(found)})" if len(found) > len(shown) else ""
    return [
        heading(f"{title}: {len(found)}{more}"),
        tiles(view.tile(o.sample_id, f"{o.label}: {o.reason}") for o in shown),
    ]


def duplicates_section(ev: Evidence, view: SampleView, *, distance: int | None) -> Raw:
    parts = [_dup_block(ev.exact, view, "Exact duplicates (identical content)")]
    if ev.near is not None:
        title = ev.near.method or (
            f"Near duplicates (perceptual hash within {distance} bits, confirmed on "
            "pixels, not identical)"
            if task_of(ev.task).modality == "image"
            else "Near duplicates (equal after lower-casing and white space)"
        )
        parts.append(_dup_block(ev.near, view, title))
    parts.append(notes(ev.notes.get("duplicates")))
    return section("duplicates", "5. Duplicates", *parts)


def _dup_block(d: Duplicates, view: SampleView, title: str) -> Raw:
    unit = "groups" if d.kind == "exact" else "pairs"
    summary = (
        f"{d.n_groups:,} {unit} ({d.n_samples:,} samples): {d.n_within:,} within a "
        f"class, {d.n_conflicting:,} with conflicting labels."
    )
    parts = [heading(title), para(summary), notes(d.notes)]
    if d.class_pairs:
        parts.append(
            table(["conflicting classes", unit], list(d.class_pairs.items())[:SHOWN_GROUPS])
        )
    for g in d.groups[:SHOWN_GROUPS]:
        label = ("CONFLICT" if g.conflicting else "same class") + (
            (f", RMS difference {g.gap:.3g}" if g.gap is not None else f", distance {g.distance}")
            if d.kind == "near"
            else ""
        )
        parts.append(view.pair(g.sample_ids[:6], g.labels[:6], conflict=g.conflicting, title=label))
    if d.n_groups > SHOWN_GROUPS:
        parts.append(
            para(
                f"… {d.n_groups - SHOWN_GROUPS:,} more {unit} not shown (conflicts first).", "note"
            )
        )
    return Raw("".join(parts))
