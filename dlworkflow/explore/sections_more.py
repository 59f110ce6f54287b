"""Report sections 6-10: 2-D map, label-issue candidates, text, tabular, cross-split leakage."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dlworkflow.explore import figures as fig
from dlworkflow.explore.label_issues import SHOWN_ISSUES
from dlworkflow.explore.render import (
    Raw,
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

if TYPE_CHECKING:
    from dlworkflow.explore.evidence import Evidence
    from dlworkflow.explore.samples import SampleView


def map_section(ev: Evidence) -> Raw:
    mp = ev.map
    if mp is None:
        return section("map", "6. 2-D map", para("not computed"), notes(ev.notes.get("map")))
    var = ", ".join(f"{v:.1%}" for v in mp.variance if v == v)
    title = f"PCA of {mp.method} ({len(mp.xy):,} samples)"
    if mp.values is not None:
        chart = fig.scatter_values(mp.xy, mp.values, title=title)
        colour = "Colour: the target value."
    else:
        chart = fig.scatter_map(mp.xy, mp.labels, marked=mp.marked, title=title)
        word = target_kind(ev.task).group_word
        colour = (
            "Ringed points are label-issue candidates."
            if word == "class"
            else f"Colour: the sample's {word}."
        )
    return section(
        "map",
        "6. 2-D map",
        para(
            f"Features: {mp.method}; {len(mp.xy):,} of {ev.overview.n_samples:,} samples; "
            f"variance explained by the two axes: {var or '–'}. " + colour
        ),
        figure(chart, "2-D map"),
        notes(ev.notes.get("map")),
    )


def label_issues_section(ev: Evidence, view: SampleView) -> Raw:
    li = ev.label_issues
    if li is None:
        return section(
            "label-issues",
            "7. Label-issue candidates",
            notes(ev.notes.get("label-issues") or ["not computed"]),
        )
    head = (
        f"{len(li.candidates)} candidates among {li.n_checked:,} checked samples "
        f"({li.rate:.1%}), by confident learning (cleanlab) on out-of-fold probabilities of "
        f"a logistic regression on the map's features (its accuracy: "
        f"{li.model_accuracy:.1%}). Candidates are for review: the quick model can be "
        "wrong, most of all when its accuracy is low."
    )
    sample = ev.map.sample if ev.map is not None else None
    shown = li.candidates[:SHOWN_ISSUES]
    items = []
    for c in shown:
        sid = str(sample.iloc[c.position]["sample_id"]) if sample is not None else "?"
        items.append(
            view.tile(
                sid,
                f"given {c.given} → {c.suggested} "
                f"({c.confidence:.0%}; given {c.given_probability:.0%})",
            )
        )
    parts = [para(head), tiles(items)]
    if len(li.candidates) > len(shown):
        parts.append(para(f"… {len(li.candidates) - len(shown):,} more, ranked lower.", "note"))
    parts.append(notes(li.notes + ev.notes.get("label-issues", [])))
    return section("label-issues", "7. Label-issue candidates", *parts)


def text_section(ev: Evidence) -> Raw:
    tx = ev.text
    assert tx is not None
    parts = [
        table(
            [],
            [
                ("vocabulary (distinct words)", fmt(tx.vocabulary)),
                (
                    "median characters",
                    fmt(float(np.median(tx.chars)) if len(tx.chars) else float("nan")),
                ),
                (
                    "median words",
                    fmt(float(np.median(tx.tokens)) if len(tx.tokens) else float("nan")),
                ),
                ("empty texts", fmt(tx.n_empty)),
            ],
            cls="numbers",
        ),
        figures(
            figure(
                fig.histograms_by_class(
                    tx.chars, tx.labels, title="characters", xlabel="characters per text"
                ),
                "chars",
            ),
            figure(
                fig.histograms_by_class(
                    tx.tokens, tx.labels, title="words", xlabel="words per text"
                ),
                "tokens",
            ),
        ),
        heading(f"Most frequent words per {target_kind(ev.task).group_word} (stop words removed)"),
        table(
            [target_kind(ev.task).group_word, "words (count)"],
            [(k, ", ".join(f"{w} ({n})" for w, n in v)) for k, v in tx.top_tokens.items()],
        ),
    ]
    return section("text", "8. Text", *parts)


def tabular_section(ev: Evidence) -> Raw:
    tb = ev.tabular
    assert tb is not None
    rows = [
        (
            c.name,
            c.kind,
            f"{c.missing:.1%}",
            fmt(c.distinct),
            fmt(c.mean),
            fmt(c.std),
            fmt(c.minimum),
            fmt(c.maximum),
        )
        for c in tb.columns
    ]
    parts = [
        table(["column", "type", "missing", "distinct", "mean", "std", "min", "max"], rows),
        para(f"{tb.rows_with_missing:,} rows have at least one missing value."),
    ]
    parts.append(heading("Columns that leak the target"))
    parts.append(
        table(["column", "why"], [(lk.column, lk.reason) for lk in tb.leaks])
        if tb.leaks
        else para("none found")
    )
    if tb.correlation is not None:
        parts += [
            heading("Correlation of numeric columns"),
            figure(
                fig.heatmap(
                    np.nan_to_num(tb.correlation), tb.correlation_names, title="Pearson correlation"
                ),
                "correlation",
            ),
        ]
    return section("tabular", "9. Tabular", *parts)


def leakage_section(ev: Evidence, view: SampleView) -> Raw:
    lk = ev.leakage
    if lk is None:
        return section(
            "leakage",
            "10. Cross-split leakage",
            para(
                "No split yet: run `dlw split`, then `dlw explore` again to check "
                "the split for leakage."
            ),
        )
    counts = ", ".join(f"{k} {v:,}" for k, v in lk.split_counts.items())
    parts = [
        para(
            f"Split: {counts}."
            + (
                f" {lk.unassigned:,} samples are not in the split (ingested after it)."
                if lk.unassigned
                else ""
            )
        )
    ]
    rows = [
        (kind, combo, n)
        for kind, table_ in (("exact", lk.exact), ("near", lk.near))
        for combo, n in table_.items()
    ]
    parts.append(
        table(["duplicates", "between", "groups / pairs"], rows)
        if rows
        else para("No duplicates between splits.", "ok")
    )
    for ex in lk.examples:
        captions = [f"{s}: {lab}" for s, lab in zip(ex.splits, ex.labels)]
        parts.append(
            view.pair(
                ex.sample_ids[:6],
                captions[:6],
                conflict="test" in ex.splits,
                title=f"{ex.kind} across splits",
            )
        )
    parts.append(heading("Groups in more than one split"))
    parts.append(
        table(["group", "splits"], [(g, ", ".join(s)) for g, s in lk.group_examples])
        if lk.leaked_groups
        else para("none", "ok")
    )
    return section("leakage", "10. Cross-split leakage", *parts)
